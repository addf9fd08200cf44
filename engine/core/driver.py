"""The compiled driver's Python entry: picks the disk-cached built-in loop or the generic
one and names its output (:class:`~engine.core.raw.RawRun`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.core.raw import RawRun
from engine.core.step_nb import (
    builtin_policy_nb,
    detector_update_nb,
    regime_pass_nb,
    run_builtin_nb,
)

Regimes = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""Phase 2 of a run computed ahead: ``(post, raw, smoothed, changed, dstate, rstate)``."""


def no_regimes(n_states: int) -> Regimes:
    """The drivers' ``regimes`` argument when none is given (phase 2 computed in the run)."""
    return (
        np.zeros((0, n_states)),
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=np.int64),
        np.zeros(0, dtype=np.bool_),
        np.zeros(0),
        np.zeros(0),
    )


def regime_pass(feat_rows: np.ndarray, exog: np.ndarray, setup: Any, state: Any) -> Regimes:
    """Phase 2 of a run over all its bars, ahead of any strategy (:func:`regime_pass_nb`):
    the same for every run with the setup's detector rows, fit bars and smoothing and
    these feature rows, whatever its strategy, costs or execution; ``state`` (a fresh
    one) is not changed."""
    out = regime_pass_nb(
        np.ascontiguousarray(feat_rows, dtype=np.float64),
        exog,
        0,
        setup.dparams,
        setup.fit_bar,
        state.dstate.copy(),
        state.post.copy(),
        setup.smooth,
        state.rstate.copy(),
    )
    return tuple(out)  # type: ignore[return-value]


def run_driver(
    policy: Any,
    *args: Any,
    ufilter: Any = None,
    t0: int = 0,
    feat_rows: np.ndarray | None = None,
    regimes: Regimes | None = None,
) -> RawRun:
    """The compiled driver for ``policy`` (and a user filter, if any): the disk-cached
    built-in loop for the built-in policy and detectors, the generic one otherwise.
    ``args`` as for :func:`run_builtin_nb` up to ``record_features``; ``t0`` is the run's
    bar index of the first row (chunked runs); ``feat_rows`` the precomputed feature rows
    and ``regimes`` the precomputed phase 2 (:func:`regime_pass`; not with a user
    filter) (see :func:`run_nb`). A user policy or filter runs through the disk-cached
    driver bound to it (:mod:`engine.core.user_driver`)."""
    if feat_rows is None:
        feat_rows = np.zeros((0, int(args[7])))
    if regimes is None:
        regimes = no_regimes(int(args[6].post.shape[0]))
    elif ufilter is not None:
        raise ValueError("regimes computed ahead are not supported with a user filter")
    full = (*args, t0, feat_rows, regimes)
    if policy is builtin_policy_nb and ufilter is None:
        return RawRun(*run_builtin_nb(*full))
    from engine.core.user_driver import bound_driver

    run = bound_driver(policy, detector_update_nb if ufilter is None else ufilter)
    return RawRun(*run(*full))

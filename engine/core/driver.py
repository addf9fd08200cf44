"""The compiled driver's Python entry: picks the disk-cached built-in loop or the generic
one and names its output (:class:`~engine.core.raw.RawRun`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.core.raw import RawRun
from engine.core.step_nb import builtin_policy_nb, detector_update_nb, run_builtin_nb, run_nb


def run_driver(
    policy: Any,
    *args: Any,
    ufilter: Any = None,
    t0: int = 0,
    feat_rows: np.ndarray | None = None,
) -> RawRun:
    """The compiled driver for ``policy`` (and a user filter, if any): the disk-cached
    built-in loop for the built-in policy and detectors, the generic one otherwise.
    ``args`` as for :func:`run_builtin_nb` up to ``record_features``; ``t0`` is the run's
    bar index of the first row (chunked runs); ``feat_rows`` the precomputed feature rows
    (see :func:`run_nb`)."""
    if feat_rows is None:
        feat_rows = np.zeros((0, int(args[7])))
    full = (*args, t0, feat_rows)
    if policy is builtin_policy_nb and ufilter is None:
        return RawRun(*run_builtin_nb(*full))
    return RawRun(*run_nb(policy, detector_update_nb if ufilter is None else ufilter, *full))

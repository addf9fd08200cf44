"""Many sweep combinations of one shared regime pass in one compiled call.

:func:`run_batch_nb` runs each combination through the same disk-cached loop as a single
run (:func:`engine.core.step_nb.run_builtin_nb`, the built-in policy) and writes its
metrics (:func:`engine.sweep.metrics_nb.metrics_nb`) straight into a row of the result:
no Python between runs (state and setup tuples, argument typing, output boxing, the
metrics call), the same bits as one run at a time.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np

from engine.core.step_nb import Setup, State, run_builtin_nb
from engine.sweep.metrics_nb import metrics_nb


@nb.njit(cache=True)
def run_batch_nb(
    bar_open: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    exog: np.ndarray,
    n_features: int,
    feat_rows: np.ndarray,
    regimes: tuple[Any, ...],
    fparams: np.ndarray,
    dparams: np.ndarray,
    fit_bar: np.ndarray,
    smooth: np.ndarray,
    template: Any,
    flags: np.ndarray,
    costs: np.ndarray,
    eparams: np.ndarray,
    sparams: np.ndarray,
    ports: np.ndarray,
    sstate_sizes: np.ndarray,
    ppy: float,
    out: np.ndarray,
) -> None:
    """Metrics of combination ``k`` into ``out[k]``, for each ``k``: new-period ``flags[k]``,
    ``costs[k]``, ``eparams[k]``, ``sparams[k]`` (rows of stacked arrays), a fresh state
    from ``ports[k]`` (its initial portfolio vector), a policy state of ``sstate_sizes[k]``
    zeros and copies of the ``template`` state's other arrays; the features, detector and
    smoothing shared."""
    _, fstate, dstate, rstate, _, post, work = template
    for k in range(out.shape[0]):
        setup = Setup(costs[k], eparams[k], fparams, dparams, fit_bar, smooth, sparams[k])
        state = State(
            ports[k].copy(),
            fstate.copy(),
            dstate.copy(),
            rstate.copy(),
            np.zeros(max(1, sstate_sizes[k])),
            post.copy(),
            work.copy(),
        )
        raw = run_builtin_nb(
            bar_open, close, volume, exog, flags[k], setup, state, n_features, False, 0,
            feat_rows, regimes,
        )  # fmt: skip
        metrics_nb(raw[0], raw[9], ppy, out[k])

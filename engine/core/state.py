"""Fresh run state and checkpoints (the state is a handful of float64 arrays)."""

from __future__ import annotations

import numpy as np

from engine.core.step_nb import State
from engine.features.causal_nb import feature_state_size
from engine.ground import layout as L


def initial_state(
    n_assets: int,
    n_states: int,
    eparams: np.ndarray,
    fparams: np.ndarray,
    dstate_size: int,
    sstate_size: int,
) -> State:
    """All cash; empty feature, detector, regime and policy states; uniform posterior."""
    port = np.zeros(L.portfolio_size(n_assets))
    port[L.P_CASH] = eparams[L.E_INITIAL_CASH]
    port[L.P_EQUITY] = port[L.P_CASH]
    port[L.P_LAST_DECISION] = -1.0
    rstate = np.zeros(L.N_REGIME_STATE)
    rstate[L.G_RAW] = -1.0
    rstate[L.G_SMOOTHED] = -1.0
    rstate[L.G_CAND] = -1.0
    rstate[L.G_FIT] = -1.0
    return State(
        port,
        np.zeros(feature_state_size(n_assets, fparams)),
        np.zeros(max(1, dstate_size)),
        rstate,
        np.zeros(max(1, sstate_size)),
        np.full(n_states, 1.0 / n_states),
        np.zeros(n_assets),
    )


def snapshot(state: State) -> dict[str, np.ndarray]:
    """A deep copy of the state as a dict of arrays (for checkpoints)."""
    return {name: np.array(arr, copy=True) for name, arr in zip(State._fields, state)}


def restore(arrays: dict[str, np.ndarray]) -> State:
    """Rebuild a state from :func:`snapshot` output."""
    missing = [f for f in State._fields if f not in arrays]
    if missing:
        raise ValueError(f"checkpoint is missing state arrays: {', '.join(missing)}")
    return State(*(np.ascontiguousarray(arrays[f], dtype=np.float64) for f in State._fields))

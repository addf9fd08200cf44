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


def smoothed_regime(arrays: dict[str, np.ndarray]) -> float:
    """The smoothed regime slot of a :func:`snapshot` (-1: none yet)."""
    return float(arrays["rstate"][L.G_SMOOTHED])


def check_state_slots(
    arrays: dict[str, np.ndarray], n_states: int, n_fits: int, rule: bool, max_count: int
) -> None:
    """The slots the step uses as indices and counts hold in-range integers (a checkpoint
    check, before any kernel reads them): ``ValueError`` naming the slot."""

    def index(v: float, name: str, lo: int, hi: int) -> None:
        if v != np.floor(v) or not lo <= v < hi:
            raise ValueError(f"{name} = {v!r} is not an index in [{lo}, {hi})")

    rs, port = arrays["rstate"], arrays["port"]
    for slot, name in ((L.G_RAW, "raw"), (L.G_SMOOTHED, "smoothed"), (L.G_CAND, "candidate")):
        index(float(rs[slot]), f"rstate[{name}]", -1, n_states)
    index(float(rs[L.G_FIT]), "rstate[fit]", -1, max(n_fits, 1))
    for slot, name in ((L.G_DWELL, "dwell"), (L.G_CAND_COUNT, "candidate count")):
        index(float(rs[slot]), f"rstate[{name}]", 0, max_count)
    if float(rs[L.G_CHANGED]) not in (0.0, 1.0):
        raise ValueError("rstate[changed] is not 0 or 1")
    index(float(port[L.P_BARS]), "port[bars]", 0, max_count)
    index(float(port[L.P_LAST_DECISION]), "port[last decision]", -1, max_count)
    if rule:  # the rule detector's ring buffer: [count, ring]
        index(float(arrays["dstate"][0]), "dstate[0]", 0, max_count)


def restore(arrays: dict[str, np.ndarray]) -> State:
    """Rebuild a state from :func:`snapshot` output."""
    missing = [f for f in State._fields if f not in arrays]
    if missing:
        raise ValueError(f"checkpoint is missing state arrays: {', '.join(missing)}")
    return State(*(np.ascontiguousarray(arrays[f], dtype=np.float64) for f in State._fields))

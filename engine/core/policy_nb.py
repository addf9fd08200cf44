"""The compiled strategy contract and the built-in policies (njit).

A compiled policy is an ``njit`` function::

    policy(t: int, ctx: BarContext, sparams: float64[:], sstate: float64[:],
           target: float64[:]) -> bool

It writes target weights (fractions of equity, one per asset) into ``target`` and returns
``True`` when the engine should rebalance to them now. ``sparams`` are its parameters,
``sstate`` its own scratch state (persisted between bars, checkpointable). The engine
turns the targets into orders filled at the next bar.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from engine.ground.layout import (
    F_VOL_SLOW,
    N_FEAT_ASSET,
    P_EQUITY,
    P_HEADER,
    POLICY_INVERSE_VOL,
    POLICY_SCHEDULE,
    SP_BLEND,
    SP_DRIFT,
    SP_HEADER,
    SP_KIND,
    SP_N_STATES,
    SP_ON_CHANGE,
    SP_ON_SCHEDULE,
)
from engine.plugins.context_nb import BarContext

SS_REBALANCED = 0  # 1 once the first allocation was made
N_POLICY_STATE = 4


@nb.njit(cache=True, inline="always")
def table_targets_nb(ctx: BarContext, sparams: np.ndarray, target: np.ndarray) -> None:
    """Targets from a regime -> weights table; warm-up row while the regime is unknown."""
    n = target.shape[0]
    k_states = int(sparams[SP_N_STATES])
    warm = sparams[SP_HEADER : SP_HEADER + n]
    s = ctx.regime
    if k_states == 0 or s < 0 or s >= k_states:
        for j in range(n):
            target[j] = warm[j]
        return
    base = SP_HEADER + n
    if sparams[SP_BLEND] != 0.0:
        target[:] = 0.0
        for k in range(k_states):
            p = ctx.posterior[k]
            for j in range(n):
                target[j] += p * sparams[base + k * n + j]
    else:
        row = base + s * n
        for j in range(n):  # element loops: array slice assignment costs compile time
            target[j] = sparams[row + j]


@nb.njit(cache=True, inline="always")
def schedule_targets_nb(t: int, sparams: np.ndarray, target: np.ndarray) -> None:
    """Targets of a schedule of fixed mixes: ``SP_N_STATES`` rows after the header, then
    the first bar of each row; the row of the last one starting at or before bar ``t``."""
    n = target.shape[0]
    k = int(sparams[SP_N_STATES])
    starts = SP_HEADER + k * n
    i = 0
    while i + 1 < k and sparams[starts + i + 1] <= t:
        i += 1
    row = SP_HEADER + i * n
    for j in range(n):
        target[j] = sparams[row + j]


@nb.njit(cache=True, inline="always")
def inverse_vol_targets_nb(ctx: BarContext, sparams: np.ndarray, target: np.ndarray) -> None:
    """Risk parity (naive): weights proportional to 1/EWMA vol on the warm-up row's support,
    scaled to the warm-up row's total."""
    n = target.shape[0]
    warm = sparams[SP_HEADER : SP_HEADER + n]
    total = 0.0
    inv_sum = 0.0
    for j in range(n):
        total += warm[j]
        vol = ctx.features[j * N_FEAT_ASSET + F_VOL_SLOW]
        if warm[j] > 0.0 and vol > 0.0:
            target[j] = 1.0 / vol
            inv_sum += target[j]
        else:
            target[j] = 0.0
    if inv_sum == 0.0:
        for j in range(n):
            target[j] = warm[j]
        return
    for j in range(n):
        target[j] *= total / inv_sum


@nb.njit(cache=True)
def policy_triggered_nb(
    sparams: np.ndarray, sstate: np.ndarray, changed: bool, new_period: bool
) -> bool:
    """Has a rebalance trigger of the built-in policy fired (first allocation, regime
    change, calendar)?"""
    if sstate[SS_REBALANCED] == 0.0:
        return True
    if sparams[SP_ON_CHANGE] != 0.0 and changed:
        return True
    return sparams[SP_ON_SCHEDULE] != 0.0 and new_period


@nb.njit(cache=True)
def within_drift_nb(
    t: int,
    close: np.ndarray,
    port: np.ndarray,
    work: np.ndarray,
    sparams: np.ndarray,
    regime: int,
) -> bool:
    """On a bar where no trigger fired (:func:`policy_triggered_nb`): does
    :func:`builtin_policy_nb` certainly not rebalance, its (not blended) regime-table
    allocation's held weights all within the drift band of this bar's targets? The held
    weights at row ``t`` of ``close`` are written into ``work`` first. ``False``: the
    policy decides (on its context, whose arrays cost reference counting on every bar).

    A leaf on the run's own arrays and the bar index (no row views, no calls): numba's
    reference-count pruning then removes every incref of its arguments, which a call
    taking them, an inlined body or a row view would leave in the loop."""
    eq = port[P_EQUITY]
    n = close.shape[1]
    for j in range(n):  # the held weights (engine.core.step_nb.held_weights_nb), at row t
        work[j] = port[P_HEADER + j] * close[t, j] / eq if eq != 0.0 else 0.0
    drift = sparams[SP_DRIFT]
    held = drift > 0.0 and int(sparams[SP_KIND]) != POLICY_INVERSE_VOL
    held = held and sparams[SP_BLEND] == 0.0
    k_states = int(sparams[SP_N_STATES])
    row = SP_HEADER  # the warm-up row while the regime is unknown (table_targets_nb)
    if not (k_states == 0 or regime < 0 or regime >= k_states):
        row = SP_HEADER + n + regime * n
    j = 0
    while held and j < n:  # (a loop without break: one exit, see above)
        if abs(work[j] - sparams[row + j]) > drift:
            held = False
        j += 1
    return held


@nb.njit(cache=True, inline="always")
def builtin_policy_nb(
    t: int, ctx: BarContext, sparams: np.ndarray, sstate: np.ndarray, target: np.ndarray
) -> bool:
    """Static / regime-table / inverse-vol / scheduled allocation with calendar,
    regime-change and drift triggers (see ``SP_*`` slots). Targets are computed only on
    bars that may rebalance (a trigger fired, or a drift band to check)."""
    go = policy_triggered_nb(sparams, sstate, ctx.changed, ctx.new_period)
    if not go and sparams[SP_DRIFT] <= 0.0:
        return False
    kind = int(sparams[SP_KIND])
    if kind == POLICY_INVERSE_VOL:
        inverse_vol_targets_nb(ctx, sparams, target)
    elif kind == POLICY_SCHEDULE:
        schedule_targets_nb(t, sparams, target)
    else:
        table_targets_nb(ctx, sparams, target)
    if not go and sparams[SP_DRIFT] > 0.0:
        for j in range(target.shape[0]):
            if abs(ctx.weights[j] - target[j]) > sparams[SP_DRIFT]:
                go = True
                break
    if go:
        sstate[SS_REBALANCED] = 1.0
    return go

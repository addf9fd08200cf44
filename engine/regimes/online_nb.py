"""Online regime filters (njit): one dispatch over detector kinds, plus trading smoothing.

Every detector's parameter vector starts with ``[kind, n_states, ...]``; its online
update reads this bar's feature row (and exogenous row), updates its own state vector
and writes the filtered posterior ``P(state_t | data_<=t)``. It returns the raw state
(argmax, or -1 while it cannot yet speak).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from engine.core.layout import (
    D_KIND,
    D_N_STATES,
    DET_RULE,
    DR_ASSET,
    DR_CRISIS_PCT,
    DR_HIGH_PCT,
    DR_HIST,
    DR_MIN_HIST,
    DR_VOL_FEATURE,
    F_MA_GAP,
    G_CAND,
    G_CAND_COUNT,
    G_CHANGED,
    G_DWELL,
    G_RAW,
    G_SMOOTHED,
    N_FEAT_ASSET,
    S_CONFIRM,
    S_MIN_DWELL,
    S_PROB_THRESHOLD,
)

RULE_CALM, RULE_STRESSED, RULE_CRISIS = 0, 1, 2


@nb.njit(cache=True)
def rule_update_nb(
    dparams: np.ndarray, dstate: np.ndarray, feats: np.ndarray, post: np.ndarray
) -> int:
    """Baseline rule: percentile of EWMA vol within its own trailing history, and trend.

    calm (0): vol percentile < high and price above its moving average;
    crisis (2): vol percentile >= crisis and price below its moving average;
    stressed (1): otherwise. The posterior is one-hot (the rule is deterministic).
    ``dstate`` = ``[count, ring of DR_HIST past volatilities]``.
    """
    asset = int(dparams[DR_ASSET])
    vol = feats[asset * N_FEAT_ASSET + int(dparams[DR_VOL_FEATURE])]
    gap = feats[asset * N_FEAT_ASSET + F_MA_GAP]
    hist = int(dparams[DR_HIST])
    count = int(dstate[0])
    n_hist = count if count < hist else hist
    below = 0
    for i in range(n_hist):
        if dstate[1 + i] < vol:
            below += 1
    dstate[1 + count % hist] = vol
    dstate[0] = count + 1
    post[:] = 0.0
    if count < int(dparams[DR_MIN_HIST]):
        post[:] = 1.0 / post.shape[0]
        return -1
    pct = below / n_hist
    if pct >= dparams[DR_CRISIS_PCT] and gap < 0.0:
        s = RULE_CRISIS
    elif pct >= dparams[DR_HIGH_PCT] or gap < 0.0:
        s = RULE_STRESSED
    else:
        s = RULE_CALM
    post[s] = 1.0
    return s


@nb.njit(cache=True)
def detector_update_nb(
    dparams: np.ndarray,
    dstate: np.ndarray,
    feats: np.ndarray,
    exog: np.ndarray,
    post: np.ndarray,
) -> int:
    """Dispatch one online update to the detector kind named in ``dparams[D_KIND]``."""
    kind = int(dparams[D_KIND])
    if kind == DET_RULE:
        return rule_update_nb(dparams, dstate, feats, post)
    post[:] = 1.0 / dparams[D_N_STATES]
    return -1


@nb.njit(cache=True)
def argmax_state_nb(post: np.ndarray) -> int:
    best = 0
    for k in range(1, post.shape[0]):
        if post[k] > post[best]:
            best = k
    return best


@nb.njit(cache=True)
def smooth_state_nb(raw: int, post: np.ndarray, smooth: np.ndarray, rstate: np.ndarray) -> None:
    """Hysteresis for trading: probability threshold, minimum dwell and confirmation bars.

    Writes the smoothed state, its dwell and the changed flag into ``rstate``.
    """
    rstate[G_RAW] = raw
    rstate[G_CHANGED] = 0.0
    cur = int(rstate[G_SMOOTHED])
    if raw >= 0 and raw != cur:
        if raw == int(rstate[G_CAND]):
            rstate[G_CAND_COUNT] += 1.0
        else:
            rstate[G_CAND] = raw
            rstate[G_CAND_COUNT] = 1.0
        if cur < 0 or (
            post[raw] >= smooth[S_PROB_THRESHOLD]
            and rstate[G_DWELL] >= smooth[S_MIN_DWELL]
            and rstate[G_CAND_COUNT] >= smooth[S_CONFIRM]
        ):
            rstate[G_SMOOTHED] = raw
            rstate[G_DWELL] = 0.0
            rstate[G_CHANGED] = 1.0
            rstate[G_CAND] = -1.0
            rstate[G_CAND_COUNT] = 0.0
    elif raw == cur:
        rstate[G_CAND] = -1.0
        rstate[G_CAND_COUNT] = 0.0
    if int(rstate[G_SMOOTHED]) >= 0:
        rstate[G_DWELL] += 1.0

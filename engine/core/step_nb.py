"""The step and the compiled driver (njit).

One bar goes through, in this order and nowhere else:

1. ``market``: pending orders fill at this bar's open (or close), costs are charged,
   causal features are updated with this bar, the portfolio is marked at the close;
2. ``detect``: the regime detector's online filter updates the posterior, and the
   trading smoother updates the smoothed state;
3. ``decide``: the policy sees a :class:`~engine.core.policy_nb.BarContext` and returns
   target weights and whether to rebalance;
4. ``orders``: targets become pending share orders, filled at the next bar.

:func:`step_nb` runs the four phases; the streaming driver (:mod:`engine.core.streaming`)
calls it once per arriving bar, or the phases one by one around Python callbacks. The
compiled driver :func:`run_nb` runs them over a history: the features and phase 2 read
no portfolio, so it computes them ahead, a block of bars at a time
(:func:`detect_pass_nb`), then loops the other phases over the block, with the same bits.

Functions taking a user policy or filter (a dispatcher argument) are not disk-cached:
numba would key the cache entry on dispatcher types, which other processes cannot
rebuild (their saves then fail); they compile once per process instead. The built-in
policy and detectors go through the ``*_builtin_nb`` twins, which are disk-cached.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numba as nb
import numpy as np

from engine.core.execution_nb import (
    execute_pending_nb,
    grow_rows_nb,
    mark_row_nb,
    mark_to_market_nb,
    place_orders_nb,
)
from engine.core.policy_nb import builtin_policy_nb, policy_triggered_nb, within_drift_nb
from engine.features.causal_nb import feature_alphas_nb, features_update_with_nb
from engine.ground.layout import (
    C_BORROW_BPS,
    D_KIND,
    DET_GMM,
    DET_HMM,
    DET_KMEANS,
    DET_NONE,
    DET_USER,
    E_FILL_AT_CLOSE,
    E_FINANCING_RATE,
    FP_MASKED,
    G_CHANGED,
    G_FIT,
    G_RAW,
    G_SMOOTHED,
    N_COST_KINDS,
    N_FEAT_PARAMS,
    N_FILL_FIELDS,
    P_BARS,
    P_CASH,
    P_EQUITY,
    P_HEADER,
    P_LAST_DECISION,
    SP_DRIFT,
)
from engine.plugins.context_nb import BarContext
from engine.regimes.online_nb import (
    detector_update_nb,
    filter_history_nb,
    gaussian_update_nb,
    smooth_state_nb,
)

Setup = namedtuple(
    "Setup",
    [
        "costs",  # (N, N_COST) per-asset cost model
        "eparams",  # (N_EXEC,) execution parameters
        "fparams",  # (N_FEAT_PARAMS,) feature parameters
        "dparams",  # (n_fits, P) detector parameter rows (row k in force from fit_bar[k])
        "fit_bar",  # (n_fits,) int64 first bar each row is in force
        "smooth",  # (N_SMOOTH,) trading smoother parameters
        "sparams",  # policy parameters
    ],
)
"""Read-only run configuration, as arrays."""

State = namedtuple(
    "State",
    [
        "port",  # portfolio vector [cash, equity, bars, last_decision, pos(N), pending(N)]
        "fstate",  # feature state
        "dstate",  # detector state
        "rstate",  # regime/smoother state (N_REGIME_STATE,)
        "sstate",  # policy state
        "post",  # (K,) current posterior
        "work",  # (N,) scratch: held weights
    ],
)
"""Everything that changes bar to bar; copying it checkpoints the run."""


@nb.njit(cache=True, inline="always")
def market_nb(
    t: int,
    bar_open: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    setup: Setup,
    state: State,
    feats: np.ndarray,
    bar_costs: np.ndarray,
    fills: np.ndarray,
) -> int:
    """Phase 1: fill pending orders, update features, mark to market. Returns fill count.

    (The compiled drivers write this phase out in their loops, on unpacked arrays.)"""
    port = state.port
    ref = close if setup.eparams[E_FILL_AT_CLOSE] != 0.0 else bar_open
    nf = execute_pending_nb(t, ref, volume, setup.costs, setup.eparams, port, bar_costs, fills)
    a_fast, a_slow = feature_alphas_nb(setup.fparams)
    features_update_with_nb(close, setup.fparams, a_fast, a_slow, state.fstate, feats)
    mark_to_market_nb(close, port)
    port[P_BARS] = t + 1
    return nf


@nb.njit(cache=True, inline="always")
def active_fit_nb(t: int, fit_bar: np.ndarray) -> int:
    """Index of the detector parameter row in force at bar ``t`` (-1 before the first)."""
    k = -1
    for i in range(fit_bar.shape[0]):
        if fit_bar[i] <= t:
            k = i
    return k


@nb.njit(cache=True, inline="always")
def detect_arrays_nb(
    k: int,
    feats: np.ndarray,
    exog: np.ndarray,
    dparams: np.ndarray,
    dstate: np.ndarray,
    post: np.ndarray,
    smooth: np.ndarray,
    rstate: np.ndarray,
) -> None:
    """Phase 2 on plain arrays with parameter row ``k`` (``dparams``) in force (-1: none
    yet): online detector update and smoothing."""
    rstate[G_FIT] = k
    if k < 0:
        for i in range(post.shape[0]):
            post[i] = 1.0 / post.shape[0]
        raw = -1
    else:  # the common kinds called directly: as detector_update_nb, one call less
        kind = int(dparams[D_KIND])
        if kind == DET_NONE:
            for i in range(post.shape[0]):
                post[i] = 1.0
            raw = 0
        elif kind == DET_HMM or kind == DET_GMM or kind == DET_KMEANS:
            raw = gaussian_update_nb(dparams, dstate, feats, exog, post)
        else:
            raw = detector_update_nb(dparams, dstate, feats, exog, post)
    smooth_state_nb(raw, post, smooth, rstate)


@nb.njit(cache=True, inline="always")
def detect_nb(
    t: int, feats: np.ndarray, exog: np.ndarray, dparams: np.ndarray, setup: Setup, state: State
) -> None:
    """Phase 2 at bar ``t``: online detector update (``dparams`` = the row in force) and
    smoothing."""
    k = active_fit_nb(t, setup.fit_bar)
    detect_arrays_nb(k, feats, exog, dparams, state.dstate, state.post, setup.smooth, state.rstate)


@nb.njit(cache=False, inline="always")  # dispatcher arguments: see the module note
def detect_user_arrays_nb(
    ufilter: Any,
    k: int,
    feats: np.ndarray,
    exog: np.ndarray,
    dparams: np.ndarray,
    dstate: np.ndarray,
    post: np.ndarray,
    smooth: np.ndarray,
    rstate: np.ndarray,
) -> None:
    """:func:`detect_arrays_nb` where a ``DET_USER`` row runs the user's njit filter."""
    if k >= 0 and int(dparams[D_KIND]) == DET_USER:
        rstate[G_FIT] = k
        raw = ufilter(dparams, dstate, feats, exog, post)
        smooth_state_nb(raw, post, smooth, rstate)
    else:
        detect_arrays_nb(k, feats, exog, dparams, dstate, post, smooth, rstate)


@nb.njit(cache=False, inline="always")  # dispatcher arguments: see the module note
def detect_user_nb(
    ufilter: Any,
    t: int,
    feats: np.ndarray,
    exog: np.ndarray,
    dparams: np.ndarray,
    setup: Setup,
    state: State,
) -> None:
    """:func:`detect_nb` where a ``DET_USER`` row runs the user's njit filter ``ufilter``."""
    k = active_fit_nb(t, setup.fit_bar)
    detect_user_arrays_nb(
        ufilter, k, feats, exog, dparams, state.dstate, state.post, setup.smooth, state.rstate
    )


@nb.njit(cache=True)
def detect_pass_nb(
    rows: np.ndarray,
    exog: np.ndarray,
    b0: int,
    b_end: int,
    t0: int,
    dparams: np.ndarray,
    fit_bar: np.ndarray,
    dstate: np.ndarray,
    post: np.ndarray,
    smooth: np.ndarray,
    rstate: np.ndarray,
    o_post: np.ndarray,
    o_raw: np.ndarray,
    o_smoothed: np.ndarray,
    o_changed: np.ndarray,
) -> None:
    """Phase 2 over bars ``b0 .. b_end - 1`` of a run whose first bar is bar ``t0``, their
    feature rows known (``rows``, from 0): per bar the posterior, raw and smoothed state
    and the changed flag into the ``o_*`` arrays; ``dstate``, ``post`` and ``rstate`` end
    as after the last bar.

    The detector reads features, exogenous inputs and its own state, never the portfolio,
    so running it ahead of the other phases gives the step's numbers bit for bit; the
    filter then runs a segment of bars per call
    (:func:`~engine.regimes.online_nb.filter_history_nb`).
    """
    if b_end <= b0:
        return
    filter_history_nb(
        dparams, fit_bar, t0 + b0, rows, exog[b0:b_end], dstate, o_post[b0:b_end],
        o_raw[b0:b_end],
    )  # fmt: skip
    for t in range(b0, b_end):
        smooth_state_nb(o_raw[t], o_post[t], smooth, rstate)
        o_smoothed[t] = int(rstate[G_SMOOTHED])
        o_changed[t] = rstate[G_CHANGED] != 0.0
    rstate[G_FIT] = active_fit_nb(t0 + b_end - 1, fit_bar)
    for i in range(post.shape[0]):
        post[i] = o_post[b_end - 1, i]


@nb.njit(cache=True)
def regime_pass_nb(
    rows: np.ndarray,
    exog: np.ndarray,
    t0: int,
    dparams: np.ndarray,
    fit_bar: np.ndarray,
    dstate: np.ndarray,
    post: np.ndarray,
    smooth: np.ndarray,
    rstate: np.ndarray,
) -> tuple[Any, ...]:
    """Phase 2 over a whole run (bars ``t0 ..``, feature rows ``rows``), ahead of any
    strategy: the ``regimes`` argument of :func:`run_builtin_nb` / :func:`run_nb`, i.e.
    ``(post, raw, smoothed, changed, dstate, rstate)`` after the last bar. It reads no
    portfolio and no strategy, so one pass serves every strategy and cost model run with
    the same detector fits, features and smoothing (a sweep), with the drivers' bits:
    :func:`detect_pass_nb` over all bars, as a driver given the feature rows runs it.
    ``dstate``, ``post`` and ``rstate`` (the run's initial states) are advanced in place."""
    t_len = rows.shape[0]
    o_post = np.empty((t_len, post.shape[0]))
    o_raw = np.empty(t_len, dtype=np.int64)
    o_smoothed = np.empty(t_len, dtype=np.int64)
    o_changed = np.empty(t_len, dtype=np.bool_)
    detect_pass_nb(
        rows, exog, 0, t_len, t0, dparams, fit_bar, dstate, post, smooth, rstate, o_post,
        o_raw, o_smoothed, o_changed,
    )  # fmt: skip
    return o_post, o_raw, o_smoothed, o_changed, dstate.copy(), rstate.copy()


@nb.njit(cache=True)
def copy_regimes_nb(
    regimes: tuple[Any, ...],
    o_post: np.ndarray,
    o_raw: np.ndarray,
    o_smoothed: np.ndarray,
    o_changed: np.ndarray,
    dstate: np.ndarray,
    rstate: np.ndarray,
    post: np.ndarray,
) -> bool:
    """Copy a :func:`regime_pass_nb` result into a driver's outputs and states; ``False``
    (nothing copied) when it does not cover the run (an empty ``regimes``: none given)."""
    r_post, r_raw, r_smoothed, r_changed, r_dstate, r_rstate = regimes
    t_len = o_post.shape[0]
    if t_len == 0 or r_post.shape[0] != t_len:
        return False
    o_post[:, :] = r_post
    o_raw[:] = r_raw
    o_smoothed[:] = r_smoothed
    o_changed[:] = r_changed
    dstate[:] = r_dstate
    rstate[:] = r_rstate
    post[:] = r_post[t_len - 1]
    return True


@nb.njit(cache=True, inline="always")
def context_nb(
    close: np.ndarray,
    feats: np.ndarray,
    exog: np.ndarray,
    hist: np.ndarray,
    new_period: bool,
    state: State,
) -> BarContext:
    """The policy's view of this bar (held weights computed into ``state.work``)."""
    r = state.rstate
    return context_with_nb(
        close, feats, exog, hist, new_period, state.port, state.work, state.post,
        int(r[G_RAW]), int(r[G_SMOOTHED]), r[G_CHANGED] != 0.0,
    )  # fmt: skip


@nb.njit(cache=True, inline="always")
def held_weights_nb(close: np.ndarray, port: np.ndarray, work: np.ndarray) -> float:
    """The weights held at this close into ``work``; returns the equity."""
    eq = port[P_EQUITY]
    for j in range(close.shape[0]):
        work[j] = port[P_HEADER + j] * close[j] / eq if eq != 0.0 else 0.0
    return float(eq)


@nb.njit(cache=True, inline="always")
def context_with_nb(
    close: np.ndarray,
    feats: np.ndarray,
    exog: np.ndarray,
    hist: np.ndarray,
    new_period: bool,
    port: np.ndarray,
    work: np.ndarray,
    post: np.ndarray,
    raw: int,
    smoothed: int,
    changed: bool,
) -> BarContext:
    """:func:`context_nb` from the portfolio vector, the scratch for held weights and
    this bar's regime output (as computed ahead by :func:`detect_pass_nb`)."""
    eq = held_weights_nb(close, port, work)
    n = close.shape[0]
    return BarContext(
        close,
        feats,
        post,
        raw,
        smoothed,
        changed,
        new_period,
        work,
        eq,
        exog,
        port[P_HEADER : P_HEADER + n],
        port[P_CASH],
        hist,
    )


@nb.njit(cache=True, inline="always")
def orders_nb(
    t: int,
    target: np.ndarray,
    close: np.ndarray,
    setup: Setup,
    state: State,
    orders: np.ndarray,
) -> int:
    """Phase 4: targets -> pending orders. Returns the number of non-zero orders."""
    state.port[P_LAST_DECISION] = t
    return place_orders_nb(target, close, setup.costs, setup.eparams, state.port, orders)


@nb.njit(cache=True, inline="always")
def before_policy_nb(
    t: int,
    bar_open: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    exog: np.ndarray,
    hist: np.ndarray,
    new_period: bool,
    dparams: np.ndarray,
    setup: Setup,
    state: State,
    feats: np.ndarray,
    bar_costs: np.ndarray,
    fills: np.ndarray,
) -> tuple[int, BarContext]:
    """Phases 1-2 and the policy's context. Returns ``(fills written, context)``."""
    nf = market_nb(t, bar_open, close, volume, setup, state, feats, bar_costs, fills)
    detect_nb(t, feats, exog, dparams, setup, state)
    return nf, context_nb(close, feats, exog, hist, new_period, state)


@nb.njit(cache=False, inline="always")  # dispatcher arguments: see the module note
def before_policy_user_nb(
    ufilter: Any,
    t: int,
    bar_open: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    exog: np.ndarray,
    hist: np.ndarray,
    new_period: bool,
    dparams: np.ndarray,
    setup: Setup,
    state: State,
    feats: np.ndarray,
    bar_costs: np.ndarray,
    fills: np.ndarray,
) -> tuple[int, BarContext]:
    """:func:`before_policy_nb` with a user filter for ``DET_USER`` detector rows."""
    nf = market_nb(t, bar_open, close, volume, setup, state, feats, bar_costs, fills)
    detect_user_nb(ufilter, t, feats, exog, dparams, setup, state)
    return nf, context_nb(close, feats, exog, hist, new_period, state)


@nb.njit(cache=True, inline="always")
def after_policy_nb(
    t: int,
    go: bool,
    target: np.ndarray,
    close: np.ndarray,
    setup: Setup,
    state: State,
    orders: np.ndarray,
) -> None:
    """Phase 4 when the policy rebalanced; otherwise mark the bar as no-decision."""
    if go:
        orders_nb(t, target, close, setup, state, orders)
    else:
        target[:] = np.nan
        orders[:] = 0.0


@nb.njit(cache=False)  # dispatcher arguments: see the module note
def step_nb(
    policy: Any,
    ufilter: Any,
    t: int,
    bar_open: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    exog: np.ndarray,
    hist: np.ndarray,
    new_period: bool,
    dparams: np.ndarray,
    setup: Setup,
    state: State,
    feats: np.ndarray,
    target: np.ndarray,
    orders: np.ndarray,
    bar_costs: np.ndarray,
    fills: np.ndarray,
) -> tuple[int, bool]:
    """One bar through all four phases with any njit ``policy`` and user filter
    ``ufilter`` (run for ``DET_USER`` detector rows; pass ``detector_update_nb`` if none).

    Returns ``(fills written, rebalanced)``; ``target`` holds the policy's targets when
    it rebalanced (NaN otherwise) and ``orders`` the share orders placed (0 otherwise).
    ``hist`` is the ``(t + 1, N)`` close history ending at this bar. A dispatcher
    argument is typed per process, so numba's disk cache can't serve this specialisation
    across processes: user policies and filters compile once per process.
    """
    nf, ctx = before_policy_user_nb(
        ufilter,
        t,
        bar_open,
        close,
        volume,
        exog,
        hist,
        new_period,
        dparams,
        setup,
        state,
        feats,
        bar_costs,
        fills,
    )
    go = policy(t, ctx, setup.sparams, state.sstate, target)
    after_policy_nb(t, go, target, close, setup, state, orders)
    return nf, go


@nb.njit(cache=True, inline="always")
def step_builtin_nb(
    t: int,
    bar_open: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    exog: np.ndarray,
    hist: np.ndarray,
    new_period: bool,
    dparams: np.ndarray,
    setup: Setup,
    state: State,
    feats: np.ndarray,
    target: np.ndarray,
    orders: np.ndarray,
    bar_costs: np.ndarray,
    fills: np.ndarray,
) -> tuple[int, bool]:
    """:func:`step_nb` for the built-in policy, called by name so it is disk-cached (the
    built-in strategies, sweeps and paper trading start without compiling)."""
    nf, ctx = before_policy_nb(
        t,
        bar_open,
        close,
        volume,
        exog,
        hist,
        new_period,
        dparams,
        setup,
        state,
        feats,
        bar_costs,
        fills,
    )
    go = builtin_policy_nb(t, ctx, setup.sparams, state.sstate, target)
    after_policy_nb(t, go, target, close, setup, state, orders)
    return nf, go


@nb.njit(cache=True)
def bar_ok_nb(bar_open: np.ndarray, close: np.ndarray, volume: np.ndarray) -> bool:
    """True when every open and close is finite and > 0 and volumes are finite, >= 0."""
    for j in range(close.shape[0]):
        if not (bar_open[j] > 0.0 and close[j] > 0.0 and volume[j] >= 0.0):
            return False
        if not (np.isfinite(bar_open[j]) and np.isfinite(close[j]) and np.isfinite(volume[j])):
            return False
    return True


@nb.njit(cache=True, inline="always")
def advance_fit_nb(t: int, fit_bar: np.ndarray, k: int) -> int:
    """:func:`active_fit_nb` for increasing ``t`` (``fit_bar`` ascending): move on from
    the row ``k`` in force at the previous bar."""
    while k + 1 < fit_bar.shape[0] and fit_bar[k + 1] <= t:
        k += 1
    return k


@nb.njit(cache=True)
def alloc_outputs_nb(
    t_len: int, n: int, k_states: int, n_features: int, record_features: bool
) -> tuple[Any, ...]:
    """Per-bar output arrays, all O(T): equity, cash, post, raw, smoothed, costs,
    features (one row unless recorded)."""
    return (
        np.empty(t_len),
        np.empty(t_len),
        np.empty((t_len, k_states)),
        np.empty(t_len, dtype=np.int64),
        np.empty(t_len, dtype=np.int64),
        np.zeros((t_len, N_COST_KINDS)),
        np.empty((t_len if record_features else 1, n_features)),
    )


@nb.njit(cache=True)
def grow_decisions_nb(
    bars: np.ndarray, targets: np.ndarray, orders: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The decision buffers with twice the rows (the first rows copied)."""
    d, n = targets.shape
    rows = 2 * d + 8
    b2 = np.empty(rows, dtype=np.int64)
    t2 = np.empty((rows, n))
    o2 = np.empty((rows, n))
    for i in range(d):  # element loops: slice assignment costs seconds of compile
        b2[i] = bars[i]
        for j in range(n):
            t2[i, j] = targets[i, j]
            o2[i, j] = orders[i, j]
    return b2, t2, o2


@nb.njit(cache=True)
def any_pending_nb(port: np.ndarray, n: int) -> bool:
    """Is any order pending in the portfolio vector?"""
    for j in range(n):
        if port[P_HEADER + n + j] != 0.0:
            return True
    return False


@nb.njit(cache=True)
def any_borrow_nb(costs: np.ndarray) -> bool:
    """Does any asset charge a borrow fee on short positions?"""
    for j in range(costs.shape[0]):
        if costs[j, C_BORROW_BPS] > 0.0:
            return True
    return False


@nb.njit(cache=True)
def any_user_rows_nb(dparams: np.ndarray) -> bool:
    """Does any detector parameter row run a user filter (``DET_USER``)?"""
    for k in range(dparams.shape[0]):
        if int(dparams[k, D_KIND]) == DET_USER:
            return True
    return False


@nb.njit(cache=True)
def any_features_nb(fparams: np.ndarray, n: int) -> bool:
    """Is any asset's built-in feature block computed under ``fparams``?"""
    if fparams.shape[0] <= N_FEAT_PARAMS or fparams[FP_MASKED] == 0.0:
        return True
    for j in range(n):
        if fparams[N_FEAT_PARAMS + j] != 0.0:
            return True
    return False


@nb.njit(cache=True, inline="always")
def finish_nb(
    out: tuple[Any, ...],
    bars: np.ndarray,
    targets: np.ndarray,
    orders: np.ndarray,
    nd: int,
    fills: np.ndarray,
    n_fills: int,
) -> tuple[Any, ...]:
    """The driver's output tuple (named by :func:`engine.core.driver.run_driver`)."""
    return (
        out[0],
        out[1],
        bars[:nd].copy(),
        targets[:nd].copy(),
        orders[:nd].copy(),
        out[2],
        out[3],
        out[4],
        out[5],
        fills[:n_fills].copy(),
        out[6],
    )


@nb.njit(cache=True)
def block_features_nb(
    close: np.ndarray,
    b0: int,
    b_end: int,
    fparams: np.ndarray,
    a_fast: float,
    a_slow: float,
    fstate: np.ndarray,
    rows: np.ndarray,
) -> None:
    """The feature rows of bars ``b0 .. b_end - 1`` into ``rows[0 .. b_end - b0 - 1]``
    (the feature state advances, as bar by bar)."""
    for s in range(b_end - b0):
        features_update_with_nb(close[b0 + s], fparams, a_fast, a_slow, fstate, rows[s])


@nb.njit(cache=True)
def feature_block_nb(feat_rows: np.ndarray, t_len: int, n_features: int) -> tuple[Any, ...]:
    """``(rows, block length, given)``: the given ``(T, F)`` feature rows as one block, or
    a buffer for blocks of bars whose features are computed ahead (~8 MB at most)."""
    if feat_rows.shape[0] == t_len and t_len > 0:
        return feat_rows, t_len, True
    b_len = min(max(t_len, 1), max(64, (1 << 20) // max(1, n_features)))
    return np.zeros((b_len, n_features)), b_len, False


@nb.njit(cache=False)  # dispatcher arguments: see the module note
def detect_user_block_nb(
    ufilter: Any,
    rows: np.ndarray,
    exog: np.ndarray,
    b0: int,
    b_end: int,
    t0: int,
    dparams: np.ndarray,
    fit_bar: np.ndarray,
    dstate: np.ndarray,
    post: np.ndarray,
    smooth: np.ndarray,
    rstate: np.ndarray,
    o_post: np.ndarray,
    o_raw: np.ndarray,
    o_smoothed: np.ndarray,
    o_changed: np.ndarray,
) -> None:
    """:func:`detect_pass_nb` over bars ``b0 .. b_end - 1`` (feature rows ``rows`` from
    0) bar by bar, for detectors with a user filter (``DET_USER`` rows)."""
    k = advance_fit_nb(t0 + b0, fit_bar, -1)
    drow = dparams[max(k, 0)]
    for s in range(b0, b_end):
        k_now = advance_fit_nb(t0 + s, fit_bar, k)
        if k_now != k:
            k = k_now
            drow = dparams[max(k, 0)]
        detect_user_arrays_nb(ufilter, k, rows[s - b0], exog[s], drow, dstate, post, smooth, rstate)
        for i in range(post.shape[0]):
            o_post[s, i] = post[i]
        o_raw[s] = int(rstate[G_RAW])
        o_smoothed[s] = int(rstate[G_SMOOTHED])
        o_changed[s] = rstate[G_CHANGED] != 0.0


@nb.njit(cache=False)  # dispatcher arguments: see the module note
def run_nb(
    policy: Any,
    ufilter: Any,
    bar_open: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    exog: np.ndarray,
    new_period: np.ndarray,
    setup: Setup,
    state: State,
    n_features: int,
    record_features: bool,
    t0: int,
    feat_rows: np.ndarray,
    regimes: tuple[Any, ...],
) -> tuple[Any, ...]:
    """The compiled driver: the step over every bar of a ``(T, N)`` history whose first
    bar is bar ``t0`` of the run (a later chunk continues ``state``).

    ``feat_rows``: the ``(T, F)`` feature rows this run's feature kernel produces (the
    history computed for the detector's fits, same parameters), read instead of
    recomputed; ``(0, F)`` to compute them (the feature state then advances).
    ``regimes``: this run's phase 2 computed ahead (:func:`regime_pass_nb`, shared by the
    runs of a sweep with the same fits, features and smoothing), copied instead of
    recomputed; arrays of length 0 to compute it.

    Features and regimes read no portfolio: they are computed ahead, a block of bars at a
    time (all bars when the rows are given; :func:`detect_pass_nb`, or bar by bar for a
    user filter), then the loop runs the other phases over the block. Same bits as the
    step bar by bar.

    Output: see :class:`engine.core.raw.RawRun` (O(T) per-bar series, targets and orders
    only at decision bars, fill records). The state's arrays are unpacked once, before
    the loop: the per-bar phases run on plain arrays (no reference counting per bar).
    """
    t_len, n = close.shape
    out = alloc_outputs_nb(t_len, n, state.post.shape[0], n_features, record_features)
    o_equity, o_cash, o_post, o_raw, o_smoothed, bar_costs, o_feats = out
    o_changed = np.empty(t_len, dtype=np.bool_)
    feats = np.zeros(n_features)
    fills = np.empty((max(64, t_len // 4), N_FILL_FIELDS))
    cap = max(16, t_len // 16)
    dbars = np.empty(cap, dtype=np.int64)
    dtargets = np.empty((cap, n))
    dorders = np.empty((cap, n))
    n_fills = 0
    nd = 0
    port, fstate, dstate, rstate, sstate, post, work = state
    costs, eparams, fparams, dparams, fit_bar, smooth, sparams = setup
    ref = close if eparams[E_FILL_AT_CLOSE] != 0.0 else bar_open
    rows, b_len, given = feature_block_nb(feat_rows, t_len, n_features)
    any_features = any_features_nb(fparams, n)
    a_fast, a_slow = feature_alphas_nb(fparams)
    user = any_user_rows_nb(dparams)
    shared = copy_regimes_nb(regimes, o_post, o_raw, o_smoothed, o_changed, dstate, rstate, post)
    k_n = post.shape[0]
    pending = any_pending_nb(port, n)  # orders waiting to fill (a continued run may have some)
    # shorts pay borrow and negative cash its financing every bar: execution runs every bar
    borrow = any_borrow_nb(costs) or eparams[E_FINANCING_RATE] != 0.0
    r0 = 0  # rows[t - r0] is bar t's feature row
    b_end = 0
    t_next = 0
    while t_next < t_len:  # segments of bars that fit the buffers: no resizing per bar
        if t_next == b_end:  # the next block's features and regimes, ahead
            b0 = t_next
            b_end = min(t_len, b0 + b_len)
            r0 = 0 if given else b0
            if any_features and not given:
                block_features_nb(close, b0, b_end, fparams, a_fast, a_slow, fstate, rows)
            blk = rows[b0 - r0 : b_end - r0]
            if user and not shared:
                detect_user_block_nb(
                    ufilter, blk, exog, b0, b_end, t0, dparams, fit_bar, dstate, post, smooth,
                    rstate, o_post, o_raw, o_smoothed, o_changed,
                )  # fmt: skip
            elif not shared:  # (shared: phase 2 given, copied before the loop)
                detect_pass_nb(
                    blk, exog, b0, b_end, t0, dparams, fit_bar, dstate, post, smooth, rstate,
                    o_post, o_raw, o_smoothed, o_changed,
                )  # fmt: skip
        if nd == dbars.shape[0]:
            dbars, dtargets, dorders = grow_decisions_nb(dbars, dtargets, dorders)
        if n_fills + n > fills.shape[0]:
            fills = grow_rows_nb(fills, n_fills + n)
        seg = min(b_end - t_next, dbars.shape[0] - nd, (fills.shape[0] - n_fills) // n)
        for t in range(t_next, t_next + seg):
            tg = t0 + t
            # phase 1 (market_nb) written out: a phase function taking a dozen arrays
            # costs ~50 ns per bar in reference counting
            if pending or borrow:  # nothing to fill and no borrow: no execution work
                n_fills += execute_pending_nb(
                    tg, ref[t], volume[t], costs, eparams, port, bar_costs[t], fills[n_fills:]
                )
                if pending:
                    pending = any_pending_nb(port, n)
            mark_row_nb(close, t, port)
            port[P_BARS] = tg + 1
            # the policy's context gets copies: whatever it writes stays its own
            for i in range(n_features):
                feats[i] = rows[t - r0, i]
            for i in range(k_n):
                post[i] = o_post[t, i]
            ctx = context_with_nb(
                close[t], feats, exog[t], close[: t + 1], new_period[t], port, work, post,
                o_raw[t], o_smoothed[t], o_changed[t],
            )  # fmt: skip
            if policy(tg, ctx, sparams, sstate, dtargets[nd]):
                orders_nb(tg, dtargets[nd], close[t], setup, state, dorders[nd])
                pending = True
                dbars[nd] = tg
                nd += 1
            o_equity[t] = port[P_EQUITY]
            o_cash[t] = port[P_CASH]
            if record_features:
                for i in range(n_features):
                    o_feats[t, i] = rows[t - r0, i]
        t_next += seg
    return finish_nb(out, dbars, dtargets, dorders, nd, fills, n_fills)


@nb.njit(cache=True)
def run_builtin_nb(
    bar_open: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    exog: np.ndarray,
    new_period: np.ndarray,
    setup: Setup,
    state: State,
    n_features: int,
    record_features: bool,
    t0: int,
    feat_rows: np.ndarray,
    regimes: tuple[Any, ...],
) -> tuple[Any, ...]:
    """:func:`run_nb` with the built-in policy (disk-cached). The policy's context is
    built only on bars where it may act (a trigger fired, or a drift band exceeded) and
    reads the feature rows and posteriors in place (the built-in policy writes none)."""
    t_len, n = close.shape
    out = alloc_outputs_nb(t_len, n, state.post.shape[0], n_features, record_features)
    o_equity, o_cash, o_post, o_raw, o_smoothed, bar_costs, o_feats = out
    o_changed = np.empty(t_len, dtype=np.bool_)
    fills = np.empty((max(64, t_len // 4), N_FILL_FIELDS))
    cap = max(16, t_len // 16)
    dbars = np.empty(cap, dtype=np.int64)
    dtargets = np.empty((cap, n))
    dorders = np.empty((cap, n))
    n_fills = 0
    nd = 0
    port, fstate, dstate, rstate, sstate, post, work = state
    costs, eparams, fparams, dparams, fit_bar, smooth, sparams = setup
    ref = close if eparams[E_FILL_AT_CLOSE] != 0.0 else bar_open
    rows, b_len, given = feature_block_nb(feat_rows, t_len, n_features)
    any_features = any_features_nb(fparams, n)
    a_fast, a_slow = feature_alphas_nb(fparams)
    shared = copy_regimes_nb(regimes, o_post, o_raw, o_smoothed, o_changed, dstate, rstate, post)
    pending = any_pending_nb(port, n)  # orders waiting to fill (a continued run may have some)
    # shorts pay borrow and negative cash its financing every bar: execution runs every bar
    borrow = any_borrow_nb(costs) or eparams[E_FINANCING_RATE] != 0.0
    r0 = 0  # rows[t - r0] is bar t's feature row
    b_end = 0
    t_next = 0
    while t_next < t_len:  # segments of bars that fit the buffers: no resizing per bar
        if t_next == b_end:  # the next block's features and regimes, ahead
            b0 = t_next
            b_end = min(t_len, b0 + b_len)
            r0 = 0 if given else b0
            if any_features and not given:
                block_features_nb(close, b0, b_end, fparams, a_fast, a_slow, fstate, rows)
            if not shared:
                detect_pass_nb(
                    rows[b0 - r0 : b_end - r0], exog, b0, b_end, t0, dparams, fit_bar, dstate,
                    post, smooth, rstate, o_post, o_raw, o_smoothed, o_changed,
                )  # fmt: skip
        if nd == dbars.shape[0]:
            dbars, dtargets, dorders = grow_decisions_nb(dbars, dtargets, dorders)
        if n_fills + n > fills.shape[0]:
            fills = grow_rows_nb(fills, n_fills + n)
        seg = min(b_end - t_next, dbars.shape[0] - nd, (fills.shape[0] - n_fills) // n)
        for t in range(t_next, t_next + seg):
            tg = t0 + t
            # phase 1 (market_nb) written out: a phase function taking a dozen arrays
            # costs ~50 ns per bar in reference counting
            if pending or borrow:  # nothing to fill and no borrow: no execution work
                n_fills += execute_pending_nb(
                    tg, ref[t], volume[t], costs, eparams, port, bar_costs[t], fills[n_fills:]
                )
                if pending:
                    pending = any_pending_nb(port, n)
            mark_row_nb(close, t, port)
            port[P_BARS] = tg + 1
            # no trigger and a drift band held (most bars of a drift strategy): no context
            # needed. Leaves called on the run's arrays: no reference counting per bar
            act = policy_triggered_nb(sparams, sstate, o_changed[t], new_period[t])
            if not act and sparams[SP_DRIFT] > 0.0:
                act = not within_drift_nb(t, close, port, work, sparams, o_smoothed[t])
            if act:
                ctx = context_with_nb(
                    close[t], rows[t - r0], exog[t], close[: t + 1], new_period[t], port, work,
                    o_post[t], o_raw[t], o_smoothed[t], o_changed[t],
                )  # fmt: skip
                if builtin_policy_nb(tg, ctx, sparams, sstate, dtargets[nd]):
                    orders_nb(tg, dtargets[nd], close[t], setup, state, dorders[nd])
                    pending = True
                    dbars[nd] = tg
                    nd += 1
            o_equity[t] = port[P_EQUITY]
            o_cash[t] = port[P_CASH]
            if record_features:
                for i in range(n_features):
                    o_feats[t, i] = rows[t - r0, i]
        t_next += seg
    return finish_nb(out, dbars, dtargets, dorders, nd, fills, n_fills)

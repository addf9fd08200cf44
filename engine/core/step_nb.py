"""The step and the compiled driver (njit).

One bar goes through, in this order and nowhere else:

1. ``market``: pending orders fill at this bar's open (or close), costs are charged,
   causal features are updated with this bar, the portfolio is marked at the close;
2. ``detect``: the regime detector's online filter updates the posterior, and the
   trading smoother updates the smoothed state;
3. ``decide``: the policy sees a :class:`~engine.core.policy_nb.BarContext` and returns
   target weights and whether to rebalance;
4. ``orders``: targets become pending share orders, filled at the next bar.

:func:`step_nb` runs the four phases; the compiled driver :func:`run_nb` loops it over a
history; the streaming driver (:mod:`engine.core.streaming`) calls the same
:func:`step_nb` once per arriving bar, or the phases one by one around Python callbacks.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

import numba as nb
import numpy as np

from engine.core.execution_nb import (
    execute_pending_nb,
    grow_rows_nb,
    mark_to_market_nb,
    place_orders_nb,
)
from engine.core.policy_nb import builtin_policy_nb
from engine.features.causal_nb import features_update_nb
from engine.ground.layout import (
    D_KIND,
    DET_USER,
    E_FILL_AT_CLOSE,
    G_CHANGED,
    G_FIT,
    G_RAW,
    G_SMOOTHED,
    N_COST_KINDS,
    N_FILL_FIELDS,
    P_BARS,
    P_CASH,
    P_EQUITY,
    P_HEADER,
    P_LAST_DECISION,
)
from engine.plugins.context_nb import BarContext
from engine.regimes.online_nb import detector_update_nb, smooth_state_nb

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
    """Phase 1: fill pending orders, update features, mark to market. Returns fill count."""
    port = state.port
    ref = close if setup.eparams[E_FILL_AT_CLOSE] != 0.0 else bar_open
    nf = execute_pending_nb(t, ref, volume, setup.costs, setup.eparams, port, bar_costs, fills)
    features_update_nb(close, setup.fparams, state.fstate, feats)
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
def detect_nb(
    t: int, feats: np.ndarray, exog: np.ndarray, dparams: np.ndarray, setup: Setup, state: State
) -> None:
    """Phase 2: online detector update (``dparams`` = the row in force) and smoothing."""
    post = state.post
    k = active_fit_nb(t, setup.fit_bar)
    state.rstate[G_FIT] = k
    if k < 0:
        post[:] = 1.0 / post.shape[0]
        raw = -1
    else:
        raw = detector_update_nb(dparams, state.dstate, feats, exog, post)
    smooth_state_nb(raw, post, setup.smooth, state.rstate)


@nb.njit(cache=True, inline="always")
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
    post = state.post
    k = active_fit_nb(t, setup.fit_bar)
    state.rstate[G_FIT] = k
    if k < 0:
        post[:] = 1.0 / post.shape[0]
        raw = -1
    elif int(dparams[D_KIND]) == DET_USER:
        raw = ufilter(dparams, state.dstate, feats, exog, post)
    else:
        raw = detector_update_nb(dparams, state.dstate, feats, exog, post)
    smooth_state_nb(raw, post, setup.smooth, state.rstate)


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
    port = state.port
    eq = port[P_EQUITY]
    w = state.work
    n = close.shape[0]
    for j in range(n):
        w[j] = port[P_HEADER + j] * close[j] / eq if eq != 0.0 else 0.0
    r = state.rstate
    return BarContext(
        close,
        feats,
        state.post,
        int(r[G_RAW]),
        int(r[G_SMOOTHED]),
        r[G_CHANGED] != 0.0,
        new_period,
        w,
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


@nb.njit(cache=True, inline="always")
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


@nb.njit(cache=True)
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
def dparams_at_nb(t: int, setup: Setup) -> np.ndarray:
    """The detector parameter row in force at bar ``t`` (row 0 before the first fit)."""
    k = active_fit_nb(t, setup.fit_bar)
    return setup.dparams[k if k >= 0 else 0]


@nb.njit(cache=True)
def alloc_outputs_nb(
    t_len: int, n: int, k_states: int, n_features: int, record_features: bool
) -> tuple[Any, ...]:
    """Per-bar output arrays: equity, cash, weights, targets, orders, post, raw, smoothed,
    costs, features."""
    return (
        np.empty(t_len),
        np.empty(t_len),
        np.empty((t_len, n)),
        np.empty((t_len, n)),
        np.zeros((t_len, n)),
        np.empty((t_len, k_states)),
        np.empty(t_len, dtype=np.int64),
        np.empty(t_len, dtype=np.int64),
        np.zeros((t_len, N_COST_KINDS)),
        np.empty((t_len if record_features else 1, n_features)),
    )


@nb.njit(cache=True, inline="always")
def record_bar_nb(
    t: int, state: State, feats: np.ndarray, out: tuple[Any, ...], record_features: bool
) -> None:
    """Copy bar ``t``'s portfolio, weights and regime into the output arrays."""
    port = state.port
    out[0][t] = port[P_EQUITY]
    out[1][t] = port[P_CASH]
    out[2][t] = state.work
    out[5][t] = state.post
    out[6][t] = int(state.rstate[G_RAW])
    out[7][t] = int(state.rstate[G_SMOOTHED])
    if record_features:
        out[9][t] = feats


@nb.njit(cache=True)
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
) -> tuple[Any, ...]:
    """The compiled driver: :func:`step_nb` over every bar of a ``(T, N)`` history.

    Returns ``(equity, cash, weights, targets, orders, post, raw, smoothed, bar_costs,
    fills, features)``; ``fills`` is trimmed to the rows written.
    """
    t_len, n = close.shape
    out = alloc_outputs_nb(t_len, n, state.post.shape[0], n_features, record_features)
    targets, orders, costs = out[3], out[4], out[8]
    feats = np.zeros(n_features)
    fills = np.empty((max(64, t_len // 4), N_FILL_FIELDS))
    n_fills = 0
    for t in range(t_len):
        dparams = dparams_at_nb(t, setup)
        fills = grow_rows_nb(fills, n_fills + n)
        nf, _ = step_nb(
            policy,
            ufilter,
            t,
            bar_open[t],
            close[t],
            volume[t],
            exog[t],
            close[: t + 1],
            new_period[t],
            dparams,
            setup,
            state,
            feats,
            targets[t],
            orders[t],
            costs[t],
            fills[n_fills:],
        )
        n_fills += nf
        record_bar_nb(t, state, feats, out, record_features)
    return (*out[:9], fills[:n_fills].copy(), out[9])


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
) -> tuple[Any, ...]:
    """:func:`run_nb` with the built-in policy (disk-cached; same loop, same step)."""
    t_len, n = close.shape
    out = alloc_outputs_nb(t_len, n, state.post.shape[0], n_features, record_features)
    targets, orders, costs = out[3], out[4], out[8]
    feats = np.zeros(n_features)
    fills = np.empty((max(64, t_len // 4), N_FILL_FIELDS))
    n_fills = 0
    for t in range(t_len):
        dparams = dparams_at_nb(t, setup)
        fills = grow_rows_nb(fills, n_fills + n)
        nf, _ = step_builtin_nb(
            t,
            bar_open[t],
            close[t],
            volume[t],
            exog[t],
            close[: t + 1],
            new_period[t],
            dparams,
            setup,
            state,
            feats,
            targets[t],
            orders[t],
            costs[t],
            fills[n_fills:],
        )
        n_fills += nf
        record_bar_nb(t, state, feats, out, record_features)
    return (*out[:9], fills[:n_fills].copy(), out[9])


def run_driver(policy: Any, *args: Any, ufilter: Any = None) -> tuple[Any, ...]:
    """The compiled driver for ``policy`` (and a user filter, if any): the disk-cached
    built-in loop for the built-in policy and detectors, the generic one otherwise.
    ``args`` as for :func:`run_builtin_nb`."""
    if policy is builtin_policy_nb and ufilter is None:
        return tuple(run_builtin_nb(*args))
    return tuple(run_nb(policy, detector_update_nb if ufilter is None else ufilter, *args))

"""Order sizing, cost model and fills (njit kernels over the portfolio state vector).

Portfolio vector layout (see :mod:`engine.ground.layout`): ``[cash, equity, bars,
last_decision, pos(N), pending(N)]``. Orders are signed share quantities kept in
``pending`` until filled; the unfilled remainder of a participation-capped order carries
over to the next bar until a new decision replaces it.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from engine.ground.layout import (
    C_BORROW_BPS,
    C_COMMISSION_BPS,
    C_COMMISSION_MIN,
    C_COMMISSION_PER_SHARE,
    C_HALF_SPREAD_BPS,
    C_IMPACT_COEF,
    C_LOT_SIZE,
    C_PARTICIPATION,
    C_SLIPPAGE_BPS,
    E_ALLOW_LEVERAGE,
    E_FINANCING_RATE,
    E_MAX_GROSS,
    E_MIN_TRADE_VALUE,
    E_PERIODS_PER_YEAR,
    E_TRADE_BAND,
    K_COMMISSION,
    K_IMPACT,
    K_SLIPPAGE,
    K_SPREAD,
    N_FILL_FIELDS,
    P_CASH,
    P_EQUITY,
    P_HEADER,
    R_ASSET,
    R_BAR,
    R_COMMISSION,
    R_IMPACT,
    R_PRICE,
    R_QTY,
    R_SLIPPAGE,
    R_SPREAD,
)

BPS = 1e-4
DUST_REL = 1e-9
"""Orders and fills worth less than this fraction of equity (or below ``min_trade_value``)
are dust: never placed, never filled, never counted as trades."""


@nb.njit(cache=True, inline="always")
def dust_value_nb(eparams: np.ndarray, equity: float) -> float:
    """Notional at or below which an order or fill is dust."""
    return max(eparams[E_MIN_TRADE_VALUE], DUST_REL * abs(equity))


@nb.njit(cache=True, inline="always")
def mark_to_market_nb(close: np.ndarray, port: np.ndarray) -> float:
    """Set and return equity = cash + sum(pos * close)."""
    n = close.shape[0]
    eq = port[P_CASH]
    for j in range(n):
        eq += port[P_HEADER + j] * close[j]
    port[P_EQUITY] = eq
    return eq


@nb.njit(cache=True)
def mark_row_nb(close: np.ndarray, t: int, port: np.ndarray) -> None:
    """:func:`mark_to_market_nb` at row ``t`` of a ``(T, N)`` close: the compiled
    drivers' per-bar form (base array and index: no row view, whose reference counting
    costs more than the sum)."""
    eq = port[P_CASH]
    for j in range(close.shape[1]):
        eq += port[P_HEADER + j] * close[t, j]
    port[P_EQUITY] = eq


@nb.njit(cache=True)
def fill_quantity_nb(want: float, volume: float, cost: np.ndarray) -> float:
    """Signed quantity fillable this bar under the participation cap."""
    cap = cost[C_PARTICIPATION]
    if cap > 0.0 and volume > 0.0:
        limit = cap * volume
        if abs(want) > limit:
            want = limit if want > 0.0 else -limit
    lot = cost[C_LOT_SIZE]
    if lot > 0.0:
        want = np.trunc(want / lot) * lot
    return want


@nb.njit(cache=True)
def fill_costs_nb(
    qty: float, ref: float, volume: float, cost: np.ndarray, out: np.ndarray
) -> float:
    """Cost pieces of a fill of signed ``qty`` at reference price ``ref``.

    Writes ``[commission, spread, slippage, impact]`` (currency, all >= 0) into ``out``
    and returns the fill price (ref moved against the trader by spread + slippage + impact).
    """
    aq = abs(qty)
    notional = aq * ref
    impact_frac = 0.0
    if cost[C_IMPACT_COEF] > 0.0 and volume > 0.0:
        impact_frac = cost[C_IMPACT_COEF] * np.sqrt(aq / volume)
    spread_frac = cost[C_HALF_SPREAD_BPS] * BPS
    slip_frac = cost[C_SLIPPAGE_BPS] * BPS
    comm = cost[C_COMMISSION_BPS] * BPS * notional + cost[C_COMMISSION_PER_SHARE] * aq
    if aq > 0.0 and comm < cost[C_COMMISSION_MIN]:
        comm = cost[C_COMMISSION_MIN]
    out[0] = comm
    out[1] = notional * spread_frac
    out[2] = notional * slip_frac
    out[3] = notional * impact_frac
    side = 1.0 if qty > 0.0 else -1.0
    return ref * (1.0 + side * (spread_frac + slip_frac + impact_frac))


@nb.njit(cache=True)
def apply_fill_nb(
    t: int,
    j: int,
    q: float,
    px: float,
    piece: np.ndarray,
    port: np.ndarray,
    bar_costs: np.ndarray,
    rec: np.ndarray,
) -> None:
    """Book a fill of signed ``q`` at ``px`` with cost pieces ``piece`` into the
    portfolio, the bar's cost totals and the fill record ``rec``."""
    port[P_CASH] -= q * px + piece[0]
    port[P_HEADER + j] += q
    bar_costs[K_COMMISSION] += piece[0]
    bar_costs[K_SPREAD] += piece[1]
    bar_costs[K_SLIPPAGE] += piece[2]
    bar_costs[K_IMPACT] += piece[3]
    rec[R_BAR] = t
    rec[R_ASSET] = j
    rec[R_QTY] = q
    rec[R_PRICE] = px
    rec[R_COMMISSION] = piece[0]
    rec[R_SPREAD] = piece[1]
    rec[R_SLIPPAGE] = piece[2]
    rec[R_IMPACT] = piece[3]


@nb.njit(cache=True, inline="always")
def execute_pending_nb(
    t: int,
    ref: np.ndarray,
    volume: np.ndarray,
    costs: np.ndarray,
    eparams: np.ndarray,
    port: np.ndarray,
    bar_costs: np.ndarray,
    fills: np.ndarray,
) -> int:
    """Fill pending orders at reference prices ``ref``: sells first, then buys.

    Each order fills up to the participation cap; the rest stays pending. Without
    leverage, cash never goes negative: a sell whose proceeds can't pay its commission is
    cancelled, and buys are scaled down to the cash available (the cut part cancelled).
    Writes fill records into ``fills`` and returns how many were written.
    """
    n = ref.shape[0]
    pend = P_HEADER + n
    bar_costs[:] = 0.0
    any_pending = False
    borrow = 0.0  # short positions pay their borrow fee for the bar, in cash
    for j in range(n):
        if port[pend + j] != 0.0:
            any_pending = True
        if port[P_HEADER + j] < 0.0 and costs[j, C_BORROW_BPS] > 0.0:
            borrow -= port[P_HEADER + j] * ref[j] * costs[j, C_BORROW_BPS] * BPS
    if borrow > 0.0:
        port[P_CASH] -= borrow / eparams[E_PERIODS_PER_YEAR]
    if port[P_CASH] < 0.0 and eparams[E_FINANCING_RATE] != 0.0:  # leverage pays its loan
        port[P_CASH] += port[P_CASH] * eparams[E_FINANCING_RATE] / eparams[E_PERIODS_PER_YEAR]
    if not any_pending:  # most bars: nothing to fill, nothing to allocate
        return 0
    no_leverage = eparams[E_ALLOW_LEVERAGE] == 0.0
    dust = dust_value_nb(eparams, port[P_EQUITY])
    piece = np.empty(4)
    nf = 0
    want = np.zeros(n)  # fillable under the participation cap; the rest carries over
    for j in range(n):
        if port[pend + j] != 0.0:
            want[j] = fill_quantity_nb(port[pend + j], volume[j], costs[j])
    for j in range(n):  # sells
        q = want[j]
        if q >= 0.0:
            continue
        port[pend + j] -= q
        if abs(port[pend + j]) * ref[j] <= dust:
            port[pend + j] = 0.0
        if abs(q) * ref[j] <= dust:
            continue  # dust: not a fill
        px = fill_costs_nb(q, ref[j], volume[j], costs[j], piece)
        if no_leverage and port[P_CASH] - (q * px + piece[0]) < 0.0:
            continue  # proceeds don't cover the commission: cancelled
        apply_fill_nb(t, j, q, px, piece, port, bar_costs, fills[nf])
        nf += 1
    qty = want.copy()
    if no_leverage:  # scale buys to the cash available after the sells
        cash = port[P_CASH]
        for it in range(9):
            var = 0.0  # cost that scales with the quantity
            fixed = 0.0  # minimum commissions
            for j in range(n):
                if qty[j] > 0.0:
                    px = fill_costs_nb(qty[j], ref[j], volume[j], costs[j], piece)
                    var += qty[j] * px
                    if piece[0] <= costs[j, C_COMMISSION_MIN]:
                        fixed += piece[0]
                    else:
                        var += piece[0]
            if var + fixed <= cash or var == 0.0:
                break
            scale = (cash - fixed) / var * (1.0 - 1e-9) if it < 8 else 0.0
            for j in range(n):
                if qty[j] > 0.0:
                    qty[j] = fill_quantity_nb(qty[j] * max(scale, 0.0), volume[j], costs[j])
                    if qty[j] * ref[j] < 1e-9:
                        qty[j] = 0.0
    for j in range(n):  # buys
        if want[j] <= 0.0:
            continue
        port[pend + j] -= want[j]  # what qty leaves unfilled is cancelled
        if abs(port[pend + j]) * ref[j] <= dust:
            port[pend + j] = 0.0
        q = qty[j]
        if q <= 0.0 or q * ref[j] <= dust:
            continue  # nothing or dust: not a fill
        px = fill_costs_nb(q, ref[j], volume[j], costs[j], piece)
        apply_fill_nb(t, j, q, px, piece, port, bar_costs, fills[nf])
        nf += 1
    return nf


@nb.njit(cache=True)
def place_orders_nb(
    target: np.ndarray,
    close: np.ndarray,
    costs: np.ndarray,
    eparams: np.ndarray,
    port: np.ndarray,
    orders: np.ndarray,
) -> int:
    """Turn target weights into pending share orders (replacing any pending remainder).

    Applies the gross-exposure cap, the no-trade band and the minimum trade value;
    writes the signed order quantities into ``orders`` and returns how many are non-zero.
    """
    n = close.shape[0]
    eq = port[P_EQUITY]
    gross = 0.0
    for j in range(n):
        gross += abs(target[j])
    max_gross = eparams[E_MAX_GROSS] if eparams[E_ALLOW_LEVERAGE] != 0.0 else 1.0
    scale = 1.0
    if gross > max_gross and gross > 0.0:
        scale = max_gross / gross
    band = eparams[E_TRADE_BAND]
    placed = 0
    for j in range(n):
        held_value = port[P_HEADER + j] * close[j]
        w_held = held_value / eq if eq > 0.0 else 0.0
        w_tgt = target[j] * scale
        q = 0.0
        if abs(w_tgt - w_held) > band and eq > 0.0 and close[j] > 0.0:
            q = (w_tgt * eq - held_value) / close[j]
            if abs(q) * close[j] <= dust_value_nb(eparams, eq):
                q = 0.0  # below min_trade_value, or dust
            lot = costs[j, C_LOT_SIZE]
            if lot > 0.0:
                q = np.trunc(q / lot) * lot
        port[P_HEADER + n + j] = q
        orders[j] = q
        if q != 0.0:
            placed += 1
    return placed


@nb.njit(cache=True)
def grow_rows_nb(buf: np.ndarray, need: int) -> np.ndarray:
    """Return ``buf`` or a copy with at least ``need`` rows (doubling)."""
    if need <= buf.shape[0]:
        return buf
    rows = buf.shape[0] * 2
    if rows < need:
        rows = need
    out = np.empty((rows, N_FILL_FIELDS))
    for i in range(buf.shape[0]):
        for f in range(N_FILL_FIELDS):
            out[i, f] = buf[i, f]
    return out

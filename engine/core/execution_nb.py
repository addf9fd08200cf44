"""Order sizing, cost model and fills (njit kernels over the portfolio state vector).

Portfolio vector layout (see :mod:`engine.core.layout`): ``[cash, equity, bars,
last_decision, pos(N), pending(N)]``. Orders are signed share quantities kept in
``pending`` until filled; the unfilled remainder of a participation-capped order carries
over to the next bar until a new decision replaces it.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from engine.core.layout import (
    C_COMMISSION_BPS,
    C_COMMISSION_MIN,
    C_COMMISSION_PER_SHARE,
    C_HALF_SPREAD_BPS,
    C_IMPACT_COEF,
    C_LOT_SIZE,
    C_PARTICIPATION,
    C_SLIPPAGE_BPS,
    E_ALLOW_LEVERAGE,
    E_MAX_GROSS,
    E_MIN_TRADE_VALUE,
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


@nb.njit(cache=True)
def mark_to_market_nb(close: np.ndarray, port: np.ndarray) -> float:
    """Set and return equity = cash + sum(pos * close)."""
    n = close.shape[0]
    eq = port[P_CASH]
    for j in range(n):
        eq += port[P_HEADER + j] * close[j]
    port[P_EQUITY] = eq
    return eq


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
    """Fill pending orders at reference prices ``ref`` (sells first, then buys).

    Without leverage, buys are scaled down so cash stays >= 0. Writes fill records
    into ``fills`` (rows of ``N_FILL_FIELDS``) and returns how many were written.
    """
    n = ref.shape[0]
    pend = P_HEADER + n
    piece = np.empty(4)
    bar_costs[:] = 0.0
    nf = 0
    want = np.zeros(n)  # fillable under the participation cap; the rest carries over
    for j in range(n):
        if port[pend + j] != 0.0:
            want[j] = fill_quantity_nb(port[pend + j], volume[j], costs[j])
    qty = want.copy()  # after the cash check; buys cut for lack of cash are cancelled
    # cash check for buys (sells are filled first and add cash)
    if eparams[E_ALLOW_LEVERAGE] == 0.0:
        cash = port[P_CASH]
        for j in range(n):
            if qty[j] < 0.0:
                px = fill_costs_nb(qty[j], ref[j], volume[j], costs[j], piece)
                cash += -qty[j] * px - piece[0]
        for _ in range(8):
            need = 0.0
            for j in range(n):
                if qty[j] > 0.0:
                    px = fill_costs_nb(qty[j], ref[j], volume[j], costs[j], piece)
                    need += qty[j] * px + piece[0]
            if need <= cash or need == 0.0:
                break
            scale = max(cash, 0.0) / need * (1.0 - 1e-9)
            for j in range(n):
                if qty[j] > 0.0:
                    qty[j] = fill_quantity_nb(qty[j] * scale, volume[j], costs[j])
                    if qty[j] * ref[j] < 1e-9:
                        qty[j] = 0.0
    for j in range(n):
        if qty[j] == 0.0 and want[j] != 0.0:
            port[pend + j] -= want[j]  # cancelled for lack of cash
    for side_pass in range(2):
        for j in range(n):
            q = qty[j]
            if q == 0.0 or (side_pass == 0 and q > 0.0) or (side_pass == 1 and q < 0.0):
                continue
            px = fill_costs_nb(q, ref[j], volume[j], costs[j], piece)
            port[P_CASH] -= q * px + piece[0]
            port[P_HEADER + j] += q
            port[pend + j] -= want[j]
            if abs(port[pend + j]) * ref[j] < 1e-9:
                port[pend + j] = 0.0
            bar_costs[K_COMMISSION] += piece[0]
            bar_costs[K_SPREAD] += piece[1]
            bar_costs[K_SLIPPAGE] += piece[2]
            bar_costs[K_IMPACT] += piece[3]
            rec = fills[nf]
            rec[R_BAR] = t
            rec[R_ASSET] = j
            rec[R_QTY] = q
            rec[R_PRICE] = px
            rec[R_COMMISSION] = piece[0]
            rec[R_SPREAD] = piece[1]
            rec[R_SLIPPAGE] = piece[2]
            rec[R_IMPACT] = piece[3]
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
            if abs(q) * close[j] < eparams[E_MIN_TRADE_VALUE]:
                q = 0.0
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
    out[: buf.shape[0]] = buf
    return out

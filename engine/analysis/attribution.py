"""Return attribution by asset and cost, per bar, over the period and by regime.

Per bar ``t`` (close ``t-1`` to close ``t``) with portfolio return ``r_t = E_t / E_{t-1} - 1``:

* asset contribution ``c_{i,t} = w_{i,t-1} * (P_{i,t} / P_{i,t-1} - 1)`` (held weight at the
  previous close times the asset's close-to-close return);
* cost drag ``-cost_{c,t} / E_{t-1}`` for ``c`` in commission, spread, slippage, impact
  (fills stamped at bar ``t``), stored as **negative** contributions named ``cost_<c>``;
* ``execution = sum_fills signed_qty * (P_t - ref_price) / E_{t-1}``: the gain or loss of
  trading during bar ``t`` (e.g. at its open) rather than at its close, measured from the
  reference price (the fill price less the spread, slippage and impact it embeds);
* ``residual = r_t - sum(assets) - execution - sum(costs)``: anything else (cash interest,
  corporate actions, accounting not visible in the tables). It is ~0 for the engine's own
  runs; in every case the components sum to ``r_t`` exactly (up to float error).

Over the period, ``sum`` totals are the arithmetic sums of the per-bar components (they sum to
``sum_t r_t``); ``carino`` totals use Carino's logarithmic linking, scaling each bar by
``k_t / K`` with ``k_t = ln(1 + r_t) / r_t`` and ``K = ln(1 + R) / R`` (``R`` the compounded
return), so the linked components sum to ``R`` exactly.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from engine.analysis._common import COST_COLUMNS, filtered_state, strategy_fills

COST_COMPONENTS: tuple[str, ...] = tuple(f"cost_{c}" for c in COST_COLUMNS)


def per_bar_costs(fills: pd.DataFrame | None, index: pd.Index) -> pd.DataFrame:
    """Currency costs per bar (columns commission, spread, slippage, impact) on ``index``."""
    if fills is None or len(fills) == 0:
        return pd.DataFrame(0.0, index=index, columns=list(COST_COLUMNS))
    f = fills.copy()
    for c in COST_COLUMNS:
        if c not in f.columns:
            f[c] = 0.0
    g = f.groupby(pd.DatetimeIndex(f["timestamp"]))[list(COST_COLUMNS)].sum().astype(float)
    missing = g.index.difference(index)
    if len(missing):
        raise ValueError(f"fills stamped at {missing[0]} which is not a bar of the equity index")
    return g.reindex(index, fill_value=0.0)


def execution_pnl(
    fills: pd.DataFrame | None, close: pd.DataFrame, price_includes_costs: bool = True
) -> pd.Series:
    """Currency P&L per bar of trading at the fill's reference price rather than the close.

    ``sum over fills at t of signed_qty * (close_t - fill_price)`` (buys positive qty). When
    ``price_includes_costs`` (the engine's convention: the fill price is the reference price
    moved against the trader by spread + slippage + impact, and only the commission is paid
    separately), those three costs are added back so they appear only as cost components.
    """
    if fills is None or len(fills) == 0:
        return pd.Series(0.0, index=close.index)
    sign = np.where(fills["side"].astype(str).str.lower() == "buy", 1.0, -1.0)
    ts = pd.DatetimeIndex(fills["timestamp"])
    row = close.index.get_indexer(ts)
    col = close.columns.get_indexer(pd.Index(fills["symbol"]))
    if (row < 0).any() or (col < 0).any():
        bad = int(np.flatnonzero((row < 0) | (col < 0))[0])
        raise ValueError(
            f"fill {bad} ({fills['symbol'].iloc[bad]} at {ts[bad]}) is not on the price table"
        )
    px = close.to_numpy(dtype=float)[row, col]
    pnl = sign * fills["qty"].to_numpy(dtype=float) * (px - fills["price"].to_numpy(dtype=float))
    if price_includes_costs:
        for c in ("spread", "slippage", "impact"):
            if c in fills.columns:
                pnl = pnl + fills[c].to_numpy(dtype=float)
    acc = np.zeros(len(close.index))
    np.add.at(acc, row, pnl)
    return pd.Series(acc, index=close.index)


def attribute(
    equity: pd.Series,
    weights: pd.DataFrame,
    prices: pd.DataFrame,
    fills: pd.DataFrame | None = None,
    price_includes_costs: bool = True,
) -> pd.DataFrame:
    """Per-bar return attribution of one strategy.

    Parameters
    ----------
    equity : Series
        Portfolio value at each close.
    weights : DataFrame
        Held weights at each close (timestamp x symbol).
    prices : DataFrame
        Close prices (timestamp x symbol).
    fills : DataFrame, optional
        This strategy's fills (side, qty, price, symbol, timestamp and cost columns).
    price_includes_costs : bool
        Whether fill ``price`` already embeds spread, slippage and impact (engine: yes).

    Returns
    -------
    DataFrame
        Index = bars 1..T-1; columns = symbols, ``execution``, ``cost_*`` (negative),
        ``residual`` and ``total`` (the portfolio simple return). Each row's components
        sum to ``total``.
    """
    e = pd.Series(equity, dtype=float)
    idx = e.index
    syms = [c for c in weights.columns]
    w = weights.reindex(idx).astype(float).fillna(0.0)
    p = prices.reindex(index=idx, columns=syms).astype(float)
    ar = (p / p.shift(1) - 1.0).fillna(0.0)
    prev_w = w.shift(1)
    contrib = (prev_w * ar).iloc[1:]
    prev_e = e.shift(1).iloc[1:]
    costs = per_bar_costs(fills, idx).iloc[1:]
    drag = -costs.div(prev_e, axis=0)
    drag.columns = list(COST_COMPONENTS)
    total = (e / e.shift(1) - 1.0).iloc[1:]
    out = pd.concat([contrib, drag], axis=1)
    out.insert(
        len(syms), "execution", execution_pnl(fills, p, price_includes_costs).iloc[1:].div(prev_e)
    )
    out["residual"] = total - out.sum(axis=1)
    out["total"] = total
    out.index.name = idx.name
    return out


def carino_factors(returns: pd.Series) -> tuple[pd.Series, float]:
    """Carino per-bar factors ``k_t / K`` and the compounded return ``R``."""
    r = returns.astype(float).to_numpy()
    big_r = float(np.prod(1.0 + r) - 1.0)

    def k(x: np.ndarray) -> np.ndarray:
        out = np.ones_like(x)
        nz = np.abs(x) > 1e-15
        out[nz] = np.log1p(x[nz]) / x[nz]
        return out

    kk = float(k(np.array([big_r]))[0])
    return pd.Series(k(r) / kk, index=returns.index), big_r


def link(per_bar: pd.DataFrame, method: Literal["sum", "carino"] = "carino") -> pd.Series:
    """Period totals of per-bar components (:func:`attribute` output).

    ``sum``: arithmetic sums (sum to ``sum_t r_t``). ``carino``: log-linked (sum to the
    compounded return, also stored as ``total``).
    """
    comps = per_bar.drop(columns=["total"])
    if method == "sum":
        out = comps.sum(axis=0)
        out["total"] = float(per_bar["total"].sum())
        return out
    if method != "carino":
        raise ValueError(f"unknown linking method {method!r}; use 'sum' or 'carino'")
    f, big_r = carino_factors(per_bar["total"])
    out = comps.mul(f, axis=0).sum(axis=0)
    out["total"] = big_r
    return out


def attribution_by_regime(
    per_bar: pd.DataFrame,
    regimes: pd.DataFrame | pd.Series,
    method: Literal["sum", "carino"] = "carino",
    lag: int = 1,
) -> pd.DataFrame:
    """Components totalled within each filtered state (rows = states, warm-up = -1).

    A bar is assigned to the filtered state known at close ``t - lag``. With ``carino`` each
    row's components sum to the return compounded over that state's bars.
    """
    st = filtered_state(regimes)
    if lag:
        st = st.shift(lag)
    st = st.reindex(per_bar.index).fillna(-1).astype(np.int64)
    rows = {int(k): link(per_bar[st == k], method) for k in sorted(pd.unique(st))}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "state"
    return df


def attribute_result(result: Any, price_includes_costs: bool = True) -> dict[str, pd.DataFrame]:
    """Per-bar attribution for every strategy of a result-like object."""
    out: dict[str, pd.DataFrame] = {}
    weights = result.weights
    for name in result.equity.columns:
        w = weights[name] if isinstance(weights.columns, pd.MultiIndex) else weights
        out[str(name)] = attribute(
            result.equity[name],
            w,
            result.prices,
            strategy_fills(result.fills, str(name)),
            price_includes_costs,
        )
    return out


def attribution_table(result: Any, method: Literal["sum", "carino"] = "carino") -> pd.DataFrame:
    """Period attribution per strategy (rows = strategies, columns = components, total)."""
    per = attribute_result(result)
    df = pd.DataFrame({k: link(v, method) for k, v in per.items()}).T
    df.index.name = "strategy"
    return df

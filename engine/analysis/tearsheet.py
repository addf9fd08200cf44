"""Tearsheet tables: calendar returns, exposure and turnover over time, trade list, regime
performance, detection lag around labelled crises and cost attribution.

All of it is computed from the result-like tables (``equity``, ``weights``, ``fills``,
``regimes``); see :mod:`engine.analysis._common`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from engine.analysis._common import COST_COLUMNS, filtered_state, strategy_fills
from engine.analysis.metrics import PERIODS_PER_YEAR
from engine.analysis.regime_risk import state_for_returns, strategy_regime_risk
from engine.analysis.stress import HISTORICAL_WINDOWS, covered_windows


def period_returns(equity: pd.Series, freq: str) -> pd.Series:
    """Compounded return of each calendar period (``"ME"`` months, ``"YE"`` years).

    A period's return is its last equity over the previous period's last equity (the first
    period: over the first bar), minus one; periods without a bar are dropped.
    """
    e = pd.Series(equity, dtype=float).dropna()
    if len(e) < 2:
        return pd.Series(dtype=float)
    last = e.resample(freq).last().dropna()
    prev = last.shift(1)
    prev.iloc[0] = e.iloc[0]
    out = last / prev - 1.0
    out.name = e.name
    return out


def monthly_returns(equity: pd.Series) -> pd.DataFrame:
    """Monthly returns as a year x month (1..12) table, NaN where a month has no bar."""
    m = period_returns(equity, "ME")
    ix = pd.DatetimeIndex(m.index)
    df = pd.DataFrame({"year": ix.year, "month": ix.month, "r": m.to_numpy()})
    table = df.pivot(index="year", columns="month", values="r").reindex(columns=range(1, 13))
    table.index.name, table.columns.name = "year", "month"
    return table


def yearly_returns(equity: pd.DataFrame) -> pd.DataFrame:
    """Calendar-year returns, rows = years, columns = the equity columns."""
    out = pd.DataFrame({c: period_returns(equity[c], "YE") for c in equity.columns})
    out.index = pd.Index(pd.DatetimeIndex(out.index).year, name="year")
    return out


def _strategy_weights(weights: pd.DataFrame, strategy: str) -> pd.DataFrame:
    if isinstance(weights.columns, pd.MultiIndex):
        return pd.DataFrame(weights[strategy]).astype(float).fillna(0.0)
    return weights.astype(float).fillna(0.0)


def exposure(
    weights: pd.DataFrame, strategy: str, cash_symbols: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Gross and net exposure and the cash share of one strategy, per bar.

    ``gross = sum |w|``, ``net = sum w`` over risky holdings (symbols in ``cash_symbols``
    count as cash), ``cash = 1 - net``.
    """
    w = _strategy_weights(weights, strategy)
    risky = w[[c for c in w.columns if str(c) not in cash_symbols]]
    net = risky.sum(axis=1)
    return pd.DataFrame({"gross": risky.abs().sum(axis=1), "net": net, "cash": 1.0 - net})


def turnover_series(
    fills: pd.DataFrame | None,
    equity: pd.Series,
    window: int = PERIODS_PER_YEAR,
) -> pd.Series:
    """Rolling one-sided turnover: traded notional over the last ``window`` bars / 2, divided
    by the mean equity of the window (the annual figure of
    :func:`engine.analysis.metrics.turnover` when ``window`` is a year)."""
    e = pd.Series(equity, dtype=float)
    traded = pd.Series(0.0, index=e.index)
    if fills is not None and len(fills):
        ts = pd.to_datetime(fills["timestamp"])
        notional = fills["qty"].astype(float).abs() * fills["price"].astype(float)
        per_bar = notional.groupby(ts.to_numpy()).sum()
        traded = per_bar.reindex(e.index).fillna(0.0)
    num = traded.rolling(window, min_periods=1).sum() / 2.0
    out = num / e.rolling(window, min_periods=1).mean()
    out.name = e.name
    return out


def trade_list(fills: pd.DataFrame | None, strategy: str, n: int = 25) -> pd.DataFrame:
    """The ``n`` largest fills of ``strategy`` by notional, newest first among equals.

    Columns: timestamp, symbol, side, qty, price, notional, costs (the four cost columns).
    """
    f = strategy_fills(fills, strategy)
    cols = ["timestamp", "symbol", "side", "qty", "price", "notional", "costs"]
    if f is None or len(f) == 0:
        return pd.DataFrame(columns=cols)
    f = f.copy()
    f["timestamp"] = pd.to_datetime(f["timestamp"])
    f["notional"] = f["qty"].astype(float).abs() * f["price"].astype(float)
    cc = [c for c in COST_COLUMNS if c in f.columns]
    f["costs"] = f[cc].astype(float).sum(axis=1) if cc else 0.0
    top = f.sort_values(["notional", "timestamp"], ascending=[False, False]).head(n)
    return top[cols].reset_index(drop=True)


def regime_performance(
    equity: pd.DataFrame,
    regimes: pd.DataFrame,
    periods_per_year: float = PERIODS_PER_YEAR,
    rf: float | pd.Series = 0.0,
) -> pd.DataFrame:
    """Per strategy and filtered regime: share of time, annualized return, volatility,
    Sharpe (over the per-bar risk-free ``rf``), max drawdown, hit rate (share of positive
    bars), CVaR 95%.

    Bar returns are grouped by the filtered state at the previous close, warm-up excluded
    (:mod:`engine.analysis.regime_risk`); rows (strategy, state).
    """
    rr = strategy_regime_risk(equity, regimes, periods_per_year, rf=rf)
    if len(rr) == 0:
        return pd.DataFrame()
    rets = equity.astype(float).pct_change(fill_method=None).iloc[1:]
    st = state_for_returns(regimes, rets.index)
    hit = {(str(s), int(k)): float((rets[s][st == k].dropna() > 0).mean()) for s, k in rr.index}
    out = rr[["frac_time", "ann_return", "volatility", "sharpe", "max_drawdown", "cvar95"]].copy()
    out = out.rename(columns={"frac_time": "share_of_time"})
    out.insert(5, "hit_rate", [hit[(str(s), int(k))] for s, k in rr.index])
    return out


def dwell_times(regimes: pd.DataFrame) -> pd.DataFrame:
    """Spell lengths (bars) per filtered state: count, mean, median, max; warm-up excluded."""
    st = filtered_state(regimes).to_numpy()
    if st.size == 0:
        return pd.DataFrame(columns=["n_spells", "mean", "median", "max"])
    change = np.flatnonzero(np.diff(st) != 0) + 1
    starts = np.r_[0, change]
    lens = np.diff(np.r_[starts, st.size])
    rows = {}
    for k in sorted(int(x) for x in np.unique(st[st >= 0])):
        d = lens[st[starts] == k]
        rows[k] = {
            "n_spells": float(d.size),
            "mean": float(d.mean()),
            "median": float(np.median(d)),
            "max": float(d.max()),
        }
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "state"
    return df


def detection_lag(
    regimes: pd.DataFrame,
    n_states: int,
    windows: Mapping[str, tuple[str, str]] = HISTORICAL_WINDOWS,
) -> pd.DataFrame:
    """How fast the filtered state reacted to each labelled crisis inside the data.

    For every window (start, end) fully covered: bars from the start to the first bar in
    the window whose state is not the calmest (``lag_any``) and is the most stressed state
    ``n_states - 1`` (``lag_top``; NaN if never reached), the state at the start, and the
    share of the window's bars spent in the most stressed state.
    """
    st = filtered_state(regimes)
    top = n_states - 1
    rows = {}
    for name, (a, b) in covered_windows(pd.DatetimeIndex(st.index), windows).items():
        w = st.loc[pd.Timestamp(a) : pd.Timestamp(b)].to_numpy()
        if w.size == 0:
            continue
        hit_any = np.flatnonzero(w > 0)
        hit_top = np.flatnonzero(w == top)
        rows[name] = {
            "start": pd.Timestamp(a),
            "end": pd.Timestamp(b),
            "state_at_start": float(w[0]),
            "lag_any_bars": float(hit_any[0]) if hit_any.size else np.nan,
            "lag_top_bars": float(hit_top[0]) if hit_top.size else np.nan,
            "share_in_top": float((w == top).mean()),
        }
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "window"
    return df


def cost_attribution(
    fills: pd.DataFrame | None,
    equity: pd.DataFrame,
    periods_per_year: float = PERIODS_PER_YEAR,
) -> pd.DataFrame:
    """Costs per strategy by kind: money, bps of traded notional, drag per year.

    Columns: the cost kinds present (money), ``total_costs``, ``cost_bps`` (total / traded
    notional in basis points) and ``cost_drag`` (total / mean equity / years).
    """
    rows = {}
    for s in equity.columns:
        f = strategy_fills(fills, str(s))
        e = equity[s].astype(float)
        years = max((len(e) - 1) / periods_per_year, 1e-12)
        row: dict[str, float] = {}
        if f is None or len(f) == 0:
            row.update(dict.fromkeys(COST_COLUMNS, 0.0))
            notional = 0.0
        else:
            for c in COST_COLUMNS:
                row[c] = float(f[c].astype(float).sum()) if c in f.columns else 0.0
            notional = float((f["qty"].astype(float).abs() * f["price"].astype(float)).sum())
        total = sum(row[c] for c in COST_COLUMNS)
        row["total_costs"] = total
        row["cost_bps"] = total / notional * 1e4 if notional > 0 else np.nan
        row["cost_drag"] = total / float(e.mean()) / years
        rows[str(s)] = row
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "strategy"
    return df

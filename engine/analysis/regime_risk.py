"""State-conditional risk: metrics per filtered regime, transitions, dwell times.

Conditioning convention: a bar return ``r_t`` (close ``t-1`` to close ``t``) is assigned to
the **filtered** state known at the close of bar ``t - lag`` (``lag=1`` by default: the state
the strategy could act on while holding over the bar; no smoothed/look-ahead labels are ever
used). Bars whose state is ``-1`` (warm-up) are excluded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.analysis._common import filtered_state, simple_returns
from engine.analysis.metrics import PERIODS_PER_YEAR, max_drawdown, return_stats, sharpe


def state_for_returns(
    regimes: pd.DataFrame | pd.Series, index: pd.Index, lag: int = 1
) -> pd.Series:
    """Filtered state assigned to each return timestamp in ``index`` (see module doc)."""
    st = filtered_state(regimes)
    if lag:
        st = st.shift(lag)
    return st.reindex(index).fillna(-1).astype(np.int64)


def conditional_stats(
    returns: pd.Series,
    states: pd.Series,
    periods_per_year: float = PERIODS_PER_YEAR,
    rf: float | pd.Series = 0.0,
) -> pd.DataFrame:
    """Risk metrics of one return series by state.

    Parameters
    ----------
    returns : Series
        Per-bar simple returns.
    states : Series
        State of each return (same index), ``-1`` excluded.
    rf : float or Series
        Per-bar risk-free returns: ``sharpe`` is of excess returns (0 by default).

    Returns
    -------
    DataFrame
        Rows = states, columns: n_bars, frac_time, ann_return, volatility, sharpe, skew,
        kurtosis, var/cvar 95/99 (historical, ``_gaussian``, ``_cf``) and max_drawdown
        (of the equity compounded over that state's bars only, in time order).
        ``ann_return`` is compounded like every CAGR: ``prod(1 + r) ** (ppy / n) - 1``
        over the state's ``n`` bars.
    """
    s = states.reindex(returns.index)
    valid = s >= 0
    n_valid = int(valid.sum())
    rows: dict[int, dict[str, float]] = {}
    for k in sorted(int(x) for x in pd.unique(s[valid])):
        rk = returns[s == k].dropna()
        d = return_stats(rk, periods_per_year)
        if len(rk):
            growth = float(np.prod(1.0 + rk.to_numpy()))
            d["ann_return"] = growth ** (periods_per_year / len(rk)) - 1.0 if growth > 0 else -1.0
        if not (isinstance(rf, float | int) and rf == 0):
            d["sharpe"] = sharpe(rk, rf, periods_per_year)
        d["frac_time"] = float(len(rk) / n_valid) if n_valid else float("nan")
        d["max_drawdown"] = max_drawdown(np.concatenate([[1.0], np.cumprod(1.0 + rk.to_numpy())]))
        rows[k] = d
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "state"
    if len(df):
        first = ["n_bars", "frac_time", "ann_return", "volatility", "sharpe", "max_drawdown"]
        df = df[first + [c for c in df.columns if c not in first]]
    return df


def strategy_regime_risk(
    equity: pd.DataFrame,
    regimes: pd.DataFrame | pd.Series,
    periods_per_year: float = PERIODS_PER_YEAR,
    lag: int = 1,
    rf: float | pd.Series = 0.0,
) -> pd.DataFrame:
    """Per-strategy state-conditional metrics; MultiIndex rows (strategy, state); Sharpe
    over the per-bar risk-free ``rf``."""
    frames = {}
    for name in equity.columns:
        r = simple_returns(equity[name])
        frames[str(name)] = conditional_stats(
            r, state_for_returns(regimes, r.index, lag), periods_per_year, rf
        )
    out = pd.concat(frames, names=["strategy", "state"])
    return out


def asset_regime_risk(
    prices: pd.DataFrame,
    regimes: pd.DataFrame | pd.Series,
    periods_per_year: float = PERIODS_PER_YEAR,
    lag: int = 1,
) -> pd.DataFrame:
    """Per-asset state-conditional metrics of close-to-close returns; rows (symbol, state)."""
    rets = prices.astype(float).pct_change(fill_method=None).iloc[1:]
    st = state_for_returns(regimes, rets.index, lag)
    frames = {str(c): conditional_stats(rets[c], st, periods_per_year) for c in rets.columns}
    return pd.concat(frames, names=["symbol", "state"])


def state_correlations(
    returns: pd.DataFrame,
    regimes: pd.DataFrame | pd.Series,
    lag: int = 1,
) -> dict[int, pd.DataFrame]:
    """Correlation matrix of the columns of ``returns`` within each filtered state."""
    st = state_for_returns(regimes, returns.index, lag)
    out: dict[int, pd.DataFrame] = {}
    for k in sorted(int(x) for x in pd.unique(st[st >= 0])):
        out[k] = returns[st == k].corr()
    return out


def transition_matrix(regimes: pd.DataFrame | pd.Series, normalize: bool = True) -> pd.DataFrame:
    """Empirical transition matrix of the filtered state (warm-up ``-1`` excluded).

    Entry ``(i, j)`` counts (or, normalized, the row-share of) bars with state ``i`` followed
    by state ``j``. Only consecutive pairs with both states valid count.
    """
    st = filtered_state(regimes).to_numpy()
    states = sorted(int(x) for x in np.unique(st[st >= 0]))
    pos = {s: i for i, s in enumerate(states)}
    m = np.zeros((len(states), len(states)))
    a, b = st[:-1], st[1:]
    ok = (a >= 0) & (b >= 0)
    for i, j in zip(a[ok], b[ok]):
        m[pos[int(i)], pos[int(j)]] += 1
    if normalize:
        rs = m.sum(axis=1, keepdims=True)
        m = np.divide(m, rs, out=np.full_like(m, np.nan), where=rs > 0)
    df = pd.DataFrame(m, index=states, columns=states)
    df.index.name = "from"
    df.columns.name = "to"
    return df


def _runs(st: np.ndarray) -> list[tuple[int, int]]:
    """(state, length) of consecutive runs, warm-up excluded."""
    out: list[tuple[int, int]] = []
    if st.size == 0:
        return out
    change = np.flatnonzero(np.diff(st) != 0) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [st.size]])
    for s0, e0 in zip(starts, ends):
        if st[s0] >= 0:
            out.append((int(st[s0]), int(e0 - s0)))
    return out


def regime_occupancy(regimes: pd.DataFrame | pd.Series) -> pd.DataFrame:
    """Time in each filtered regime and its dwell times.

    Returns
    -------
    DataFrame
        Rows = states; columns n_bars, frac_time (of non-warm-up bars), n_spells,
        avg_dwell (mean run length in bars), max_dwell.
    """
    st = filtered_state(regimes).to_numpy()
    runs = _runs(st)
    valid = int((st >= 0).sum())
    rows: dict[int, dict[str, float]] = {}
    for k in sorted(int(x) for x in np.unique(st[st >= 0])):
        lens = [n for s, n in runs if s == k]
        nb = int((st == k).sum())
        rows[k] = {
            "n_bars": float(nb),
            "frac_time": nb / valid if valid else float("nan"),
            "n_spells": float(len(lens)),
            "avg_dwell": float(np.mean(lens)) if lens else float("nan"),
            "max_dwell": float(np.max(lens)) if lens else float("nan"),
        }
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "state"
    return df


def regime_risk_report(
    result: Any,
    periods_per_year: float = PERIODS_PER_YEAR,
    lag: int = 1,
) -> dict[str, Any]:
    """Everything state-conditional for a result-like object.

    Returns
    -------
    dict
        ``strategies`` (strategy, state) metrics, ``assets`` (symbol, state) metrics,
        ``asset_correlations`` {state: DataFrame}, ``strategy_correlations``,
        ``transitions`` (row-normalized), ``occupancy``.
    """
    regimes = result.regimes
    prices = result.prices
    equity = result.equity
    asset_rets = prices.astype(float).pct_change(fill_method=None).iloc[1:]
    strat_rets = equity.astype(float).pct_change(fill_method=None).iloc[1:]
    return {
        "strategies": strategy_regime_risk(equity, regimes, periods_per_year, lag),
        "assets": asset_regime_risk(prices, regimes, periods_per_year, lag),
        "asset_correlations": state_correlations(asset_rets, regimes, lag),
        "strategy_correlations": state_correlations(strat_rets, regimes, lag),
        "transitions": transition_matrix(regimes),
        "occupancy": regime_occupancy(regimes),
    }

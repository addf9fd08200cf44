"""Stress tests: named historical windows and hypothetical shocks to holdings.

Historical window conventions (per strategy):

* the window runs from the last bar at or before ``start`` (the *start bar*) to the last bar
  at or before ``end``; only windows the data covers entirely are reported;
* ``return`` = ``E[end bar] / E[start bar] - 1``; ``max_drawdown`` is within the window;
* ``pre_peak`` = highest equity up to and including the start bar;
* ``recovery_bars`` = bars from the start bar to the first bar, at or after the window's
  trough, whose equity is back at ``pre_peak`` (0 when the window never fell below it; NaN
  and ``recovered = False`` when it never recovers in the data).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from engine.analysis.metrics import max_drawdown

#: Named historical stress windows (inclusive dates).
HISTORICAL_WINDOWS: dict[str, tuple[str, str]] = {
    "dot-com bust": ("2000-03-24", "2002-10-09"),
    "GFC": ("2007-10-09", "2009-03-09"),
    "euro crisis 2011": ("2011-07-01", "2011-10-03"),
    "China / oil 2015-16": ("2015-08-01", "2016-02-29"),
    "Q4 2018": ("2018-10-01", "2018-12-24"),
    "COVID crash": ("2020-02-19", "2020-03-23"),
}

#: Example hypothetical scenarios keyed by asset class (symbols may be used too).
HYPOTHETICAL_SHOCKS: dict[str, dict[str, float]] = {
    "equity -20%": {"equity": -0.20},
    "equity -20%, bonds +5%": {"equity": -0.20, "bond": 0.05},
    "stagflation": {"equity": -0.15, "bond": -0.10, "commodity": 0.20},
    "rates +200bp": {"bond": -0.15, "equity": -0.05},
}


def covered_windows(
    index: pd.DatetimeIndex, windows: Mapping[str, tuple[str, str]] | None = None
) -> dict[str, tuple[pd.Timestamp, pd.Timestamp]]:
    """The windows entirely inside ``index`` (first bar <= start, last bar >= end)."""
    out: dict[str, tuple[pd.Timestamp, pd.Timestamp]] = {}
    if len(index) == 0:
        return out
    for name, (s, e) in (windows or HISTORICAL_WINDOWS).items():
        ts, te = pd.Timestamp(s), pd.Timestamp(e)
        if index[0] <= ts and index[-1] >= te:
            out[name] = (ts, te)
    return out


def window_stats(equity: pd.Series, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, Any]:
    """Return, max drawdown and time to recovery of one equity curve over one window."""
    e = pd.Series(equity, dtype=float)
    idx = e.index
    i0 = int(idx.searchsorted(start, side="right")) - 1
    i1 = int(idx.searchsorted(end, side="right")) - 1
    i0 = max(i0, 0)
    vals = e.to_numpy()
    win = vals[i0 : i1 + 1]
    pre_peak = float(np.max(vals[: i0 + 1]))
    trough = i0 + int(np.argmin(win))
    if float(np.min(win)) >= pre_peak:
        rec: float = 0.0
        rec_date: pd.Timestamp | None = idx[i0]
    else:
        after = np.flatnonzero(vals[trough:] >= pre_peak)
        if after.size:
            j = trough + int(after[0])
            rec, rec_date = float(j - i0), idx[j]
        else:
            rec, rec_date = float("nan"), None
    return {
        "start": idx[i0],
        "end": idx[i1],
        "bars": float(i1 - i0),
        "return": float(vals[i1] / vals[i0] - 1.0),
        "max_drawdown": max_drawdown(win),
        "trough": idx[trough],
        "recovery_bars": rec,
        "recovery_date": rec_date,
        "recovered": rec_date is not None,
    }


def historical_stress(
    equity: pd.DataFrame, windows: Mapping[str, tuple[str, str]] | None = None
) -> pd.DataFrame:
    """Window statistics for every strategy and every covered window.

    Returns
    -------
    DataFrame
        MultiIndex rows (window, strategy); columns start, end, bars, return, max_drawdown,
        trough, recovery_bars, recovery_date, recovered. Empty when no window is covered.
    """
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for wname, (s, e) in covered_windows(pd.DatetimeIndex(equity.index), windows).items():
        for strat in equity.columns:
            rows[(wname, str(strat))] = window_stats(equity[strat], s, e)
    if not rows:
        return pd.DataFrame(
            columns=[
                "start",
                "end",
                "bars",
                "return",
                "max_drawdown",
                "trough",
                "recovery_bars",
                "recovery_date",
                "recovered",
            ]
        )
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index = pd.MultiIndex.from_tuples(list(rows), names=["window", "strategy"])
    return df


def _shock_vector(
    symbols: list[str], shocks: Mapping[str, float], asset_classes: Mapping[str, str] | None
) -> np.ndarray:
    classes = asset_classes or {}
    out = np.zeros(len(symbols))
    for i, s in enumerate(symbols):
        if s in shocks:
            out[i] = shocks[s]
        elif classes.get(s) in shocks:
            out[i] = shocks[classes[s]]
    return out


def hypothetical_shock(
    weights: pd.DataFrame,
    equity: pd.DataFrame,
    date: Any,
    shocks: Mapping[str, float],
    asset_classes: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Instantaneous P&L of the holdings at ``date`` under a shock.

    Parameters
    ----------
    weights : DataFrame
        Held weights, MultiIndex columns (strategy, symbol).
    equity : DataFrame
        Equity per strategy.
    date : timestamp-like
        Holdings of the last bar at or before ``date`` are shocked.
    shocks : mapping
        ``symbol -> return`` or ``asset class -> return``; a symbol key wins over its class;
        unmatched symbols are unchanged.
    asset_classes : mapping, optional
        ``symbol -> asset class``.

    Returns
    -------
    DataFrame
        Rows = strategies; columns date, equity, return (fraction), pnl (currency).
    """
    ts = pd.Timestamp(date)
    i = int(equity.index.searchsorted(ts, side="right")) - 1
    if i < 0:
        raise ValueError(f"shock date {ts.date()} is before the first bar {equity.index[0]}")
    bar = equity.index[i]
    rows: dict[str, dict[str, Any]] = {}
    for strat in equity.columns:
        w = weights[strat] if isinstance(weights.columns, pd.MultiIndex) else weights
        wv = w.loc[bar].astype(float).fillna(0.0)
        vec = _shock_vector([str(c) for c in wv.index], shocks, asset_classes)
        ret = float(np.dot(wv.to_numpy(), vec))
        eq = float(equity[strat].iloc[i])
        rows[str(strat)] = {"date": bar, "equity": eq, "return": ret, "pnl": ret * eq}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "strategy"
    return df


def shock_table(
    weights: pd.DataFrame,
    equity: pd.DataFrame,
    date: Any,
    scenarios: Mapping[str, Mapping[str, float]] | None = None,
    asset_classes: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """:func:`hypothetical_shock` for several named scenarios; rows (scenario, strategy)."""
    frames = {
        name: hypothetical_shock(weights, equity, date, sh, asset_classes)
        for name, sh in (scenarios or HYPOTHETICAL_SHOCKS).items()
    }
    return pd.concat(frames, names=["scenario", "strategy"])

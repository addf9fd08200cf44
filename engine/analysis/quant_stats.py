"""The statistics a quant would otherwise open quantstats for: trailing returns, best and
worst periods, win rates, streaks, drawdown durations, recovery factor, ulcer index and the
end-of-year table against a benchmark.

Definitions follow quantstats (``quantstats.stats`` / ``quantstats.reports.metrics``,
v0.0.62) on simple per-bar returns ``r_t = E_t / E_{t-1} - 1``; where we differ it is
deliberate and said at the function:

* ``comp(r) = prod(1 + r) - 1`` (compounded, as ``stats.comp``);
* trailing windows end at the last bar ``T`` and take the returns stamped ``>= T - offset``
  (``reports.metrics``: MTD from the month's first day, 3M/6M/1Y back by calendar months
  and years, YTD from 1 January); 3Y/5Y/10Y are annualised;
* best/worst and win rates per bar, calendar month and calendar year (``stats.best``,
  ``stats.worst``, ``stats.win_rate``: a period's return is compounded inside it);
* drawdown durations in calendar days from the first bar under water to the last
  (``stats.drawdown_details``: ``(end - start).days + 1``);
* ``ulcer_index = sqrt(sum(dd_t^2) / (n - 1))`` (``stats.ulcer_index``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.analysis._common import simple_returns
from engine.analysis.drawdowns import drawdown_episodes
from engine.analysis.metrics import drawdown, max_drawdown
from engine.analysis.tearsheet import period_returns

TRAILING: tuple[str, ...] = ("mtd", "3m", "6m", "ytd", "1y", "3y_ann", "5y_ann", "10y_ann")
"""Keys of :func:`trailing_returns`, in display order."""

#: Calendar slack before a first (after a last) bar that still counts as a whole period.
PARTIAL_SLACK_DAYS = {"ME": 3, "YE": 7}


def comp(returns: pd.Series | np.ndarray) -> float:
    """Compounded return ``prod(1 + r) - 1`` (NaN for no returns)."""
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    return float(np.prod(1.0 + r) - 1.0) if r.size else float("nan")


def trailing_returns(equity: pd.Series, periods_per_year: float) -> dict[str, float]:
    """MTD, 3M, 6M, YTD, 1Y (compounded) and 3Y, 5Y, 10Y (annualised) to the last bar.

    As quantstats' ``reports.metrics``: the returns stamped on or after the window's start
    date are compounded. Deliberate differences: the 3Y/5Y window is 36/60 months
    (quantstats: 35/59), a multi-year figure is NaN unless the history reaches the window's
    start, and it is annualised like our CAGR, ``(1 + comp) ** (ppy / n_returns) - 1``
    (quantstats: calendar days / 365).
    """
    r = simple_returns(equity).dropna()
    out = dict.fromkeys(TRAILING, float("nan"))
    if r.empty:
        return out
    idx = pd.DatetimeIndex(r.index)
    end = idx[-1]
    first = pd.DatetimeIndex(equity.index)[0]
    day = end.normalize()
    starts = {
        "mtd": day.replace(day=1),
        "3m": end - pd.DateOffset(months=3),
        "6m": end - pd.DateOffset(months=6),
        "ytd": day.replace(month=1, day=1),
        "1y": end - pd.DateOffset(years=1),
    }
    for k, a in starts.items():
        out[k] = comp(r[idx >= a])
    for k, years in (("3y_ann", 3), ("5y_ann", 5), ("10y_ann", 10)):
        a = end - pd.DateOffset(years=years)
        if first > a:
            continue
        w = r[idx >= a]
        out[k] = float((1.0 + comp(w)) ** (periods_per_year / len(w)) - 1.0)
    return out


def _win_rate(r: pd.Series) -> float:
    """quantstats ``_win_rate``: positive periods / non-zero periods (flat ones left out)."""
    nz = r[r != 0].dropna()
    return float((nz > 0).sum() / len(nz)) if len(nz) else float("nan")


def _longest_run(mask: np.ndarray) -> int:
    """The longest run of True (quantstats ``_count_consecutive(...).max()``)."""
    best = cur = 0
    for m in mask:
        cur = cur + 1 if m else 0
        best = max(best, cur)
    return best


def drawdown_days(equity: pd.Series) -> pd.Series:
    """Each drawdown episode's calendar days under water: from the first bar below the peak
    to the last bar before the recovery (or the last bar), ``(end - start).days + 1``
    (quantstats ``drawdown_details`` "days")."""
    e = pd.Series(equity, dtype=float).dropna()
    ep = drawdown_episodes(e)
    idx = pd.DatetimeIndex(e.index)
    first = idx.get_indexer(pd.DatetimeIndex(ep["start"])) + 1
    rec = ep["recovery"]
    last = np.where(rec.notna(), idx.get_indexer(pd.DatetimeIndex(rec)) - 1, len(idx) - 1)
    days = (idx[last].normalize() - idx[first].normalize()).days + 1
    return pd.Series(np.asarray(days, dtype=float), name="days")


def ulcer_index(equity: pd.Series) -> float:
    """``sqrt(sum(dd^2) / (n - 1))`` over the ``n`` return bars, ``dd`` the drawdown in
    fractions (quantstats ``ulcer_index``; our drawdown counts from the starting equity)."""
    dd = drawdown(pd.Series(equity, dtype=float).dropna()).to_numpy()[1:]
    if dd.size < 2:
        return float("nan")
    return float(np.sqrt(np.sum(dd**2) / (dd.size - 1)))


def recovery_factor(equity: pd.Series) -> float:
    """Total compounded return / max drawdown. quantstats divides the *sum* of the returns;
    we compound, like every return on the page."""
    e = pd.Series(equity, dtype=float).dropna()
    mdd = max_drawdown(e)
    if len(e) < 2 or not mdd > 0:
        return float("nan")
    return float((e.iloc[-1] / e.iloc[0] - 1.0) / mdd)


def quant_stats(equity: pd.Series, periods_per_year: float) -> dict[str, float]:
    """Every statistic of the module for one equity curve (keys: :data:`TRAILING`, then
    ``best_/worst_/win_rate_`` ``bar|month|year``, ``max_consecutive_wins|losses``,
    ``longest_dd_days``, ``avg_dd_days``, ``recovery_factor``, ``ulcer_index``)."""
    e = pd.Series(equity, dtype=float).dropna()
    out = trailing_returns(e, periods_per_year)
    r = simple_returns(e).dropna()
    per = {"bar": r, "month": period_returns(e, "ME"), "year": period_returns(e, "YE")}
    nan = float("nan")
    for k, x in per.items():
        out[f"best_{k}"] = float(x.max()) if len(x) else nan
        out[f"worst_{k}"] = float(x.min()) if len(x) else nan
    for k, x in per.items():
        out[f"win_rate_{k}"] = _win_rate(x)
    v = r.to_numpy()
    out["max_consecutive_wins"] = float(_longest_run(v > 0))
    out["max_consecutive_losses"] = float(_longest_run(v < 0))
    days = drawdown_days(e)
    out["longest_dd_days"] = float(days.max()) if len(days) else 0.0
    out["avg_dd_days"] = float(days.mean()) if len(days) else 0.0
    out["recovery_factor"] = recovery_factor(e)
    out["ulcer_index"] = ulcer_index(e)
    return out


def quant_stats_table(equity: pd.DataFrame, periods_per_year: float) -> pd.DataFrame:
    """:func:`quant_stats` of every column: rows = statistics, columns = series."""
    return pd.DataFrame({str(c): quant_stats(equity[c], periods_per_year) for c in equity})


def partial_periods(index: pd.DatetimeIndex, freq: str) -> set[pd.Timestamp]:
    """Period ends (``"ME"``/``"YE"`` labels, as :func:`period_returns`) of the first and
    last calendar periods when the bars cover them only in part: the first bar more than
    :data:`PARTIAL_SLACK_DAYS` after the period's start, the last bar as much before its
    end."""
    if len(index) == 0:
        return set()
    idx = pd.DatetimeIndex(index)
    slack = pd.Timedelta(days=PARTIAL_SLACK_DAYS[freq])
    first, last = idx[0], idx[-1]
    period = "M" if freq == "ME" else "Y"
    p0, p1 = first.to_period(period), last.to_period(period)
    out = set()
    if first.normalize() - p0.start_time > slack:
        out.add(p0.end_time.normalize())
    if p1.end_time.normalize() - last.normalize() > slack:
        out.add(p1.end_time.normalize())
    return out


def eoy_table(strategy: pd.Series, benchmark: pd.Series) -> pd.DataFrame:
    """End-of-year returns of ``strategy`` and ``benchmark`` on the same bars: columns
    ``strategy``, ``benchmark``, ``difference`` (strategy - benchmark), ``ratio``
    (quantstats' "Multiplier", strategy / benchmark), ``partial`` (the year is covered only
    in part: :func:`partial_periods`); index = year."""
    both = pd.concat([strategy.astype(float), benchmark.astype(float)], axis=1).dropna()
    s = period_returns(both.iloc[:, 0], "YE")
    b = period_returns(both.iloc[:, 1], "YE")
    part = partial_periods(pd.DatetimeIndex(both.index), "YE")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = s / b.where(b != 0)
    out = pd.DataFrame(
        {
            "strategy": s,
            "benchmark": b,
            "difference": s - b,
            "ratio": ratio,
            "partial": [pd.Timestamp(t).normalize() in part for t in s.index],
        }
    )
    out.index = pd.Index(pd.DatetimeIndex(s.index).year, name="year")
    return out

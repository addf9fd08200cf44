"""Bar frequency is a fact of the data: inferred from the index, used everywhere.

:func:`infer_frequency` looks at a ``DatetimeIndex`` and returns a :class:`Frequency`
(``minute``, ``hourly``, ``daily``, ``weekly``, ``monthly``, ``quarterly``, ``yearly``) with
the number of bars per year used to annualise returns, volatility, Sharpe, Sortino and
turnover. Rules (documented in the README, "Data format"):

* the bar spacing is the median gap between consecutive bars;
* spacing under a day (intraday): ``periods_per_year = bars per active day x active days per
  year``, where bars per active day is the median count of bars per calendar date and active
  days per year is 252 when the data skip weekends (exchange sessions), 365 when they trade
  every day (crypto). Overnight and weekend gaps are therefore not bars;
* about a day: 252 (weekdays only) or 365 (weekends present); when more than 15 % of those
  sessions are missing over a span of at least a quarter, the bars per year actually
  observed, ``(bars - 1) / span in years`` (``sparse``): years and annualisation then follow
  the data's real calendar span (30 % of sessions missing: ~176/yr, not 252);
* about a week: 52; a month: 12; a quarter: 4; a year: 1.

``periods_per_year`` in the config (``[data] periods_per_year``) overrides the inference.
:func:`window_bars` (feature windows) and :func:`span_bars` (detector schedules) turn a
span named in time (``"1y"``, ``"6m"``, ``"20d"``, ``"4h"``)
into the right number of bars. This module is import-light (numpy and pandas only).
"""

from __future__ import annotations

import re
import weakref
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import pandas as pd

TRADING_DAYS = 252
CALENDAR_DAYS = 365
NS_PER_DAY = 86_400_000_000_000

#: (name, the median spacing upper bound in days, periods per year); daily is handled apart.
_COARSE: tuple[tuple[str, float, float], ...] = (
    ("weekly", 10.0, 52.0),
    ("monthly", 45.0, 12.0),
    ("quarterly", 120.0, 4.0),
    ("yearly", float("inf"), 1.0),
)

_UNITS = {
    "minute": "minute",
    "hourly": "hour",
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "quarterly": "quarter",
    "yearly": "year",
}


@dataclass(frozen=True)
class Frequency:
    """The bar frequency of a history.

    ``name`` is minute / hourly / intraday / daily / weekly / monthly / quarterly / yearly;
    ``periods_per_year`` annualises per-bar statistics; ``bar_seconds`` is the median bar
    spacing; ``bars_per_day`` the median number of bars per active day (1 for daily and
    coarser); ``days_per_year`` 252 (sessions) or 365 (every day).
    """

    name: str
    periods_per_year: float
    bar_seconds: float
    bars_per_day: float = 1.0
    days_per_year: float = TRADING_DAYS
    sparse: bool = False  # daily bars missing sessions: periods_per_year counted on the span

    @property
    def intraday(self) -> bool:
        return self.bar_seconds < 20 * 3600

    @property
    def unit(self) -> str:
        """One bar in words, for labels: ``"day"``, ``"hour"``, ``"week"``, ... (``"bar"``
        for intraday bars of another spacing)."""
        return _UNITS.get(self.name, "bar")

    def describe_bars(self, n_bars: float) -> str:
        """``n_bars`` in bars and in time, e.g. ``"63 bars (~3.0 months)"``."""
        days = n_bars / self.bars_per_day * (365.25 / self.days_per_year)
        if days >= 365.25 * 0.95:
            t = f"~{days / 365.25:.1f} years"
        elif days >= 28:
            t = f"~{days / 30.44:.1f} months"
        elif days >= 1 or not self.intraday:
            t = f"~{days:.1f} days"
        else:
            t = f"~{n_bars * self.bar_seconds / 3600:.1f} hours"
        return f"{n_bars:g} bars ({t})"


def _daily_calendar_days(local_ns: np.ndarray) -> float:
    """252 when the bars skip weekends (exchange sessions), 365 when weekends trade.

    ``local_ns``: wall-clock bar times as int64 nanoseconds (1970-01-01 was a Thursday).
    """
    if not len(local_ns):
        return TRADING_DAYS
    dow = (local_ns // NS_PER_DAY + 3) % 7
    weekend = float(np.count_nonzero(dow >= 5)) / len(dow)
    return CALENDAR_DAYS if weekend > 0.1 else TRADING_DAYS


def _median(x: np.ndarray) -> float:
    """``float(np.median(x))`` of a non-empty int64 array, from a sort: numpy's selection
    (inside np.median) slows to ~0.5 ms on 5,000 bar gaps of a few distinct values."""
    s = np.sort(x)
    k = x.size // 2
    if x.size % 2:
        return float(s[k])
    return (float(s[k - 1]) + float(s[k])) / 2.0


#: id(index) -> (weak reference to that index, its inferred Frequency). A pandas Index is
#: immutable, so the frequency of one index object never changes; entries die with it.
SPARSE_SHARE = 0.85
"""Daily bars covering less than this share of the sessions a year holds are ``sparse``."""
SPARSE_MIN_YEARS = 0.25
"""... over a span of at least this many years (shorter spans: too few bars to tell)."""

_CACHE: dict[int, tuple[weakref.ref[pd.DatetimeIndex], Frequency]] = {}


def _forget(key: int, ref: weakref.ref[pd.DatetimeIndex]) -> None:
    entry = _CACHE.get(key)
    if entry is not None and entry[0] is ref:
        del _CACHE[key]


def infer_frequency(
    index: pd.DatetimeIndex | pd.Index, periods_per_year: float | None = None
) -> Frequency:
    """The :class:`Frequency` of ``index`` (``periods_per_year`` overrides the count).

    Fewer than 3 bars (nothing to infer from) is taken as daily. The inference is done once
    per index object (cached while the index lives), so callers may ask again freely.
    """
    if isinstance(index, pd.DatetimeIndex):
        key = id(index)
        entry = _CACHE.get(key)
        if entry is not None and entry[0]() is index:
            freq = entry[1]
        else:
            freq = _infer(index)
            ref = weakref.ref(index, partial(_forget, key))
            _CACHE[key] = (ref, freq)
    else:
        freq = _infer(index)
    if periods_per_year:
        return replace(freq, periods_per_year=float(periods_per_year))
    return freq


def _infer(index: pd.DatetimeIndex | pd.Index) -> Frequency:
    idx = pd.DatetimeIndex(index).as_unit("ns")
    if len(idx) < 3:
        return Frequency("daily", float(TRADING_DAYS), 86400.0)
    ns = idx.asi8
    gap_s = _median(np.diff(ns)) / 1e9
    gap_days = gap_s / 86400.0
    local = ns if idx.tz is None else idx.tz_localize(None).asi8
    if gap_days < 0.75:  # intraday
        dates = local // NS_PER_DAY
        _, counts = np.unique(dates, return_counts=True)
        per_day = float(np.median(counts))
        days = _daily_calendar_days(local)
        name = "minute" if gap_s <= 90 else ("hourly" if 1800 <= gap_s <= 5400 else "intraday")
        return Frequency(name, float(per_day * days), gap_s, per_day, days)
    if gap_days < 4.5:
        days = _daily_calendar_days(local)
        span_years = (ns[-1] - ns[0]) / NS_PER_DAY / 365.25
        if span_years >= SPARSE_MIN_YEARS:
            observed = (len(ns) - 1) / span_years
            if observed < SPARSE_SHARE * days:  # sessions missing: the calendar's own count
                return Frequency("daily", float(observed), gap_s, 1.0, days, sparse=True)
        return Frequency("daily", float(days), gap_s, 1.0, days)
    for name, bound, ppy in _COARSE:
        if gap_days < bound:
            per_day = ppy / TRADING_DAYS
            return Frequency(name, float(ppy), gap_s, per_day, TRADING_DAYS)
    raise AssertionError("unreachable")  # pragma: no cover


_WINDOW_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(y|q|mo|m|w|d|h|min|bars?)\s*$", re.IGNORECASE)
_UNIT_DAYS = {"y": 365.25, "q": 365.25 / 4, "m": 365.25 / 12, "mo": 365.25 / 12, "w": 7.0, "d": 1.0}

_LAG_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]+)\s*$")
_LAG_FIXED = {"w": 7 * 86400.0, "d": 86400.0, "h": 3600.0, "min": 60.0, "s": 1.0}
_LAG_MONTHS = {"mo": 1, "q": 3, "y": 12}
LAG_UNITS = "y, q, mo (months), w, d, h, min, s"


def parse_lag(lag: object) -> pd.Timedelta | pd.DateOffset:
    """A publication lag in time: ``"1d"``, ``"2w"``, ``"4h"``, ``"30min"``, ``"1mo"``,
    ``"1q"``, ``"1y"`` (the units of feature windows; months, quarters and years are
    calendar offsets: a value dated Jan 31 with ``"1mo"`` is known on Feb 29), or a
    ``Timedelta``/``DateOffset``. ``ValueError`` for what could be read two ways or not at
    all: ``"1m"`` / ``"1M"`` (a minute or a month? write ``"1min"`` or ``"1mo"``), a bare
    number (no unit: ``30`` would be 30 nanoseconds), a negative lag."""
    import datetime as dt

    if isinstance(lag, pd.DateOffset):
        return lag
    if isinstance(lag, dt.timedelta | np.timedelta64):
        delta = pd.Timedelta(lag)
        if delta < pd.Timedelta(0):
            raise ValueError(f"lag must be >= 0, got {lag!r}")
        return delta
    if isinstance(lag, bool) or not isinstance(lag, str):
        raise ValueError(
            f"lag {lag!r}: a number has no unit; write it in time, e.g. '1d', '1mo' "
            f"(units: {LAG_UNITS})"
        )
    text = lag.strip()
    if text.startswith("-"):
        raise ValueError(f"lag must be >= 0, got {lag!r}")
    m = _LAG_RE.match(text)
    if m is None:
        raise ValueError(f"lag {lag!r}: expected a number and a unit ({LAG_UNITS}), e.g. '1d'")
    x, raw_unit = float(m.group(1)), m.group(2)
    unit = raw_unit.lower()
    if unit == "m":
        raise ValueError(
            f"lag {lag!r} is ambiguous: write '{m.group(1)}min' for minutes or "
            f"'{m.group(1)}mo' for months"
        )
    if unit in _LAG_FIXED:
        return pd.Timedelta(seconds=x * _LAG_FIXED[unit])
    if unit in _LAG_MONTHS:
        months = x * _LAG_MONTHS[unit]
        if months != int(months):
            raise ValueError(f"lag {lag!r}: months, quarters and years must be whole months")
        return pd.DateOffset(months=int(months))
    raise ValueError(f"lag {lag!r}: unknown unit {raw_unit!r} (units: {LAG_UNITS})")


def parse_window(window: str) -> tuple[float, str]:
    """``"6m"`` -> ``(6.0, "m")``; a ``ValueError`` naming the accepted units otherwise."""
    m = _WINDOW_RE.match(str(window))
    if m is None:
        raise ValueError(
            f"window {window!r}: expected a number and a unit (y, q, m or mo, w, d, h, min, bars)"
        )
    return float(m.group(1)), m.group(2).lower()


def span_bars(span: str | int, freq: Frequency) -> int:
    """Bars in a span named in time (``"2y"``, ``"18m"``, ``"26w"``, ``"20d"``, ``"4h"``,
    ``"30min"``) or in bars (``"63bars"`` or an int), rounded to the nearest bar (0 for a
    span under half a bar: callers bound it).

    Calendar units convert through ``periods_per_year`` (so ``"1y"`` is 252 daily bars,
    52 weekly bars, 98,280 one-minute bars of 390-minute sessions).
    """
    if isinstance(span, int | np.integer):
        return int(span)
    x, unit = parse_window(str(span))
    if unit.startswith("bar"):
        n = x
    elif unit in ("h", "min"):
        seconds = x * (3600.0 if unit == "h" else 60.0)
        n = seconds / freq.bar_seconds
    else:
        n = x * _UNIT_DAYS[unit] / 365.25 * freq.periods_per_year
    return round(n)


def window_bars(window: str | int, freq: Frequency) -> int:
    """A feature window in bars (:func:`span_bars`), at least 2."""
    return max(2, span_bars(window, freq))


def annualisation_label(freq: Frequency) -> str:
    """Short label for tables and reports, e.g. ``"minute bars, 98,280/yr"``."""
    return f"{freq.name} bars, {freq.periods_per_year:,.0f}/yr"


__all__ = [
    "Frequency",
    "annualisation_label",
    "infer_frequency",
    "parse_lag",
    "span_bars",
    "window_bars",
]

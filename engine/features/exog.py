"""Exogenous series from files (VIX, yields, spreads, macro), joined as-of onto the bars.

A file holds a timestamp column and one or more numeric columns (CSV or Parquet). Each
value becomes known ``lag`` after its timestamp (a monthly figure published two weeks
after month end: ``lag="14d"``; one month later: ``lag="1mo"``; the units are those of
feature windows, :func:`engine.ground.frequency.parse_lag`: ``"1m"`` is refused as ambiguous and a
bare number as unitless); bar ``t`` sees the last value known at its close time,
so the joined series never reads the future. Blank cells mean "no release that day"
(the previous value carries on); before the first release the series is NaN (detectors
and strategies must treat NaN as unknown). Errors are one line naming file, field, row.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from engine.features.user import with_columns
from engine.ground.bars import BarPanel, DataError
from engine.ground.dates import date_order, read_dates

TIMESTAMP_NAMES = ("timestamp", "date", "datetime", "time", "observation_date")


def read_series(path: str | Path, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Validated series of a CSV/Parquet file: a naive, increasing DatetimeIndex and float
    columns (NaN = no release that bar)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: exogenous file not found")
    try:
        raw = pd.read_parquet(p) if p.suffix in (".parquet", ".pq") else pd.read_csv(p)
    except Exception as exc:
        raise DataError(f"{p}: cannot read ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    lower = {str(c).strip().lower(): c for c in raw.columns}
    ts_col = next((lower[n] for n in TIMESTAMP_NAMES if n in lower), None)
    if ts_col is None:
        raise DataError(f"{p}: no timestamp column (one of {', '.join(TIMESTAMP_NAMES)})")
    if len(raw) == 0:
        raise DataError(f"{p}: no data rows")
    order = date_order(raw[ts_col])
    if order.problem is not None:
        raise DataError(f"{p}: row {order.row + 2}, field {ts_col}: {order.problem}")
    stamps = pd.Series(read_dates(raw[ts_col], order))
    bad = np.flatnonzero(stamps.isna().to_numpy())
    if bad.size:
        r = int(bad[0])
        raise DataError(f"{p}: row {r + 2}, field {ts_col}: bad timestamp {raw[ts_col].iloc[r]!r}")
    idx = pd.DatetimeIndex(stamps)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    steps = np.diff(idx.asi8)
    if (steps <= 0).any():
        r = int(np.flatnonzero(steps <= 0)[0]) + 1
        what = "duplicated" if steps[r - 1] == 0 else "not after the previous row"
        raise DataError(f"{p}: row {r + 2}, field {ts_col}: timestamp {idx[r]} {what}")
    value_cols = [c for c in raw.columns if c != ts_col]
    if columns is not None:
        missing = [c for c in columns if c not in value_cols]
        if missing:
            raise DataError(f"{p}: missing column {missing[0]!r} (has {', '.join(value_cols)})")
        value_cols = list(columns)
    if not value_cols:
        raise DataError(f"{p}: no value columns besides {ts_col!r}")
    out = {}
    for c in value_cols:
        col = raw[c]
        num = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64)
        blank = col.isna().to_numpy() | (col.astype(str).str.strip() == "").to_numpy()
        bad_rows = np.flatnonzero((~np.isfinite(num)) & ~blank)
        if bad_rows.size:
            r = int(bad_rows[0])
            raise DataError(f"{p}: row {r + 2}, field {c}: not a finite number: {col.iloc[r]!r}")
        out[str(c)] = np.where(blank, np.nan, num)
    return pd.DataFrame(out, index=idx.as_unit("ns"))


def asof_join(
    index: pd.DatetimeIndex, series: pd.DataFrame, lag: str | pd.Timedelta = "0D"
) -> np.ndarray:
    """``(T, k)`` values known at each bar time: the last release with ``time + lag <=``
    the bar's time (NaN before the first)."""
    from engine.ground.frequency import parse_lag

    try:
        delta = parse_lag(lag)
    except ValueError as exc:
        raise DataError(f"exogenous {exc}") from None
    bars = np.asarray(pd.DatetimeIndex(index).as_unit("ns").asi8, dtype=np.int64)
    stamps = pd.DatetimeIndex(series.index).as_unit("ns")
    if isinstance(delta, pd.DateOffset):  # calendar months: Jan 31 + 1mo = Feb 28/29
        known = np.asarray((stamps + delta).as_unit("ns").asi8, dtype=np.int64)
    else:
        known = np.asarray(stamps.asi8, dtype=np.int64) + delta.value
    out = np.full((len(bars), series.shape[1]), np.nan)
    for k, c in enumerate(series.columns):
        vals = series[c].to_numpy(dtype=np.float64)
        ok = np.isfinite(vals)
        at, v = known[ok], vals[ok]
        pos = np.searchsorted(at, bars, side="right") - 1
        out[:, k] = np.where(pos >= 0, v[np.maximum(pos, 0)], np.nan)
    return out


def add_exog(
    panel: BarPanel,
    source: str | Path | pd.DataFrame,
    *,
    columns: Sequence[str] | None = None,
    lag: str | pd.Timedelta = "0D",
    names: Sequence[str] | None = None,
) -> BarPanel:
    """``panel`` with the series of ``source`` (file or DataFrame with a DatetimeIndex)
    joined as-of with publication ``lag``, as exogenous columns (``names`` renames them)."""
    series = read_series(source, columns) if not isinstance(source, pd.DataFrame) else source
    if columns is not None and isinstance(source, pd.DataFrame):
        series = series[list(columns)]
    values = asof_join(panel.index, series, lag)
    new = tuple(names) if names is not None else tuple(str(c) for c in series.columns)
    if len(new) != values.shape[1]:
        raise DataError(f"exogenous names: {len(new)} given for {values.shape[1]} columns")
    clash = set(new) & set(panel.exog_names)
    if clash:
        raise DataError(f"exogenous series already in the panel: {', '.join(sorted(clash))}")
    return with_columns(panel, values, new)

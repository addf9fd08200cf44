"""Parse raw tables into per-symbol OHLCV frames and validate them.

Every problem raises :class:`engine.core.bars.DataError` with one line of the form::

    data/spx.csv: symbol SPX, row 17 (2008-10-03): close is NaN

``row N`` is the 1-based position among the *data* rows of the table as given (the header
is not counted, so row 1 is the first line after the header of a CSV file, and ``df.iloc[N-1]``
for a DataFrame). In a long file it is the row of the whole file, not of the symbol.

Accepted layouts (column names are case-insensitive; ``date``/``datetime``/``time`` are
accepted for ``timestamp``, ``ticker`` for ``symbol``; a ``DatetimeIndex`` works as well):

* **single**: ``timestamp, open, high, low, close[, volume]`` — one symbol (taken from a
  constant ``symbol`` column or the file stem);
* **long**: ``timestamp, symbol, open, high, low, close[, volume]``;
* **wide**: ``timestamp, SPX_open, SPX_close, ...`` or MultiIndex columns
  ``(symbol, field)`` / ``(field, symbol)``.

Missing ``volume`` becomes ``0.0`` (meaning "unknown" throughout the engine). Missing
``open``/``high``/``low`` are an error unless ``ohlc_from_close=True``: then
``open = close``, ``high = max(open, close)``, ``low = min(open, close)``.
Time-zone-aware timestamps are converted to UTC and made naive. Other columns
(``adj close``, ...) are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import structlog

from engine.core.bars import FIELDS, DataError

log = structlog.get_logger(__name__)

PRICE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close")
TIMESTAMP_ALIASES: tuple[str, ...] = ("timestamp", "date", "datetime", "time")
SYMBOL_ALIASES: tuple[str, ...] = ("symbol", "ticker")
#: relative slack allowed when checking open/close against [low, high] (float rounding)
RANGE_TOL = 1e-9

_WIDE_RE = re.compile(r"^(?P<sym>.+?)[_.:](?P<field>open|high|low|close|volume)$", re.IGNORECASE)


@dataclass(frozen=True)
class SymbolFrame:
    """Validated bars of one symbol: sorted unique naive ``ns`` times, float64 fields."""

    symbol: str
    source: str
    index: pd.DatetimeIndex
    data: dict[str, np.ndarray]  # FIELDS -> float64 (T,)


def _fmt_ts(ts: object) -> str:
    t = pd.Timestamp(ts)  # type: ignore[arg-type]
    if t is pd.NaT:
        return "NaT"
    return t.strftime("%Y-%m-%d") if t == t.normalize() else str(t)


def _where(source: str, symbol: str | None, row: int | None = None, ts: object = None) -> str:
    parts = [f"{source}:"]
    if symbol is not None:
        parts.append(f" symbol {symbol}")
    if row is not None:
        parts.append(f"{',' if symbol is not None else ''} row {row}")
        if ts is not None:
            parts.append(f" ({_fmt_ts(ts)})")
    return "".join(parts)


def _find(cols: Mapping[str, object], aliases: tuple[str, ...]) -> object | None:
    for a in aliases:
        if a in cols:
            return cols[a]
    return None


def _flatten_columns(df: pd.DataFrame) -> pd.DataFrame:
    """MultiIndex ``(sym, field)``/``(field, sym)`` columns -> ``"sym_field"`` strings."""
    if not isinstance(df.columns, pd.MultiIndex):
        return df
    names: list[str] = []
    for col in df.columns:
        parts = [str(p) for p in col if str(p) != "" and not str(p).startswith("Unnamed")]
        if len(parts) == 2 and parts[1].lower() in FIELDS:
            names.append(f"{parts[0]}_{parts[1].lower()}")
        elif len(parts) == 2 and parts[0].lower() in FIELDS:
            names.append(f"{parts[1]}_{parts[0].lower()}")
        else:
            names.append("_".join(parts))
    out = df.copy()
    out.columns = pd.Index(names)
    return out


def _parse_timestamps(raw: pd.Series, source: str, symbol: str | None) -> pd.DatetimeIndex:
    rows = np.arange(1, len(raw) + 1)
    try:
        ts = pd.to_datetime(raw, errors="coerce")
    except (ValueError, TypeError):
        ts = pd.to_datetime(raw, errors="coerce", utc=True)
    idx = pd.DatetimeIndex(ts)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    bad = np.flatnonzero(pd.isna(idx))
    if bad.size:
        i = int(bad[0])
        val = raw.iloc[i]
        what = "timestamp is missing" if pd.isna(val) else f"timestamp {val!r} is not a date"
        raise DataError(f"{_where(source, symbol, int(rows[i]))}: {what}")
    return idx.as_unit("ns")


def _split_layout(
    df: pd.DataFrame, source: str, default_symbol: str | None
) -> tuple[pd.Series, dict[str, dict[str, pd.Series]], pd.Series | None]:
    """Return (raw timestamps, {symbol: {field: column}}, symbol column of a long table)."""
    df = _flatten_columns(df)
    lower = {str(c).strip().lower(): c for c in df.columns}
    ts_col = _find(lower, TIMESTAMP_ALIASES)
    if ts_col is None:
        idx_name = str(df.index.name).lower() if df.index.name is not None else ""
        if isinstance(df.index, pd.DatetimeIndex) or idx_name in TIMESTAMP_ALIASES:
            raw_ts = pd.Series(df.index, index=pd.RangeIndex(len(df)))
        else:
            raise DataError(
                f"{source}: missing column 'timestamp' (or 'date'); "
                f"have: {', '.join(map(str, df.columns))}"
            )
    else:
        raw_ts = df[ts_col].reset_index(drop=True)
    df = df.reset_index(drop=True)

    sym_col = _find(lower, SYMBOL_ALIASES)
    field_cols = {f: lower[f] for f in FIELDS if f in lower}
    if sym_col is not None or field_cols:
        cols = {f: df[c] for f, c in field_cols.items()}
        syms = df[sym_col] if sym_col is not None else None
        if syms is None and default_symbol is None:
            raise DataError(
                f"{source}: cannot tell the symbol; add a 'symbol' column or pass symbol="
            )
        return raw_ts, {str(default_symbol): cols}, syms

    wide: dict[str, dict[str, pd.Series]] = {}
    for c in df.columns:
        m = _WIDE_RE.match(str(c).strip())
        if m:
            wide.setdefault(m.group("sym"), {})[m.group("field").lower()] = df[c]
    if not wide:
        raise DataError(
            f"{source}: missing column 'close' (no OHLCV columns found, neither long "
            f"'close' nor wide 'SYMBOL_close'); have: {', '.join(map(str, df.columns))}"
        )
    return raw_ts, wide, None


def parse_table(
    df: pd.DataFrame,
    *,
    source: str,
    default_symbol: str | None = None,
    ohlc_from_close: bool = False,
) -> list[SymbolFrame]:
    """Split a raw table (any accepted layout) into validated per-symbol frames."""
    if len(df) == 0:
        raise DataError(f"{source}: no data rows")
    raw_ts, groups, syms = _split_layout(df, source, default_symbol)
    out: list[SymbolFrame] = []
    if syms is not None:
        (cols,) = groups.values()
        if syms.isna().any():
            i = int(np.flatnonzero(syms.isna().to_numpy())[0])
            raise DataError(f"{_where(source, None, i + 1)}: symbol is missing")
        labels = syms.astype(str).str.strip().to_numpy()
        for sym in pd.unique(labels):
            rows = np.flatnonzero(labels == sym)
            sub = {f: s.iloc[rows] for f, s in cols.items()}
            out.append(
                _validate(str(sym), source, raw_ts.iloc[rows], sub, rows + 1, ohlc_from_close)
            )
        return out
    all_rows = np.arange(1, len(raw_ts) + 1)
    for sym, cols in groups.items():
        out.append(_validate(sym, source, raw_ts, cols, all_rows, ohlc_from_close))
    return out


def _numeric(
    s: pd.Series, name: str, source: str, symbol: str, rows: np.ndarray, idx: pd.DatetimeIndex
) -> np.ndarray:
    num = pd.to_numeric(s, errors="coerce")
    arr = np.asarray(num, dtype=np.float64)
    nan = np.isnan(arr)
    if nan.any():
        i = int(np.flatnonzero(nan)[0])
        val = s.iloc[i]
        what = f"{name} is NaN" if pd.isna(val) else f"{name} is not a number ({val!r})"
        raise DataError(f"{_where(source, symbol, int(rows[i]), idx[i])}: {what}")
    inf = np.isinf(arr)
    if inf.any():
        i = int(np.flatnonzero(inf)[0])
        raise DataError(f"{_where(source, symbol, int(rows[i]), idx[i])}: {name} is {arr[i]}")
    return arr


def _validate(
    symbol: str,
    source: str,
    raw_ts: pd.Series,
    cols: dict[str, pd.Series],
    rows: np.ndarray,
    ohlc_from_close: bool,
) -> SymbolFrame:
    where0 = _where(source, symbol)
    if "close" not in cols:
        raise DataError(f"{where0}: missing column 'close'")
    missing = [f for f in ("open", "high", "low") if f not in cols]
    if missing and not ohlc_from_close:
        raise DataError(
            f"{where0}: missing column {missing[0]!r} "
            f"(pass ohlc_from_close=True to derive open/high/low from close)"
        )
    idx = _parse_timestamps(raw_ts.reset_index(drop=True), source, symbol)
    t = idx.asi8
    if len(t) > 1:
        d = np.diff(t)
        back = np.flatnonzero(d < 0)
        dup = np.flatnonzero(d == 0)
        if back.size and (not dup.size or back[0] < dup[0]):
            i = int(back[0]) + 1
            raise DataError(
                f"{_where(source, symbol, int(rows[i]), idx[i])}: timestamps not sorted "
                f"(previous row {rows[i - 1]} is {_fmt_ts(idx[i - 1])})"
            )
        if dup.size:
            i = int(dup[0]) + 1
            raise DataError(
                f"{_where(source, symbol, int(rows[i]), idx[i])}: duplicate timestamp "
                f"(same as row {rows[i - 1]})"
            )
    data: dict[str, np.ndarray] = {}
    for f in FIELDS:
        if f in cols:
            data[f] = _numeric(cols[f].reset_index(drop=True), f, source, symbol, rows, idx)
    if missing:
        log.warning("ohlc_from_close", source=source, symbol=symbol, derived=missing)
        close = data["close"]
        data.setdefault("open", close.copy())
        data.setdefault("high", np.maximum(data["open"], close))
        data.setdefault("low", np.minimum(data["open"], close))
    if "volume" not in data:
        data["volume"] = np.zeros(len(idx))
    for f in PRICE_FIELDS:
        bad = np.flatnonzero(data[f] <= 0.0)
        if bad.size:
            i = int(bad[0])
            raise DataError(
                f"{_where(source, symbol, int(rows[i]), idx[i])}: {f} is not positive "
                f"({data[f][i]})"
            )
    bad = np.flatnonzero(data["volume"] < 0.0)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{_where(source, symbol, int(rows[i]), idx[i])}: volume is negative "
            f"({data['volume'][i]})"
        )
    hi, lo = data["high"], data["low"]
    bad = np.flatnonzero(hi < lo)
    if bad.size:
        i = int(bad[0])
        raise DataError(
            f"{_where(source, symbol, int(rows[i]), idx[i])}: high < low ({hi[i]} < {lo[i]})"
        )
    for f in ("open", "close"):
        x = data[f]
        bad = np.flatnonzero((x > hi * (1 + RANGE_TOL)) | (x < lo * (1 - RANGE_TOL)))
        if bad.size:
            i = int(bad[0])
            raise DataError(
                f"{_where(source, symbol, int(rows[i]), idx[i])}: {f} {x[i]} outside "
                f"[low, high] = [{lo[i]}, {hi[i]}]"
            )
    return SymbolFrame(symbol=symbol, source=source, index=idx, data=data)

"""Parse raw tables into per-symbol OHLCV frames and validate them.

Every problem raises :class:`engine.ground.bars.DataError` with one line of the form::

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
  ``(symbol, field)`` / ``(field, symbol)``;
* **wide closes**: ``timestamp, AAPL, JPM, ...`` (numbers only): each column a symbol's
  close (open/high/low then come from ``ohlc_from_close``).

Missing ``volume`` becomes ``0.0`` (meaning "unknown" throughout the engine). Missing
``open``/``high``/``low`` are an error unless ``ohlc_from_close=True``: then
``open = close``, ``high = max(open, close)``, ``low = min(open, close)``.
An ``adj close`` column (``adj_close``, ``adjusted close``) is used as the close, open/high/
low scaled by the same factor (logged): unadjusted splits would be false -50 % days.
Time-zone-aware timestamps are converted to UTC and made naive, except daily bars stamped
at local midnight (``2020-01-06 00:00+01:00``): those are their local dates. Other columns
are ignored.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import structlog

from data_feeds.checks_nb import bars_ok_nb, block_calendar_nb, interleaved_calendar_nb
from engine.ground.bars import FIELDS, DataError
from engine.ground.dates import date_order, parse_numeric_dates

log = structlog.get_logger(__name__)

PRICE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close")
TIMESTAMP_ALIASES: tuple[str, ...] = ("timestamp", "date", "datetime", "time")
SYMBOL_ALIASES: tuple[str, ...] = ("symbol", "ticker")
#: relative slack allowed when checking open/close against [low, high] (float rounding)
RANGE_TOL = 1e-9

ADJ_CLOSE_ALIASES: tuple[str, ...] = (
    "adj close",
    "adj_close",
    "adjclose",
    "adjusted close",
    "adjusted_close",
)

_WIDE_RE = re.compile(
    r"^(?P<sym>.+?)[_.:](?P<field>open|high|low|close|volume|adj[ _]?close|adjusted[ _]close)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class SymbolFrame:
    """Validated bars of one symbol: sorted unique naive ``ns`` times, float64 fields."""

    symbol: str
    source: str
    index: pd.DatetimeIndex
    data: dict[str, np.ndarray]  # FIELDS -> float64 (T,)
    tz: str | None = None  # "UTC" when the input times were time-zone aware (index in UTC)


def _fmt_ts(ts: object) -> str:
    t = pd.Timestamp(ts)  # type: ignore[arg-type]
    if t is pd.NaT:
        return "NaT"
    return t.strftime("%Y-%m-%d") if t == t.normalize() else str(t)


def _is_text_file(source: str) -> bool:
    return source.lower().endswith((".csv", ".csv.gz", ".txt", ".tsv", ".csv.bz2", ".csv.zst"))


HEADER_LINES: dict[str, int] = {}
"""Text files whose header is more than one line (a ``yfinance`` CSV: 3), by source, so
that ``line N`` in an error is the file's line."""


def _where(source: str, symbol: str | None, row: int | None = None, ts: object = None) -> str:
    """``file: symbol S, data row N (line N+1, 2020-01-02)``; the line is given for text
    files (row 1 is the first line after the header)."""
    parts = [f"{source}:"]
    if symbol is not None:
        parts.append(f" symbol {symbol}")
    if row is not None:
        sep = "," if symbol is not None else ""
        if _is_text_file(source):
            extra = [f"line {row + HEADER_LINES.get(source, 1)}"] + (
                [_fmt_ts(ts)] if ts is not None else []
            )
            parts.append(f"{sep} data row {row} ({', '.join(extra)})")
        else:
            parts.append(f"{sep} row {row}")
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
    fields = (*FIELDS, *ADJ_CLOSE_ALIASES)
    for col in df.columns:
        parts = [str(p) for p in col if str(p) != "" and not str(p).startswith("Unnamed")]
        if len(parts) == 2 and parts[1].lower() in fields:
            names.append(f"{parts[0]}_{parts[1].lower()}")
        elif len(parts) == 2 and parts[0].lower() in fields:
            names.append(f"{parts[1]}_{parts[0].lower()}")
        else:
            names.append("_".join(parts))
    out = df.copy()
    out.columns = pd.Index(names)
    return out


class _OneBased:
    """``rows[i] == i + 1`` without an array."""

    def __getitem__(self, i: int) -> int:
        return int(i) + 1


Rows = np.ndarray | _OneBased
"""1-based row numbers of a table (an array, or :class:`_OneBased` for ``i + 1``)."""


_OFFSET_RE = r"(?:Z|[+-]\d{2}:?\d{2})$"


def _parse_timestamps(
    raw: pd.Series, source: str, symbol: SymbolRef
) -> tuple[pd.DatetimeIndex, str | None]:
    """Parse a timestamp column -> (naive ``ns`` index, ``"UTC"`` if the input was aware).

    Aware timestamps (UTC offsets, possibly varying with daylight saving time) are
    converted to UTC; a column mixing aware and naive times is an error naming the row.
    """
    rows = _OneBased()
    if isinstance(raw.dtype, pd.CategoricalDtype):  # parse each distinct value once
        codes = raw.cat.codes.to_numpy()
        if (codes >= 0).all():
            try:
                uniq, tz = _parse_timestamps(pd.Series(raw.cat.categories), source, None)
                return pd.DatetimeIndex(uniq.asi8[codes].view("datetime64[ns]")), tz
            except DataError:
                pass
        raw = raw.astype(object)  # a bad value: the row-by-row path names its row
    if isinstance(raw.dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(raw):
        idx = pd.DatetimeIndex(raw)
    else:
        if raw.dtype == object or pd.api.types.is_string_dtype(raw):
            text = raw.astype("string").str.strip()
            aware = text.str.contains(_OFFSET_RE, regex=True, na=False).to_numpy(dtype=bool)
            if aware.any() and not aware.all():
                known = ~text.isna().to_numpy()
                odd = np.flatnonzero(known & (aware != aware[np.flatnonzero(known)[0]]))
                if odd.size:
                    i = int(odd[0])
                    kind = "has a UTC offset" if aware[i] else "has no UTC offset"
                    sym = _sym_at(symbol, i)
                    raise DataError(
                        f"{_where(source, sym, int(rows[i]))}: timestamp {raw.iloc[i]!r} "
                        f"{kind} but row {int(rows[np.flatnonzero(known)[0]])} does not; "
                        "mixing time-zone-aware and naive timestamps is ambiguous "
                        "(give every timestamp an offset, or none)"
                    )
        order = date_order(raw)
        if order.problem is not None:
            sym = _sym_at(symbol, order.row)
            raise DataError(f"{_where(source, sym, int(rows[order.row]))}: {order.problem}")
        if order.dayfirst is not None:  # 04/01/1999: one order for the column, said
            idx = parse_numeric_dates(raw, order.dayfirst)
            log.info(
                "timestamps.date_order",
                source=source,
                order="day-first" if order.dayfirst else "month-first",
            )
        else:
            try:
                ts = pd.to_datetime(raw, errors="coerce", format="ISO8601")
            except (ValueError, TypeError):
                try:
                    ts = pd.to_datetime(raw, errors="coerce", utc=True, format="ISO8601")
                except (ValueError, TypeError):
                    ts = pd.to_datetime(raw, errors="coerce", utc=True, format="mixed")
            idx = pd.DatetimeIndex(ts)
        if order.dayfirst is None and pd.isna(idx).any() and not pd.isna(raw).all():
            # not ISO: let pandas guess
            try:
                idx2 = pd.DatetimeIndex(pd.to_datetime(raw, errors="coerce", format="mixed"))
            except (ValueError, TypeError):
                idx2 = pd.DatetimeIndex(
                    pd.to_datetime(raw, errors="coerce", utc=True, format="mixed")
                )
            if pd.isna(idx2).sum() < pd.isna(idx).sum():
                idx = idx2
    tz = None
    if idx.tz is not None:
        wall = _local_midnights(raw, idx)
        if wall is not None:  # daily bars stamped at local midnight: their local dates
            log.info(
                "timestamps.local_dates",
                source=source,
                note="daily bars stamped at local midnight with a UTC offset: read as their "
                "local dates (in UTC they fall on the previous day)",
            )
            return wall.as_unit("ns"), None
        idx = idx.tz_convert("UTC").tz_localize(None)
        tz = "UTC"
    bad = np.flatnonzero(pd.isna(idx))
    if bad.size:
        i = int(bad[0])
        val = raw.iloc[i]
        what = "timestamp is missing" if pd.isna(val) else f"timestamp {val!r} is not a date"
        sym = _sym_at(symbol, i)
        raise DataError(f"{_where(source, sym, int(rows[i]))}: {what}")
    return idx.as_unit("ns"), tz


def _adjusted(
    cols: dict[str, pd.Series], adj: pd.Series, source: str, name: str
) -> dict[str, pd.Series]:
    """Split- and dividend-adjusted bars: ``close`` is the adjusted close and open/high/low
    are scaled by the same factor ``adj / close`` (said in the log)."""
    out = dict(cols)
    adj_num = pd.to_numeric(adj, errors="coerce")
    if "close" in cols:
        factor = adj_num / pd.to_numeric(cols["close"], errors="coerce")
        # a row whose factor cannot be formed (a blank, zero or text close or adjusted close)
        # keeps its cells as written, so the checks name the bad cell, not a NaN open
        ok = np.isfinite(factor) & (factor > 0)
        for f in ("open", "high", "low"):
            if f in cols:
                num = pd.to_numeric(cols[f], errors="coerce")
                out[f] = (num * factor).where(ok & num.notna(), cols[f])
        adj_bad = ~(adj_num > 0)
        out["close"] = adj_num.where(ok, adj.where(adj_bad, cols["close"]))
    else:
        out["close"] = adj_num.where(adj_num.notna(), adj)  # a bad cell keeps its text
    log.warning(
        "data.adjusted_prices",
        source=source,
        column=name,
        note=f"'{name}' used as close (open/high/low scaled by it): split- and "
        "dividend-adjusted returns",
    )
    return out


def _local_midnights(raw: pd.Series, idx: pd.DatetimeIndex) -> pd.DatetimeIndex | None:
    """The wall-clock times of aware timestamps when every one is a local midnight (daily
    bars: ``2020-01-06 00:00+01:00`` is Monday the 6th, not Sunday 23:00 UTC) and some fall
    on another date in UTC; else None (times are converted to UTC as before)."""
    if pd.isna(idx).any():
        return None
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        wall = pd.DatetimeIndex(raw).tz_localize(None)
    elif raw.dtype == object or pd.api.types.is_string_dtype(raw):
        text = raw.astype("string").str.strip().str.replace(_OFFSET_RE, "", regex=True)
        wall = pd.DatetimeIndex(pd.to_datetime(text, errors="coerce", format="ISO8601"))
    else:
        return None
    if pd.isna(wall).any() or not (wall == wall.normalize()).all():
        return None
    utc_dates = idx.tz_convert("UTC").tz_localize(None).normalize()
    if (utc_dates == wall).all():
        return None
    return wall


class TableColumns(Mapping[str, pd.Series]):
    """``{field: column}`` of one symbol of a wide table, by column position; a column is
    made a Series only when read (a wide table of thousands of columns whose bars pass the
    checks at once never needs one)."""

    def __init__(self, table: pd.DataFrame, positions: dict[str, int]) -> None:
        self.table = table
        self.positions = positions

    def __getitem__(self, field: str) -> pd.Series:
        return self.table.iloc[:, self.positions[field]]

    def __iter__(self) -> Iterator[str]:
        return iter(self.positions)

    def __len__(self) -> int:
        return len(self.positions)


Columns = Mapping[str, pd.Series]
"""``{field: column}`` of one symbol."""


def _wide_closes(df: pd.DataFrame, ts_col: object) -> dict[str, Columns]:
    """A wide close-only table (``date, AAPL, JPM, ...``): each numeric column is a symbol's
    close; empty when a column is not numbers (then it is not this layout)."""
    out: dict[str, Columns] = {}
    for pos, c in enumerate(df.columns):
        if c == ts_col:
            continue
        col = df.iloc[:, pos]
        num = pd.to_numeric(col, errors="coerce")
        if not (pd.api.types.is_numeric_dtype(col) or num.notna().mean() > 0.9):
            return {}
        out[str(c).strip()] = TableColumns(df, {"close": pos})
    return out


def separator_hint(header: str) -> str:
    """`` (the file seems to separate columns with ';' ...)`` for a header line written
    with another separator than commas (``Date;Open;...``, often with decimal commas),
    else ``""``."""
    if "," in header:
        return ""
    sep = next((c for c in ";\t|" if c in header), None)
    if sep is None:
        return ""
    decimals = " and '.' for decimals" if sep == ";" else ""
    return f" (the file seems to separate columns with {sep!r}; use commas{decimals})"


def _split_layout(
    df: pd.DataFrame, source: str, default_symbol: str | None
) -> tuple[pd.Series, dict[str, Columns], pd.Series | None, pd.DataFrame]:
    """Return (raw timestamps, {symbol: {field: column}}, symbol column of a long table,
    the table with flat column names that the columns come from)."""
    df = _flatten_columns(df)
    lower = {str(c).strip().lower(): c for c in df.columns}
    ts_col = _find(lower, TIMESTAMP_ALIASES)
    if ts_col is None:
        idx_name = str(df.index.name).lower() if df.index.name is not None else ""
        if isinstance(df.index, pd.DatetimeIndex) or idx_name in TIMESTAMP_ALIASES:
            raw_ts = pd.Series(df.index, index=pd.RangeIndex(len(df)))
        else:
            hint = separator_hint(str(df.columns[0])) if len(df.columns) == 1 else ""
            first = str(df.columns[0]).strip() if len(df.columns) else "x"
            if not first or first.startswith("Unnamed"):  # pandas' to_csv of a nameless index
                hint = " (the first column has no name: call it 'date')"
            raise DataError(
                f"{source}: missing column 'timestamp' (or 'date'); "
                f"have: {', '.join(map(str, df.columns))}{hint}"
            )
    else:
        raw_ts = df[ts_col].reset_index(drop=True)
    df = df.reset_index(drop=True)

    sym_col = _find(lower, SYMBOL_ALIASES)
    field_cols = {f: lower[f] for f in FIELDS if f in lower}
    adj = _find(lower, ADJ_CLOSE_ALIASES)
    if sym_col is not None or field_cols or adj is not None:  # `date,adj close`: one symbol
        cols = {f: df[c] for f, c in field_cols.items()}
        if adj is not None:
            cols = _adjusted(cols, df[adj], source, str(adj))
        syms = df[sym_col] if sym_col is not None else None
        if syms is None and default_symbol is None:
            raise DataError(
                f"{source}: cannot tell the symbol; add a 'symbol' column or pass symbol="
            )
        return raw_ts, {str(default_symbol): cols}, syms, df

    positions: dict[str, dict[str, int]] = {}
    adjusted: dict[str, tuple[str, pd.Series]] = {}
    for pos, c in enumerate(df.columns):
        m = _WIDE_RE.match(str(c).strip())
        if m and m.group("field").lower() in FIELDS:
            positions.setdefault(m.group("sym"), {})[m.group("field").lower()] = pos
        elif m:  # SYM_adj_close: that symbol's adjusted close (as a single file's Adj Close)
            positions.setdefault(m.group("sym"), {})
            adjusted[m.group("sym")] = (str(c), df.iloc[:, pos])
    wide: dict[str, Columns] = {sym: TableColumns(df, p) for sym, p in positions.items()}
    for sym, (name, adj) in adjusted.items():
        wide[sym] = _adjusted(dict(wide[sym]), adj, source, name)
    if not wide and ts_col is not None:
        wide = _wide_closes(df, ts_col)
    if not wide:
        raise DataError(
            f"{source}: missing column 'close' (no OHLCV columns found, neither long "
            f"'close' nor wide 'SYMBOL_close'); have: {', '.join(map(str, df.columns))}"
        )
    return raw_ts, wide, None, df


def parse_table(
    df: pd.DataFrame,
    *,
    source: str,
    default_symbol: str | None = None,
    ohlc_from_close: bool = False,
) -> list[SymbolFrame]:
    """Split a raw table (any accepted layout) into validated per-symbol frames.

    A long table is converted and checked column by column over the whole file (vectorised,
    one pass per field) and then split by symbol with one stable sort, so a file of millions
    of rows costs a few array passes, not one pass per symbol.
    """
    if len(df) == 0:
        raise DataError(f"{source}: no data rows")
    raw_ts, groups, syms, table = _split_layout(df, source, default_symbol)
    if syms is not None:
        (cols,) = groups.values()
        return _parse_long(raw_ts, cols, syms, source, ohlc_from_close)
    out: list[SymbolFrame] = []
    all_rows = np.arange(1, len(raw_ts) + 1)
    # one time column for every symbol: parsed and checked once
    first = next(iter(groups))
    times = _parse_timestamps(raw_ts.reset_index(drop=True), source, first)
    _check_order(times[0], source, first, all_rows)
    if len(groups) > 1:
        fast = _wide_valid(table, groups, source, times)
        if fast is not None:
            return fast
    for sym, cols in groups.items():
        priced = _priced_rows(sym, source, cols, times[0])
        if priced is None:
            frame = _validate(sym, source, raw_ts, cols, all_rows, ohlc_from_close, times)
        else:
            sub_cols = {f: c.reset_index(drop=True)[priced] for f, c in cols.items()}
            sub_times = (times[0][priced], times[1])
            raw = raw_ts.reset_index(drop=True)[priced]
            rows = all_rows[priced]
            frame = _validate(sym, source, raw, sub_cols, rows, ohlc_from_close, sub_times)
        out.append(frame)
    return out


def _wide_valid(
    table: pd.DataFrame,
    groups: dict[str, Columns],
    source: str,
    times: tuple[pd.DatetimeIndex, str | None],
) -> list[SymbolFrame] | None:
    """A wide table whose symbols all have numeric open/high/low/close (and all or none a
    volume), every bar valid: each field taken as one ``(T, N)`` array (one pandas take,
    not a pass per column) and checked in one compiled pass; the frames are its columns,
    which the loader's calendar step recognises and keeps without another copy. ``None``
    when anything differs or a check fails: the per-symbol path then decides and names the
    first bad row exactly as before."""
    cols = [c for c in groups.values() if isinstance(c, TableColumns)]
    have = {frozenset(c) for c in cols}
    if len(cols) != len(groups) or len(have) != 1:
        return None
    if not {"open", "high", "low", "close"} <= next(iter(have)):
        return None
    fields = [f for f in FIELDS if f in next(iter(have))]
    n_bars, names = len(table), list(groups)
    dtypes = table.dtypes
    arrays: dict[str, np.ndarray] = {}
    for f in fields:
        where = [c.positions[f] for c in cols]
        if not all(_numeric(dtypes.iloc[p]) for p in where):
            return None
        arr = table.iloc[:, where].to_numpy(dtype=np.float64)
        if arr.shape != (n_bars, len(names)):  # repeated column labels
            return None
        # a copy of our own (the panel keeps it; a view could be the caller's memory)
        fresh = arr.flags.c_contiguous and arr.flags.owndata
        arrays[f] = arr if fresh else np.array(arr, order="C")
    if "volume" not in arrays:
        arrays["volume"] = np.zeros((n_bars, len(names)))
    o, h, lo, c, v = (_readonly(arrays[f].reshape(-1)) for f in FIELDS)
    if not bars_ok_nb(o, h, lo, c, v, RANGE_TOL):
        return None
    return _column_frames(arrays, names, source, *times)


def _column_frames(
    arrays: dict[str, np.ndarray],
    names: list[str],
    source: str,
    idx: pd.DatetimeIndex,
    tz: str | None,
) -> list[SymbolFrame]:
    """One frame per column ``j`` of the ``(T, N)`` field arrays (views: the loader's
    calendar step recognises them and keeps the arrays without another copy)."""
    return [
        SymbolFrame(sym, source, idx, {f: arrays[f][:, j] for f in FIELDS}, tz=tz)
        for j, sym in enumerate(names)
    ]


def _numeric(dtype: object) -> bool:
    """A NumPy float or integer column (not bool, text, categorical or nullable)."""
    return isinstance(dtype, np.dtype) and dtype.kind in "fiu"


def _priced_rows(
    symbol: str, source: str, cols: Mapping[str, pd.Series], idx: pd.DatetimeIndex
) -> np.ndarray | None:
    """In a wide table, the rows where ``symbol`` has a bar: a row whose cells of this
    symbol are all blank is no bar (before its first price: not listed yet; later: a gap),
    as a missing row of a long file, and the calendar policy treats it alike (``fill =
    "ffill"``: the run starts when every symbol has a price and later gaps carry the previous
    close; the default: only the times every symbol has). Logged with the symbol and its
    first date. ``None`` when no row is blank; a column blank throughout is an error."""
    blank = np.logical_and.reduce([c.isna().to_numpy() for c in cols.values()])
    if not blank.any():
        return None
    if blank.all():
        raise DataError(f"{_where(source, symbol)}: every cell is blank (no price at all)")
    first = int(np.argmin(blank))
    interior = int(blank[first:].sum())
    if first:
        log.warning(
            "data.not_listed_yet",
            symbol=symbol,
            source=source,
            first_price=_fmt_ts(idx[first]),
            blank_rows=first,
            note="no bar before its first price: the run starts when every symbol has one",
        )
    if interior:
        gap = first + int(np.argmax(blank[first:]))
        log.warning(
            "data.blank_cells",
            symbol=symbol,
            source=source,
            blank_rows=interior,
            first_blank=_fmt_ts(idx[gap]),
            note='no bar there: fill = "ffill" carries the previous close forward, the '
            "default keeps only the times every symbol has",
        )
    return ~blank


def _symbol_codes(syms: pd.Series, source: str) -> tuple[np.ndarray, list[str]]:
    """Integer code per row and the symbol names in order of first appearance."""
    periodic = _symbol_period(syms)
    if periodic is not None:
        return periodic
    if isinstance(syms.dtype, pd.CategoricalDtype):
        raw_codes = syms.cat.codes.to_numpy()
        missing = raw_codes < 0
        labels = np.asarray([str(c).strip() for c in syms.cat.categories], dtype=object)
    else:
        raw_codes, uniq = pd.factorize(syms, use_na_sentinel=True)
        missing = raw_codes < 0
        labels = np.asarray([str(u).strip() for u in uniq], dtype=object)
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError(f"{_where(source, None, i + 1)}: symbol is missing")
    codes, first = pd.factorize(raw_codes)  # first-appearance order, unused labels dropped
    names = [str(x) for x in labels[first]]
    if len(set(names)) != len(names):  # labels that differ only by surrounding spaces
        codes, uniq_names = pd.factorize(np.asarray(names, dtype=object)[codes])
        names = [str(x) for x in uniq_names]
    return np.asarray(codes, dtype=np.int32), names


def _symbol_blocks(syms: pd.Series) -> tuple[np.ndarray, list[str]] | None:
    """``(bounds, names)`` of an Arrow string column grouped by symbol (each symbol one
    block of rows ``bounds[k]:bounds[k + 1]``, the usual long file), from the run boundaries:
    one vectorised comparison of neighbours instead of hashing every row. ``None`` (the
    general path, :func:`_symbol_codes`, decides) when the column is not Arrow-backed, has
    a missing value, or a symbol spans several blocks or differs from another only by
    surrounding spaces."""
    arr: Any = _arrow_strings(syms)
    n = len(syms)
    if arr is None or n < 2:
        return None
    import pyarrow as pa
    import pyarrow.compute as pc

    head = min(n, 4096)  # rows sorted by time change symbol on almost every row: not blocks
    if pc.sum(pc.not_equal(arr.slice(1, head - 1), arr.slice(0, head - 1))).as_py() * 2 > head:
        return None
    change = pc.not_equal(arr.slice(1), arr.slice(0, n - 1)).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(change)
    if 2 * (starts.size + 1) > n:  # interleaved rows: hashing is the faster path
        return None
    starts = np.concatenate(([0], starts + 1))
    names = [str(x).strip() for x in arr.take(pa.array(starts)).to_pylist()]
    if len(set(names)) != len(names):
        return None
    return np.append(starts, n), names


def _symbol_period(syms: pd.Series) -> tuple[np.ndarray, list[str]] | None:
    """``(codes, names)`` of an Arrow string column that repeats the same ``N`` distinct
    symbols in the same order (a long table sorted by time, every symbol at every time):
    two vectorised comparisons instead of hashing every row. ``None`` (hashing decides)
    otherwise."""
    arr: Any = _arrow_strings(syms)
    n = len(syms)
    if arr is None or n < 4:
        return None
    import pyarrow.compute as pc

    again = pc.equal(arr.slice(1), arr[0]).to_numpy(zero_copy_only=False)
    period = int(np.argmax(again)) + 1
    if not again[period - 1] or period < 2 or n % period:
        return None
    if not pc.all(pc.equal(arr.slice(period), arr.slice(0, n - period))).as_py():
        return None
    names = [str(x).strip() for x in arr.slice(0, period).to_pylist()]
    if len(set(names)) != period:
        return None
    return np.tile(np.arange(period, dtype=np.int32), n // period), names


def _arrow_strings(syms: pd.Series) -> object | None:
    """The column as one Arrow string array without nulls, or ``None``."""
    arr = getattr(syms.array, "_pa_array", None)
    if arr is None or arr.null_count:
        return None
    import pyarrow as pa

    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        return None
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    return arr


def _parse_long(
    raw_ts: pd.Series,
    cols: Columns,
    syms: pd.Series,
    source: str,
    ohlc_from_close: bool,
) -> list[SymbolFrame]:
    blocks = _symbol_blocks(syms)
    if blocks is not None:  # grouped by symbol: no codes, no sort
        bounds, names = blocks
        row_sym = RowSymbols(np.asarray(names, dtype=object), bounds=bounds)
        grouped = True
    else:
        codes, names = _symbol_codes(syms, source)
        row_sym = RowSymbols(np.asarray(names, dtype=object), codes)
        bounds = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(names)))])
        grouped = bool(np.all(codes[1:] >= codes[:-1]))  # one block per symbol: no sort
    missing = _missing_ohlc(cols, _where(source, names[0]), ohlc_from_close)
    idx, tz = _parse_timestamps(raw_ts.reset_index(drop=True), source, row_sym)
    rows = _OneBased()  # row numbers are only needed to name a bad row
    data = _checked_bars(cols, missing, source, row_sym, rows, idx, names)
    t_all = idx.asi8
    if not grouped:
        frames = _interleaved_frames(t_all, codes, data, names, source, tz)
        if frames is not None:
            return frames
    order = np.arange(0) if grouped else np.argsort(codes, kind="stable")
    in_order, same = block_calendar_nb(
        _readonly(t_all if grouped else t_all[order]), _readonly(bounds.astype(np.int64))
    )
    all_rows = None if in_order else np.arange(1, len(idx) + 1)
    shared: pd.DatetimeIndex | None = None  # every symbol on the same times: one index
    out = []
    for k, sym in enumerate(names):
        take: np.ndarray | slice = slice(int(bounds[k]), int(bounds[k + 1]))
        if not grouped:
            take = order[bounds[k] : bounds[k + 1]]
            a, b = int(take[0]), int(take[-1]) + 1
            if b - a == len(take):  # the symbol's rows are one block: views, no copies
                take = slice(a, b)
        sub_idx = shared if shared is not None else pd.DatetimeIndex(t_all[take].view("M8[ns]"))
        if all_rows is not None:
            _check_order(sub_idx, source, sym, all_rows[take])
        elif same:
            shared = sub_idx
        out.append(SymbolFrame(sym, source, sub_idx, {f: data[f][take] for f in FIELDS}, tz=tz))
    return out


def _interleaved_frames(
    t: np.ndarray,
    codes: np.ndarray,
    data: dict[str, np.ndarray],
    names: list[str],
    source: str,
    tz: str | None,
) -> list[SymbolFrame] | None:
    """A long table sorted by time with every symbol at every time, always in the same
    order (row ``i`` is symbol ``i % N``, rows ``N k .. N k + N - 1`` share a time, times
    increasing): each field reshaped to ``(T, N)`` and copied once, the frames its
    columns. ``None`` otherwise (the general path sorts by symbol and names any unsorted
    or repeated time)."""
    n_sym = len(names)
    if n_sym < 2 or len(t) % n_sym:
        return None
    n_bars = len(t) // n_sym
    if not np.array_equal(codes.reshape(n_bars, n_sym), _row_of_codes(n_sym, n_bars)):
        return None
    if not interleaved_calendar_nb(_readonly(t), n_sym):
        return None
    idx = pd.DatetimeIndex(t[::n_sym].view("M8[ns]"))
    arrays = {f: np.array(data[f].reshape(n_bars, n_sym)) for f in FIELDS}  # never the caller's
    return _column_frames(arrays, names, source, idx, tz)


def _row_of_codes(n_sym: int, n_bars: int) -> np.ndarray:
    """``0 .. n_sym - 1`` repeated on ``n_bars`` rows (a broadcast view, no memory)."""
    return np.broadcast_to(np.arange(n_sym, dtype=np.int32), (n_bars, n_sym))


class RowSymbols:
    """The symbol of each row of a long table (labels + a code per row, or the block
    bounds of a table grouped by symbol), looked up only for the row an error names."""

    def __init__(
        self, labels: np.ndarray, codes: np.ndarray | None = None, bounds: np.ndarray | None = None
    ) -> None:
        self.labels = labels
        self.codes = codes
        self.bounds = bounds

    def __getitem__(self, i: int) -> str:
        if self.codes is None:
            assert self.bounds is not None
            return str(self.labels[int(np.searchsorted(self.bounds, i, side="right")) - 1])
        return str(self.labels[self.codes[i]])


SymbolRef = str | RowSymbols | None


def _sym_at(symbol: SymbolRef, i: int) -> str | None:
    return symbol[i] if isinstance(symbol, RowSymbols) else symbol


def _floats(s: pd.Series) -> np.ndarray:
    """A column as contiguous float64 (text that is not a number becomes NaN)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    if pd.api.types.is_float_dtype(s.dtype) or pd.api.types.is_integer_dtype(s.dtype):
        arr = s.to_numpy(dtype=np.float64, copy=False)
    else:
        arr = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, copy=False)
    return np.ascontiguousarray(arr)  # a wide table's column is strided


def _check_finite(
    arr: np.ndarray,
    s: pd.Series,
    name: str,
    source: str,
    symbol: SymbolRef,
    rows: Rows,
    idx: pd.DatetimeIndex,
) -> None:
    """Refuse NaN, infinities and text that is not a number, naming the first such row."""
    if arr.size and not (np.isfinite(arr.min()) and np.isfinite(arr.max())):  # no temporary
        i = int(np.flatnonzero(~np.isfinite(arr))[0])
        sym = _sym_at(symbol, i)
        val = s.iloc[i]
        if np.isinf(arr[i]):
            what = f"{name} is {arr[i]}"
        else:
            what = f"{name} is NaN" if pd.isna(val) else f"{name} is not a number ({val!r})"
        raise DataError(f"{_where(source, sym, int(rows[i]), idx[i])}: {what}")  # type: ignore[arg-type]


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only view (the compiled checks then see one array type, one signature)."""
    v = a.view()
    v.flags.writeable = False
    return v


def _checked_bars(
    cols: Columns,
    missing: list[str],
    source: str,
    symbol: SymbolRef,
    rows: Rows,
    idx: pd.DatetimeIndex,
    names: list[str],
) -> dict[str, np.ndarray]:
    """The bar fields as float64 arrays, derived ones filled, every check passed.

    With open/high/low/close given, one compiled pass (:func:`bars_ok_nb`) decides; only
    when it fails do the per-field checks run, in their order, to name the first bad row.
    """
    raw = {f: cols[f].reset_index(drop=True) for f in FIELDS if f in cols}
    data = {f: _floats(s) for f, s in raw.items()}
    if not missing:
        if "volume" not in data:
            data["volume"] = np.zeros(len(idx))
        o, h, lo, c, v = (_readonly(data[f]) for f in FIELDS)
        if bars_ok_nb(o, h, lo, c, v, RANGE_TOL):
            return data
    for f, s in raw.items():
        _check_finite(data[f], s, f, source, symbol, rows, idx)
    _derive_and_check(data, missing, source, symbol, rows, idx, names)
    return data


def _check_order(idx: pd.DatetimeIndex, source: str, symbol: str, rows: np.ndarray) -> None:
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


def _derive_and_check(
    data: dict[str, np.ndarray],
    missing: list[str],
    source: str,
    symbol: SymbolRef,
    rows: Rows,
    idx: pd.DatetimeIndex,
    names: list[str],
) -> None:
    """Fill derived open/high/low and volume, then the price sanity checks (in place)."""

    def where(i: int) -> str:
        sym = _sym_at(symbol, i)
        return _where(source, sym, int(rows[i]), idx[i])  # type: ignore[arg-type]

    if missing:
        log.warning("ohlc_from_close", source=source, symbol=", ".join(names), derived=missing)
        close = data["close"]
        data.setdefault("open", close.copy())
        data.setdefault("high", np.maximum(data["open"], close))
        data.setdefault("low", np.minimum(data["open"], close))
    if "volume" not in data:
        data["volume"] = np.zeros(len(idx))
    # each check is a reduction first (no temporary); the row is looked for only if it fails
    # (values are finite here: _numeric rejected NaN and infinities)
    for f in PRICE_FIELDS:
        if data[f].size and not data[f].min() > 0.0:
            i = int(np.flatnonzero(data[f] <= 0.0)[0])
            raise DataError(f"{where(i)}: {f} is not positive ({data[f][i]})")
    if data["volume"].size and not data["volume"].min() >= 0.0:
        i = int(np.flatnonzero(data["volume"] < 0.0)[0])
        raise DataError(f"{where(i)}: volume is negative ({data['volume'][i]})")
    hi, lo = data["high"], data["low"]
    if np.less(hi, lo).any():
        i = int(np.flatnonzero(hi < lo)[0])
        raise DataError(f"{where(i)}: high < low ({hi[i]} < {lo[i]})")
    for f in ("open", "close"):
        x = data[f]
        # low <= x <= high implies the check with the tolerance (prices are positive here)
        if np.greater(x, hi).any() or np.less(x, lo).any():
            bad = (x > hi * (1 + RANGE_TOL)) | (x < lo * (1 - RANGE_TOL))
            if not bad.any():
                continue
            i = int(np.flatnonzero(bad)[0])
            raise DataError(f"{where(i)}: {f} {x[i]} outside [low, high] = [{lo[i]}, {hi[i]}]")


def _missing_ohlc(cols: Mapping[str, object], where: str, ohlc_from_close: bool) -> list[str]:
    """open/high/low columns absent (an error unless derived from close); close required."""
    if "close" not in cols:
        raise DataError(f"{where}: missing column 'close'")
    missing = [f for f in ("open", "high", "low") if f not in cols]
    if missing and not ohlc_from_close:
        raise DataError(
            f"{where}: missing column {missing[0]!r} "
            "(set data.ohlc_from_close = true, or pass ohlc_from_close=True, to derive "
            "open/high/low from close)"
        )
    return missing


def _validate(
    symbol: str,
    source: str,
    raw_ts: pd.Series,
    cols: Columns,
    rows: np.ndarray,
    ohlc_from_close: bool,
    times: tuple[pd.DatetimeIndex, str | None] | None = None,
) -> SymbolFrame:
    """One symbol's frame; ``times``: the time column already parsed and checked (for an
    earlier symbol of the same wide table: same values, so the same verdict)."""
    missing = _missing_ohlc(cols, _where(source, symbol), ohlc_from_close)
    if times is None:
        idx, tz = _parse_timestamps(raw_ts.reset_index(drop=True), source, symbol)
        _check_order(idx, source, symbol, rows)
    else:
        idx, tz = times
    data = _checked_bars(cols, missing, source, symbol, rows, idx, [symbol])
    return SymbolFrame(symbol=symbol, source=source, index=idx, data=data, tz=tz)

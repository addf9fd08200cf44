"""CSV / Parquet / DataFrame loaders producing a validated, aligned :class:`BarPanel`.

Layouts, column rules and the error format are described in :mod:`data_feeds.validation`.

Calendar alignment (symbols rarely trade on exactly the same days):

* ``fill=None`` (default): keep only the timestamps present for **every** symbol
  (intersection). A structlog warning ``calendar_intersection`` gives the number of bars
  dropped per symbol.
* ``fill="ffill"``: keep the union of timestamps between the latest first bar and the earliest
  last bar of all symbols (bars outside that span are dropped and counted: nothing is ever
  backfilled nor extended past a symbol's last bar). A gap bar of a symbol becomes a flat bar
  at the previous close (``open = high = low = close = previous close``, ``volume = 0``).
  A warning ``calendar_ffill`` gives filled and dropped counts per symbol.

``start``/``end`` (inclusive) are applied to each symbol before alignment, after the whole
file has been validated (bad rows outside the window still raise).
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import structlog

from data_feeds.validation import HEADER_LINES, SymbolFrame, parse_table, separator_hint
from engine.ground.bars import FIELDS, BarPanel, DataError

log = structlog.get_logger(__name__)

FillPolicy = Literal["ffill"] | None
PathLike = str | os.PathLike[str]

__all__ = ["align", "from_dataframe", "load_csv", "load_parquet"]


def _as_paths(paths: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(paths, str | os.PathLike):
        return [Path(paths)]
    out = [Path(p) for p in paths]
    if not out:
        raise DataError("no input files given")
    return out


def _window(frames: list[SymbolFrame], start: object, end: object) -> list[SymbolFrame]:
    if start is None and end is None:
        return frames
    lo = pd.Timestamp(start) if start is not None else None  # type: ignore[arg-type]
    hi = pd.Timestamp(end) if end is not None else None  # type: ignore[arg-type]
    out = []
    for f in frames:
        mask = np.ones(len(f.index), dtype=bool)
        if lo is not None:
            mask &= f.index >= lo
        if hi is not None:
            mask &= f.index <= hi
        if not mask.any():
            raise DataError(
                f"{f.source}: symbol {f.symbol}: empty date range, no bars between "
                f"{start} and {end} (data covers {f.index[0].date()} to {f.index[-1].date()})"
            )
        out.append(
            SymbolFrame(f.symbol, f.source, f.index[mask], {k: v[mask] for k, v in f.data.items()})
        )
    return out


def align(
    frames: Sequence[SymbolFrame], fill: FillPolicy = None
) -> tuple[pd.DatetimeIndex, dict[str, np.ndarray]]:
    """Put validated frames on one calendar; returns (index, {field: (T, N) array})."""
    if fill not in (None, "ffill"):
        raise DataError(f"unknown fill policy {fill!r}; use None (intersection) or 'ffill'")
    indexes = [f.index for f in frames]
    sources = sorted({f.source for f in frames})
    if fill is None:
        cal = indexes[0]
        if _same_calendar(indexes):  # the usual case: nothing to intersect or look up
            return cal, _stack(frames, [None] * len(frames))
        for ix in indexes[1:]:
            cal = cal.intersection(ix)
        if len(cal) == 0:
            raise DataError(f"{_short(sources)}: misaligned calendars, {_no_common(frames)}")
        dropped = {f.symbol: len(f.index) - len(cal) for f in frames}
        if any(dropped.values()):
            lost = {
                f.symbol: ", ".join(str(t) for t in f.index.difference(cal)[:3])
                for f in frames
                if dropped[f.symbol]
            }
            log.warning(
                "calendar_intersection",
                policy="intersection",
                dropped_bars=dropped,
                first_dropped=lost,
                kept_bars=len(cal),
                source=", ".join(sources),
            )
        return cal, _stack(frames, [f.index.get_indexer(cal) for f in frames])

    first = max(ix[0] for ix in indexes)
    last = min(ix[-1] for ix in indexes)
    if first > last:
        raise DataError(
            f"{', '.join(sources)}: misaligned calendars, symbol date ranges do not overlap"
        )
    cal = indexes[0]
    for ix in indexes[1:]:
        cal = cal.union(ix)
    cal = cal[(cal >= first) & (cal <= last)]
    out = {k: np.empty((len(frames), len(cal))) for k in FIELDS}  # (N, T), transposed below
    filled: dict[str, int] = {}
    dropped = {}
    for j, f in enumerate(frames):
        inside = (f.index >= first) & (f.index <= last)
        dropped[f.symbol] = int((~inside).sum())
        # last bar of this symbol at or before each calendar time (exists: cal >= first)
        pos = np.searchsorted(f.index.asi8, cal.asi8, side="right") - 1
        have = f.index.asi8[pos] == cal.asi8
        close = f.data["close"][pos]
        filled[f.symbol] = int((~have).sum())
        for k in FIELDS:
            col = f.data[k][pos]
            if k == "volume":
                col = np.where(have, col, 0.0)
            elif k != "close":
                col = np.where(have, col, close)
            else:
                col = close
            out[k][j] = col
    out = {k: np.ascontiguousarray(v.T) for k, v in out.items()}
    if any(filled.values()) or any(dropped.values()):
        log.warning(
            "calendar_ffill",
            policy="ffill",
            filled_bars=filled,
            dropped_bars=dropped,
            kept_bars=len(cal),
            source=", ".join(sources),
        )
    return cal, out


def check_jumps(frames: Sequence[SymbolFrame], max_jump: float) -> None:
    """Refuse a one-bar close move by a factor of ``max_jump`` or more (up, or down to
    ``1 / max_jump``): usually an unadjusted split (2:1 is a false -50 % day). The error
    names the symbol, the two bars and the prices."""
    for f in frames:
        c = f.data["close"]
        if c.size < 2:
            continue
        ratio = c[1:] / c[:-1]
        bad = np.flatnonzero((ratio >= max_jump) | (ratio <= 1.0 / max_jump))
        if bad.size:
            i = int(bad[0])
            raise DataError(
                f"{f.source}: symbol {f.symbol}: close moves {ratio[i] - 1:+.1%} from "
                f"{_day(f.index[i])} ({c[i]:g}) to {_day(f.index[i + 1])} ({c[i + 1]:g}), "
                f"a factor beyond data.max_jump = {max_jump:g}: usually an unadjusted split; "
                "give split-adjusted prices (an 'Adj Close' column is used when present) or "
                "raise data.max_jump"
            )


def _day(ts: pd.Timestamp) -> str:
    return str(ts.date()) if ts == ts.normalize() else str(ts)


def _same_calendar(indexes: Sequence[pd.DatetimeIndex]) -> bool:
    """Every index holds the same timestamps (then the intersection is the first one)."""
    first = indexes[0].asi8
    return all(
        ix is indexes[0] or (len(ix) == len(first) and np.array_equal(ix.asi8, first))
        for ix in indexes[1:]
    )


def _stack(
    frames: Sequence[SymbolFrame], pos: Sequence[np.ndarray | None]
) -> dict[str, np.ndarray]:
    """``{field: (T, N)}`` from each frame's rows ``pos`` (``None``: all of them), by one
    blocked transpose of an ``(N, T)`` array: the frames' own memory when they are
    consecutive pieces of one column (a long table grouped by symbol), else a buffer
    written symbol by symbol (contiguous writes, not ``N`` strided column writes)."""
    out = {}
    whole = all(p is None for p in pos)
    for k in FIELDS:
        cols = [f.data[k] for f in frames]
        owner = _columns_of(cols) if whole else None
        if owner is not None:  # the parser's own (T, N) array: kept as it is
            out[k] = owner
            continue
        block = _rows_of_one_buffer(cols) if whole else None
        if block is None:
            n_bars = len(cols[0]) if pos[0] is None else len(pos[0])
            block = np.empty((len(frames), n_bars))
            for j, (col, p) in enumerate(zip(cols, pos, strict=True)):
                block[j] = col if p is None else col[p]
        out[k] = np.ascontiguousarray(block.T)
    return out


def _columns_of(cols: Sequence[np.ndarray]) -> np.ndarray | None:
    """The C-contiguous ``(T, N)`` float64 array that owns its memory and whose columns,
    in order, are ``cols`` (the copy the parser makes of a wide table or of a long one
    sorted by time, for two symbols or more), else ``None``."""
    base = cols[0].base
    n = len(cols)
    if (
        n < 2
        or not isinstance(base, np.ndarray)
        or base.dtype != np.float64
        or base.shape != (len(cols[0]), n)
        or not (base.flags.c_contiguous and base.flags.owndata)
    ):
        return None
    start = base.ctypes.data
    for j, c in enumerate(cols):
        if c.base is not base or c.ctypes.data != start + 8 * j or c.strides != (8 * n,):
            return None
    return base


def _rows_of_one_buffer(cols: Sequence[np.ndarray]) -> np.ndarray | None:
    """The ``(N, T)`` view whose rows are ``cols`` when they are equal-length, contiguous
    float64 pieces laid end to end in one buffer, else ``None``."""
    first = cols[0]
    n = len(first)
    if first.dtype != np.float64 or not first.flags.c_contiguous or n == 0:
        return None
    base = first if first.base is None else first.base
    start = first.ctypes.data
    for j, c in enumerate(cols):
        if (
            len(c) != n
            or c.dtype != np.float64
            or not c.flags.c_contiguous
            or (c.base if c.base is not None else c) is not base
            or c.ctypes.data != start + j * n * 8
        ):
            return None
    view: np.ndarray = np.lib.stride_tricks.as_strided(
        first, shape=(len(cols), n), strides=(n * 8, 8), writeable=False
    )
    return view


def _short(items: Sequence[str], n: int = 4) -> str:
    items = list(items)
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _no_common(frames: Sequence[SymbolFrame]) -> str:
    """Why symbols share no timestamp, with a hint when only the time of day differs."""
    syms = _short([f.symbol for f in frames])
    days = frames[0].index.normalize()
    for f in frames[1:]:
        days = days.intersection(f.index.normalize())
    if len(days):
        times = ", ".join(
            f"{f.symbol} at {f.index[0].strftime('%H:%M:%S')}" for f in list(frames)[:4]
        )
        return (
            f"symbols {syms} share dates but no timestamp: the bars carry different times "
            f"of day ({times}); a date-only file mixed with timed or UTC-converted times? "
            "Give every file the same convention (or set data.timezone)"
        )
    return f"symbols {syms} have no timestamp in common"


def _build(
    frames: list[SymbolFrame],
    *,
    symbols: Sequence[str] | None,
    start: object,
    end: object,
    fill: FillPolicy,
    asset_classes: Mapping[str, str] | None,
    timezone: str | None = None,
    calendar: str | None = None,
    max_jump: float | None = None,
) -> BarPanel:
    seen: dict[str, str] = {}
    for f in frames:
        if f.symbol in seen:
            raise DataError(
                f"{f.source}: symbol {f.symbol} appears more than once (also in {seen[f.symbol]})"
            )
        seen[f.symbol] = f.source
    if symbols is not None:
        if isinstance(symbols, str):
            symbols = [symbols]
        unknown = [s for s in symbols if s not in seen]
        if unknown:
            raise DataError(
                f"{', '.join(sorted(set(seen.values())))}: unknown symbol {unknown[0]!r}; "
                f"available: {', '.join(seen)}"
            )
        by_sym = {f.symbol: f for f in frames}
        frames = [by_sym[s] for s in symbols]
    frames, zone = _to_zone(frames, timezone, calendar)
    frames = _window(frames, start, end)
    if max_jump is not None:
        check_jumps(frames, max_jump)
    if calendar:
        report_sessions(frames, calendar)
    index, arrays = align(frames, fill)
    classes = tuple((asset_classes or {}).get(f.symbol, "unknown") for f in frames)
    return BarPanel(
        tz=zone,
        index=pd.DatetimeIndex(index).as_unit("ns"),
        symbols=tuple(f.symbol for f in frames),
        open=arrays["open"],
        high=arrays["high"],
        low=arrays["low"],
        close=arrays["close"],
        volume=arrays["volume"],
        asset_classes=classes,
    )


CSV_BLOCK_BYTES = 1 << 20
"""Bytes per block of the streaming CSV reader (column types are inferred on the first).
The reader reads ahead a few blocks per core: larger blocks cost memory, not speed."""


BLANK_COLUMN = "__unnamed_"
"""Name given to the columns of a CSV header with no name when there are several (a
spreadsheet's trailing ``,,``); dropped when empty throughout."""


def read_csv_arrow(path: Path) -> pd.DataFrame:
    """Read a CSV (``.gz`` etc. by extension) with pyarrow's streaming reader.

    Blocks are parsed in C++ (types inferred on the first block) and each block's columns
    are moved into NumPy at once (Arrow buffers freed block by block); text columns
    (symbols) become pandas categoricals (one Python string per distinct value, not per
    row). Peak memory is about the parsed table plus one column. When a later block does
    not fit the inferred types (a bad number or date further down), the file is re-read
    with pandas so that validation can name the offending row.
    """
    import pyarrow as pa
    from pyarrow import csv as pacsv

    cols: dict[str, np.ndarray] = {}
    cats: dict[str, dict[str, int]] = {}
    aware: set[str] = set()
    n = 0
    try:
        reader = pacsv.open_csv(
            str(path),
            read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
        )
        names = reader.schema.names
        blank = [i for i, n in enumerate(names) if not n.strip()]
        if len(blank) > 1:  # a spreadsheet's trailing ",,": unnamed columns, read apart
            names = [f"{BLANK_COLUMN}{i}" if i in blank else n for i, n in enumerate(names)]
            reader = pacsv.open_csv(
                str(path),
                read_options=pacsv.ReadOptions(
                    block_size=CSV_BLOCK_BYTES, column_names=names, skip_rows=1
                ),
            )
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate column names: {', '.join(names)}")
        size = path.stat().st_size
        bar = _progress(size, f"loading {path.name}")
        for batch in reader:
            bar.update(min(CSV_BLOCK_BYTES, max(0, size - bar.n)))
            m = batch.num_rows
            if n + m > len(next(iter(cols.values()), ())):  # (re)allocate: a few large arrays
                guess = m * (path.stat().st_size // CSV_BLOCK_BYTES + 2)
                cap = max(2 * (n + m), guess + guess // 16) if cols else guess + guess // 16
                for name, col in zip(names, batch.columns):
                    new = np.empty(cap, dtype=_numpy_dtype(col))
                    if name in cols:
                        new[:n] = cols[name][:n]
                    cols[name] = new
            for name, col in zip(names, batch.columns):
                if pa.types.is_timestamp(col.type) and col.type.tz is not None:
                    aware.add(name)
                    col = col.cast(pa.timestamp(col.type.unit))  # same instants, UTC wall
                cols[name][n : n + m] = _column_numpy(col, cats.setdefault(name, {}))
            n += m
            del batch
        bar.close()
    except pa.ArrowInvalid as exc:
        msg = str(exc).strip()
        if "conversion error" in msg or "In CSV column" in msg:
            return pd.read_csv(path)  # types changed after the first block: precise errors
        if _utf16(path):
            raise ValueError(
                "the file is UTF-16 text; save it as UTF-8 (Excel: CSV UTF-8)"
            ) from None
        first = msg.splitlines()[0] if msg else "unreadable CSV"
        raise ValueError(first + separator_hint(_header_line(path))) from None
    columns: dict[str, object] = {}
    for name in names:
        arr = cols.pop(name, np.empty(0))[:n]
        if name.startswith(BLANK_COLUMN) and arr.dtype == np.float64 and np.isnan(arr).all():
            continue  # an unnamed column with nothing in it
        if name in aware and _maybe_local_midnights(arr):  # the offsets as written matter
            columns[name] = _text_column(path, name)
        elif name in aware:  # UTC instants: keep them aware for validation to convert
            columns[name] = pd.Series(pd.DatetimeIndex(arr).tz_localize("UTC"))
        elif cats.get(name):
            labels = pd.Index(list(cats[name]), dtype=object)
            columns[name] = pd.Categorical.from_codes(arr, categories=labels)
        else:
            columns[name] = arr
    return pd.DataFrame(columns, copy=False)


def _yfinance_header(path: Path) -> bool:
    """A CSV as ``yfinance`` writes a download: ``Price,Close,...`` / ``Ticker,SPY,...`` /
    ``Date,,,`` (three header lines: fields, tickers, the index name)."""
    first, second = [*_first_lines(path, 2), "", ""][:2]
    return first.lower().startswith("price,") and second.lower().startswith("ticker,")


def _read_yfinance_csv(path: Path) -> pd.DataFrame:
    """A ``yfinance`` CSV as a table with ``(field, ticker)`` columns and a ``date`` column
    (the layouts' MultiIndex case; ``Adj Close`` is used as the close, as in any file)."""
    df = pd.read_csv(path, header=[0, 1], index_col=0, skiprows=[2])
    return df.rename_axis("date").reset_index()


def _utf16(path: Path) -> bool:
    """Does the file start with a UTF-16 byte-order mark (Excel's "Unicode Text")?"""
    try:
        with open(path, "rb") as f:
            return f.read(2) in (b"\xff\xfe", b"\xfe\xff")
    except OSError:
        return False


def _header_line(path: Path) -> str:
    """The first line of a text file ('' when unreadable or compressed)."""
    return next(iter(_first_lines(path, 1)), "")


def _first_lines(path: Path, n: int) -> list[str]:
    """The first ``n`` lines of a text file, stripped (none when unreadable or compressed)."""
    if path.suffix.lower() in (".gz", ".bz2", ".zst", ".xz", ".zip"):
        return []
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as f:
            return [f.readline().strip() for _ in range(n)]
    except OSError:
        return []


def _maybe_local_midnights(utc: np.ndarray) -> bool:
    """Could these UTC instants be local midnights of daily bars (one or two times of day,
    daylight saving, none of them midnight UTC)? Then the column is read again as written
    (:func:`data_feeds.validation._local_midnights` reads them as their local dates)."""
    if utc.size == 0:
        return False
    tod = np.unique(utc.astype("datetime64[ns]").view(np.int64) % 86_400_000_000_000)
    return tod.size <= 2 and tod[0] != 0


def _text_column(path: Path, name: str) -> pd.Series:
    import pyarrow as pa
    from pyarrow import csv as pacsv

    table = pacsv.read_csv(
        str(path),
        convert_options=pacsv.ConvertOptions(
            include_columns=[name], column_types={name: pa.string()}
        ),
    )
    return pd.Series(table.column(name).to_numpy(zero_copy_only=False), dtype=object)


PROGRESS_MIN_BYTES = 32 << 20
"""Files at least this large show a progress bar (when stderr is a terminal)."""


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    show = total >= PROGRESS_MIN_BYTES and sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit="B", unit_scale=True, leave=False, disable=not show)


def _numpy_dtype(col: Any) -> np.dtype:
    import pyarrow as pa

    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        return np.dtype(np.int32)
    if pa.types.is_null(col.type) or pa.types.is_integer(col.type):
        return np.dtype(np.float64)
    if pa.types.is_timestamp(col.type):
        return np.dtype(f"datetime64[{col.type.unit}]")
    if pa.types.is_date(col.type):
        return np.dtype("datetime64[D]" if pa.types.is_date32(col.type) else "datetime64[ms]")
    return np.dtype(col.type.to_pandas_dtype())


def read_parquet_arrow(path: Path) -> pd.DataFrame:
    """Read a Parquet file with pyarrow; text columns become categoricals (no Python string
    per row) and Arrow buffers are released while converting."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(str(path))
    except pa.ArrowInvalid as exc:
        raise ValueError(str(exc).strip().splitlines()[0]) from None
    for i, field in enumerate(table.schema):
        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
            table = table.set_column(i, field.name, pc.dictionary_encode(table.column(i)))
    return table.to_pandas(split_blocks=True, self_destruct=True, date_as_object=False)


def _column_numpy(col: Any, seen: dict[str, int]) -> np.ndarray:
    """One Arrow column of a block -> NumPy (strings -> int32 codes into ``seen``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        enc = pc.dictionary_encode(col)
        local = enc.dictionary.to_pylist()
        remap = np.array([seen.setdefault(v, len(seen)) for v in local] + [-1], dtype=np.int32)
        idx = enc.indices.fill_null(len(local)).to_numpy(zero_copy_only=False)
        return remap[idx]
    if pa.types.is_null(col.type):
        return np.full(len(col), np.nan)
    if pa.types.is_integer(col.type):
        return col.cast(pa.float64()).to_numpy(zero_copy_only=False)
    return col.to_numpy(zero_copy_only=False)


def _to_zone(
    frames: list[SymbolFrame], timezone: str | None, calendar: str | None
) -> tuple[list[SymbolFrame], str | None]:
    """Put every frame's times in one zone; returns (frames, zone of the panel).

    Aware inputs (held in UTC) are converted to ``timezone`` (else the calendar's zone,
    else kept in UTC); naive inputs are taken to be in ``timezone`` already. Mixing aware
    and naive files is an error naming one of each.
    """
    aware = [f for f in frames if f.tz is not None]
    naive = [f for f in frames if f.tz is None]
    if aware and naive:
        a, n = aware[0], naive[0]
        raise DataError(
            f"{a.source} (symbol {a.symbol}) has time-zone-aware timestamps but {n.source} "
            f"(symbol {n.symbol}) has naive ones; give every file UTC offsets or none "
            "(and set data.timezone to say which zone naive times are in)"
        )
    zone = timezone or (calendar_zone(calendar) if calendar else None)
    if not aware:
        return frames, zone
    zone = zone or "UTC"
    if zone == "UTC":
        return frames, zone
    out = []
    for f in frames:
        local = f.index.tz_localize("UTC").tz_convert(zone).tz_localize(None)
        dup = np.flatnonzero(np.diff(local.asi8) <= 0)
        if dup.size:
            i = int(dup[0]) + 1
            raise DataError(
                f"{f.source}: symbol {f.symbol}: {f.index[i]} UTC is {local[i]} in {zone}, "
                "not after the previous bar (a daylight-saving change); use data.timezone = "
                "'UTC' for round-the-clock data"
            )
        out.append(SymbolFrame(f.symbol, f.source, local.as_unit("ns"), f.data, tz=zone))
    return out, zone


def calendar_zone(calendar: str) -> str:
    """The time zone of an exchange calendar (``"XNYS"`` -> ``"America/New_York"``)."""
    return str(_calendar(calendar, None, None).tz)


def _calendar(name: str, start: object, end: object) -> Any:
    try:
        import exchange_calendars as xcals
    except ImportError:  # pragma: no cover - a declared dependency
        raise DataError("data.calendar needs the exchange_calendars package") from None
    names = xcals.get_calendar_names(include_aliases=True)
    if name not in names:
        raise DataError(
            f"data.calendar: unknown exchange calendar {name!r} "
            f"(e.g. XNYS, XNAS, XLON, XTKS, XHKG, 24/7; {len(names)} known)"
        )
    kw = {}
    if start is not None:
        kw["start"] = start
    if end is not None:
        kw["end"] = end
    with warnings.catch_warnings():  # the package's own pandas deprecation warnings
        warnings.simplefilter("ignore")
        return xcals.get_calendar(name, **kw)


MAX_LISTED = 5
"""How many missing session dates a warning lists (the count covers all)."""


def report_sessions(frames: list[SymbolFrame], calendar: str) -> dict[str, list[str]]:
    """Compare each symbol's trading days with an exchange calendar's sessions.

    Logs one ``calendar_missing_sessions`` warning per symbol that lacks sessions inside its
    own date range (count and the first dates), and ``calendar_extra_days`` for bars on
    days the exchange was closed. Returns ``{symbol: [missing dates]}``.
    """

    first = min(f.index[0] for f in frames).normalize()
    last = max(f.index[-1] for f in frames).normalize()
    bound_lo = _calendar(calendar, None, None).first_session.tz_localize(None)
    cal = _calendar(calendar, max(first, bound_lo), last)
    sessions = pd.DatetimeIndex(cal.sessions).tz_localize(None).as_unit("ns").normalize()
    out: dict[str, list[str]] = {}
    for f in frames:
        days = f.index.normalize().unique()
        inside = sessions[(sessions >= days[0]) & (sessions <= days[-1])]
        missing = inside.difference(days)
        extra = days.difference(sessions)
        if len(missing):
            out[f.symbol] = [str(d.date()) for d in missing]
            log.warning(
                "calendar_missing_sessions",
                calendar=calendar,
                symbol=f.symbol,
                source=f.source,
                missing=len(missing),
                first=", ".join(out[f.symbol][:MAX_LISTED]),
            )
        if len(extra):
            log.warning(
                "calendar_extra_days",
                calendar=calendar,
                symbol=f.symbol,
                source=f.source,
                days=len(extra),
                first=", ".join(str(d.date()) for d in extra[:MAX_LISTED]),
            )
    return out


def _load_files(
    paths: PathLike | Sequence[PathLike],
    reader: str,
    ohlc_from_close: bool,
) -> list[SymbolFrame]:
    frames: list[SymbolFrame] = []
    for p in _as_paths(paths):
        source = str(p)
        if p.is_dir():
            raise DataError(f"{source}: is a folder, expected a CSV or Parquet file")
        if not p.is_file():
            raise DataError(f"{source}: file not found")
        try:
            if reader == "csv" and _yfinance_header(p):
                df = _read_yfinance_csv(p)
                HEADER_LINES[source] = 3
            else:
                HEADER_LINES.pop(source, None)  # the file may have been rewritten since
                df = read_csv_arrow(p) if reader == "csv" else read_parquet_arrow(p)
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"{source}: cannot read {reader}: {first}") from None
        stem = p.name.split(".")[0]
        frames.extend(
            parse_table(df, source=source, default_symbol=stem, ohlc_from_close=ohlc_from_close)
        )
    return frames


def load_csv(
    paths: PathLike | Sequence[PathLike],
    *,
    symbols: Sequence[str] | None = None,
    start: object = None,
    end: object = None,
    fill: FillPolicy = None,
    ohlc_from_close: bool = False,
    asset_classes: Mapping[str, str] | None = None,
    timezone: str | None = None,
    calendar: str | None = None,
    max_jump: float | None = None,
) -> BarPanel:
    """Load one or more CSV files (single-symbol, long or wide; ``.gz`` fine) into a panel.

    A single-symbol file without a ``symbol`` column is named after its file stem
    (``data/spx.csv`` -> ``spx``).
    """
    frames = _load_files(paths, "csv", ohlc_from_close)
    return _build(
        frames,
        symbols=symbols,
        start=start,
        end=end,
        fill=fill,
        asset_classes=asset_classes,
        timezone=timezone,
        calendar=calendar,
        max_jump=max_jump,
    )


def load_parquet(
    paths: PathLike | Sequence[PathLike],
    *,
    symbols: Sequence[str] | None = None,
    start: object = None,
    end: object = None,
    fill: FillPolicy = None,
    ohlc_from_close: bool = False,
    asset_classes: Mapping[str, str] | None = None,
    timezone: str | None = None,
    calendar: str | None = None,
    max_jump: float | None = None,
) -> BarPanel:
    """Load one or more Parquet files (same layouts and rules as :func:`load_csv`)."""
    frames = _load_files(paths, "parquet", ohlc_from_close)
    return _build(
        frames,
        symbols=symbols,
        start=start,
        end=end,
        fill=fill,
        asset_classes=asset_classes,
        timezone=timezone,
        calendar=calendar,
        max_jump=max_jump,
    )


def from_dataframe(
    df: pd.DataFrame,
    *,
    source: str = "<DataFrame>",
    symbol: str | None = None,
    symbols: Sequence[str] | None = None,
    start: object = None,
    end: object = None,
    fill: FillPolicy = None,
    ohlc_from_close: bool = False,
    asset_classes: Mapping[str, str] | None = None,
    timezone: str | None = None,
    calendar: str | None = None,
    max_jump: float | None = None,
) -> BarPanel:
    """Build a panel from a DataFrame in any accepted layout.

    ``symbol`` names the instrument of a single-symbol frame without a ``symbol`` column;
    ``source`` is the name used in error messages.
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got {type(df).__name__}")
    frames = parse_table(df, source=source, default_symbol=symbol, ohlc_from_close=ohlc_from_close)
    return _build(
        frames,
        symbols=symbols,
        start=start,
        end=end,
        fill=fill,
        asset_classes=asset_classes,
        timezone=timezone,
        calendar=calendar,
        max_jump=max_jump,
    )

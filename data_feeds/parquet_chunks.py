"""Read a Parquet file as a stream of :class:`BarPanel` chunks of at most ``chunk_bars`` bars.

Memory is bounded by one chunk plus one Parquet record batch, whatever the length of the
file: the whole ``(T, N)`` panel is never built. Each chunk goes through the normal
loader's validation (:func:`data_feeds.validation.parse_table` and the loader's calendar
alignment), so a bad value gets the same one-line error, naming the file, the symbol and
the row of the *file*.

Layouts: long (``timestamp, symbol, open, high, low, close[, volume]``), wide
(``timestamp, SPX_close, ...``) and single-symbol files, as for
:func:`data_feeds.loaders.load_parquet`. Rules of the chunked reader:

* rows must come in time order (a long file: all symbols of a bar together, bars in
  increasing time); a row earlier than the one before it is an error naming both rows
  (a symbol-major file must be sorted by timestamp first, or loaded whole);
* a bar split across record batches is reassembled before it is emitted;
* every chunk holds the same symbols (after alignment, in the first chunk's order);
  a symbol missing from a whole chunk is an error naming the bars;
* calendars are aligned per chunk by intersection (a bar is kept when every symbol has
  it), which is what the whole-file loader does bar by bar; forward filling
  (``fill="ffill"``) needs every symbol's whole range and is refused;
* ``start``/``end`` (inclusive) select bars; chunks outside the range are skipped.
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from data_feeds.loaders import _build
from data_feeds.validation import (
    SYMBOL_ALIASES,
    TIMESTAMP_ALIASES,
    _parse_timestamps,
    parse_table,
)
from engine.ground.bars import BarPanel, DataError

__all__ = ["BATCH_ROWS", "ParquetChunks", "iter_parquet_chunks"]

BATCH_ROWS = 1 << 16
"""Rows per Parquet record batch read (memory: one batch plus one chunk of rows)."""

GC_ROWS = 1 << 16
"""Rows validated between collections of the young generations: the pandas frames of a
chunk sit in reference cycles, which would otherwise keep earlier chunks alive a while."""

_ROW_RE = re.compile(r"\brow (\d+)")


def _shift_rows(exc: DataError, source: str, offset: int) -> DataError:
    """The validator's error with row numbers of the chunk turned into rows of the file."""
    msg = str(exc)
    head, tail = (source, msg[len(source) :]) if msg.startswith(source) else ("", msg)
    return DataError(head + _ROW_RE.sub(lambda m: f"row {int(m.group(1)) + offset}", tail))


class ParquetChunks:
    """An iterable of validated :class:`BarPanel` chunks read from one Parquet file.

    Parameters
    ----------
    path : str or path
        The Parquet file (long, wide or single-symbol layout).
    chunk_bars : int
        Most bars per chunk (the last chunk, and chunks where calendars disagree, hold
        fewer).
    symbols : sequence of str, optional
        Keep these symbols, in this order (default: every symbol, first chunk's order).
    start, end : date-like, optional
        Inclusive bar range.
    ohlc_from_close, timezone : as for :func:`data_feeds.loaders.load_parquet`.
    fill : None
        Only the intersection policy is possible in chunks (``"ffill"`` is refused).
    batch_rows : int
        Rows per record batch read from the file.

    ``max_bars`` is an upper bound of the number of bars (from the file's row count),
    known before reading: drivers size their per-bar outputs with it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        chunk_bars: int,
        *,
        symbols: Sequence[str] | None = None,
        start: object = None,
        end: object = None,
        ohlc_from_close: bool = False,
        timezone: str | None = None,
        fill: str | None = None,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.path = Path(path)
        self.source = str(path)
        if isinstance(chunk_bars, bool) or not isinstance(chunk_bars, int) or chunk_bars < 1:
            raise DataError(
                f"{self.source}: chunk_bars must be a positive integer, got {chunk_bars!r}"
            )
        if fill not in (None, "none"):
            raise DataError(
                f"{self.source}: fill={fill!r} is not possible in chunks (forward filling needs "
                "every symbol's whole date range); use fill 'none' or pre-fill the file"
            )
        if self.path.is_dir():
            raise DataError(f"{self.source}: is a folder, expected a Parquet file")
        if not self.path.is_file():
            raise DataError(f"{self.source}: file not found")
        try:
            self._file = pq.ParquetFile(self.source)
        except (pa.ArrowInvalid, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"{self.source}: cannot read parquet: {first}") from None
        self.chunk_bars = chunk_bars
        self.symbols = (
            None if symbols is None else [symbols] if isinstance(symbols, str) else list(symbols)
        )
        self.start = pd.Timestamp(start) if start is not None else None  # type: ignore[arg-type]
        self.end = pd.Timestamp(end) if end is not None else None  # type: ignore[arg-type]
        self.ohlc_from_close = ohlc_from_close
        self.timezone = timezone
        self.batch_rows = max(1, int(batch_rows))
        names = self._file.schema_arrow.names
        lower = {n.strip().lower(): n for n in names}
        self._ts_col = next((lower[a] for a in TIMESTAMP_ALIASES if a in lower), None)
        if self._ts_col is None:
            raise DataError(
                f"{self.source}: missing column 'timestamp' (or 'date'); have: {', '.join(names)}"
            )
        self._sym_col = next((lower[a] for a in SYMBOL_ALIASES if a in lower), None)
        self.max_bars = int(self._file.metadata.num_rows)  # rows / symbols after chunk 1

    def __iter__(self) -> Iterator[BarPanel]:
        return self._chunks()

    def _batches(self) -> Iterator[pd.DataFrame]:
        """Record batches as DataFrames (text columns as categoricals), one row group read
        at a time: ``ParquetFile.iter_batches`` keeps the buffers it has read alive
        (pyarrow 26: its allocations grow with the file), ``read_row_group`` does not."""
        import pyarrow as pa
        import pyarrow.compute as pc

        try:
            for g in range(self._file.metadata.num_row_groups):
                group = self._file.read_row_group(g, use_threads=False)
                for batch in group.to_batches(max_chunksize=self.batch_rows):
                    cols = []
                    for i, field in enumerate(batch.schema):
                        col = batch.column(i)
                        if pa.types.is_string(field.type) or pa.types.is_large_string(field.type):
                            col = pc.dictionary_encode(col)
                        cols.append(col)
                    table = pa.Table.from_arrays(cols, names=batch.schema.names)
                    yield table.to_pandas(date_as_object=False)
                del group
        except (pa.ArrowInvalid, OSError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DataError(f"{self.source}: cannot read parquet: {first}") from None

    def _times(self, df: pd.DataFrame, offset: int) -> np.ndarray:
        """Row times (int64 ns, as the validator parses them), checked in time order."""
        try:
            idx, _ = _parse_timestamps(df[self._ts_col].reset_index(drop=True), self.source, None)
        except DataError as exc:
            raise _shift_rows(exc, self.source, offset) from None
        return np.asarray(idx.asi8)

    def _order_error(self, i: int, prev: int, t: int) -> DataError:
        what = "symbol of a bar apart" if self._sym_col is not None else "bars out of order"
        return DataError(
            f"{self.source}: row {i} ({pd.Timestamp(t)}): earlier than row {i - 1} "
            f"({pd.Timestamp(prev)}) ({what}); a chunked read needs rows in time order "
            "(sort the file by timestamp, or load it whole without data.chunk_bars)"
        )

    def _chunks(self) -> Iterator[BarPanel]:
        pend: list[pd.DataFrame] = []  # rows read and not yet emitted, in time order
        pend_ts: list[np.ndarray] = []
        n_bars = 0  # distinct bar times among the pending rows
        first_row = 0  # 0-based file row of the first pending row
        read = 0
        prev: int | None = None  # time of the last row read
        state: dict[str, Any] = {"symbols": None, "last": None, "yielded": 0}
        for df in self._batches():
            if not len(df):
                continue
            ts = self._times(df, read)
            if prev is not None and ts[0] < prev:
                raise self._order_error(read + 1, prev, int(ts[0]))
            back = np.flatnonzero(np.diff(ts) < 0)
            if back.size:
                i = int(back[0]) + 1
                raise self._order_error(read + i + 1, int(ts[i - 1]), int(ts[i]))
            n_bars += int(np.count_nonzero(np.diff(ts))) + (prev is None or ts[0] != prev)
            read += len(df)
            prev = int(ts[-1])
            pend.append(df)
            pend_ts.append(ts)
            if n_bars <= self.chunk_bars:  # the last bar may continue in the next batch
                continue
            whole = pd.concat(pend, ignore_index=True) if len(pend) > 1 else pend[0]
            all_ts = np.concatenate(pend_ts) if len(pend_ts) > 1 else pend_ts[0]
            starts = np.flatnonzero(np.diff(all_ts) != 0) + 1  # first row of each later bar
            done = 0
            while n_bars > self.chunk_bars:
                a = 0 if done == 0 else int(starts[done - 1])
                b = int(starts[done + self.chunk_bars - 1])
                panel = self._emit(whole.iloc[a:b], first_row + a, state)
                if panel is not None:
                    yield panel
                done += self.chunk_bars
                n_bars -= self.chunk_bars
            a = 0 if done == 0 else int(starts[done - 1])
            first_row += a
            pend = [whole.iloc[a:].reset_index(drop=True)]
            pend_ts = [all_ts[a:]]
        if read == 0:
            raise DataError(f"{self.source}: no data rows")
        if pend:
            whole = pd.concat(pend, ignore_index=True) if len(pend) > 1 else pend[0]
            all_ts = np.concatenate(pend_ts) if len(pend_ts) > 1 else pend_ts[0]
            bounds = np.concatenate([[0], np.flatnonzero(np.diff(all_ts) != 0) + 1, [len(all_ts)]])
            for k in range(0, len(bounds) - 1, self.chunk_bars):
                a, b = int(bounds[k]), int(bounds[min(k + self.chunk_bars, len(bounds) - 1)])
                panel = self._emit(whole.iloc[a:b], first_row + a, state)
                if panel is not None:
                    yield panel
        if state["yielded"] == 0:
            raise DataError(
                f"{self.source}: empty date range, no bars between {self.start} and {self.end}"
            )

    def _emit(self, df: pd.DataFrame, first_row: int, state: dict[str, Any]) -> BarPanel | None:
        """Validate and align one chunk of rows (``first_row``: 0-based row of the file);
        ``None`` when no bar is inside ``start``/``end``."""
        state["since_gc"] = state.get("since_gc", 0) + len(df)
        if state["since_gc"] >= GC_ROWS:  # earlier chunks' frames sit in reference cycles
            gc.collect(1)
            state["since_gc"] = 0
        df = df.reset_index(drop=True)
        stem = self.path.name.split(".")[0]
        try:
            frames = parse_table(
                df, source=self.source, default_symbol=stem, ohlc_from_close=self.ohlc_from_close
            )
        except DataError as exc:
            raise _shift_rows(exc, self.source, first_row) from None
        symbols: tuple[str, ...] | None = state["symbols"]
        want = self.symbols if self.symbols is not None else list(symbols or ())
        have = {f.symbol for f in frames}
        if want:
            missing = [s for s in want if s not in have]
            extra = [] if self.symbols is not None else sorted(have - set(want))
            if missing or extra:
                what = (
                    f"symbol {missing[0]!r} has no rows"
                    if missing
                    else f"symbol {extra[0]!r} is not in the first chunk"
                )
                lo = min(f.index[0] for f in frames)
                hi = max(f.index[-1] for f in frames)
                raise DataError(
                    f"{self.source}: rows {first_row + 1}-{first_row + len(df)} ({lo} to {hi}): "
                    f"{what}; a chunked read needs the same symbols in every chunk"
                )
        try:
            panel = _build(
                frames,
                symbols=want or None,
                start=None,
                end=None,
                fill=None,
                asset_classes=None,
                timezone=self.timezone,
            )
        except DataError as exc:
            raise _shift_rows(exc, self.source, first_row) from None
        last: pd.Timestamp | None = state["last"]
        if last is not None and panel.index[0] <= last:
            raise DataError(
                f"{self.source}: row {first_row + 1}: bar {panel.index[0]} is not after the "
                f"previous chunk's last bar {last}; a chunked read needs rows in time order"
            )
        if symbols is None and self._sym_col is not None:  # rows per bar known: bound bars
            self.max_bars = -(-int(self._file.metadata.num_rows) // max(1, panel.n_assets))
        state["symbols"] = panel.symbols
        state["last"] = panel.index[-1]
        keep = np.ones(panel.n_bars, dtype=bool)
        if self.start is not None:
            keep &= panel.index >= self.start
        if self.end is not None:
            keep &= panel.index <= self.end
        if not keep.any():
            return None
        if not keep.all():
            panel = panel.take(np.flatnonzero(keep))
        state["yielded"] += 1
        return panel


def iter_parquet_chunks(
    path: str | os.PathLike[str], chunk_bars: int, **kwargs: Any
) -> Iterator[BarPanel]:
    """Iterate ``path`` in validated chunks of at most ``chunk_bars`` bars (see
    :class:`ParquetChunks` for the keyword arguments)."""
    return iter(ParquetChunks(path, chunk_bars, **kwargs))

"""Exogenous inputs from files in paper: the config's ``[[data.exog]]`` tables served live.

Each file is read again at every session whose bars are fetched when its modification time
or size changed, and joined onto the bars with the backtest's own as-of join
(:func:`engine.features.exog.asof_join`, the same publication ``lag``): the value the live
step sees at session ``t`` is the one the backtest sees at bar ``t``. Series the bars carry
themselves (streamed from the venue as data-only symbols) come first, the files' columns
after them, in the panel's order.

Stale-file rule: at the latest bar of each batch (the session that may trade), for each
column, ``s`` is the date of the release the join uses, ``P`` the file's cadence (the
median spacing of that column's releases) and ``G`` the grace ``[paper] exog_grace``
(default ``"7d"``). The next release is due at ``s + P`` and known ``lag`` later, so the
column is stale when the bar is after ``s + P + lag + G`` (or when no release is known at
all). A column with fewer than two releases has no cadence and is only checked for a known
value. A stale column, or a file that no longer reads (missing, a bad timestamp or value,
a CSV whose last line is cut off, a column gone), stops trading: :class:`InputHalted`
with one line naming the file, the row or the last date and the bar, before the bar is
stepped and before any order; the loop checkpoints and exits 3. The previous good data is
never used instead.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import structlog

from engine.features.exog import asof_join, read_series
from engine.ground.bars import DataError
from engine.ground.frequency import parse_lag
from engine.live.ports import Bar, BarSource
from engine.live.sessions import WrappedSource
from engine.live.types import InputHalted

log = structlog.get_logger("regime-engine.paper")


@dataclass
class ExogFile:
    """One ``[[data.exog]]`` table as served live: the file, its columns and their names,
    the lag, and the series of the last read (with the file's mtime and size then)."""

    path: Path
    columns: tuple[str, ...]
    names: tuple[str, ...]
    lag: str
    series: pd.DataFrame | None = None
    seen: tuple[int, int] | None = None  # (mtime_ns, size) of the read in ``series``

    def refresh(self) -> bool:
        """Read the file again if it changed (True); :class:`InputHalted` if it no longer
        reads. A failed read drops the previous series: it is never used instead."""
        try:
            st = os.stat(self.path)
        except OSError:
            self.series, self.seen = None, None
            raise InputHalted(self._halt("not found")) from None
        seen = (st.st_mtime_ns, st.st_size)
        if seen == self.seen and self.series is not None:
            return False
        self.series, self.seen = None, None
        try:
            self._check_complete()
            series = read_series(self.path, self.columns)
        except DataError as exc:
            raise InputHalted(self._halt(str(exc), named=True)) from None
        self.series, self.seen = series, seen
        log.info(
            "exog.reload",
            file=str(self.path),
            rows=len(series),
            last=str(series.index[-1].date()),
        )
        return True

    def _check_complete(self) -> None:
        """A CSV written in full ends with a line end: one that does not was cut off."""
        if self.path.suffix.lower() in (".parquet", ".pq"):
            return
        with open(self.path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            if size == 0:
                return  # read_series names an empty file
            fh.seek(size - 1)
            if fh.read(1) not in (b"\n", b"\r"):
                fh.seek(0)
                rows = fh.read().count(b"\n") + 1
                raise DataError(
                    f"{self.path}: row {rows}: cut off (no line end: truncated or still "
                    "being written)"
                )

    def _halt(self, what: str, named: bool = False) -> str:
        text = what if named else f"{self.path}: {what}"
        return (
            f"exogenous file {text}; no order placed (state checkpointed; fix the file and restart)"
        )

    def values(self, ts_ns: np.ndarray) -> np.ndarray:
        """``(T, k)`` values at the bar times: the backtest's join, the same lag."""
        assert self.series is not None
        return asof_join(pd.DatetimeIndex(ts_ns), self.series, self.lag)

    def check_fresh(self, ts_ns: int, grace: str) -> None:
        """:class:`InputHalted` if a column is stale at the bar ``ts_ns`` (module rule);
        ``grace``: ``[paper] exog_grace``."""
        assert self.series is not None
        bar = pd.Timestamp(ts_ns)
        delta, extra = parse_lag(self.lag), parse_lag(grace)
        for col, name in zip(self.columns, self.names, strict=True):
            vals = self.series[col].to_numpy(dtype=np.float64)
            stamps = self.series.index[np.isfinite(vals)]
            known = stamps + delta
            pos = int(np.searchsorted(known.asi8, bar.value, side="right")) - 1
            if pos < 0:
                raise InputHalted(
                    f"exogenous file {self.path} is stale: no value of {name} known at bar "
                    f"{bar.date()} (lag {self.lag}); no order placed (state checkpointed; "
                    "update the file and restart)"
                )
            if len(stamps) < 2:
                continue
            cadence = pd.Timedelta(int(np.median(np.diff(stamps.asi8))))
            last = stamps[pos]
            due = (last + cadence) + delta + extra
            if bar > due:
                raise InputHalted(
                    f"exogenous file {self.path} is stale: last value of {name} dated "
                    f"{last.date()}, next one due by {due.date()} (cadence "
                    f"{cadence / pd.Timedelta(days=1):g}d, lag {self.lag}, grace {grace}); bar "
                    f"{bar.date()}: no order placed (state checkpointed; update the file "
                    "and restart)"
                )


def exog_files(exog: Sequence[Any]) -> list[ExogFile]:
    """The config's ``[[data.exog]]`` tables (already read once by the run's panel: the
    columns default to the file's as read now)."""
    out = []
    for ex in exog:
        cols = tuple(ex.columns) if ex.columns is not None else None
        if cols is None:
            cols = tuple(map(str, read_series(ex.path).columns))
        names = tuple(ex.names) if ex.names is not None else cols
        out.append(ExogFile(Path(ex.path), cols, names, str(ex.lag)))
    return out


def streamed_names(files: Sequence[ExogFile], panel_names: Sequence[str]) -> tuple[str, ...]:
    """The run's exogenous series a venue streams: the panel's (the bars' own first, the
    files' appended after them, :func:`engine.assemble.add_exog_files`) less the files'."""
    names = tuple(n for f in files for n in f.names)
    head = tuple(panel_names)[: len(panel_names) - len(names)]
    assert head + names == tuple(panel_names), (panel_names, names)
    return head


class ExogFileBars(WrappedSource):
    """A bar source whose bars carry the files' values after the streamed ones: each
    fetch refreshes the files, checks the latest bar, joins them onto every bar."""

    def __init__(
        self, inner: BarSource, files: list[ExogFile], streamed: tuple[str, ...], grace: str
    ) -> None:
        super().__init__(inner)
        self.files, self.streamed, self.grace = files, streamed, grace
        self.names = streamed + tuple(n for f in files for n in f.names)

    def history(self, after_ns: int | None, last: date, first: date | None = None) -> list[Bar]:
        bars = self.inner.history(after_ns, last, first)
        if not bars:
            return bars
        for f in self.files:
            f.refresh()
        for f in self.files:
            f.check_fresh(bars[-1].timestamp_ns, self.grace)
        ts = np.array([b.timestamp_ns for b in bars], dtype=np.int64)
        joined = np.hstack([f.values(ts) for f in self.files])
        return [replace(b, exog=self._exog(b, joined[i])) for i, b in enumerate(bars)]

    def _exog(self, bar: Bar, files: np.ndarray) -> np.ndarray:
        """The streamed values (the bar's own, from the venue or the config's panel), then
        the files' (NaN for streamed series a bar lacks: unknown)."""
        n = len(self.streamed)
        own = np.asarray(bar.exog, dtype=np.float64)
        head = own[:n] if own.shape[0] in (n, len(self.names)) else np.full(n, np.nan)
        return np.concatenate([head, files])


__all__ = ["ExogFile", "ExogFileBars", "exog_files", "streamed_names"]

"""Alpaca bars: live through ``StockDataStream``, history through
``StockHistoricalDataClient`` (alpaca-py unchanged), as the engine's cross-section bars.

:class:`BarAssembler` turns per-symbol bars into whole bars (every symbol at one time):
duplicates and out-of-order bars (at or before the last emitted time) are dropped and
logged; a bar still incomplete when a later time completes is dropped as a gap.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class CrossBar:
    """One time's bar for every symbol (symbol order fixed) plus exogenous values."""

    timestamp_ns: int
    open: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    exog: np.ndarray


def to_ns(ts: Any) -> int:
    """Nanoseconds since the epoch (UTC) of a datetime/Timestamp/str/int."""
    if isinstance(ts, int | np.integer):
        return int(ts)
    t = pd.Timestamp(ts)
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return int(t.value)


class BarAssembler:
    """Collect per-symbol bars until every symbol (and exogenous series) has the time."""

    def __init__(self, symbols: tuple[str, ...], exog_names: tuple[str, ...] = ()) -> None:
        self.symbols = tuple(symbols)
        self.exog_names = tuple(exog_names)
        self._cols = {s: j for j, s in enumerate(self.symbols + self.exog_names)}
        self._pending: dict[int, dict[str, tuple[float, float, float]]] = {}
        self.last_ns: int | None = None
        self.dropped = 0

    def add(
        self, symbol: str, ts_ns: int, open: float, close: float, volume: float
    ) -> list[CrossBar]:
        """Add one symbol's bar; returns the whole bars it completed (oldest first)."""
        if symbol not in self._cols:
            return []
        if self.last_ns is not None and ts_ns <= self.last_ns:
            self.dropped += 1
            log.warning(
                "bar.stale",
                symbol=symbol,
                ts=str(pd.Timestamp(ts_ns)),
                last=str(pd.Timestamp(self.last_ns)),
            )
            return []
        slot = self._pending.setdefault(ts_ns, {})
        if symbol in slot:
            self.dropped += 1
            log.warning("bar.duplicate", symbol=symbol, ts=str(pd.Timestamp(ts_ns)))
            return []
        slot[symbol] = (float(open), float(close), float(volume))
        if len(slot) < len(self._cols):
            return []
        for older in sorted(k for k in self._pending if k < ts_ns):
            missing = sorted(set(self._cols) - set(self._pending.pop(older)))
            self.dropped += 1
            log.warning("bar.gap", ts=str(pd.Timestamp(older)), missing=missing)
        del self._pending[ts_ns]
        self.last_ns = ts_ns
        n = len(self.symbols)
        vals = np.array([slot[s] for s in self.symbols + self.exog_names]).reshape(-1, 3)
        return [
            CrossBar(
                ts_ns,
                vals[:n, 0].copy(),
                vals[:n, 1].copy(),
                vals[:n, 2].copy(),
                vals[n:, 1].copy(),
            )
        ]


class AlpacaBarFeed:
    """Live bars from ``StockDataStream`` (in a thread) into a queue of :class:`CrossBar`.

    ``history(start)`` fetches the bars after ``start`` over REST (catch-up after a
    restart or a dropped stream), assembled the same way; ``cache`` (a Parquet path)
    keeps fetched history on disk.
    """

    def __init__(
        self,
        symbols: tuple[str, ...],
        exog_names: tuple[str, ...] = (),
        *,
        key: str,
        secret: str,
        url: str | None = None,
        stream_url: str | None = None,
        feed: str = "iex",
    ) -> None:
        from alpaca.data.enums import DataFeed
        from alpaca.data.historical.stock import StockHistoricalDataClient
        from alpaca.data.live.stock import StockDataStream

        self.symbols, self.exog_names = tuple(symbols), tuple(exog_names)
        self.assembler = BarAssembler(self.symbols, self.exog_names)
        self.queue: queue.Queue[CrossBar] = queue.Queue()
        self._lock = threading.Lock()
        self._hist = StockHistoricalDataClient(key, secret, url_override=url)
        self._hist._retry_codes = []
        self._stream = StockDataStream(key, secret, feed=DataFeed(feed), url_override=stream_url)
        self._stream._reconnect_min_backoff = 0.1
        self._stream._reconnect_max_backoff = 5.0
        self._thread: threading.Thread | None = None

    def _push(self, symbol: str, ts: Any, o: float, c: float, v: float) -> None:
        with self._lock:
            for bar in self.assembler.add(symbol, to_ns(ts), o, c, v):
                self.queue.put(bar)

    async def _on_bar(self, bar: Any) -> None:
        self._push(bar.symbol, bar.timestamp, bar.open, bar.close, bar.volume)

    def start(self) -> AlpacaBarFeed:
        self._stream.subscribe_bars(self._on_bar, *(self.symbols + self.exog_names))
        self._thread = threading.Thread(target=self._stream.run, name="bars", daemon=True)
        self._thread.start()
        return self

    def history(self, after_ns: int | None, cache: str | Path | None = None) -> int:
        """Fetch bars after ``after_ns`` (all if None) and queue the new whole bars."""
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        start = pd.Timestamp(after_ns + 1 if after_ns is not None else 0, tz="UTC")
        req = StockBarsRequest(
            symbol_or_symbols=list(self.symbols + self.exog_names),
            timeframe=TimeFrame.Day,
            start=start.to_pydatetime(),
        )
        data = self._hist.get_stock_bars(req).data  # type: ignore[union-attr]
        rows = [
            (to_ns(b.timestamp), s, b.open, b.close, b.volume)
            for s, bars in data.items()
            for b in bars
        ]
        rows.sort(key=lambda r: r[0])
        if cache is not None and rows:
            frame = pd.DataFrame(rows, columns=["timestamp", "symbol", "open", "close", "volume"])
            path = Path(cache)
            if path.exists():
                frame = pd.concat([pd.read_parquet(path), frame]).drop_duplicates(
                    ["timestamp", "symbol"], keep="last"
                )
            frame.to_parquet(path)
        before = self.queue.qsize()
        for ts, s, o, c, v in rows:
            self._push(s, ts, o, c, v)
        return self.queue.qsize() - before

    def stop(self) -> None:
        if self._stream._loop is not None:
            try:
                self._stream.stop()
            except Exception:  # best effort at shutdown
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)


__all__ = ["AlpacaBarFeed", "BarAssembler", "CrossBar", "to_ns"]

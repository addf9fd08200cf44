"""Alpaca daily bars as the engine's cross-section bars: completed sessions over REST
(``StockHistoricalDataClient``), a ``dailyBars`` stream subscription as the wake-up.

:class:`BarAssembler` turns per-symbol bars into whole bars (every symbol at one time):
duplicates and out-of-order bars (at or before the last emitted time) are dropped and
logged; a bar still incomplete when a later time completes is dropped as a gap.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import structlog

log = structlog.get_logger(__name__)
NY = ZoneInfo("America/New_York")


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


def session_date(ts: Any) -> date:
    """The trading date (New York) of a daily bar's timestamp.

    Alpaca stamps a daily bar at midnight New York (04:00/05:00 UTC); other servers use
    midnight UTC or the session's open/close. Six hours after the stamp, in New York,
    is the same calendar date for all of them.
    """
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    return (t.tz_convert(NY) + pd.Timedelta(hours=6)).date()


def date_ns(d: date) -> int:
    """The engine's timestamp of a daily bar: its session date at 00:00 (naive UTC)."""
    return int(pd.Timestamp(d).value)


class AlpacaBarFeed:
    """Daily bars from Alpaca: history over REST, completed days only, plus a wake-up.

    ``start()`` subscribes to the ``dailyBars`` stream channel *before* any backfill, so
    a bar published while history is being fetched is never lost: each stream message
    only sets :attr:`wake` (a daily bar on the stream is in progress until the session
    has closed, so its values are not used as the day's bar), and the completed day is
    then read over REST. ``history(after_ns, last_session)`` returns the whole bars of
    the sessions after ``after_ns`` up to ``last_session`` (a session the clock says has
    closed), de-duplicated by timestamp, with ``feed`` and ``adjustment`` honoured.
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
        adjustment: str = "all",
        timeout_s: float = 10.0,
        call: Any = None,
    ) -> None:
        from alpaca.data.enums import DataFeed
        from alpaca.data.historical.stock import StockHistoricalDataClient
        from alpaca.data.live.stock import StockDataStream

        from brokers.alpaca import bound_client

        self.symbols, self.exog_names = tuple(symbols), tuple(exog_names)
        self.feed, self.adjustment = feed, adjustment
        self.wake = threading.Event()
        self.stream_messages = 0
        self._hist = bound_client(
            StockHistoricalDataClient(key, secret, url_override=url), timeout_s
        )
        self._call = call or (lambda what, fn: fn())
        self._stream = StockDataStream(key, secret, feed=DataFeed(feed), url_override=stream_url)
        self._stream._reconnect_min_backoff = 0.1
        self._stream._reconnect_max_backoff = 5.0
        self._thread: threading.Thread | None = None

    async def _on_bar(self, bar: Any) -> None:
        self.stream_messages += 1
        self.wake.set()

    def start(self) -> AlpacaBarFeed:
        """Subscribe to the daily-bars channel (in a thread); call before backfilling."""
        self._stream.subscribe_daily_bars(self._on_bar, *(self.symbols + self.exog_names))
        self._thread = threading.Thread(target=self._run, name="bars", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            self._stream.run()
        except Exception as exc:  # the loop polls the clock anyway; no thread traceback
            log.warning("bars.stream_stopped", error=str(exc)[:200])

    def fetch(self, start: date, end: date) -> list[tuple[date, str, float, float, float]]:
        """Raw daily bars ``(session, symbol, open, close, volume)`` from REST."""
        from alpaca.data.enums import Adjustment, DataFeed
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        req = StockBarsRequest(
            symbol_or_symbols=list(self.symbols + self.exog_names),
            timeframe=TimeFrame.Day,
            start=datetime.combine(start, datetime.min.time(), tzinfo=NY),
            end=datetime.combine(end, datetime.max.time(), tzinfo=NY),
            feed=DataFeed(self.feed),
            adjustment=Adjustment(self.adjustment),
        )
        from alpaca.common.exceptions import APIError

        from brokers.alpaca import BrokerError, message_of, status_of

        try:
            data = self._call("get_stock_bars", lambda: self._hist.get_stock_bars(req)).data
        except APIError as exc:  # e.g. feed=sip on a free plan: 403
            raise BrokerError(
                f"daily bars (feed={self.feed}, adjustment={self.adjustment}) refused: "
                f"HTTP {status_of(exc)}: {message_of(exc)}"
            ) from None
        return [
            (session_date(b.timestamp), s, float(b.open), float(b.close), float(b.volume))
            for s, bars in data.items()
            for b in bars
        ]

    def history(
        self, after_ns: int | None, last_session: date, first: date | None = None
    ) -> list[CrossBar]:
        """Whole bars of the sessions after ``after_ns`` up to ``last_session`` (oldest first)."""
        start = (
            (pd.Timestamp(after_ns) + pd.Timedelta(days=1)).date()
            if after_ns is not None
            else (first or date(1970, 1, 1))
        )
        if start > last_session:
            return []
        rows = self.fetch(start, last_session)
        cols = {s: j for j, s in enumerate(self.symbols + self.exog_names)}
        by_day: dict[date, dict[str, tuple[float, float, float]]] = {}
        for d, s, o, c, v in rows:
            if s in cols and start <= d <= last_session:
                by_day.setdefault(d, {})[s] = (o, c, v)  # a repeated (day, symbol): last wins
        out: list[CrossBar] = []
        n = len(self.symbols)
        for d in sorted(by_day):
            slot = by_day[d]
            missing = sorted(set(cols) - set(slot))
            if missing:
                log.warning("bar.gap", session=str(d), missing=missing)
                continue
            vals = np.array([slot[s] for s in self.symbols + self.exog_names]).reshape(-1, 3)
            out.append(
                CrossBar(
                    date_ns(d),
                    vals[:n, 0].copy(),
                    vals[:n, 1].copy(),
                    vals[:n, 2].copy(),
                    vals[n:, 1].copy(),
                )
            )
        return out

    def stop(self) -> None:
        if self._stream._loop is not None:
            try:
                self._stream.stop()
            except Exception:  # best effort at shutdown
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)


__all__ = ["AlpacaBarFeed", "BarAssembler", "CrossBar", "date_ns", "session_date", "to_ns"]

"""Alpaca daily bars as the engine's :class:`~engine.live.ports.BarSource`: completed sessions
over REST (``StockHistoricalDataClient``), the ``dailyBars`` stream channel as the wake-up.

``start()`` subscribes to ``dailyBars`` *before* any backfill, so a bar published while
history is being fetched is never lost: each stream message only wakes the loop (a daily bar
on the stream is in progress until the session has closed, so its values are not used as the
day's bar), and the completed day is then read over REST. ``bars`` carries one-minute bars
and is not subscribed: a daily strategy must not take a minute bar for a day
(notes/alpaca-protocol.md, "Stream channels").
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import structlog
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.live.stock import StockDataStream
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame

from brokers.alpaca.rest import bound_client, message_of, status_of, stop_stream
from engine.live.ports import Bar, BrokerError

log = structlog.get_logger(__name__)
NY = ZoneInfo("America/New_York")


def session_date(ts: Any) -> date:
    """The trading date (New York) of a daily bar's timestamp.

    Alpaca stamps a daily bar at midnight New York (04:00/05:00 UTC); other servers use
    midnight UTC or the session's open/close. Six hours after the stamp, in New York, is the
    same calendar date for all of them.
    """
    t = pd.Timestamp(ts)
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    return (t.tz_convert(NY) + pd.Timedelta(hours=6)).date()


def date_ns(d: date) -> int:
    """The engine's timestamp of a daily bar: its session date at 00:00 (naive UTC)."""
    return int(pd.Timestamp(d).value)


class AlpacaBars:
    """Daily bars from Alpaca: history over REST (completed days only), plus a wake-up."""

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
        call: Callable[[str, Callable[[], Any]], Any] | None = None,
    ) -> None:
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

    def start(self) -> None:
        """Subscribe to the daily-bars channel (in a thread); call before backfilling."""
        self._stream.subscribe_daily_bars(self._on_bar, *(self.symbols + self.exog_names))
        self._thread = threading.Thread(target=self._run, name="bars", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._stream.run()
        except Exception as exc:  # the loop polls the clock anyway; no thread traceback
            log.warning("bars.stream_stopped", error=str(exc)[:200])

    def wait(self, timeout_s: float) -> None:
        self.wake.wait(timeout_s)
        self.wake.clear()

    def fetch(self, start: date, end: date) -> list[tuple[date, str, float, float, float]]:
        """Raw daily bars ``(session, symbol, open, close, volume)`` from REST."""
        req = StockBarsRequest(
            symbol_or_symbols=list(self.symbols + self.exog_names),
            timeframe=TimeFrame.Day,
            start=datetime.combine(start, datetime.min.time(), tzinfo=NY),
            end=datetime.combine(end, datetime.max.time(), tzinfo=NY),
            feed=DataFeed(self.feed),
            adjustment=Adjustment(self.adjustment),
        )
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

    def unserved(self, start: date, end: date) -> list[str]:
        """The series (traded symbols and data-only inputs) with no daily bar between
        ``start`` and ``end``: Alpaca answers 200 without the symbols it lacks (no index,
        yield or VIX series), which would otherwise be a ``bar.gap`` on every session."""
        have = {s for _, s, *_ in self.fetch(start, end)}
        return [s for s in self.symbols + self.exog_names if s not in have]

    def history(self, after_ns: int | None, last: date, first: date | None = None) -> list[Bar]:
        """Whole bars of the sessions after ``after_ns`` up to ``last`` (oldest first),
        de-duplicated by session; a session missing a symbol is skipped (logged)."""
        start = (
            (pd.Timestamp(after_ns) + pd.Timedelta(days=1)).date()
            if after_ns is not None
            else (first or date(1970, 1, 1))
        )
        if start > last:
            return []
        names = self.symbols + self.exog_names
        by_day: dict[date, dict[str, tuple[float, float, float]]] = {}
        for d, s, o, c, v in self.fetch(start, last):
            if s in names and start <= d <= last:
                by_day.setdefault(d, {})[s] = (o, c, v)  # a repeated (day, symbol): last wins
        out: list[Bar] = []
        n = len(self.symbols)
        for d in sorted(by_day):
            slot = by_day[d]
            missing = sorted(set(names) - set(slot))
            if missing:
                log.warning("bar.gap", session=str(d), missing=missing)
                continue
            vals = np.array([slot[s] for s in names]).reshape(-1, 3)
            out.append(
                Bar(
                    date_ns(d),
                    vals[:n, 0].copy(),
                    vals[:n, 1].copy(),
                    vals[:n, 2].copy(),
                    vals[n:, 1].copy(),
                )
            )
        return out

    def close(self) -> None:
        stop_stream(self._stream, self._thread)


__all__ = ["AlpacaBars", "date_ns", "session_date"]

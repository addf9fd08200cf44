"""Market time and bar sourcing: which sessions have completed, which decision may trade,
and where the bars come from (the venue's history, the config's data, a bar stream).

When a bar may trade: only the decision on the **latest completed session** ``d``, and only
if the next session's open ``next_open(d)`` is at or after ``trade_from`` (the venue's clock
at the loop's first start, kept in the checkpoint). So a fresh start acts on the latest bar
only between that session's close and the next open (its orders queue for the open, where
the backtest fills them); a start during a session waits for tonight's close; a restart
catches up the bars it missed without orders and acts once, on the latest decision.
"""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
import structlog

from engine.ground.bars import BarPanel
from engine.live.ports import Bar, BarSource, MarketClock, Session
from engine.live.types import BrokerError

log = structlog.get_logger("regime-engine.paper")


def day_of(ts_ns: int) -> date:
    """The session date of a daily bar's engine timestamp (its date at 00:00)."""
    return pd.Timestamp(ts_ns).date()


class Sessions:
    """The venue's calendar from the warm-up start to a week ahead (cached, extended)."""

    def __init__(self, clock: MarketClock, history_days: int) -> None:
        self.clock, self.history_days = clock, history_days
        self.sessions: list[Session] = []
        self._due_logged: date | None = None

    def refresh(self, now: datetime, last_ts: int | None) -> list[Session]:
        if not self.sessions or self.sessions[-1].date < now.date() + timedelta(days=4):
            start = (
                day_of(last_ts) - timedelta(days=10)
                if last_ts is not None
                else now.date() - timedelta(days=self.history_days)
            )
            self.sessions = self.clock.calendar(start, now.date() + timedelta(days=10))
        return self.sessions

    def completed(self, now: datetime) -> list[Session]:
        return [s for s in self.sessions if s.close <= now]

    def next_after(self, d: date) -> Session | None:
        return next((s for s in self.sessions if s.date > d), None)

    def actionable(self, d: date, trade_from: datetime | None) -> bool:
        """May the decision on session ``d`` (the latest completed one) trade?"""
        nxt = self.next_after(d)
        return nxt is not None and trade_from is not None and nxt.open >= trade_from

    def why_not(self, d: date) -> str:
        if self.next_after(d) is None:
            return "no next session in the calendar"
        return "next open before trade_from"

    def superseded(self, d: date) -> bool:
        """A later session has closed since the bars were fetched (a slow warm-up, or a
        compressed simulated clock): the decision on ``d`` is no longer the latest."""
        now = self.clock.clock().timestamp
        return any(d < s.date and s.close <= now for s in self.refresh(now, None))

    def log_due(self, now: datetime, force: bool = False) -> None:
        nxt = next((s for s in self.sessions if s.close > now), None)
        if nxt is not None and (force or self._due_logged != nxt.date):
            self._due_logged = nxt.date
            log.info("paper.next_decision", due=str(nxt.close), session=str(nxt.date))


class WrappedSource:
    """A bar source around another (``inner``): everything but :meth:`history` is the
    inner source's; subclasses change what ``history`` returns."""

    def __init__(self, inner: BarSource) -> None:
        self.inner = inner

    def start(self) -> None:
        self.inner.start()

    def unserved(self, start: date, end: date) -> list[str]:
        check = getattr(self.inner, "unserved", None)
        return list(check(start, end)) if check is not None else []

    def history(self, after_ns: int | None, last: date, first: date | None = None) -> list[Bar]:
        return self.inner.history(after_ns, last, first)

    def wait(self, timeout_s: float) -> None:
        self.inner.wait(timeout_s)

    def close(self) -> None:
        self.inner.close()


class PanelWarmup(WrappedSource):
    """``history = "data"``: the first warm-up from the config's panel, then the venue's."""

    def __init__(self, panel: BarPanel, inner: BarSource) -> None:
        super().__init__(inner)
        self.panel = panel

    def history(self, after_ns: int | None, last: date, first: date | None = None) -> list[Bar]:
        if after_ns is not None:
            return self.inner.history(after_ns, last, first)
        p = self.panel
        rows = [p.bar(t) for t in range(p.n_bars) if day_of(int(p.timestamps_ns[t])) <= last]
        return rows + self.inner.history(rows[-1].timestamp_ns if rows else None, last)


class StreamBars:
    """Bars pushed by a stream (``next(timeout_ms) -> Bar | None``, e.g. the ZeroMQ feed),
    buffered until their session has completed; the venue's source only wakes the loop."""

    def __init__(self, stream: Any, wake: BarSource) -> None:
        self.stream, self.wake = stream, wake
        self._buf: list[Bar] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        self.wake.start()

    def _drain(self) -> None:
        while (bar := self.stream.next(0)) is not None:
            with self._lock:
                self._buf.append(bar)

    def history(self, after_ns: int | None, last: date, first: date | None = None) -> list[Bar]:
        self._drain()
        with self._lock:
            fresh = [b for b in self._buf if after_ns is None or b.timestamp_ns > after_ns]
            out = [b for b in fresh if day_of(b.timestamp_ns) <= last]
            self._buf = [b for b in fresh if day_of(b.timestamp_ns) > last]
        return out

    def wait(self, timeout_s: float) -> None:
        self.wake.wait(timeout_s)

    def close(self) -> None:
        self.wake.close()
        self.stream.close()


__all__ = ["PanelWarmup", "Sessions", "StreamBars", "day_of"]


def check_inputs_served(v: Any, days: int) -> None:
    """Every series the strategy and detector read is served live, or the run stops here
    (before warm-up, exit 2) naming it: else each session would be a ``bar.gap``."""
    check = getattr(v.bars, "unserved", None)
    if check is None:
        return
    today = v.clock.clock().timestamp.date()
    missing = check(today - timedelta(days=days), today)
    if missing:
        raise BrokerError(
            f"input series {', '.join(missing)} not served by {v.broker.url} (no daily bar "
            f"in the {days} days to {today}); the strategy/detector reads it. "
            "Provide it as a symbol the broker serves (a tradable proxy: e.g. IEF/TLT for "
            "Treasury yields, VIXY for the VIX; Alpaca has no index, yield or VIX series) "
            "or remove it from the config's inputs"
        )

"""The ports of the live loop: what the engine asks of a venue, in the engine's own types.

A venue (``brokers/alpaca``, or :mod:`engine.live.testing` for unit tests) implements
:class:`Broker`, :class:`MarketClock` and :class:`BarSource` and translates its SDK's types
into the ones below at its edge: no vendor type, enum or exception reaches the loop.

Errors: :class:`BrokerError` ends a run with one line (exit 2), :class:`BrokerUnavailable`
is an outage (retried by the loop, exit 3 when it lasts), :class:`OrderRefused` is one
order refused by the venue (HTTP 4xx: buying power, wash trade, ...), a state of that order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol

from engine.live.types import (
    FINAL,
    Account,
    AccountBlocked,
    Asset,
    Bar,
    BrokerError,
    BrokerUnavailable,
    Clock,
    InputHalted,
    Order,
    OrderRefused,
    OrderStatus,
    Session,
    TradeEvent,
    TradeUpdate,
    TradingHalted,
)


class Broker(Protocol):
    """Account, positions, orders and trade updates at a venue."""

    endpoint: str  # "PAPER", "LIVE", "CUSTOM", "FAKE": named in the first log line
    url: str
    retried: int  # calls retried so far (the summary)

    def connect(self, budget_s: float) -> Account:
        """First contact: the account within ``budget_s`` (else BrokerUnavailable)."""
        ...

    def account(self, budget_s: float | None = None) -> Account: ...
    def asset(self, symbol: str) -> Asset | None: ...
    def positions(self) -> dict[str, float]: ...
    def open_orders(self) -> list[Order]: ...
    def order(self, order_id: str) -> Order: ...
    def order_by_client_id(self, client_order_id: str) -> Order | None: ...

    def submit(self, symbol: str, qty: float, client_order_id: str) -> Order:
        """A day market order for signed ``qty``; a known client id returns that order;
        :class:`OrderRefused` when the venue refuses it."""
        ...

    def cancel(self, order_id: str) -> bool: ...
    def stream_trade_updates(self, handler: Callable[[TradeUpdate], None]) -> None: ...
    def close(self) -> None: ...


class MarketClock(Protocol):
    """The venue's clock and calendar (and whether its market has ended: a replay)."""

    def clock(self) -> Clock: ...
    def calendar(self, start: date, end: date) -> list[Session]: ...
    def finished(self) -> bool: ...


class BarSource(Protocol):
    """Completed daily bars: history over the venue's API, a wake-up when one may be new."""

    def start(self) -> None:
        """Subscribe to the live channel (before any backfill: no bar lost between)."""
        ...

    def history(self, after_ns: int | None, last: date, first: date | None = None) -> list[Bar]:
        """Whole bars of the sessions after ``after_ns`` (else from ``first``) to ``last``."""
        ...

    def wait(self, timeout_s: float) -> None:
        """Return when a new bar may be available, or after ``timeout_s``."""
        ...

    def close(self) -> None: ...


class Timer(Protocol):
    """Wall time of the loop (timeouts, back-off, waits): real, or stepped in tests."""

    def monotonic(self) -> float: ...
    def wait(self, event: threading.Event, timeout_s: float) -> bool: ...


class RealTimer:
    def monotonic(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, timeout_s: float) -> bool:
        return event.wait(timeout_s)


@dataclass(frozen=True)
class VenueRequest:
    """What a venue is opened for: the loop's settings, the symbols it trades, the data-only
    symbols it reads as bars, the run's config and panel (a simulated venue replays it)."""

    paper: Any  # engine.live.config.PaperConfig
    symbols: tuple[str, ...]
    data_symbols: tuple[str, ...]
    config: Any  # engine.config.RunConfig
    panel: Any  # engine.ground.bars.BarPanel


@dataclass
class Venue:
    """What the loop trades through; ``on_close`` releases what the venue started."""

    broker: Broker
    clock: MarketClock
    bars: BarSource
    timer: Timer = field(default_factory=RealTimer)
    on_close: Callable[[], None] | None = None

    def close(self) -> None:
        for stop in (self.bars.close, self.broker.close, self.on_close):
            if stop is not None:
                try:
                    stop()
                except Exception:  # best effort at shutdown
                    pass


__all__ = [
    "FINAL",
    "Account",
    "AccountBlocked",
    "Asset",
    "Bar",
    "BarSource",
    "Broker",
    "BrokerError",
    "BrokerUnavailable",
    "Clock",
    "InputHalted",
    "MarketClock",
    "Order",
    "OrderRefused",
    "OrderStatus",
    "RealTimer",
    "Session",
    "Timer",
    "TradeEvent",
    "TradeUpdate",
    "TradingHalted",
    "Venue",
    "VenueRequest",
]

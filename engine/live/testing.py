"""A venue in memory for unit tests of the loop: no HTTP, no threads, no sleeps.

:class:`SteppableClock` is the market clock (sessions 09:30-16:00 New York, one per panel
row) and the loop's timer: time moves only when a test steps it (``to_open``, ``to_close``,
``step``) or when the loop waits (a wait while the market is closed jumps to the next open,
where queued orders fill). :class:`FakeBars` serves the panel's completed sessions;
:class:`FakeBroker` keeps an account in memory: day market orders queue while the market is
closed and fill at the session's open price (at the current price while it is open),
unfilled remainders expire at the close, trade updates are delivered at once. It refuses what
Alpaca refuses (a buy beyond the buying power, a sell of more than is held, an order while an
opposite-side one is open: the wash-trade guard) and can reject or part-fill on demand.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.ground.bars import BarPanel
from engine.live.ports import (
    Account,
    Asset,
    Bar,
    Clock,
    Order,
    OrderRefused,
    OrderStatus,
    Session,
    TradeEvent,
    TradeUpdate,
    Venue,
)
from engine.live.sessions import day_of

NY = ZoneInfo("America/New_York")


class SteppableClock:
    """Market clock and timer in one; ``listeners`` hear ``("open"|"close", session)``."""

    def __init__(self, dates: list[date]) -> None:
        self.sessions = [
            Session(d, datetime.combine(d, time(9, 30), NY), datetime.combine(d, time(16), NY))
            for d in dates
        ]
        self.now = self.sessions[0].open - timedelta(hours=1)
        self.t = 0.0
        self.listeners: list[Callable[[str, Session], None]] = []

    def clock(self) -> Clock:
        return Clock(self.now, self.session_open() is not None)

    def calendar(self, start: date, end: date) -> list[Session]:
        return [s for s in self.sessions if start <= s.date <= end]

    def finished(self) -> bool:
        return self.now >= self.sessions[-1].close

    def session_open(self) -> Session | None:
        return next((s for s in self.sessions if s.open <= self.now < s.close), None)

    def advance_to(self, when: datetime) -> None:
        """Move to ``when``, telling the listeners of every open and close passed."""
        marks = sorted(
            [(s.open, "open", s) for s in self.sessions]
            + [(s.close, "close", s) for s in self.sessions],
            key=lambda m: m[0],
        )
        for at, kind, s in marks:
            if self.now < at <= when:
                self.t += (at - self.now).total_seconds()
                self.now = at
                for f in self.listeners:
                    f(kind, s)
        self.t += max((when - self.now).total_seconds(), 0.0)
        self.now = max(self.now, when)

    def at_close_of(self, i: int) -> None:
        """Stand at the close of session ``i`` (its bar complete), hearing what passes."""
        self.advance_to(self.sessions[i].close)

    def to_open(self) -> None:
        self.advance_to(next(s.open for s in self.sessions if s.open > self.now))

    def to_close(self) -> None:
        self.advance_to(next(s.close for s in self.sessions if s.close > self.now))

    def step(self) -> None:
        """One whole session: to the next open, then to its close."""
        self.to_open()
        self.to_close()

    # ------------------------------------------------------------------ timer
    def monotonic(self) -> float:
        return self.t

    def wait(self, event: threading.Event, timeout_s: float) -> bool:
        if not event.is_set():
            nxt = next((s.open for s in self.sessions if s.open > self.now), None)
            if self.session_open() is None and nxt is not None:
                self.advance_to(nxt)  # nothing happens overnight: on to the open
            else:
                self.advance_to(self.now + timedelta(seconds=timeout_s))
        return event.is_set()


class FakeBars:
    """The panel's rows as completed daily bars (a session is complete at its close)."""

    def __init__(self, panel: BarPanel, clock: SteppableClock) -> None:
        self.panel, self.clock = panel, clock

    def start(self) -> None:
        pass

    def history(self, after_ns: int | None, last: date, first: date | None = None) -> list[Bar]:
        done = {s.date for s in self.clock.sessions if s.close <= self.clock.now}
        out = []
        for t in range(self.panel.n_bars):
            ts = int(self.panel.timestamps_ns[t])
            d = day_of(ts)
            if (after_ns is None or ts > after_ns) and d <= last and d in done:
                if first is None or d >= first:
                    out.append(self.panel.bar(t))
        return out

    def wait(self, timeout_s: float) -> None:
        """The loop waits for a new bar: the market moves on to its next open or close
        (so ``Node.run`` drives a whole replay; unit tests calling ``poll`` step it)."""
        marks = [m for s in self.clock.sessions for m in (s.open, s.close) if m > self.clock.now]
        if marks:
            self.clock.advance_to(min(marks))

    def close(self) -> None:
        pass


class FakeBroker:
    """An account in memory; ``reject``/``partial`` inject refusals and partial fills."""

    endpoint, url = "FAKE", "memory://fake"

    def __init__(self, panel: BarPanel, clock: SteppableClock, cash: float = 100_000.0) -> None:
        self.panel, self.clock, self.cash = panel, clock, cash
        self.symbols = tuple(panel.symbols)
        self.rows = {day_of(int(ts)): i for i, ts in enumerate(panel.timestamps_ns)}
        self.held: dict[str, float] = {}
        self.orders: dict[str, Order] = {}
        self.submissions: list[str] = []  # client order ids accepted, in order
        self.refusals: list[tuple[str, str]] = []  # (client order id, reason)
        self.reject: set[str] = set()  # symbols whose next orders the venue rejects
        self.partial: dict[str, float] = {}  # symbol -> fraction filled at the open
        self.min_position: dict[str, float] = {}
        self.retried = 0
        self.blocked = ""  # why the account may not trade ("" : it may)
        self._handler: Callable[[TradeUpdate], None] = lambda u: None
        clock.listeners.append(self._on_market)

    # ------------------------------------------------------------------ prices
    def price(self, symbol: str, at_open: bool = False) -> float:
        now = self.clock.now
        days = [s for s in self.clock.sessions if s.open <= now]
        s = days[-1] if days else self.clock.sessions[0]
        field = self.panel.open if at_open or now < s.close else self.panel.close
        return float(field[self.rows[s.date], self.symbols.index(symbol)])

    # ------------------------------------------------------------------ Broker
    def connect(self, budget_s: float) -> Account:
        return self.account()

    def account(self, budget_s: float | None = None) -> Account:
        equity = self.cash + sum(q * self.price(s) for s, q in self.held.items())
        bp = self.cash - self._open_buys()
        return Account("FAKE-1", "ACTIVE", self.cash, bp, equity, bool(self.blocked), self.blocked)

    def asset(self, symbol: str) -> Asset | None:
        return Asset(symbol, True, True)

    def positions(self) -> dict[str, float]:
        return {s: q for s, q in self.held.items() if q != 0}

    def open_orders(self) -> list[Order]:
        return [o for o in self.orders.values() if not o.final]

    def order(self, order_id: str) -> Order:
        return self.orders[order_id]

    def order_by_client_id(self, client_order_id: str) -> Order | None:
        return next((o for o in self.orders.values() if o.client_order_id == client_order_id), None)

    def submit(self, symbol: str, qty: float, client_order_id: str) -> Order:
        known = self.order_by_client_id(client_order_id)
        if known is not None:
            return known
        why = "account is not allowed to trade" if self.blocked else self._refusal(symbol, qty)
        if why is not None:
            self.refusals.append((client_order_id, why))
            raise OrderRefused(why, 403 if "wash" not in why else 422)
        o = Order(f"o{len(self.orders)}", client_order_id, symbol, 1.0 if qty > 0 else -1.0,
                  abs(qty), 0.0, OrderStatus.NEW)  # fmt: skip
        self.orders[o.id] = o
        self.submissions.append(client_order_id)
        if symbol in self.reject:
            return self._event(o, TradeEvent.REJECTED, OrderStatus.REJECTED)
        if self.clock.session_open() is not None:
            return self._fill(o, self.price(symbol))
        return o

    def cancel(self, order_id: str) -> bool:
        o = self.orders.get(order_id)
        if o is None or o.final:
            return False
        self._event(o, TradeEvent.CANCELED, OrderStatus.CANCELED)
        return True

    def stream_trade_updates(self, handler: Callable[[TradeUpdate], None]) -> None:
        self._handler = handler

    def close(self) -> None:
        pass

    # ------------------------------------------------------------------ the market
    def _open_buys(self) -> float:
        return sum(o.remaining * self.price(o.symbol) for o in self.open_orders() if o.sign > 0)

    def _refusal(self, symbol: str, qty: float) -> str | None:
        if any(o.symbol == symbol and o.sign * qty < 0 for o in self.open_orders()):
            return "potential wash trade detected. use complex orders"
        if qty > 0 and qty * self.price(symbol) > self.cash - self._open_buys() + 1e-6:
            return "insufficient buying power"
        selling = -sum(o.remaining for o in self.open_orders() if o.symbol == symbol and o.sign < 0)
        if qty < 0 and -qty > self.held.get(symbol, 0.0) - selling + 1e-9:
            return "insufficient qty available for order"
        return None

    def _on_market(self, kind: str, s: Session) -> None:
        for o in self.open_orders():
            if kind == "open":
                self._fill(o, self.price(o.symbol, at_open=True), self.partial.get(o.symbol, 1.0))
            else:  # day orders not filled by the close expire
                self._event(o, TradeEvent.EXPIRED, OrderStatus.EXPIRED)

    def _fill(self, o: Order, price: float, fraction: float = 1.0) -> Order:
        q = o.qty * fraction
        self.held[o.symbol] = self.held.get(o.symbol, 0.0) + o.sign * q
        self.cash -= o.sign * q * price
        self.min_position[o.symbol] = min(self.min_position.get(o.symbol, 0.0), self.held[o.symbol])
        whole = fraction >= 1.0
        o = Order(o.id, o.client_order_id, o.symbol, o.sign, o.qty, q,
                  OrderStatus.FILLED if whole else OrderStatus.PARTIALLY_FILLED)  # fmt: skip
        event = TradeEvent.FILL if whole else TradeEvent.PARTIAL_FILL
        return self._event(o, event, o.status, q, price)

    def _event(
        self, o: Order, event: TradeEvent, status: OrderStatus, qty: float | None = None,
        price: float | None = None,
    ) -> Order:  # fmt: skip
        o = Order(o.id, o.client_order_id, o.symbol, o.sign, o.qty, o.filled_qty, status)
        self.orders[o.id] = o
        pq = self.held.get(o.symbol, 0.0)
        self._handler(TradeUpdate(event, o, 0, qty, price, pq if qty is not None else None))
        return o


def fake_venue(panel: BarPanel, history: int, cash: float = 100_000.0) -> Venue:
    """Clock, bars and broker over ``panel``, standing at the close of session
    ``history - 1`` (``history`` sessions complete, the next open ahead)."""
    clock = SteppableClock([day_of(int(ts)) for ts in panel.timestamps_ns])
    clock.at_close_of(history - 1)
    broker = FakeBroker(panel, clock, cash)
    return Venue(broker=broker, clock=clock, bars=FakeBars(panel, clock), timer=clock)


__all__ = ["FakeBars", "FakeBroker", "SteppableClock", "fake_venue"]

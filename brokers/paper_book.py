"""The broker's book as the loop sees it: positions and orders, updated by the
trade-updates stream and re-read over REST (the truth) at every decision.

Order statuses are compared as :class:`alpaca.trading.enums.OrderStatus` members (never
``str()`` of them); events as :class:`alpaca.trading.enums.TradeEvent` members.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from alpaca.trading.enums import OrderSide, OrderStatus, TradeEvent

FINAL = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.REJECTED,
        OrderStatus.REPLACED,
        OrderStatus.DONE_FOR_DAY,
        OrderStatus.STOPPED,
        OrderStatus.SUSPENDED,
    }
)
EVENT_STATUS = {
    TradeEvent.FILL: OrderStatus.FILLED,
    TradeEvent.PARTIAL_FILL: OrderStatus.PARTIALLY_FILLED,
    TradeEvent.CANCELED: OrderStatus.CANCELED,
    TradeEvent.EXPIRED: OrderStatus.EXPIRED,
    TradeEvent.REJECTED: OrderStatus.REJECTED,
    TradeEvent.NEW: OrderStatus.NEW,
    TradeEvent.PENDING_CANCEL: OrderStatus.PENDING_CANCEL,
}


def as_status(value: Any) -> OrderStatus:
    """An ``OrderStatus`` from the model's enum or its wire string."""
    return value if isinstance(value, OrderStatus) else OrderStatus(str(value))


@dataclass
class OrderView:
    """What the loop needs of one order."""

    id: str
    client_order_id: str
    symbol: str
    sign: float  # +1 buy, -1 sell
    qty: float
    filled_qty: float
    status: OrderStatus
    reason: str | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def remaining(self) -> float:
        """Signed quantity still to fill (0 once final)."""
        return 0.0 if self.final else self.sign * max(self.qty - self.filled_qty, 0.0)

    @classmethod
    def of(cls, o: Any) -> OrderView:
        side = o.side if isinstance(o.side, OrderSide) else OrderSide(str(o.side))
        return cls(
            id=str(o.id),
            client_order_id=str(o.client_order_id),
            symbol=str(o.symbol),
            sign=1.0 if side == OrderSide.BUY else -1.0,
            qty=float(o.qty or 0.0),
            filled_qty=float(o.filled_qty or 0.0),
            status=as_status(o.status),
        )


@dataclass
class LiveBook:
    """Positions and orders; thread-safe (the stream thread writes, the loop reads)."""

    positions: dict[str, float] = field(default_factory=dict)
    orders: dict[str, OrderView] = field(default_factory=dict)
    known_ids: set[str] = field(default_factory=set)
    fills: int = 0
    events: int = 0
    changed: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sync(self, positions: dict[str, float], open_orders: list[Any]) -> None:
        """Replace the book with the broker's REST view (open orders only)."""
        with self._lock:
            self.positions = dict(positions)
            fresh = {str(o.id): OrderView.of(o) for o in open_orders}
            # an order the broker no longer lists as open is closed: keep only final views
            self.orders = {k: v for k, v in self.orders.items() if v.final} | fresh
            self.known_ids.update(v.client_order_id for v in fresh.values())

    def track(self, o: Any) -> OrderView:
        v = OrderView.of(o)
        with self._lock:
            self.orders[v.id] = v
            self.known_ids.add(v.client_order_id)
        return v

    def on_update(self, event: TradeEvent, o: Any, position_qty: float | None) -> OrderView:
        """Apply one trade update; returns the order's new view."""
        v = OrderView.of(o)
        status = EVENT_STATUS.get(event)
        if status in FINAL and not v.final:  # the event is newer than the order snapshot
            v.status = status
        with self._lock:
            self.orders[v.id] = v
            self.known_ids.add(v.client_order_id)
            if position_qty is not None and event in (TradeEvent.FILL, TradeEvent.PARTIAL_FILL):
                self.positions[v.symbol] = float(position_qty)
            self.events += 1
            if event in (TradeEvent.FILL, TradeEvent.PARTIAL_FILL):
                self.fills += 1
        self.changed.set()
        return v

    def open_qty(self) -> dict[str, float]:
        """Signed remaining quantity of open orders by symbol."""
        out: dict[str, float] = {}
        with self._lock:
            for v in self.orders.values():
                if not v.final:
                    out[v.symbol] = out.get(v.symbol, 0.0) + v.remaining
        return out

    def open_orders(self) -> list[OrderView]:
        with self._lock:
            return [v for v in self.orders.values() if not v.final]

    def get(self, order_id: str) -> OrderView | None:
        with self._lock:
            return self.orders.get(order_id)


__all__ = ["FINAL", "LiveBook", "OrderView", "as_status"]

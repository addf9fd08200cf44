"""The broker's book as the loop sees it: positions and orders, updated by the trade-updates
stream (a venue thread) and re-read from the broker (the truth) at every decision."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any

from engine.live.types import EVENT_STATUS, FINAL, Order, TradeEvent, TradeUpdate

FILL_EVENTS = (TradeEvent.FILL, TradeEvent.PARTIAL_FILL)


@dataclass
class LiveBook:
    """Positions and orders; thread-safe (the stream thread writes, the loop reads)."""

    positions: dict[str, float] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    fills: int = 0
    events: int = 0
    changed: threading.Event = field(default_factory=threading.Event)
    fill_log: list[dict[str, Any]] = field(default_factory=list)  # not yet journalled
    _seen: set[tuple[str, float]] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def sync(self, positions: dict[str, float], open_orders: list[Order]) -> None:
        """Replace the book with the broker's view (open orders only)."""
        with self._lock:
            self.positions = dict(positions)
            fresh = {o.id: o for o in open_orders}
            # an order the broker no longer lists as open is closed: keep only final views
            self.orders = {k: v for k, v in self.orders.items() if v.final} | fresh

    def track(self, o: Order) -> Order:
        """Keep the venue's view of ``o``; a final view already here (a stream event that
        overtook the submit's or poll's answer) is never replaced by an older open one."""
        with self._lock:
            cur = self.orders.get(o.id)
            if cur is not None and cur.final and not o.final:
                return cur
            self.orders[o.id] = o
        return o

    def on_update(self, u: TradeUpdate) -> Order:
        """Apply one trade update; returns the order's new view."""
        o = u.order
        status = EVENT_STATUS.get(u.event)
        if status in FINAL and not o.final:  # the event is newer than the order snapshot
            o = dataclasses.replace(o, status=status)
        with self._lock:
            self.orders[o.id] = o
            if u.position_qty is not None and u.event in FILL_EVENTS:
                self.positions[o.symbol] = float(u.position_qty)
            self.events += 1
            if u.event in FILL_EVENTS:
                self.fills += 1
                self._log_fill(u)
        self.changed.set()
        return o

    def _log_fill(self, u: TradeUpdate) -> None:
        """Keep a fill for the journal (once: a redelivered event has the same order id and
        cumulative filled quantity)."""
        o = u.order
        key = (o.id, float(o.filled_qty))
        if key in self._seen or u.qty is None or u.price is None:
            return
        self._seen.add(key)
        self.fill_log.append(
            {
                "ts": u.timestamp_ns,
                "order_id": o.id,
                "client_order_id": o.client_order_id,
                "symbol": o.symbol,
                "side": "buy" if o.sign > 0 else "sell",
                "qty": float(u.qty),
                "price": float(u.price),
                "commission": u.commission,
            }
        )

    def take_fills(self) -> list[dict[str, Any]]:
        """The fills logged since the last call (the loop journals them)."""
        with self._lock:
            out, self.fill_log = self.fill_log, []
        return out

    def open_qty(self) -> dict[str, float]:
        """Signed remaining quantity of open orders by symbol."""
        out: dict[str, float] = {}
        with self._lock:
            for v in self.orders.values():
                if not v.final:
                    out[v.symbol] = out.get(v.symbol, 0.0) + v.remaining
        return out

    def open_orders(self) -> list[Order]:
        with self._lock:
            return [v for v in self.orders.values() if not v.final]

    def get(self, order_id: str) -> Order | None:
        with self._lock:
            return self.orders.get(order_id)


__all__ = ["LiveBook"]

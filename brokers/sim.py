"""A simulated broker over the engine's own cost and fill kernels.

Market orders fill at the next bar's open through :func:`execute_pending_nb` (the very
kernel the backtest uses: sells first, buys scaled to the cash, participation cap, lots),
so an account driven by the engine's orders ends with the engine's positions, bit for bit.
Limit orders fill at the first bar whose open crosses the limit (at the open, with costs).

Fault knobs (for tests): ``reject_next`` rejects the next N orders; ``partial_next`` fills
the next N orders halfway, then cancels the rest.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.core import layout as L
from engine.core.execution_nb import execute_pending_nb, fill_costs_nb, mark_to_market_nb

OPEN_STATUSES = ("new", "accepted", "partially_filled")


class OrderError(ValueError):
    """An order the broker refuses at submission (HTTP 422/403 at the exchange)."""

    def __init__(self, status: int, message: str, code: int = 40010000) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass
class SimOrder:
    """One order and its fill state (quantities unsigned, ``side`` gives the sign)."""

    id: str
    client_order_id: str
    symbol: str
    side: str  # "buy" | "sell"
    type: str  # "market" | "limit"
    time_in_force: str
    qty: float | None
    notional: float | None
    limit_price: float | None
    created_ns: int
    status: str = "new"
    filled_qty: float = 0.0
    filled_avg_price: float | None = None
    updated_ns: int = 0
    partial_then_cancel: bool = False
    fill_ns: int | None = None
    cancel_ns: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "buy" else -1.0

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def remaining(self, ref: float) -> float:
        """Unsigned quantity still to fill (notional orders sized at ``ref``)."""
        if self.qty is None:
            assert self.notional is not None
            self.qty = self.notional / ref
        return max(self.qty - self.filled_qty, 0.0)


@dataclass(frozen=True)
class TradeEvent:
    """A trade update: ``event`` in new/fill/partial_fill/canceled/rejected."""

    event: str
    order: SimOrder
    timestamp_ns: int
    price: float | None = None
    qty: float | None = None
    position_qty: float | None = None


class SimBroker:
    """Cash, positions and open orders of one account, filled bar by bar.

    ``costs`` is the engine's ``(N, N_COST)`` table and ``eparams`` its execution
    parameters (cash check, leverage); ``symbols`` fixes the column order.
    """

    def __init__(
        self,
        symbols: tuple[str, ...],
        costs: np.ndarray,
        eparams: np.ndarray,
        initial_cash: float | None = None,
    ) -> None:
        self.symbols = tuple(symbols)
        self.index = {s: j for j, s in enumerate(self.symbols)}
        n = len(self.symbols)
        self.costs = np.ascontiguousarray(costs, dtype=np.float64)
        self.eparams = np.ascontiguousarray(eparams, dtype=np.float64)
        cash = float(self.eparams[L.E_INITIAL_CASH] if initial_cash is None else initial_cash)
        self.port = np.zeros(L.portfolio_size(n))
        self.port[L.P_CASH] = cash
        self.port[L.P_EQUITY] = cash
        self.avg_price = np.zeros(n)
        self.last_close = np.full(n, np.nan)
        self.orders: dict[str, SimOrder] = {}
        self.by_client: dict[str, str] = {}
        self.reject_next = 0
        self.partial_next = 0
        self.now_ns = 0
        self.lock = threading.RLock()
        self._seq = itertools.count()
        self._fills = np.empty((n, L.N_FILL_FIELDS))
        self._bar_costs = np.zeros(L.N_COST_KINDS)

    # ------------------------------------------------------------------ account
    @property
    def cash(self) -> float:
        return float(self.port[L.P_CASH])

    @property
    def equity(self) -> float:
        return float(self.port[L.P_EQUITY])

    def position(self, symbol: str) -> float:
        return float(self.port[L.P_HEADER + self.index[symbol]])

    def positions(self) -> dict[str, float]:
        """Non-zero positions by symbol."""
        n = len(self.symbols)
        pos = self.port[L.P_HEADER : L.P_HEADER + n]
        return {s: float(pos[j]) for j, s in enumerate(self.symbols) if pos[j] != 0.0}

    # ------------------------------------------------------------------ orders
    def submit(
        self,
        symbol: str,
        side: str,
        *,
        qty: float | None = None,
        notional: float | None = None,
        type: str = "market",
        time_in_force: str = "day",
        client_order_id: str | None = None,
        limit_price: float | None = None,
    ) -> tuple[SimOrder, list[TradeEvent]]:
        """Accept (or reject) an order; raises :class:`OrderError` for invalid ones."""
        with self.lock:
            if symbol not in self.index:
                raise OrderError(422, f"asset {symbol!r} not found", 40410000)
            if side not in ("buy", "sell"):
                raise OrderError(422, f"invalid side {side!r}")
            if type not in ("market", "limit"):
                raise OrderError(422, f"unsupported order type {type!r}")
            if (qty is None) == (notional is None):
                raise OrderError(422, "exactly one of qty and notional is required")
            amount = qty if qty is not None else notional
            if amount is None or not np.isfinite(amount) or amount <= 0:
                raise OrderError(422, "qty/notional must be > 0")
            if type == "limit" and (limit_price is None or limit_price <= 0):
                raise OrderError(422, "limit orders need limit_price > 0")
            cid = client_order_id or str(uuid.uuid4())
            if len(cid) > 128:
                raise OrderError(422, "client_order_id must be at most 128 characters")
            if cid in self.by_client:
                raise OrderError(422, "client_order_id must be unique", 40010001)
            order = SimOrder(
                id=str(uuid.UUID(int=next(self._seq) + 1)),
                client_order_id=cid,
                symbol=symbol,
                side=side,
                type=type,
                time_in_force=time_in_force,
                qty=qty,
                notional=notional,
                limit_price=limit_price,
                created_ns=self.now_ns,
                updated_ns=self.now_ns,
            )
            self.orders[order.id] = order
            self.by_client[cid] = order.id
            events = [TradeEvent("new", order, self.now_ns)]
            if self.reject_next > 0:
                self.reject_next -= 1
                order.status = "rejected"
                events.append(TradeEvent("rejected", order, self.now_ns))
            elif self.partial_next > 0:
                self.partial_next -= 1
                order.partial_then_cancel = True
            return order, events

    def cancel(self, order_id: str) -> list[TradeEvent]:
        """Cancel an open order (no-op events list if it is already closed)."""
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                raise OrderError(404, "order not found", 40410000)
            if not order.is_open:
                raise OrderError(422, f"order is {order.status}", 42210000)
            order.status = "canceled"
            order.updated_ns = order.cancel_ns = self.now_ns
            return [TradeEvent("canceled", order, self.now_ns)]

    def open_orders(self) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.is_open]

    # ------------------------------------------------------------------ bars
    def on_bar(
        self, ts_ns: int, open: np.ndarray, close: np.ndarray, volume: np.ndarray
    ) -> list[TradeEvent]:
        """A new bar: fill open orders at its open, then mark to market at its close."""
        with self.lock:
            self.now_ns = ts_ns
            o = np.ascontiguousarray(open, dtype=np.float64)
            v = np.ascontiguousarray(volume, dtype=np.float64)
            events = self._fill_market(ts_ns, o, v)
            events += self._fill_limits(ts_ns, o, v)
            self.last_close = np.asarray(close, dtype=np.float64).copy()
            mark_to_market_nb(self.last_close, self.port)
            return events

    def _fill_market(self, ts_ns: int, o: np.ndarray, v: np.ndarray) -> list[TradeEvent]:
        n = len(self.symbols)
        pend = L.P_HEADER + n
        book: dict[int, list[tuple[SimOrder, float]]] = {}
        self.port[pend : pend + n] = 0.0
        for order in self.orders.values():
            if order.is_open and order.type == "market":
                j = self.index[order.symbol]
                rem = order.remaining(o[j])
                if order.partial_then_cancel:
                    rem = rem * 0.5
                book.setdefault(j, []).append((order, rem))
                self.port[pend + j] += order.sign * rem
        if not book:
            return []
        nf = execute_pending_nb(
            0, o, v, self.costs, self.eparams, self.port, self._bar_costs, self._fills
        )
        events: list[TradeEvent] = []
        filled: dict[int, tuple[float, float]] = {}
        for rec in self._fills[:nf]:
            filled[int(rec[L.R_ASSET])] = (float(rec[L.R_QTY]), float(rec[L.R_PRICE]))
        for j, entries in book.items():
            q, px = filled.get(j, (0.0, float("nan")))
            left = abs(q)
            carry = self.port[pend + j] != 0.0  # remainder carries (participation cap)
            if q != 0.0:
                self._update_avg(j, q, px)
            for order, rem in entries:
                take = min(rem, left) if order.sign * q > 0 else 0.0
                left -= take
                if take > 0.0:
                    prev = order.filled_qty
                    order.filled_qty = prev + take
                    order.filled_avg_price = (
                        px
                        if order.filled_avg_price is None
                        else (order.filled_avg_price * prev + px * take) / order.filled_qty
                    )
                    done = order.qty is not None and order.filled_qty >= order.qty * (1 - 1e-12)
                    order.status = "filled" if done else "partially_filled"
                    order.updated_ns = ts_ns
                    order.fill_ns = ts_ns
                    events.append(
                        TradeEvent(
                            "fill" if done else "partial_fill",
                            order,
                            ts_ns,
                            px,
                            take,
                            self.position(order.symbol),
                        )
                    )
                if order.is_open and (order.partial_then_cancel or not carry):
                    order.status = "canceled"
                    order.updated_ns = order.cancel_ns = ts_ns
                    events.append(TradeEvent("canceled", order, ts_ns))
        self.port[pend : pend + n] = 0.0
        return events

    def _fill_limits(self, ts_ns: int, o: np.ndarray, v: np.ndarray) -> list[TradeEvent]:
        events: list[TradeEvent] = []
        piece = np.empty(4)
        for order in self.orders.values():
            if not (order.is_open and order.type == "limit" and order.limit_price is not None):
                continue
            j = self.index[order.symbol]
            lim = order.limit_price
            crosses = o[j] <= lim if order.side == "buy" else o[j] >= lim
            if not crosses:
                continue
            q = order.sign * order.remaining(o[j])
            px = fill_costs_nb(q, o[j], v[j], self.costs[j], piece)
            if q > 0 and self.eparams[L.E_ALLOW_LEVERAGE] == 0.0 and q * px + piece[0] > self.cash:
                continue
            self.port[L.P_CASH] -= q * px + piece[0]
            self.port[L.P_HEADER + j] += q
            self._update_avg(j, q, px)
            order.filled_qty += abs(q)
            order.filled_avg_price = px
            order.status = "filled"
            order.updated_ns = order.fill_ns = ts_ns
            events.append(TradeEvent("fill", order, ts_ns, px, abs(q), self.position(order.symbol)))
        return events

    def _update_avg(self, j: int, q: float, px: float) -> None:
        after = self.port[L.P_HEADER + j]
        before = after - q
        if after == 0.0:
            self.avg_price[j] = 0.0
        elif before == 0.0 or np.sign(before) != np.sign(after):
            self.avg_price[j] = px
        elif abs(after) > abs(before):
            self.avg_price[j] = (self.avg_price[j] * abs(before) + px * abs(q)) / abs(after)


__all__ = ["OPEN_STATUSES", "OrderError", "SimBroker", "SimOrder", "TradeEvent"]

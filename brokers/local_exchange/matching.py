"""An Alpaca-like account and order book (no network: :mod:`brokers.local_exchange` serves it).

Rules modelled (sources in ``brokers/README.md``): orders are checked at submission like
Alpaca does (unknown/untradable asset, qty xor notional, fractional only market+day with at
most 9 decimals on ``fractionable`` assets, minimum notional, unique ``client_order_id``,
wash-trade guard, no short selling on a cash account, buying power reduced at once by open buy
orders and not increased by sells until they fill). Fills happen at prices the market clock
hands in: the session open (``on_open``), each minute bar (``on_minute``) and the close
(``on_close``, which also expires day orders). Each fill is priced through the engine's own
cost kernel :func:`fill_costs_nb`, so the config's commission/spread/slippage apply.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.core.execution_nb import fill_costs_nb

OPEN_STATUSES = ("new", "accepted", "pending_new", "partially_filled", "pending_cancel")
TIME_IN_FORCE = ("day", "gtc", "opg", "cls")
MAX_DECIMALS = 9
_EPS = 1e-9


class OrderError(ValueError):
    """An order or cancel the broker refuses (HTTP status, Alpaca error code, extra fields)."""

    def __init__(self, status: int, message: str, code: int = 40010000, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"code": self.code, "message": str(self), **self.extra}


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
    fill_ns: int | None = None
    cancel_ns: int | None = None
    expired_ns: int | None = None
    failed_ns: int | None = None
    replaces: str | None = None
    replaced_by: str | None = None
    replaced_ns: int | None = None
    partial: bool = False  # fault: the first fill is partial, the rest waits for the next session
    done_today: bool = False  # no more liquidity today (after a partial fill)

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
            spent = (self.filled_avg_price or 0.0) * self.filled_qty
            return max(self.notional - spent, 0.0) / ref if ref > 0 else 0.0
        return max(self.qty - self.filled_qty, 0.0)


@dataclass(frozen=True)
class TradeEvent:
    """A trade update with a snapshot of the order at that moment."""

    event: str
    order: SimOrder
    timestamp_ns: int
    price: float | None = None
    qty: float | None = None
    position_qty: float | None = None


@dataclass(frozen=True)
class AccountRules:
    """Account-level rules (from :class:`~brokers.local_exchange.settings.ExchangeSettings`)."""

    fractional: bool = True
    non_fractionable: frozenset[str] = frozenset()
    min_notional: float = 1.0
    shorting: bool = False


def decimals(x: float) -> int:
    """Number of decimals of ``x`` as written in JSON (``repr``), e.g. 0.1234567891 -> 10."""
    text = repr(float(x)).lower()
    if "e" in text:
        mant, exp = text.split("e")
        frac = len(mant.split(".")[1]) if "." in mant else 0
        return max(frac - int(exp), 0)
    return len(text.split(".")[1].rstrip("0")) if "." in text else 0


def fmt_qty(x: float) -> str:
    return f"{x:.9f}".rstrip("0").rstrip(".")


class SimBroker:
    """Cash, positions and orders of one cash account (no margin, multiplier 1).

    ``costs`` is the engine's ``(N, N_COST)`` cost table in ``symbols`` order; ``data_only``
    symbols exist as non-tradable assets. ``draw`` decides the seeded faults of a new order:
    it returns ``(reject, partial)``.
    """

    def __init__(
        self,
        symbols: tuple[str, ...],
        costs: np.ndarray,
        initial_cash: float,
        *,
        rules: AccountRules | None = None,
        data_only: tuple[str, ...] = (),
        draw: Callable[[], tuple[bool, bool]] | None = None,
        partial_fraction: float = 0.5,
    ) -> None:
        self.symbols = tuple(symbols)
        self.index = {s: j for j, s in enumerate(self.symbols)}
        self.data_only = tuple(data_only)
        n = len(self.symbols)
        self.costs = np.ascontiguousarray(costs, dtype=np.float64)
        self.cash = float(initial_cash)
        self.initial_cash = float(initial_cash)
        self.pos = np.zeros(n)
        self.avg_price = np.zeros(n)
        self.last_price = np.full(n, np.nan)
        self.prev_close = np.full(n, np.nan)
        self.volume = np.zeros(n)
        self.rules = rules or AccountRules()
        self.orders: dict[str, SimOrder] = {}
        self.by_client: dict[str, str] = {}
        self.now_ns = 0
        self.market_open = False
        self.lock = threading.RLock()
        self.draw = draw or (lambda: (False, False))
        self.partial_fraction = partial_fraction
        self.reject_next = 0  # one-shot fault counters (``/_sim/faults``)
        self.partial_next = 0
        self._seq = itertools.count(1)
        self._piece = np.empty(4)

    # ------------------------------------------------------------------ account
    def position(self, symbol: str) -> float:
        return float(self.pos[self.index[symbol]])

    def positions(self) -> dict[str, float]:
        """Non-zero positions by symbol."""
        return {s: float(self.pos[j]) for j, s in enumerate(self.symbols) if self.pos[j] != 0.0}

    def open_orders(self) -> list[SimOrder]:
        return [o for o in self.orders.values() if o.is_open]

    def price(self, symbol: str) -> float:
        p = float(self.last_price[self.index[symbol]])
        return p if math.isfinite(p) else 0.0

    @property
    def long_market_value(self) -> float:
        px = np.nan_to_num(self.last_price)
        return float(np.sum(np.where(self.pos > 0, self.pos * px, 0.0)))

    @property
    def short_market_value(self) -> float:
        px = np.nan_to_num(self.last_price)
        return float(np.sum(np.where(self.pos < 0, self.pos * px, 0.0)))

    @property
    def equity(self) -> float:
        return self.cash + self.long_market_value + self.short_market_value

    def held_for_buys(self) -> float:
        """Cash reserved by open buy orders (limit price, else the latest price)."""
        total = 0.0
        for o in self.orders.values():
            if o.is_open and o.side == "buy":
                ref = o.limit_price if o.limit_price is not None else self.price(o.symbol)
                if o.qty is None and o.notional is not None:
                    total += max(o.notional - (o.filled_avg_price or 0.0) * o.filled_qty, 0.0)
                else:
                    total += o.remaining(ref) * ref
        return total

    @property
    def buying_power(self) -> float:
        """Cash account: cash less open buys; sells add nothing until they fill."""
        return max(self.cash - self.held_for_buys(), 0.0)

    def held_for_sells(self, symbol: str) -> float:
        ref = self.price(symbol)
        return sum(
            o.remaining(ref)
            for o in self.orders.values()
            if o.is_open and o.side == "sell" and o.symbol == symbol
        )

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
        faults: bool = True,
    ) -> tuple[SimOrder, list[TradeEvent]]:
        """Accept an order (possibly rejected later by a fault) or raise :class:`OrderError`."""
        with self.lock:
            self._validate(symbol, side, qty, notional, type, time_in_force, limit_price)
            cid = client_order_id or str(uuid.uuid4())
            if len(cid) > 128:
                raise OrderError(
                    422, "client_order_id must be no more than 128 characters", 40010001
                )
            if cid in self.by_client:
                raise OrderError(422, "client_order_id must be unique", 40010001)
            self._check_wash(symbol, side)
            self._check_holdings(symbol, side, qty, notional, limit_price)
            order = SimOrder(
                id=str(uuid.UUID(int=next(self._seq))),
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
            reject, partial = self.draw() if faults else (False, False)
            if faults and self.reject_next > 0:
                self.reject_next, reject = self.reject_next - 1, True
            if faults and self.partial_next > 0:
                self.partial_next, partial = self.partial_next - 1, True
            events = [self._event("new", order)]
            if reject:
                order.status = "rejected"
                order.failed_ns = self.now_ns
                events.append(self._event("rejected", order))
            order.partial = partial
            return order, events

    def _validate(
        self,
        symbol: str,
        side: str,
        qty: float | None,
        notional: float | None,
        type: str,
        tif: str,
        limit_price: float | None,
    ) -> None:
        if symbol in self.data_only:
            raise OrderError(422, f"asset {symbol} is not tradable", 42210000)
        if symbol not in self.index:
            raise OrderError(422, f'could not find asset "{symbol}"', 42210000)
        if side not in ("buy", "sell"):
            raise OrderError(422, "invalid side", 42210000)
        if type not in ("market", "limit"):
            raise OrderError(422, f"invalid order type for this simulator: {type}", 42210000)
        if tif not in TIME_IN_FORCE:
            raise OrderError(422, "invalid time_in_force", 42210000)
        if (qty is None) == (notional is None):
            raise OrderError(422, "qty or notional is required, not both", 40010001)
        amount = qty if qty is not None else notional
        assert amount is not None
        if not math.isfinite(amount) or amount <= 0:
            raise OrderError(
                422, "qty must be > 0" if qty is not None else "notional must be > 0", 42210000
            )
        if type == "limit" and (limit_price is None or not limit_price > 0):
            raise OrderError(422, "limit_price is required for limit orders", 42210000)
        if type == "market" and limit_price is not None:
            raise OrderError(422, "limit_price must not be given for market orders", 42210000)
        if qty is not None and decimals(qty) > MAX_DECIMALS:
            raise OrderError(422, "qty must be given to at most 9 decimal places", 42210000)
        if notional is not None and decimals(notional) > 2:
            raise OrderError(422, "notional must be given to at most 2 decimal places", 42210000)
        fractional = notional is not None or (qty is not None and qty != math.floor(qty))
        if fractional:
            if not self.rules.fractional:
                raise OrderError(
                    403, "fractional trading is not enabled for this account", 40310000
                )
            if symbol in self.rules.non_fractionable:
                raise OrderError(422, f'asset "{symbol}" is not fractionable', 42210000)
            if type != "market":
                raise OrderError(422, "fractional orders must be market orders", 42210000)
            if tif != "day":
                raise OrderError(422, "fractional orders must be DAY orders", 42210000)
            px = self.price(symbol)
            cost = notional if notional is not None else (qty or 0.0) * px
            if px > 0 and cost < self.rules.min_notional - _EPS:
                raise OrderError(
                    403, f"cost basis must be >= {self.rules.min_notional:g}", 40310000
                )
        if tif == "opg" and self.market_open:
            raise OrderError(422, "opg orders are accepted only before the market opens", 42210000)

    def _check_wash(self, symbol: str, side: str) -> None:
        for o in self.orders.values():
            if o.is_open and o.symbol == symbol and o.side != side:
                raise OrderError(422, "potential wash trade detected. use complex orders", 42210000)

    def _check_holdings(
        self,
        symbol: str,
        side: str,
        qty: float | None,
        notional: float | None,
        limit_price: float | None,
    ) -> None:
        px = limit_price if limit_price is not None else self.price(symbol)
        if side == "sell":
            want = qty if qty is not None else (notional or 0.0) / px if px > 0 else 0.0
            held = self.position(symbol)
            avail = max(held - self.held_for_sells(symbol), 0.0)
            if want > avail + _EPS and not self.rules.shorting:
                if held <= 0:
                    raise OrderError(403, "account is not allowed to short", 40310000)
                raise OrderError(
                    403,
                    f"insufficient qty available for order (requested: {fmt_qty(want)}, "
                    f"available: {fmt_qty(avail)})",
                    40310000,
                    available=fmt_qty(avail),
                    existing_qty=fmt_qty(held),
                    held_for_orders=fmt_qty(held - avail),
                    symbol=symbol,
                )
            return
        cost = notional if notional is not None else (qty or 0.0) * px
        bp = self.buying_power
        if cost > bp + _EPS:
            raise OrderError(
                403,
                "insufficient buying power",
                40310000,
                buying_power=repr(round(bp, 2)),
                cost_basis=repr(round(cost, 2)),
            )

    def cancel(self, order_id: str) -> list[TradeEvent]:
        """Request a cancel: ``pending_cancel`` now, :meth:`finish_cancel` later."""
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                raise OrderError(404, f"order not found for {order_id}", 40410000)
            if order.status == "pending_cancel":
                return []
            if not order.is_open:
                raise OrderError(422, f'order is already in "{order.status}" state', 42210000)
            order.status = "pending_cancel"
            order.updated_ns = self.now_ns
            return [self._event("pending_cancel", order)]

    def finish_cancel(self, order_id: str) -> list[TradeEvent]:
        """Complete a pending cancel unless a fill won the race."""
        with self.lock:
            order = self.orders[order_id]
            if order.status != "pending_cancel":
                return []
            order.status = "canceled"
            order.updated_ns = order.cancel_ns = self.now_ns
            return [self._event("canceled", order)]

    def replace(
        self,
        order_id: str,
        *,
        qty: float | None = None,
        limit_price: float | None = None,
        time_in_force: str | None = None,
        client_order_id: str | None = None,
    ) -> tuple[SimOrder, list[TradeEvent]]:
        """``PATCH /v2/orders/{id}``: a new order replaces an open, unfilled one."""
        with self.lock:
            old = self.orders.get(order_id)
            if old is None:
                raise OrderError(404, f"order not found for {order_id}", 40410000)
            if old.status not in ("new", "accepted", "pending_new") or old.filled_qty > 0:
                raise OrderError(422, f'order is not replaceable in "{old.status}" state', 42210000)
            status = old.status
            old.status = "pending_replace"  # out of the wash-trade and buying-power checks
            try:
                new, events = self.submit(
                    old.symbol,
                    old.side,
                    qty=old.qty if qty is None else qty,
                    notional=None if qty is not None else old.notional,
                    type=old.type,
                    time_in_force=time_in_force or old.time_in_force,
                    client_order_id=client_order_id,
                    limit_price=old.limit_price if limit_price is None else limit_price,
                    faults=False,
                )
            except OrderError:
                old.status = status
                raise
            new.replaces = old.id
            old.status, old.replaced_by = "replaced", new.id
            old.updated_ns = old.replaced_ns = self.now_ns
            events = [self._event("new", new)]  # snapshot with ``replaces`` set
            return new, [self._event("replaced", old), *events]

    # ------------------------------------------------------------------ market
    def _event(
        self, kind: str, o: SimOrder, px: float | None = None, q: float | None = None
    ) -> TradeEvent:
        pos = self.position(o.symbol) if px is not None else None
        return TradeEvent(kind, dataclasses.replace(o), self.now_ns, px, q, pos)

    def _fill(self, o: SimOrder, raw_px: float) -> list[TradeEvent]:
        """Fill what the order still wants at ``raw_px`` (partially if its fault says so)."""
        if o.done_today or not o.is_open or not raw_px > 0:
            return []
        j = self.index[o.symbol]
        rem = o.remaining(raw_px)
        if rem <= _EPS:
            return []
        take = rem
        if o.partial and o.filled_qty == 0.0:
            take = rem * self.partial_fraction
            whole = o.qty is not None and float(o.qty).is_integer()
            take = float(math.floor(take)) if whole else round(take, MAX_DECIMALS)
            if take <= 0.0 or take >= rem:
                take = rem
        q = o.sign * take
        px = fill_costs_nb(q, raw_px, float(self.volume[j]), self.costs[j], self._piece)
        self.cash -= q * px + float(self._piece[0])
        before = self.pos[j]
        self.pos[j] = before + q
        after = self.pos[j]
        if abs(after) < _EPS:
            self.pos[j], self.avg_price[j] = 0.0, 0.0
        elif before == 0.0 or np.sign(before) != np.sign(after):
            self.avg_price[j] = px
        elif abs(after) > abs(before):
            self.avg_price[j] = (self.avg_price[j] * abs(before) + px * take) / abs(after)
        prev = o.filled_qty
        o.filled_qty = prev + take
        o.filled_avg_price = (
            px
            if o.filled_avg_price is None
            else (o.filled_avg_price * prev + px * take) / o.filled_qty
        )
        o.updated_ns = o.fill_ns = self.now_ns
        done = o.remaining(raw_px) <= _EPS or take == rem
        if done:
            o.status = "filled"
        else:
            o.status = "partially_filled"
            o.done_today = True
        return [self._event("fill" if done else "partial_fill", o, px, take)]

    def fill_marketable(self) -> list[TradeEvent]:
        """During the session: fill market orders at the latest price, limits that cross."""
        with self.lock:
            if not self.market_open:
                return []
            events: list[TradeEvent] = []
            for o in list(self.orders.values()):
                if not o.is_open or o.time_in_force in ("opg", "cls"):
                    continue
                px = self.price(o.symbol)
                if o.type == "market":
                    events += self._fill(o, px)
                elif o.limit_price is not None and (
                    px <= o.limit_price if o.side == "buy" else px >= o.limit_price
                ):
                    events += self._fill(o, px)
            return events

    def on_open(self, ts_ns: int, open_px: np.ndarray, volume: np.ndarray) -> list[TradeEvent]:
        """The session opens: queued market/opg orders fill at the open, crossing limits too."""
        with self.lock:
            self.now_ns = ts_ns
            self.market_open = True
            self.volume = np.asarray(volume, dtype=np.float64).copy()
            self.last_price = np.asarray(open_px, dtype=np.float64).copy()
            events: list[TradeEvent] = []
            for o in list(self.orders.values()):
                o.done_today = False
                if not o.is_open or o.time_in_force == "cls":
                    continue
                px = self.price(o.symbol)
                if o.type == "market" or (
                    o.limit_price is not None
                    and (px <= o.limit_price if o.side == "buy" else px >= o.limit_price)
                ):
                    events += self._fill(o, px)
                if o.time_in_force == "opg" and o.is_open:  # the auction is over
                    o.status, o.updated_ns, o.cancel_ns = "canceled", ts_ns, ts_ns
                    events.append(self._event("canceled", o))
            return events

    def on_minute(self, ts_ns: int, close_px: np.ndarray) -> list[TradeEvent]:
        """A minute bar closed: the latest price moves, marketable orders fill at it."""
        with self.lock:
            self.now_ns = ts_ns
            self.last_price = np.asarray(close_px, dtype=np.float64).copy()
            return self.fill_marketable()

    def on_close(self, ts_ns: int, close_px: np.ndarray) -> list[TradeEvent]:
        """The session closes: cls orders fill at the close, day orders expire."""
        with self.lock:
            self.now_ns = ts_ns
            self.last_price = np.asarray(close_px, dtype=np.float64).copy()
            events: list[TradeEvent] = []
            for o in list(self.orders.values()):
                if o.is_open and o.time_in_force == "cls":
                    events += self._fill(o, self.price(o.symbol))
            self.market_open = False
            for o in list(self.orders.values()):
                if o.is_open and o.time_in_force in ("day", "cls"):
                    o.status, o.updated_ns, o.expired_ns = "expired", ts_ns, ts_ns
                    events.append(self._event("expired", o))
            self.prev_close = self.last_price.copy()
            return events


__all__ = [
    "OPEN_STATUSES",
    "AccountRules",
    "OrderError",
    "SimBroker",
    "SimOrder",
    "TradeEvent",
    "decimals",
]

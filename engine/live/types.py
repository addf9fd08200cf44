"""The live loop's own value types: errors, order statuses, trade events, orders, account,
assets, sessions and the clock, as every venue translates its SDK's types into them.

Errors: :class:`BrokerError` ends a run with one line (exit 2), :class:`BrokerUnavailable`
is an outage (retried by the loop, exit 3 when it lasts), :class:`OrderRefused` is one
order refused by the venue (HTTP 4xx: buying power, wash trade, ...), a state of that order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from engine.ground.bars import CrossBar

Bar = CrossBar  # one session's bar for every symbol (plus exogenous values)


class BrokerError(RuntimeError):
    """A venue problem that ends the run with one clear line (missing keys, ...)."""


class BrokerUnavailable(BrokerError):
    """The venue did not answer (connection refused, timeout, 5xx) within its budget."""


class AccountBlocked(BrokerError):
    """The account may not place orders (blocked, trading suspended, not ACTIVE). At start
    it is bad input (exit 2, no order sent); mid-run the loop checkpoints and exits 3."""


class TradingHalted(AccountBlocked):
    """The account stopped being allowed to trade mid-run: no order is sent, the state is
    checkpointed (the decision is redone on restart) and the run exits with code 3."""


class InputHalted(BrokerError):
    """An input the strategy reads can no longer be trusted mid-run (an exogenous file
    stale beyond its cadence and lag, or no longer readable): no order is sent, the state
    is checkpointed (the bar is redone on restart) and the run exits with code 3."""


class OrderRefused(BrokerError):
    """The venue refused one order (``status``: its HTTP status, ``code``: its error code)."""

    def __init__(self, message: str, status: int | None = None, code: int | None = None):
        super().__init__(message)
        self.status, self.code = status, code

    @property
    def reason(self) -> str:
        return f"HTTP {self.status}: {self}" if self.status is not None else str(self)


class OrderStatus(StrEnum):
    """An order's state (Alpaca's 18, by their wire names; ``OTHER`` for anything else)."""

    NEW = "new"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    DONE_FOR_DAY = "done_for_day"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REPLACED = "replaced"
    PENDING_CANCEL = "pending_cancel"
    PENDING_REPLACE = "pending_replace"
    PENDING_REVIEW = "pending_review"
    ACCEPTED = "accepted"
    PENDING_NEW = "pending_new"
    ACCEPTED_FOR_BIDDING = "accepted_for_bidding"
    STOPPED = "stopped"  # "fill guaranteed, not yet occurred": still working
    REJECTED = "rejected"
    SUSPENDED = "suspended"
    CALCULATED = "calculated"  # filled for the day, settlement pending: final
    HELD = "held"
    OTHER = "other"

    @classmethod
    def of(cls, value: object) -> OrderStatus:
        try:
            return cls(str(getattr(value, "value", value)))
        except ValueError:
            return cls.OTHER


FINAL = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.REJECTED,
        OrderStatus.REPLACED,
        OrderStatus.DONE_FOR_DAY,
        OrderStatus.SUSPENDED,
        OrderStatus.CALCULATED,
    }
)


class TradeEvent(StrEnum):
    """A trade update's event (the ones the loop acts on; ``OTHER`` for the rest)."""

    NEW = "new"
    FILL = "fill"
    PARTIAL_FILL = "partial_fill"
    CANCELED = "canceled"
    EXPIRED = "expired"
    REJECTED = "rejected"
    PENDING_CANCEL = "pending_cancel"
    REPLACED = "replaced"
    DONE_FOR_DAY = "done_for_day"
    # sent by Alpaca but not parsed by alpaca-py 0.44 (``TradeEvent`` lacks them): the venue
    # reads them raw (notes/alpaca-protocol.md, "More facts")
    CALCULATED = "calculated"
    STOPPED = "stopped"
    SUSPENDED = "suspended"
    HELD = "held"
    ORDER_REPLACE_REJECTED = "order_replace_rejected"
    ORDER_CANCEL_REJECTED = "order_cancel_rejected"
    ACCEPTED = "accepted"
    PENDING_NEW = "pending_new"
    PENDING_REPLACE = "pending_replace"
    RESTATED = "restated"
    OTHER = "other"

    @classmethod
    def of(cls, value: object) -> TradeEvent:
        try:
            return cls(str(getattr(value, "value", value)))
        except ValueError:
            return cls.OTHER


EVENT_STATUS = {
    TradeEvent.FILL: OrderStatus.FILLED,
    TradeEvent.PARTIAL_FILL: OrderStatus.PARTIALLY_FILLED,
    TradeEvent.CANCELED: OrderStatus.CANCELED,
    TradeEvent.EXPIRED: OrderStatus.EXPIRED,
    TradeEvent.REJECTED: OrderStatus.REJECTED,
    TradeEvent.NEW: OrderStatus.NEW,
    TradeEvent.PENDING_CANCEL: OrderStatus.PENDING_CANCEL,
    TradeEvent.REPLACED: OrderStatus.REPLACED,
    TradeEvent.DONE_FOR_DAY: OrderStatus.DONE_FOR_DAY,
    TradeEvent.CALCULATED: OrderStatus.CALCULATED,
    TradeEvent.SUSPENDED: OrderStatus.SUSPENDED,
    # stopped/held/accepted/pending_*: still working (the order's own status is kept);
    # order_cancel_rejected/order_replace_rejected: the order's status says what it is
}


@dataclass(frozen=True)
class Order:
    """One order at the venue: signed by ``sign`` (+1 buy, -1 sell), quantities unsigned."""

    id: str
    client_order_id: str
    symbol: str
    sign: float
    qty: float
    filled_qty: float
    status: OrderStatus

    @property
    def final(self) -> bool:
        """Done: a final status, or filled whole whatever the status says."""
        return self.status in FINAL or (self.qty > 0 and self.filled_qty >= self.qty)

    @property
    def remaining(self) -> float:
        """Signed quantity still to fill (0 once final)."""
        return 0.0 if self.final else self.sign * max(self.qty - self.filled_qty, 0.0)


@dataclass(frozen=True)
class TradeUpdate:
    """One trade-updates message: the order after the event, the fill's qty and price."""

    event: TradeEvent
    order: Order
    timestamp_ns: int = 0
    qty: float | None = None
    price: float | None = None
    position_qty: float | None = None
    commission: float | None = None  # when the venue reports one (Alpaca does not)


@dataclass(frozen=True)
class Account:
    """The account fields the loop needs."""

    account_number: str
    status: str
    cash: float
    buying_power: float
    equity: float
    trading_blocked: bool = False  # the venue will refuse every order
    blocked_reason: str = ""  # why (``trading_blocked``, ``status=ACCOUNT_CLOSED``, ...)


@dataclass(frozen=True)
class Asset:
    symbol: str
    tradable: bool
    fractionable: bool


@dataclass(frozen=True)
class Session:
    """One trading session, open/close as aware datetimes."""

    date: date
    open: datetime
    close: datetime


@dataclass(frozen=True)
class Clock:
    timestamp: datetime
    is_open: bool

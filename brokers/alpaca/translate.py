"""alpaca-py's models into the engine's types (:mod:`engine.live.ports`), at the edge.

Statuses and events are read by their wire names (alpaca-py's enums are compared as
members, never ``str()`` of them: ``.value``); a status or event the engine does not know
becomes ``OTHER`` rather than an error (alpaca-py fails to parse some events the service
sends, e.g. ``done_for_day``, ``calculated``: the trade-updates stream is therefore read raw
and parsed here by :func:`update_of_raw`, which knows every event and status by name).

The account may trade only when its ``status`` is ``ACTIVE`` and none of ``trading_blocked``,
``account_blocked``, ``trade_suspended_by_user`` is set (alpaca-py ``trading/models.py::
TradeAccount``, ``trading/enums.py::AccountStatus``; docs "Account": "If true, the account
is not allowed to place orders").
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
from alpaca.trading.enums import OrderSide

from engine.live.ports import (
    Account,
    Asset,
    Clock,
    Order,
    OrderStatus,
    Session,
    TradeEvent,
    TradeUpdate,
)

NY = ZoneInfo("America/New_York")
BLOCKED = ("trading_blocked", "account_blocked", "trade_suspended_by_user")


def _value(x: Any) -> str:
    return str(getattr(x, "value", x))


def _num(x: Any) -> float | None:
    return None if x is None else float(x)


def order_of(o: Any) -> Order:
    side = o.side if isinstance(o.side, OrderSide) else OrderSide(_value(o.side))
    return Order(
        id=str(o.id),
        client_order_id=str(o.client_order_id),
        symbol=str(o.symbol),
        sign=1.0 if side == OrderSide.BUY else -1.0,
        qty=float(o.qty or 0.0),
        filled_qty=float(o.filled_qty or 0.0),
        status=OrderStatus.of(o.status),
    )


def update_of(u: Any) -> TradeUpdate:
    return TradeUpdate(
        event=TradeEvent.of(u.event),
        order=order_of(u.order),
        timestamp_ns=int(pd.Timestamp(u.timestamp).value) if u.timestamp else 0,
        qty=_num(u.qty),
        price=_num(u.price),
        position_qty=_num(u.position_qty),
    )


def account_of(a: Any) -> Account:
    status = _value(a.status)
    why = [k for k in BLOCKED if bool(getattr(a, k, False))]
    if status.upper() != "ACTIVE":
        why.append(f"status={status.upper()}")
    return Account(
        account_number=str(a.account_number),
        status=status,
        cash=float(a.cash or 0.0),
        buying_power=float(a.buying_power or 0.0),
        equity=float(a.equity or 0.0),
        trading_blocked=bool(why),
        blocked_reason=", ".join(why),
    )


def order_of_raw(d: dict[str, Any]) -> Order:
    """An order from its wire JSON (a trade-updates message), every status by name."""
    return Order(
        id=str(d["id"]),
        client_order_id=str(d.get("client_order_id") or ""),
        symbol=str(d.get("symbol") or ""),
        sign=-1.0 if str(d.get("side")) == "sell" else 1.0,
        qty=float(d.get("qty") or 0.0),
        filled_qty=float(d.get("filled_qty") or 0.0),
        status=OrderStatus.of(d.get("status")),
    )


def update_of_raw(data: dict[str, Any]) -> TradeUpdate:
    """A trade update from the stream's raw ``data`` (events alpaca-py cannot parse too)."""
    ts = data.get("timestamp")
    return TradeUpdate(
        event=TradeEvent.of(data.get("event")),
        order=order_of_raw(data["order"]),
        timestamp_ns=int(pd.Timestamp(ts).value) if ts else 0,
        qty=_num(data.get("qty")),
        price=_num(data.get("price")),
        position_qty=_num(data.get("position_qty")),
    )


def asset_of(symbol: str, a: Any) -> Asset:
    return Asset(symbol, bool(a.tradable), bool(a.fractionable))


def session_of(r: Any) -> Session:
    return Session(r.date, r.open.replace(tzinfo=NY), r.close.replace(tzinfo=NY))


def clock_of(c: Any) -> Clock:
    return Clock(timestamp=c.timestamp, is_open=bool(c.is_open))


def positions_of(rows: Any) -> dict[str, float]:
    """Held quantity by symbol (negative for a short position)."""
    out = {}
    for p in rows:
        q = float(p.qty)
        out[str(p.symbol)] = -abs(q) if _value(p.side) == "short" else q
    return out


__all__ = [
    "account_of",
    "asset_of",
    "clock_of",
    "order_of",
    "order_of_raw",
    "positions_of",
    "session_of",
    "update_of",
    "update_of_raw",
]

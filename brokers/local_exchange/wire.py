"""Alpaca's JSON shapes for orders, positions, assets and the account (numbers as strings)."""

from __future__ import annotations

import uuid
from typing import Any

from brokers.local_exchange.calendar import iso
from brokers.local_exchange.matching import SimBroker, SimOrder

_NS = uuid.UUID("6f1c2b1e-0000-4000-8000-000000000000")


def num(x: float | None) -> str | None:
    """Alpaca sends numbers as strings; ``repr`` round-trips floats exactly."""
    return None if x is None else repr(float(x))


def asset_id(symbol: str) -> str:
    return str(uuid.uuid5(_NS, symbol))


def order_json(o: SimOrder) -> dict[str, Any]:
    """An order in Alpaca's REST/stream shape."""
    return {
        "id": o.id,
        "client_order_id": o.client_order_id,
        "created_at": iso(o.created_ns),
        "updated_at": iso(o.updated_ns),
        "submitted_at": iso(o.created_ns),
        "filled_at": iso(o.fill_ns) if o.status == "filled" else None,
        "expired_at": iso(o.expired_ns),
        "canceled_at": iso(o.cancel_ns),
        "failed_at": iso(o.failed_ns),
        "replaced_at": iso(o.replaced_ns),
        "replaced_by": o.replaced_by,
        "replaces": o.replaces,
        "asset_id": asset_id(o.symbol),
        "symbol": o.symbol,
        "asset_class": "us_equity",
        "notional": num(o.notional),
        "qty": num(o.qty),
        "filled_qty": num(o.filled_qty),
        "filled_avg_price": num(o.filled_avg_price),
        "order_class": "simple",
        "order_type": o.type,
        "type": o.type,
        "side": o.side,
        "position_intent": ("buy_to_open" if o.side == "buy" else "sell_to_close"),
        "time_in_force": o.time_in_force,
        "limit_price": num(o.limit_price),
        "stop_price": None,
        "status": o.status,
        "extended_hours": False,
        "legs": None,
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
    }


def position_json(b: SimBroker, symbol: str) -> dict[str, Any]:
    qty = b.position(symbol)
    px = b.price(symbol)
    j = b.index[symbol]
    avg = float(b.avg_price[j])
    prev = float(b.prev_close[j]) if b.prev_close[j] == b.prev_close[j] else px
    avail = qty - b.held_for_sells(symbol) if qty > 0 else qty
    return {
        "asset_id": asset_id(symbol),
        "symbol": symbol,
        "exchange": "NYSE",
        "asset_class": "us_equity",
        "asset_marginable": True,
        "avg_entry_price": num(avg),
        "qty": num(qty),
        "qty_available": num(avail),
        "side": "long" if qty >= 0 else "short",
        "market_value": num(qty * px),
        "cost_basis": num(qty * avg),
        "unrealized_pl": num(qty * (px - avg)),
        "unrealized_plpc": num((px - avg) / avg if avg else 0.0),
        "unrealized_intraday_pl": num(qty * (px - prev)),
        "unrealized_intraday_plpc": num((px - prev) / prev if prev else 0.0),
        "current_price": num(px),
        "lastday_price": num(prev),
        "change_today": num((px - prev) / prev if prev else 0.0),
    }


def asset_json(
    symbol: str, *, tradable: bool, fractionable: bool, shortable: bool
) -> dict[str, Any]:
    return {
        "id": asset_id(symbol),
        "class": "us_equity",
        "exchange": "NYSE",
        "symbol": symbol,
        "name": f"{symbol} (simulated)",
        "status": "active",
        "tradable": tradable,
        "marginable": tradable,
        "shortable": shortable and tradable,
        "easy_to_borrow": shortable and tradable,
        "fractionable": fractionable and tradable,
        "maintenance_margin_requirement": 100 if tradable else None,
        "attributes": [],
    }


def account_json(b: SimBroker, created_ns: int, last_equity: float) -> dict[str, Any]:
    bp = b.buying_power
    return {
        "id": str(uuid.uuid5(_NS, "account")),
        "account_number": "PA0000000LOCAL",
        "status": "ACTIVE",
        "crypto_status": "INACTIVE",
        "currency": "USD",
        "cash": num(b.cash),
        "buying_power": num(bp),
        "regt_buying_power": num(bp),
        "daytrading_buying_power": "0",
        "effective_buying_power": num(bp),
        "non_marginable_buying_power": num(bp),
        "options_buying_power": num(bp),
        "accrued_fees": "0",
        "pending_transfer_in": "0",
        "pending_transfer_out": "0",
        "portfolio_value": num(b.equity),
        "equity": num(b.equity),
        "last_equity": num(last_equity),
        "long_market_value": num(b.long_market_value),
        "short_market_value": num(b.short_market_value),
        "position_market_value": num(b.long_market_value - b.short_market_value),
        "initial_margin": num(b.long_market_value),
        "maintenance_margin": num(b.long_market_value),
        "last_maintenance_margin": num(b.long_market_value),
        "sma": "0",
        "multiplier": "1",
        "pattern_day_trader": False,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "shorting_enabled": b.rules.shorting,
        "trade_suspended_by_user": False,
        "created_at": iso(created_ns),
        "daytrade_count": 0,
    }


__all__ = ["account_json", "asset_id", "asset_json", "num", "order_json", "position_json"]

"""Order planning against the broker's book (pure functions, no I/O).

client order ids are deterministic (config, strategy, bar, symbol, leg): the same decision
always gets the same ids, so a restart or a retried request never duplicates an order.

orders = target shares - broker position - open orders' remaining quantity, then:

- quantities rounded *toward zero* to what Alpaca accepts: at most 9 decimals for a
  fractionable asset, whole shares otherwise (``fractionable`` of ``/v2/assets``);
- nothing below the minimum notional (fractional orders, about $1 on Alpaca) and no
  dust (a gap smaller than one rounding step is left alone);
- long-only: a sell never exceeds what the broker holds net of open sells, so the
  account can never go short;
- sells first; buys only up to the buying power the broker reports now (Alpaca does
  not add a sell's proceeds until it fills), the rest after the sells have filled.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

FRACTION_DECIMALS = 9
ID_PREFIX = "re-"
LEGS = ("s", "a", "b")  # sells, buys that fit now, buys after the sells filled


def client_order_id(config: str, strategy: str, ts_ns: int, symbol: str, leg: str = "") -> str:
    """Deterministic id: the same decision (and leg) always gets the same id."""
    key = f"{config}|{strategy}|{ts_ns}|{symbol}" + (f"|{leg}" if leg else "")
    return ID_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:40]


@dataclass(frozen=True)
class AssetRule:
    """How an asset may be traded: fractional (9 decimals) or whole shares."""

    fractionable: bool = True

    @property
    def step(self) -> float:
        return 10.0**-FRACTION_DECIMALS if self.fractionable else 1.0


def round_qty(qty: float, rule: AssetRule) -> float:
    """``qty`` rounded toward zero to the asset's step (9 decimals or whole shares)."""
    if not math.isfinite(qty) or qty == 0:
        return 0.0
    if rule.fractionable:
        # a hair of tolerance so that 0.3 - 1e-17 does not lose its last unit
        units = math.floor(abs(qty) * 10**FRACTION_DECIMALS + 1e-6)
        return math.copysign(units / 10**FRACTION_DECIMALS, qty)
    return math.copysign(float(math.floor(abs(qty) + 1e-9)), qty)


@dataclass(frozen=True)
class Planned:
    """One order to send: signed ``qty`` of ``symbol`` at about ``price``."""

    symbol: str
    qty: float
    price: float

    @property
    def notional(self) -> float:
        return abs(self.qty) * self.price


@dataclass(frozen=True)
class Plan:
    sells: list[Planned]
    buys: list[Planned]  # fit the buying power now
    deferred: dict[str, float]  # buy quantity that must wait for the sells' proceeds
    dropped: dict[str, float]  # gaps left alone (dust / below minimum notional)


def plan_orders(
    desired: dict[str, float],
    position: dict[str, float],
    open_qty: dict[str, float],
    prices: dict[str, float],
    rules: dict[str, AssetRule],
    *,
    buying_power: float,
    min_notional: float = 1.0,
    long_only: bool = True,
    bp_safety: float = 0.98,
) -> Plan:
    """Orders that move the broker's book (``position`` + signed ``open_qty``) to ``desired``.

    ``buying_power`` is the broker's figure now; buys are funded up to
    ``bp_safety * buying_power`` (the fill price at the open may differ from ``prices``).
    """
    sells: list[Planned] = []
    buys_wanted: list[Planned] = []
    dropped: dict[str, float] = {}
    for s in sorted(set(desired) | set(position) | set(open_qty)):
        want = desired.get(s, 0.0)
        if long_only:
            want = max(want, 0.0)
        have = position.get(s, 0.0) + open_qty.get(s, 0.0)
        delta = want - have
        rule = rules.get(s, AssetRule())
        price = prices.get(s, 0.0)
        if long_only and delta < 0:
            # never sell more than the broker holds net of open sells
            delta = max(delta, -max(position.get(s, 0.0) + min(open_qty.get(s, 0.0), 0.0), 0.0))
        q = round_qty(delta, rule)
        if q == 0.0 or price <= 0:
            if delta != 0:
                dropped[s] = delta
            continue
        if rule.fractionable and abs(q) * price < min_notional:
            dropped[s] = delta
            continue
        (sells if q < 0 else buys_wanted).append(Planned(s, q, price))
    budget = max(buying_power, 0.0) * bp_safety
    buys: list[Planned] = []
    deferred: dict[str, float] = {}
    for b in buys_wanted:
        rule = rules.get(b.symbol, AssetRule())
        q = b.qty if b.notional <= budget else round_qty(budget / b.price, rule)
        if q > 0 and (not rule.fractionable or q * b.price >= min_notional):
            buys.append(Planned(b.symbol, q, b.price))
            budget -= q * b.price
        else:
            q = 0.0
        rest = round_qty(b.qty - q, rule)
        if rest > 0:
            deferred[b.symbol] = rest
    return Plan(sells, buys, deferred, dropped)


__all__ = [
    "ID_PREFIX",
    "LEGS",
    "AssetRule",
    "Plan",
    "Planned",
    "client_order_id",
    "plan_orders",
    "round_qty",
]

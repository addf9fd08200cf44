"""The broker's book is the truth: the live book re-read from the broker at every decision,
and the gap between what the broker holds and what the engine holds (scaled to the account)
measured, logged past ``gap_tolerance`` of equity and published. The decision's orders are
computed from the broker's book, so they close the gap."""

from __future__ import annotations

from typing import Any

import structlog

from engine.core.streaming import BarOutput
from engine.live.book import LiveBook
from engine.live.ports import Broker

log = structlog.get_logger("regime-engine.paper")


def sync(book: LiveBook, broker: Broker) -> None:
    """Replace the live book's positions and open orders with the broker's."""
    book.sync(broker.positions(), broker.open_orders())


def gap(
    held: dict[str, float],
    engine: dict[str, float],
    prices: dict[str, float],
    equity: float,
) -> tuple[dict[str, float], dict[str, float]]:
    """``(diff, {"value", "frac"})``: broker minus engine shares by symbol of the engine's
    book, and its value
    (at ``prices``), absolute and as a fraction of ``equity``."""
    diff = {
        s: held.get(s, 0.0) - engine.get(s, 0.0)
        for s in engine
        if abs(held.get(s, 0.0) - engine.get(s, 0.0)) > 1e-9
    }
    value = sum(abs(q) * prices.get(s, 0.0) for s, q in diff.items())
    return diff, {"value": value, "frac": value / equity if equity > 0 else 0.0}


def reconcile(
    book: LiveBook,
    engine: dict[str, float],
    prices: dict[str, float],
    equity: float,
    *,
    tolerance: float,
    out: BarOutput,
    publish: Any,
) -> dict[str, float]:
    """Measure the gap of the broker's book to the engine's; logged and published beyond
    ``tolerance`` (a fraction of equity). Returns ``{"value", "frac"}``."""
    diff, g = gap(book.positions, engine, prices, equity)
    if g["frac"] > tolerance:
        log.warning(
            "reconcile.gap",
            bar=out.bar,
            gap_value=round(g["value"], 2),
            gap_frac=round(g["frac"], 5),
            diff={s: round(q, 6) for s, q in diff.items()},
        )
        publish(
            "reconcile",
            ts=out.timestamp_ns,
            bar=out.bar,
            gap_value=g["value"],
            gap_frac=g["frac"],
            diff=diff,
        )
    return g


__all__ = ["gap", "reconcile", "sync"]

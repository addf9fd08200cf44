"""What the loop tells the operator: the summary, one status line per live bar (stdout), the
decision lines of the journal and the engine events on the bus (``regime``, ``targets``,
``equity``, ``order``, ``fill``, ``reconcile``, ``status``)."""

from __future__ import annotations

import queue
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd
import structlog

from engine.bus.zmq_bus import Publisher
from engine.core.streaming import BarOutput
from engine.live.ports import Bar, Broker, Session, TradeEvent, TradeUpdate

log = structlog.get_logger("regime-engine.paper")


@dataclass
class Summary:
    """What a run did (printed at exit)."""

    warmup_bars: int = 0
    catchup_bars: int = 0
    live_bars: int = 0
    decisions: int = 0
    sent: int = 0
    skipped: int = 0
    rejected: int = 0
    fills: int = 0
    retries: int = 0
    engine_equity: float | None = None
    broker_equity: float | None = None
    first_bar: str | None = None
    last_bar: str | None = None
    reasons: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        gap = (
            f", equity engine {self.engine_equity:,.2f} broker {self.broker_equity:,.2f}"
            if self.engine_equity is not None and self.broker_equity is not None
            else ""
        )
        return (
            f"regime-engine paper: {self.warmup_bars} warm-up + {self.catchup_bars} catch-up + "
            f"{self.live_bars} live bars (to {self.last_bar}), {self.decisions} decisions, "
            f"orders {self.sent} sent / {self.fills} fills / {self.rejected} rejected / "
            f"{self.skipped} already at broker, {self.retries} retried calls{gap}"
        )


class Telemetry:
    """Logs, the operator's lines and the bus events of one strategy's loop."""

    def __init__(self, strategy: str, symbols: tuple[str, ...], events: Publisher | None):
        self.strategy, self.symbols, self.events = strategy, symbols, events
        self.summary = Summary()
        self._q: queue.Queue[dict[str, Any]] = queue.Queue()

    def publish(self, kind: str, **body: Any) -> None:
        if self.events is not None:
            self.events.publish(kind, strategy=self.strategy, **body)

    def finish(self, broker: Broker | None, fills: int) -> None:
        """The summary's last figures (best effort: the broker may be gone), then close."""
        s = self.summary
        try:
            if broker is not None and s.decisions:
                s.broker_equity = broker.account(budget_s=5).equity
        except Exception:  # the summary is best effort when the broker is gone
            pass
        s.retries, s.fills = (broker.retried if broker is not None else 0), fills
        self.drain()
        if self.events is not None:
            self.events.close()
        log.info("paper.finished", **{k: x for k, x in vars(s).items() if x})

    # ------------------------------------------------------------------ trade updates
    def on_trade(self, u: TradeUpdate) -> None:
        """A trade update (venue thread): logged now, published from the loop's thread."""
        if u.event == TradeEvent.OTHER:  # an event the loop does not know: the book has it
            return
        o = u.order
        fields = {
            "symbol": o.symbol,
            "client_order_id": o.client_order_id,
            "qty": u.qty,
            "price": u.price,
            "position_qty": u.position_qty,
        }
        if u.event == TradeEvent.REJECTED:
            self.summary.rejected += 1
        if u.event in (TradeEvent.REJECTED, TradeEvent.CANCELED, TradeEvent.EXPIRED):
            log.warning("trade." + u.event.value, **fields)
        elif u.event != TradeEvent.NEW:
            log.info("trade." + u.event.value, **fields)
        if u.event != TradeEvent.NEW:  # sockets are not shared across threads
            self._q.put({"ts": u.timestamp_ns, "event": u.event.value, **fields})

    def drain(self) -> None:
        while not self._q.empty():
            body = self._q.get_nowait()
            if self.events is not None:
                self.events.publish("fill", **body)

    # ------------------------------------------------------------------ orders
    def order(
        self, out: BarOutput, symbol: str, qty: float, cid: str, status: str, reason: str | None
    ) -> None:
        if status == "rejected":
            self.summary.rejected += 1
            key = (reason or "")[:60]
            self.summary.reasons[key] = self.summary.reasons.get(key, 0) + 1
            log.warning(
                "order.rejected", symbol=symbol, qty=qty, client_order_id=cid, reason=reason
            )
        self.publish(
            "order",
            ts=out.timestamp_ns,
            bar=out.bar,
            symbol=symbol,
            qty=qty,
            client_order_id=cid,
            status=status,
            reason=reason,
        )

    # ------------------------------------------------------------------ bars
    def batch(self, fresh: bool, bars: list[Bar], traded: bool, trade_from: Any) -> None:
        """The line after a warm-up (``fresh``) or catch-up batch of bars."""
        first, last = (pd.Timestamp(b.timestamp_ns).date() for b in (bars[0], bars[-1]))
        kind = "warm-up" if fresh else "catch-up"
        print(
            f"{kind}: {len(bars) - 1} bars {first} .. {last} without orders, "
            f"latest {last} {'traded' if traded else 'not traded'} (trade_from {trade_from})",
            flush=True,
        )
        log.info("paper." + kind.replace("-", ""), bars=len(bars) - 1, last=str(last))

    def bar_events(self, out: BarOutput, prev_regime: int | None) -> None:
        if prev_regime is not None and out.regime != prev_regime:
            self.publish(
                "regime",
                ts=out.timestamp_ns,
                bar=out.bar,
                regime=out.regime,
                state=out.state,
                label=out.regime_label,
                posterior=out.posterior.tolist(),
            )
        if out.rebalanced:
            self.publish(
                "targets", ts=out.timestamp_ns, bar=out.bar, weights=self._by_symbol(out.targets)
            )
        self.publish(
            "equity",
            ts=out.timestamp_ns,
            bar=out.bar,
            equity=out.equity,
            cash=out.cash,
            weights=self._by_symbol(out.weights),
        )

    def status(
        self,
        out: BarOutput,
        phase: str,
        *,
        k_eq: float | None,
        fills: int,
        next_session: Session | None,
        sent: int = 0,
        gap: dict[str, float] | None = None,
        broker_eq: float | None = None,
    ) -> None:
        """One operator line per live bar (stdout) and the same as a ``status`` event."""
        d: date = pd.Timestamp(out.timestamp_ns).date()
        r = out.regime
        prob = float(out.posterior[r]) if 0 <= r < out.posterior.size else float("nan")
        weights = (
            {s: round(float(w), 4) for s, w in self._by_symbol(out.targets).items()}
            if out.rebalanced
            else None
        )
        eng = out.equity * (k_eq or 0.0)
        tgt = " ".join(f"{s}={w:.3f}" for s, w in weights.items()) if weights else "unchanged"
        gap_txt = f" gap {gap['frac'] * 100:.2f}%" if gap is not None else ""
        eq_txt = (
            f" equity engine {eng:,.0f} broker {broker_eq:,.0f}" if broker_eq is not None else ""
        )
        due = (
            f" | next decision after {next_session.close:%Y-%m-%d %H:%M %Z}" if next_session else ""
        )
        print(
            f"{d} {phase:<5} regime={out.regime_label} p={prob:.2f} targets {tgt} "
            f"orders {sent} sent / {fills} fills{eq_txt}{gap_txt}{due}",
            flush=True,
        )
        self.publish(
            "status",
            ts=out.timestamp_ns,
            phase=phase,
            regime=out.regime_label,
            prob=prob,
            targets=weights,
            sent=sent,
            fills=fills,
            engine_equity=eng if broker_eq is not None else None,
            broker_equity=broker_eq,
            gap_frac=None if gap is None else gap["frac"],
        )

    def decision(
        self,
        out: BarOutput,
        phase: str,
        desired: dict[str, float] | None = None,
        sent: list[dict[str, Any]] | None = None,
        gap: dict[str, float] | None = None,
    ) -> dict[str, Any]:
        """The journal line of one bar."""
        return {
            "bar": out.bar,
            "ts": out.timestamp_ns,
            "phase": phase,
            "targets": self._by_symbol(out.targets) if out.rebalanced else None,
            "engine_orders": {s: q for s, q in self._by_symbol(out.orders).items() if q},
            "desired": desired,
            "sent": sent or [],
            "gap": gap,
            "equity": out.equity,
        }

    def _by_symbol(self, values: Any) -> dict[str, float]:
        return {s: float(values[j]) for j, s in enumerate(self.symbols)}


__all__ = ["Summary", "Telemetry"]

"""One decision's orders at the broker (see :mod:`engine.live.node` for when a bar trades).

target shares = the engine's shares after its orders x ``broker equity / engine equity``
(x ``1 - cash_buffer``), the scale set at the first acting decision and at every rebalance
(fixed in between: no churn); orders = target - broker position - open orders' remaining
quantity (:func:`engine.live.planning.plan_orders`). Our stale open orders are cancelled and
the cancels awaited first (never an opposite-side order while one is open: Alpaca's
wash-trade guard). Sells, and the buys that fit the buying power now, are sent at once
(queued for the open); once the sells have filled (``sell_fill_timeout_s`` after the open)
the remaining buys follow. A client order id the broker already has is never sent again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from engine.core.streaming import BarOutput
from engine.live.book import LiveBook
from engine.live.config import PaperConfig
from engine.live.planning import ID_PREFIX, AssetRule, Plan, Planned, plan_orders
from engine.live.ports import (
    Account,
    Bar,
    Broker,
    BrokerError,
    MarketClock,
    Order,
    OrderRefused,
    OrderStatus,
    Timer,
    TradingHalted,
)
from engine.live.reconcile import reconcile, sync
from engine.live.telemetry import Telemetry

log = structlog.get_logger("regime-engine.paper")
TRACKING_VERSION = 2  # decision lines with prices, scale, book and orders (paper-report)


@dataclass
class Decision:
    """One acting bar: what it wanted, what it sent, the gap it found (the journal's line)."""

    out: BarOutput
    prices: dict[str, float]
    held: dict[str, float]  # the engine's shares now (after this bar's fills)
    shares: dict[str, float]  # the engine's shares once this bar's orders have filled
    rescaled: bool = False
    desired: dict[str, float] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    gap: dict[str, float] | None = None
    account: Account | None = None
    scale: float = 0.0  # broker shares per engine share (k_eq x (1 - cash_buffer))
    book: dict[str, Any] | None = None  # the broker's book the orders were planned on
    orders: list[dict[str, Any]] = field(default_factory=list)  # every planned order

    def tracking(self) -> dict[str, Any]:
        """What the journal keeps for ``paper-report`` (:mod:`engine.live.tracking`)."""
        return {
            "v": TRACKING_VERSION,
            "prices": self.prices,
            "scale": self.scale,
            "book": self.book,
            "orders": self.orders,
        }

    @classmethod
    def of(cls, out: BarOutput, bar: Bar, symbols: tuple[str, ...]) -> Decision:
        """The decision of ``out`` (the driver's output on ``bar``), priced at its close."""
        shares = out.positions + out.orders  # the engine's shares once its orders filled
        return cls(
            out,
            prices={s: float(bar.close[j]) for j, s in enumerate(symbols)},
            held={s: float(out.positions[j]) for j, s in enumerate(symbols)},
            shares={s: float(shares[j]) for j, s in enumerate(symbols)},
        )


class Executor:
    """Sends one decision's orders; knows the broker, the live book and the clock."""

    def __init__(
        self,
        broker: Broker,
        clock: MarketClock,
        timer: Timer,
        book: LiveBook,
        telemetry: Telemetry,
        pcfg: PaperConfig,
        ids: Callable[[int, str, str], str],
    ) -> None:
        self.broker, self.clock, self.timer, self.book = broker, clock, timer, book
        self.tm, self.p, self.ids = telemetry, pcfg, ids
        self.rules: dict[str, AssetRule] = {}
        self.waiting = False  # inside a wait for fills/cancels (tests step the market then)
        self.on_sent: Callable[[], None] = lambda: None  # after each accepted order
        self.planned: list[dict[str, Any]] = []  # the current decision's orders and outcomes

    def load_rules(self, symbols: tuple[str, ...]) -> None:
        """How each asset may be traded (whole shares unless the broker says fractionable);
        an asset the broker will not trade ends the run."""
        for s in symbols:
            a = self.broker.asset(s)
            if a is not None and not a.tradable:
                raise BrokerError(f"{s}: the broker says this asset is not tradable")
            self.rules[s] = AssetRule(fractionable=a.fractionable if a is not None else False)

    def decide(self, d: Decision, k_eq: float | None) -> float:
        """Bring the broker's book to ``d``'s targets; returns the account scale ``k_eq``."""
        out, p = d.out, self.p
        acct = self.broker.account()
        if k_eq is None or (out.rebalanced and not d.rescaled):
            # the engine's book -> the account's size, at the first decision and at every
            # rebalance (then fixed until the next: no daily churn from equity drift)
            k_eq = acct.equity / out.equity if out.equity > 0 else 0.0
            d.rescaled = True
        scale = d.scale = k_eq * (1.0 - p.cash_buffer)
        self.planned = d.orders = []
        d.desired = {s: scale * q for s, q in d.shares.items()}
        if acct.trading_blocked:  # the venue would refuse every order: send none, stop
            raise TradingHalted(
                f"account {acct.account_number} may no longer trade ({acct.blocked_reason}); "
                f"no order sent for bar {out.bar} (state checkpointed; restart to resume)"
            )
        ts = out.timestamp_ns
        mine = {self.ids(ts, s, leg) for s in d.shares for leg in ("s", "a", "b")}
        sync(self.book, self.broker)
        # a new decision replaces what is still pending (as in the backtest)
        stale = [
            v
            for v in self.book.open_orders()
            if v.client_order_id.startswith(ID_PREFIX) and v.client_order_id not in mine
        ]
        if stale:
            self.cancel_and_wait(stale)
            sync(self.book, self.broker)
        positions = {s: float(q) for s, q in self.book.positions.items()}
        d.book = {"cash": acct.cash, "equity": acct.equity, "positions": positions}
        d.gap = reconcile(
            self.book,
            {s: scale * q for s, q in d.held.items()},
            d.prices,
            acct.equity,
            tolerance=p.gap_tolerance,
            out=out,
            publish=self.tm.publish,
        )
        if stale:
            acct = self.broker.account()  # cancelled buys gave their buying power back
        plan = self._plan(d, acct.buying_power)
        sells = [o for o in (self._submit(out, o, "s") for o in plan.sells) if o is not None]
        d.sent = [_sent(o) for o in sells]  # a redone decision records what it sends again
        d.sent += [_sent(o) for o in (self._submit(out, b, "a") for b in plan.buys) if o]
        if plan.deferred and sells:
            self.wait_final([o.id for o in sells], p.sell_fill_timeout_s)
            sync(self.book, self.broker)
            acct = self.broker.account()
            plan_b = self._plan(d, acct.buying_power)
            d.sent += [_sent(o) for o in (self._submit(out, b, "b") for b in plan_b.buys) if o]
        d.account = acct
        return k_eq

    def _plan(self, d: Decision, buying_power: float) -> Plan:
        return plan_orders(
            d.desired,
            self.book.positions,
            self.book.open_qty(),
            d.prices,
            self.rules,
            buying_power=buying_power,
            min_notional=self.p.min_notional,
            long_only=self.p.long_only,
        )

    # ------------------------------------------------------------------ orders
    def _submit(self, out: BarOutput, o: Planned, leg: str) -> Order | None:
        cid = self.ids(out.timestamp_ns, o.symbol, leg)
        fields = {"symbol": o.symbol, "qty": o.qty, "client_order_id": cid, "bar": out.bar}
        planned = {"symbol": o.symbol, "qty": o.qty, "client_order_id": cid, "leg": leg}
        self.planned.append(planned)
        return self._send(out, o, cid, fields, planned, leg)

    def _send(
        self,
        out: BarOutput,
        o: Planned,
        cid: str,
        fields: dict[str, Any],
        planned: dict[str, Any],
        leg: str,
    ) -> Order | None:
        # the broker may have it from before a crash/restart: never send an id twice
        existing = self.broker.order_by_client_id(cid)
        if existing is not None:
            self.tm.summary.skipped += 1
            log.info("order.skip_known", **fields)
            self.tm.order(out, o.symbol, o.qty, cid, "skipped", None)
            planned["status"] = "known"  # sent before a restart: its fills count
            return self.book.track(existing)
        # Alpaca's wash-trade guard: never while an opposite-side order is open
        if any(v.symbol == o.symbol and v.sign * o.qty < 0 for v in self.book.open_orders()):
            log.warning("order.skip_opposite_open", **fields)
            self.tm.order(out, o.symbol, o.qty, cid, "skipped", "opposite-side order open")
            planned["status"] = "skipped"
            return None
        try:
            order = self.book.track(self.broker.submit(o.symbol, o.qty, cid))
        except OrderRefused as exc:
            self.tm.order(out, o.symbol, o.qty, cid, "rejected", exc.reason)
            planned["status"] = "refused"
            return None
        if order.status == OrderStatus.REJECTED:
            self.tm.order(out, o.symbol, o.qty, cid, "rejected", "rejected by the broker")
            planned["status"] = "rejected"
            return order
        self.tm.summary.sent += 1
        log.info("order.submitted", **fields, leg=leg)
        self.tm.order(out, o.symbol, o.qty, cid, "submitted", None)
        planned["status"] = "submitted"
        self.on_sent()
        return order

    def cancel_and_wait(self, orders: list[Order]) -> None:
        for v in orders:
            self.broker.cancel(v.id)
            log.info("order.cancel", client_order_id=v.client_order_id, symbol=v.symbol)
        self.wait_final([v.id for v in orders], self.p.cancel_timeout_s, count_from_open=False)

    def wait_final(self, ids: list[str], timeout_s: float, count_from_open: bool = True) -> bool:
        """Wait until the orders are final (stream events, polling the broker as the
        fallback). With ``count_from_open`` the timeout starts when the market opens
        (orders queued overnight fill at the open), else now. ``False`` on timeout."""
        t0 = None if count_from_open else self.timer.monotonic()
        step = min(self.p.poll_s, 0.25)
        last_poll: float | None = None
        self.waiting = True
        try:
            while True:
                pending = [i for i in ids if not ((v := self.book.get(i)) and v.final)]
                if not pending:
                    return True
                now = self.timer.monotonic()
                if last_poll is None or now - last_poll >= step:
                    last_poll = now
                    for i in pending:
                        self.book.track(self.broker.order(i))
                    if t0 is None and self.clock.clock().is_open:
                        t0 = self.timer.monotonic()
                if t0 is not None and self.timer.monotonic() - t0 > timeout_s:
                    log.warning("order.wait_timeout", pending=len(pending), timeout_s=timeout_s)
                    return False
                self.timer.wait(self.book.changed, step)
                self.book.changed.clear()
        finally:
            self.waiting = False


def _sent(v: Order) -> dict[str, Any]:
    return {"symbol": v.symbol, "qty": v.sign * v.qty, "client_order_id": v.client_order_id}


__all__ = ["Decision", "Executor"]

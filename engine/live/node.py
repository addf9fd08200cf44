"""The paper/live loop: warm up on history, act only on the present, the broker's book is the
truth (DESIGN.md, "Paper trading"). Beside it: market time and bars (:mod:`.sessions`), the
strategy (:mod:`.trader`), a decision's orders (:mod:`.execution`, :mod:`.planning`,
:mod:`.reconcile`, :mod:`.book`), persistence (:mod:`.journal`), the operator's view
(:mod:`.telemetry`); the venue comes in through :mod:`.ports` when the loop connects.

Failure is a state: every venue call has a timeout; the venue down at start is one line and
exit code 3 within ``start_timeout_s``; a mid-run outage is retried with back-off for
``outage_limit_s``, then the loop checkpoints (an unfinished decision is redone on restart,
with the same client order ids) and exits with code 3; so does an input that stops being
trustworthy (an exogenous file stale or malformed, :mod:`.exog_inputs`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import structlog

from engine.bus.zmq_bus import Publisher
from engine.live.book import LiveBook
from engine.live.config import PaperConfig
from engine.live.execution import Decision, Executor
from engine.live.guard import read_checkpoint
from engine.live.journal import Journal
from engine.live.planning import client_order_id
from engine.live.ports import (
    AccountBlocked,
    Bar,
    BrokerUnavailable,
    InputHalted,
    TradeUpdate,
    TradingHalted,
    Venue,
)
from engine.live.sessions import Sessions, check_inputs_served, day_of
from engine.live.telemetry import Summary, Telemetry
from engine.live.trader import Trader

log = structlog.get_logger("regime-engine.paper")
EXIT_UNAVAILABLE = 3
INPUT_WINDOW_DAYS = 14  # a series with no daily bar in this many days is not served


class Stop(Exception):
    """End of the run (max_bars, idle, the venue's market has ended)."""


class Node:
    """One strategy's loop against one venue (``open_venue()`` is called by :meth:`connect`)."""

    def __init__(
        self,
        config_name: str,
        trader: Trader,
        pcfg: PaperConfig,
        open_venue: Callable[[], Venue],
        open_events: Callable[[], Publisher | None] = lambda: None,
        panel: Any = None,
        fingerprint: str = "",
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.config_name, self.trader, self.p = config_name, trader, pcfg
        self.panel = panel  # the run's panel (a simulated venue replays it)
        self.fingerprint = fingerprint  # of the run's structure (a checkpoint must match)
        self.meta = meta  # the run's config, journalled at this process's first decision
        self.name, self.symbols = trader.name, trader.symbols
        self.open_venue, self.open_events = open_venue, open_events
        self.journal = Journal(Path(pcfg.state_dir) / self.name)
        self.trade_from: datetime | None = (
            pd.Timestamp(pcfg.trade_from).to_pydatetime() if pcfg.trade_from else None
        )
        self.k_eq: float | None = None
        self.resumed = False
        self.tm = Telemetry(self.name, self.symbols, None)
        self.book = LiveBook()
        self.venue: Venue | None = None
        self.ex: Executor | None = None
        self.sessions: Sessions | None = None
        self._pending: Decision | None = None
        self._pre_bar: dict[str, Any] | None = None  # the trader before the pending decision
        self._first_batch_done = False
        self.polls = 0  # completed polls of the venue's clock (tests wait on it)

    @property
    def summary(self) -> Summary:
        return self.tm.summary

    @property
    def waiting(self) -> bool:
        """Inside a wait for fills or cancels (tests step the market then)."""
        return self.ex is not None and self.ex.waiting

    def ids(self, ts_ns: int, symbol: str, leg: str) -> str:
        return client_order_id(self.config_name, self.name, ts_ns, symbol, leg)

    # ------------------------------------------------------------------ lifecycle
    def run(self) -> Summary:
        """Trade until ``max_bars`` live bars, ``idle_exit_s`` or the venue's market ends."""
        self.resume()
        try:
            self.connect()
            self._loop()
        except Stop:
            pass
        finally:
            self.finish()
        return self.summary

    def resume(self) -> bool:
        """Load the checkpoint if there is one (before any venue is contacted)."""
        got = read_checkpoint(self.journal, self.name, self.symbols, self.fingerprint, self.trader)
        if got is None:
            return False
        self.trade_from, self.k_eq = got
        self.resumed = True
        last = self.trader.last_ts
        log.info(
            "paper.resumed",
            strategy=self.name,
            bars=self.trader.bars,
            last_bar=str(day_of(last)) if last is not None else None,
            trade_from=str(self.trade_from),
        )
        return True

    def connect(self) -> None:
        """The venue (its account within ``start_timeout_s``), trade updates, bars, events."""
        v = self.venue = self.open_venue()
        acct = v.broker.connect(self.p.start_timeout_s)
        if acct.trading_blocked:  # before any stream, bar or order: nothing is sent
            raise AccountBlocked(
                f"account {acct.account_number} at {v.broker.url} may not trade "
                f"({acct.blocked_reason}); no order sent"
            )
        check_inputs_served(v, INPUT_WINDOW_DAYS)  # before the first log line: one line
        log.warning(  # the first log line names where the orders go
            "paper.start",
            endpoint=v.broker.endpoint,
            url=v.broker.url,
            account=acct.account_number,
            status=acct.status,
            strategy=self.name,
        )
        self.tm.events = self.open_events()
        self.sessions = Sessions(v.clock, self.p.history_days)
        self.ex = Executor(v.broker, v.clock, v.timer, self.book, self.tm, self.p, self.ids)
        self.ex.load_rules(self.symbols)
        v.broker.stream_trade_updates(self._on_trade)
        v.bars.start()  # subscribe first, backfill after: no bar lost in between

    def _on_trade(self, u: TradeUpdate) -> None:
        """Trade updates (the venue's thread): the live book, then the operator."""
        self.book.on_update(u)
        self.tm.on_trade(u)

    def finish(self) -> None:
        v = self.venue
        self.tm.finish(v.broker if v is not None else None, self.book.fills)
        if v is not None:
            v.close()

    # ------------------------------------------------------------------ persistence
    def state(self, trader: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "strategy": self.name,
            "config": self.config_name,
            "symbols": list(self.symbols),
            **(trader if trader is not None else self.trader.checkpoint()),
            "trade_from": self.trade_from.isoformat() if self.trade_from else None,
            "k_eq": self.k_eq,
            "fingerprint": self.fingerprint,
        }

    def commit(self) -> None:
        """Checkpoint + the decisions since the last commit (one atomic write). With a
        decision unfinished, the state before its bar: a restart redoes it."""
        pre = self._pre_bar if self._pending is not None else None
        if self.journal.pending and (fills := self.book.take_fills()):
            # the broker's fills so far ride on the last line (paper-report reads them)
            self.journal.pending[-1].setdefault("fills", []).extend(fills)
        self.journal.commit(self.state(pre))

    # ------------------------------------------------------------------ the loop
    def _loop(self) -> None:
        assert self.venue is not None
        p, timer, never = self.p, self.venue.timer, threading.Event()
        outage_since: float | None = None
        last_new = timer.monotonic()
        delay = p.poll_s
        while True:
            try:
                n = self.poll()
                outage_since, delay = None, p.poll_s
            except (TradingHalted, InputHalted):
                self.commit()  # the unfinished decision is redone on restart
                raise
            except BrokerUnavailable as exc:
                now = timer.monotonic()
                outage_since = outage_since or now
                if now - outage_since > p.outage_limit_s:
                    self.commit()
                    raise BrokerUnavailable(
                        f"{exc}; gave up after {now - outage_since:.0f} s "
                        "(state checkpointed; restart to resume)"
                    ) from None
                log.warning("paper.outage", error=str(exc), since_s=round(now - outage_since, 1))
                timer.wait(never, delay)
                delay = min(delay * 2, 30.0)
                continue
            if n:
                last_new = timer.monotonic()
                continue
            if p.idle_exit_s is not None and timer.monotonic() - last_new > p.idle_exit_s:
                log.info("paper.idle_exit", after_s=p.idle_exit_s)
                raise Stop
            if self.venue.clock.finished():
                raise Stop
            self.venue.bars.wait(p.poll_s)

    def poll(self) -> int:
        """Finish an interrupted decision, then process the sessions completed since the
        last bar; returns the number of new bars (:class:`Stop` after ``max_bars``)."""
        if self._pending is not None:
            self._decide()
        n = self._poll_once()
        self.tm.drain()
        self.polls += 1
        return n

    def _poll_once(self) -> int:
        assert self.venue is not None and self.sessions is not None
        tr, cal = self.trader, self.sessions
        now = self.venue.clock.clock().timestamp
        if self.trade_from is None:
            self.trade_from = now
            log.info("paper.trade_from", trade_from=str(now))
        cal.refresh(now, tr.last_ts)
        completed = cal.completed(now)
        last_date = day_of(tr.last_ts) if tr.last_ts is not None else None
        if not completed or (last_date is not None and completed[-1].date <= last_date):
            cal.log_due(now)
            return 0
        latest = completed[-1].date
        first = completed[0].date if tr.last_ts is None else None
        done = {s.date for s in completed}
        bars = self.venue.bars.history(tr.last_ts, latest, first)
        bars = [b for b in bars if day_of(b.timestamp_ns) in done]
        if not bars:
            return 0
        fresh_start = tr.last_ts is None
        for i, bar in enumerate(bars):
            if i == len(bars) - 1 and i > 0:
                self.commit()  # warm-up/catch-up (and trade_from) kept before acting
            d = day_of(bar.timestamp_ns)
            is_latest = i == len(bars) - 1 and d == latest
            if is_latest and cal.actionable(d, self.trade_from):
                self._process_live(bar)
                continue
            out = self._warm(bar)
            if is_latest and self._first_batch_done:
                self.summary.live_bars += 1
                self._status(out, f"LIVE (not traded: {cal.why_not(d)})")
            elif fresh_start:
                self.summary.warmup_bars += 1
            else:
                self.summary.catchup_bars += 1
        if len(bars) > 1 or not self.summary.decisions:
            last_d = day_of(bars[-1].timestamp_ns)
            traded = cal.actionable(last_d, self.trade_from)
            self.tm.batch(fresh_start, bars, traded, self.trade_from)
        self._first_batch_done = True
        self.commit()
        cal.log_due(now, force=True)
        if self.p.max_bars is not None and self.summary.live_bars >= self.p.max_bars:
            raise Stop
        return len(bars)

    # ------------------------------------------------------------------ bars
    def _warm(self, bar: Bar) -> Any:
        """A bar through the engine without orders (warm-up, catch-up, not tradable)."""
        out = self.trader.step(bar)
        self.journal.record(self.tm.decision(out, "warmup"))
        return out

    def _process_live(self, bar: Bar) -> None:
        assert self.sessions is not None
        if self.sessions.superseded(day_of(bar.timestamp_ns)):
            self._warm(bar)
            self.summary.catchup_bars += 1
            log.info("paper.superseded", bar=str(day_of(bar.timestamp_ns)))
            return
        self._pre_bar = self.trader.checkpoint()
        out = self.trader.step(bar)
        self.summary.live_bars += 1
        self.tm.bar_events(out, self.trader.prev_regime)
        self._pending = Decision.of(out, bar, self.symbols)
        self._decide()

    def _decide(self) -> None:
        """Send the pending decision's orders, then journal and checkpoint it (one write)."""
        assert self._pending is not None and self.ex is not None
        d = self._pending
        self.k_eq = self.ex.decide(d, self.k_eq)
        self._pending = None
        acct, out = d.account, d.out
        assert acct is not None
        s = self.summary
        s.decisions += 1
        s.engine_equity, s.broker_equity = out.equity * self.k_eq, acct.equity
        s.last_bar = str(day_of(out.timestamp_ns))
        line = self.tm.decision(out, "live", d.desired, d.sent, d.gap) | d.tracking()
        if self.meta is not None:  # once per process: what paper-report replays
            line["start"], self.meta = self.meta, None
        self.journal.record(line)
        self._status(out, "LIVE", sent=len(d.sent), gap=d.gap, broker_eq=acct.equity)
        self.commit()

    def _status(self, out: Any, phase: str, **kw: Any) -> None:
        assert self.sessions is not None
        nxt = self.sessions.next_after(day_of(out.timestamp_ns))
        self.tm.status(out, phase, k_eq=self.k_eq, fills=self.book.fills, next_session=nxt, **kw)


__all__ = ["EXIT_UNAVAILABLE", "Node", "Stop"]

"""Paper trading: warm up on history, act only on the present, the broker's book is the truth.

The loop (:class:`PaperTrader`) runs a config's strategy through :class:`StreamingDriver`
(the backtest's compiled step) on *completed daily bars* of an Alpaca (or Alpaca-like)
broker, and trades so that each decision fills at the next open, as in the backtest.

When a bar may trade
    Every completed session's bar goes through the driver (features, detector fits,
    strategy state). Only the decision on the **latest completed session** ``d`` may trade,
    and only if the next session's open ``next_open(d)`` (from ``/v2/calendar``) is at or
    after ``trade_from``. ``trade_from`` defaults to the broker clock when the loop first
    starts and is kept in the checkpoint. So a fresh start acts on the latest bar only if
    it starts after that session's close and before the next open (its orders queue for
    the open, where the backtest fills them); a start during a session waits for tonight's
    close. A restart (``trade_from`` from the checkpoint) catches up the bars it missed
    without orders and acts once, on the latest decision, even during a session (the
    fills then land intraday: the one place paper differs from the backtest).

Orders (every acting bar)
    target shares = the engine's shares after its pending orders, scaled by
    ``broker equity / engine equity`` (x ``1 - cash_buffer``), the scale being set at the
    first acting decision and at every rebalance (fixed in between: no churn);
    orders = target - broker position - open orders' remaining quantity
    (:func:`brokers.paper_orders.plan_orders`). Our stale open orders are cancelled and the
    cancels awaited first (no opposite-side order is ever sent while one is open: Alpaca's
    wash-trade guard). Sells and the buys that fit the buying power now are queued before
    the open; once the sells have filled (``sell_fill_timeout_s`` after the open) the
    remaining buys are sent. Client order ids are deterministic (config, strategy, bar,
    symbol, leg), so a restart or a retried request never duplicates an order.

Failure is a state: every HTTP call has a timeout; the broker down at start is one line
and exit code 3 within ``start_timeout_s``; a mid-run outage is retried with backoff for
``outage_limit_s``, then the loop checkpoints and exits with code 3. Checkpoints are JSON
with a checksum (:mod:`engine.core.checkpoint`).
"""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import structlog
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import OrderStatus, TradeEvent

from brokers.alpaca import (
    AlpacaBroker,
    BrokerError,
    BrokerUnavailable,
    Session,
    credentials,
    message_of,
    status_of,
)
from brokers.paper_book import LiveBook, OrderView
from brokers.paper_config import PaperConfig, parse_paper
from brokers.paper_orders import AssetRule, Planned, plan_orders
from data_feeds.alpaca_feed import AlpacaBarFeed, CrossBar, session_date
from engine.bus.zmq_bus import Publisher
from engine.config import ConfigError, RunConfig
from engine.core import checkpoint as ckpt
from engine.core.streaming import BarOutput
from engine.ground import layout as L

log = structlog.get_logger("regime-engine.paper")

CRASH_ENV = "REGIME_ENGINE_PAPER_CRASH_AT"  # test hook: SIGKILL after the Nth order sent
ID_PREFIX = "re-"
EXIT_UNAVAILABLE = 3


def client_order_id(config: str, strategy: str, ts_ns: int, symbol: str, leg: str = "") -> str:
    """Deterministic id: the same decision (and leg) always gets the same id."""
    key = f"{config}|{strategy}|{ts_ns}|{symbol}" + (f"|{leg}" if leg else "")
    return ID_PREFIX + hashlib.sha256(key.encode()).hexdigest()[:40]


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


class Stop(Exception):
    """End of the run (max_bars, idle, the local exchange has no more bars)."""


class PaperTrader:
    """Run one strategy of ``cfg`` against the broker named in ``cfg.paper``."""

    def __init__(self, cfg: RunConfig, pcfg: PaperConfig | None = None) -> None:
        from engine.assemble import assemble

        self.cfg = cfg
        self.pcfg = p = pcfg or parse_paper(cfg.paper)
        if p.live and p.broker != "alpaca":
            raise ConfigError('paper.live: the live endpoint needs broker = "alpaca"')
        names = [s.name for s in cfg.strategies]
        if p.strategy is not None and p.strategy not in names:
            raise ConfigError(
                f"paper.strategy: unknown strategy {p.strategy!r} (config has {', '.join(names)})"
            )
        # the backtest's run: market, frequency, user features, costs and execution alike
        run = assemble(cfg)
        scfg, self.strategy = run.strategy(p.strategy)
        self.run_spec = run
        self.panel = run.panel
        self.name = scfg.name
        self.symbols = tuple(run.panel.symbols)
        self.exog_names = tuple(run.panel.exog_names)
        self.labels = tuple(getattr(run.detector, "labels", ()))
        # online refits from the streamed history (no fit on the config's panel here)
        self.driver = run.streaming_driver(self.strategy)
        self.state_dir = Path(p.state_dir) / self.name
        self.ckpt_path = self.state_dir / "checkpoint.json"
        self.decisions_path = self.state_dir / "decisions.jsonl"
        self.last_ts: int | None = None
        self.bars_done = 0
        self.trade_from: datetime | None = (
            pd.Timestamp(p.trade_from).to_pydatetime() if p.trade_from else None
        )
        self.k_eq: float | None = None
        self.resumed = False
        self.summary = Summary()
        self.book = LiveBook()
        self.rules: dict[str, AssetRule] = {}
        self._events_q: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: Publisher | None = None
        self.broker: AlpacaBroker | None = None
        self.feed: AlpacaBarFeed | None = None
        self.zfeed: Any = None
        self._crash_at = int(os.environ.get(CRASH_ENV, "-1"))
        self._sent_this_process = 0
        self._sessions: list[Session] = []
        self._pending: tuple[CrossBar, BarOutput, np.ndarray, dict[str, Any]] | None = None
        self._pre_bar_ckpt: dict[str, Any] | None = None
        self._due_logged: date | None = None
        self._first_batch_done = False
        self.waiting = False  # inside a wait for fills/cancels (tests step the market then)
        self.polls = 0  # completed polls of the broker's clock (tests wait on it)
        ex = p.exchange
        local = p.broker == "local"
        self.url = p.url or (f"http://{ex.host}:{ex.port}" if local else None)
        self.stream_base = p.stream_url or (f"ws://{ex.host}:{ex.ws_port}" if local else None)

    # ------------------------------------------------------------------ setup
    def connect(self) -> None:
        """Broker (checked within ``start_timeout_s``), streams and event bus."""
        p = self.pcfg
        if p.broker == "local":  # the local exchange accepts any non-empty key pair
            os.environ.setdefault("APCA_API_KEY_ID", "local-paper")
            os.environ.setdefault("APCA_API_SECRET_KEY", "local-paper")
        self.broker = AlpacaBroker(
            live=p.live,
            url=self.url,
            stream_url=f"{self.stream_base}/stream" if self.stream_base else None,
            timeout_s=min(p.http_timeout_s, p.start_timeout_s / 3),
            retry_budget_s=p.start_timeout_s,
        )
        self.broker.quiet_retries = True
        acct = self.broker.account(budget_s=p.start_timeout_s)
        self.broker.quiet_retries = False
        # the first log line that names where the orders go
        log.warning(
            "paper.start",
            endpoint=self.broker.kind.upper(),
            url=self.url
            or ("https://api.alpaca.markets" if p.live else "paper-api.alpaca.markets"),
            account=acct.account_number,
            status=acct.status,
            strategy=self.name,
        )
        self.broker.timeout_s = p.http_timeout_s
        self.broker.client._session.timeout = (min(p.http_timeout_s, 5.0), p.http_timeout_s)
        self.broker.retry_budget_s = min(p.outage_limit_s, 30.0)
        if p.events:
            from engine.bus.security import curve_from_dir

            self.events = Publisher(
                p.events, allow_remote=p.allow_remote, curve=curve_from_dir(p.curve_dir, "server")
            )
        key, secret = credentials()
        exog = self.exog_names if p.exog_from_stream else ()
        self.feed = AlpacaBarFeed(
            self.symbols,
            exog,
            key=key,
            secret=secret,
            url=self.url,
            stream_url=f"{self.stream_base}/v2/{p.feed}" if self.stream_base else None,
            feed=p.feed,
            adjustment=p.adjustment,
            timeout_s=p.http_timeout_s,
            call=self.broker.call,
        )
        if p.bars == "zmq":
            from data_feeds.zmq_feed import ZmqBarFeed

            self.zfeed = ZmqBarFeed(
                self.symbols,
                self.exog_names,
                p.zmq_bars,
                allow_remote=p.allow_remote,
                curve_dir=p.curve_dir,
            )
        for s in self.symbols:
            a = self.broker.asset(s)
            if a is not None and not a.tradable:
                raise BrokerError(f"{s}: the broker says this asset is not tradable")
            self.rules[s] = AssetRule(fractionable=a.fractionable if a is not None else False)
        self.broker.stream_trade_updates(self._on_trade)
        self.feed.start()  # subscribe first, backfill after: no bar lost in between
        for o in self.broker.orders("all"):
            self.book.known_ids.add(str(o.client_order_id))

    def close(self) -> None:
        for c in (self.feed, self.broker):
            if c is not None:
                try:
                    c.close() if isinstance(c, AlpacaBroker) else c.stop()
                except Exception:  # best effort at shutdown
                    pass
        if self.events is not None:
            self.events.close()
        if self.zfeed is not None:
            self.zfeed.close()

    # ------------------------------------------------------------------ checkpoints
    def resume(self) -> bool:
        """Load the checkpoint if there is one; ``True`` if resumed."""
        if not self.ckpt_path.exists():
            return False
        ck = ckpt.load(self.ckpt_path)  # CheckpointError: one line naming the file
        if ck.get("strategy") != self.name or tuple(ck.get("symbols", ())) != self.symbols:
            raise ConfigError(
                f"{self.ckpt_path}: checkpoint is for another strategy/symbols; "
                "use another paper.state_dir"
            )
        try:
            self.driver.resume(ck["driver"])
            self.last_ts = None if ck["last_ts"] is None else int(ck["last_ts"])
            self.bars_done = int(ck["bars"])
            self.trade_from = datetime.fromisoformat(ck["trade_from"])
            self.k_eq = None if ck["k_eq"] is None else float(ck["k_eq"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"{self.ckpt_path}: checkpoint field missing or bad ({exc})"
            ) from None
        self.resumed = True
        log.info(
            "paper.resumed",
            strategy=self.name,
            bars=self.bars_done,
            last_bar=str(pd.Timestamp(self.last_ts).date()) if self.last_ts else None,
            trade_from=str(self.trade_from),
        )
        return True

    def checkpoint(self, driver_state: dict[str, Any] | None = None, last_ts: Any = "now") -> None:
        data = {
            "strategy": self.name,
            "config": self.cfg.name,
            "symbols": list(self.symbols),
            "driver": driver_state if driver_state is not None else self.driver.checkpoint(),
            "last_ts": self.last_ts if last_ts == "now" else last_ts,
            "bars": self.bars_done,
            "trade_from": self.trade_from.isoformat() if self.trade_from else None,
            "k_eq": self.k_eq,
        }
        atomic_write(self.ckpt_path, ckpt.dumps(data))

    # ------------------------------------------------------------------ market time
    def _calendar(self, now: datetime) -> list[Session]:
        """Sessions from the warm-up start to a week ahead (cached, extended as needed)."""
        assert self.broker is not None
        end = now.date() + timedelta(days=10)
        if not self._sessions or self._sessions[-1].date < now.date() + timedelta(days=4):
            start = (
                (pd.Timestamp(self.last_ts).date() - timedelta(days=10))
                if self.last_ts is not None
                else now.date() - timedelta(days=self.pcfg.history_days)
            )
            self._sessions = self.broker.calendar(start, end)
        return self._sessions

    def _next_open(self, d: date) -> datetime | None:
        later = [s for s in self._sessions if s.date > d]
        return later[0].open if later else None

    def actionable(self, d: date) -> bool:
        """May the decision on session ``d`` (the latest completed one) trade?"""
        nxt = self._next_open(d)
        return nxt is not None and self.trade_from is not None and nxt >= self.trade_from

    # ------------------------------------------------------------------ the loop
    def run(self) -> Summary:
        """Trade until ``max_bars`` live bars, ``idle_exit_s`` or the local exchange ends."""
        self.resume()
        try:
            self.connect()
            self._loop()
        except Stop:
            pass
        finally:
            self._finish()
        return self.summary

    def _finish(self) -> None:
        try:
            if self.broker is not None and self.summary.decisions:
                self.summary.broker_equity = self.broker.account(budget_s=5).equity
        except Exception:  # the summary is best effort when the broker is gone
            pass
        self.summary.retries = self.broker.retried if self.broker else 0
        self.summary.fills = self.book.fills
        self._drain_events()
        self.close()
        log.info("paper.finished", **{k: v for k, v in vars(self.summary).items() if v})

    def _loop(self) -> None:
        p = self.pcfg
        assert self.broker is not None and self.feed is not None
        outage_since: float | None = None
        last_new = time.monotonic()
        delay = p.poll_s
        while True:
            try:
                if self._pending is not None:
                    self._decide(*self._pending)
                n = self._poll_once()
                outage_since, delay = None, p.poll_s
            except BrokerUnavailable as exc:
                now = time.monotonic()
                outage_since = outage_since or now
                if now - outage_since > p.outage_limit_s:
                    self._checkpoint_safe()
                    raise BrokerUnavailable(
                        f"{exc}; gave up after {now - outage_since:.0f} s "
                        "(state checkpointed; restart to resume)"
                    ) from None
                log.warning("paper.outage", error=str(exc), since_s=round(now - outage_since, 1))
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
                continue
            self._drain_events()
            self.polls += 1
            if n:
                last_new = time.monotonic()
                continue
            if p.idle_exit_s is not None and time.monotonic() - last_new > p.idle_exit_s:
                log.info("paper.idle_exit", after_s=p.idle_exit_s)
                raise Stop
            if self._exchange_done():
                raise Stop
            self.feed.wake.wait(p.poll_s)
            self.feed.wake.clear()

    def _exchange_done(self) -> bool:
        """The local exchange has replayed its last bar (never asked of a real broker)."""
        if self.pcfg.broker != "local" or self.url is None:
            return False
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.url}/_sim/status", timeout=2) as r:
                return bool(json.loads(r.read() or b"{}").get("done"))
        except Exception:
            return False

    def _checkpoint_safe(self) -> None:
        """Checkpoint so that a restart redoes an unfinished decision."""
        if self._pending is not None and self._pre_bar_ckpt is not None:
            ck, ts = self._pre_bar_ckpt["driver"], self._pre_bar_ckpt["last_ts"]
            self.bars_done -= 1
            self.checkpoint(ck, ts)
        else:
            self.checkpoint()

    def _poll_once(self) -> int:
        """Process the sessions completed since the last bar; number of new bars."""
        assert self.broker is not None and self.feed is not None
        clock = self.broker.clock()
        now: datetime = clock.timestamp
        if self.trade_from is None:
            self.trade_from = now
            log.info("paper.trade_from", trade_from=str(now))
        sessions = self._calendar(now)
        completed = [s for s in sessions if s.close <= now]
        last_date = pd.Timestamp(self.last_ts).date() if self.last_ts is not None else None
        if not completed or (last_date is not None and completed[-1].date <= last_date):
            self._log_due(sessions, now)
            return 0
        latest = completed[-1]
        if self.zfeed is not None:
            bars = self._zmq_bars(latest.date)
        else:
            first = completed[0].date if self.last_ts is None else None
            bars = self._history_bars(first, latest.date)
        done = {s.date for s in completed}
        bars = [b for b in bars if pd.Timestamp(b.timestamp_ns).date() in done]
        if not bars:
            return 0
        fresh_start = self.last_ts is None
        for i, bar in enumerate(bars):
            if i == len(bars) - 1 and i > 0:
                self.checkpoint()  # warm-up/catch-up (and trade_from) kept before acting
            d = pd.Timestamp(bar.timestamp_ns).date()
            is_latest = i == len(bars) - 1 and d == latest.date
            if is_latest and self.actionable(d):
                self._process_live(bar)
            else:
                self._step(bar)
                if is_latest and self._first_batch_done:
                    self.summary.live_bars += 1
                    why = (
                        "no next session in the calendar"
                        if self._next_open(d) is None
                        else "next open before trade_from"
                    )
                    self._status(bar, None, f"LIVE (not traded: {why})")
                elif fresh_start:
                    self.summary.warmup_bars += 1
                else:
                    self.summary.catchup_bars += 1
        if len(bars) > 1 or not self.summary.decisions:
            first_d, last_d = (pd.Timestamp(b.timestamp_ns).date() for b in (bars[0], bars[-1]))
            kind = "warm-up" if fresh_start else "catch-up"
            line = (
                f"{kind}: {len(bars) - 1} bars {first_d} .. {last_d} without orders, "
                f"latest {last_d} {'traded' if self.actionable(last_d) else 'not traded'} "
                f"(trade_from {self.trade_from})"
            )
            print(line, flush=True)
            log.info("paper." + kind.replace("-", ""), bars=len(bars) - 1, last=str(last_d))
        self._first_batch_done = True
        self.checkpoint()
        self._log_due(sessions, now, force=True)
        if self.pcfg.max_bars is not None and self.summary.live_bars >= self.pcfg.max_bars:
            raise Stop
        return len(bars)

    def _history_bars(self, first: date | None, last: date) -> list[CrossBar]:
        assert self.feed is not None
        if self.pcfg.history == "data" and self.last_ts is None:
            p = self.panel
            rows = [
                CrossBar(int(p.timestamps_ns[t]), p.open[t], p.close[t], p.volume[t], p.exog[t])
                for t in range(p.n_bars)
                if pd.Timestamp(int(p.timestamps_ns[t])).date() <= last
            ]
            after = rows[-1].timestamp_ns if rows else None
            return rows + self.feed.history(after, last)
        return self.feed.history(self.last_ts, last, first=first)

    def _zmq_bars(self, last: date) -> list[CrossBar]:
        out = []
        while (bar := self.zfeed.next(0)) is not None:
            if self.last_ts is None or bar.timestamp_ns > self.last_ts:
                out.append(bar)
        return out

    def _log_due(self, sessions: list[Session], now: datetime, force: bool = False) -> None:
        nxt = next((s for s in sessions if s.close > now), None)
        if nxt is not None and (force or self._due_logged != nxt.date):
            self._due_logged = nxt.date
            log.info("paper.next_decision", due=str(nxt.close), session=str(nxt.date))

    # ------------------------------------------------------------------ bars
    def _step(self, bar: CrossBar) -> BarOutput:
        exog = bar.exog if bar.exog.shape == (len(self.exog_names),) else None
        out = self.driver.on_bar(bar.timestamp_ns, bar.open, bar.close, bar.volume, exog)
        self.last_ts = bar.timestamp_ns
        self.bars_done += 1
        self._append_decision(out, "warmup", None, [])
        return out

    def _engine_held(self) -> np.ndarray:
        """The engine's simulated shares now (after this bar's fills, before its orders)."""
        n = len(self.symbols)
        return np.asarray(self.driver.state.port[L.P_HEADER : L.P_HEADER + n], dtype=np.float64)

    def _engine_shares(self, out: BarOutput) -> np.ndarray:
        n = len(self.symbols)
        pos = self.driver.state.port[L.P_HEADER : L.P_HEADER + n]
        return np.asarray(pos + out.orders, dtype=np.float64)

    def _superseded(self, bar: CrossBar) -> bool:
        """A later session has closed since the bars were fetched (a slow warm-up, or a
        compressed simulated clock): the decision on ``bar`` is no longer the latest."""
        assert self.broker is not None
        now = self.broker.clock().timestamp
        d = pd.Timestamp(bar.timestamp_ns).date()
        return any(d < s.date and s.close <= now for s in self._calendar(now))

    def _process_live(self, bar: CrossBar) -> None:
        if self._superseded(bar):
            self._step(bar)
            self.summary.catchup_bars += 1
            log.info("paper.superseded", bar=str(pd.Timestamp(bar.timestamp_ns).date()))
            return
        self._pre_bar_ckpt = {"driver": self.driver.checkpoint(), "last_ts": self.last_ts}
        prev = int(self.driver.state.rstate[L.G_SMOOTHED]) if self.bars_done else None
        out = self.driver.on_bar(
            bar.timestamp_ns,
            bar.open,
            bar.close,
            bar.volume,
            bar.exog if bar.exog.shape == (len(self.exog_names),) else None,
        )
        self.last_ts = bar.timestamp_ns
        self.bars_done += 1
        self.summary.live_bars += 1
        self._publish_bar_events(out, prev)
        self._pending = (bar, out, self._engine_shares(out), {})
        self._decide(*self._pending)

    def _decide(
        self, bar: CrossBar, out: BarOutput, shares: np.ndarray, memo: dict[str, Any]
    ) -> None:
        """Bring the broker's book to the targets of this decision (see module doc)."""
        assert self.broker is not None
        p = self.pcfg
        ts = bar.timestamp_ns
        prices = {s: float(bar.close[j]) for j, s in enumerate(self.symbols)}
        acct = self.broker.account()
        if self.k_eq is None or (out.rebalanced and not memo.get("rescaled")):
            # the engine's book -> the account's size, at the first decision and at every
            # rebalance (then fixed until the next: no daily churn from equity drift)
            self.k_eq = acct.equity / out.equity if out.equity > 0 else 0.0
            memo["rescaled"] = True
        scale = self.k_eq * (1.0 - p.cash_buffer)
        desired = {s: scale * float(shares[j]) for j, s in enumerate(self.symbols)}
        ids = {
            (s, leg): client_order_id(self.cfg.name, self.name, ts, s, leg)
            for s in self.symbols
            for leg in ("s", "a", "b")
        }
        mine = set(ids.values())
        self._sync()
        # a new decision replaces what is still pending (as in the backtest)
        stale = [
            v
            for v in self.book.open_orders()
            if v.client_order_id.startswith(ID_PREFIX) and v.client_order_id not in mine
        ]
        if stale:
            self._cancel_and_wait(stale)
            self._sync()
        held = {s: scale * float(self._engine_held()[j]) for j, s in enumerate(self.symbols)}
        gap = self._reconcile(out, held, prices, acct.equity)
        if stale:
            acct = self.broker.account()  # cancelled buys gave their buying power back
        plan = self._plan(desired, prices, acct.buying_power)
        sent: list[dict[str, Any]] = memo.setdefault("sent", [])
        sells = [o for o in (self._submit(ts, o, "s", out) for o in plan.sells) if o is not None]
        sent += [self._sent_record(o) for o in sells]
        sent += [
            self._sent_record(o)
            for o in (self._submit(ts, b, "a", out) for b in plan.buys)
            if o is not None
        ]
        if plan.deferred and sells:
            self._wait_final([o.id for o in sells], p.sell_fill_timeout_s)
            self._sync()
            acct = self.broker.account()
            plan_b = self._plan(desired, prices, acct.buying_power)
            sent += [
                self._sent_record(o)
                for o in (self._submit(ts, b, "b", out) for b in plan_b.buys)
                if o is not None
            ]
        self._pending = None
        self.summary.decisions += 1
        self.summary.engine_equity = out.equity * self.k_eq
        self.summary.broker_equity = acct.equity
        self.summary.last_bar = str(pd.Timestamp(ts).date())
        self._append_decision(out, "live", desired, sent, gap)
        self._status(bar, out, "LIVE", sent=len(sent), gap=gap, broker_eq=acct.equity)
        self.checkpoint()

    def _plan(self, desired: dict[str, float], prices: dict[str, float], bp: float) -> Any:
        """Orders from the live book now (see :func:`brokers.paper_orders.plan_orders`)."""
        return plan_orders(
            desired,
            self.book.positions,
            self.book.open_qty(),
            prices,
            self.rules,
            buying_power=bp,
            min_notional=self.pcfg.min_notional,
            long_only=self.pcfg.long_only,
        )

    # ------------------------------------------------------------------ broker book
    def _sync(self) -> None:
        assert self.broker is not None
        self.book.sync(self.broker.positions(), self.broker.orders("open"))

    def _reconcile(
        self, out: BarOutput, desired: dict[str, float], prices: dict[str, float], equity: float
    ) -> dict[str, float]:
        """Broker position - the engine's (scaled) position; logged and published beyond
        ``gap_tolerance`` of equity. The decision's orders then close it."""
        diff = {
            s: self.book.positions.get(s, 0.0) - desired.get(s, 0.0)
            for s in self.symbols
            if abs(self.book.positions.get(s, 0.0) - desired.get(s, 0.0)) > 1e-9
        }
        value = sum(abs(q) * prices.get(s, 0.0) for s, q in diff.items())
        frac = value / equity if equity > 0 else 0.0
        if frac > self.pcfg.gap_tolerance:
            log.warning(
                "reconcile.gap",
                bar=out.bar,
                gap_value=round(value, 2),
                gap_frac=round(frac, 5),
                diff={s: round(q, 6) for s, q in diff.items()},
            )
            self._publish(
                "reconcile",
                ts=out.timestamp_ns,
                strategy=self.name,
                bar=out.bar,
                gap_value=value,
                gap_frac=frac,
                diff=diff,
            )
        return {"value": value, "frac": frac}

    def _cancel_and_wait(self, orders: list[OrderView]) -> None:
        assert self.broker is not None
        for v in orders:
            self.broker.cancel(v.id)
            log.info("order.cancel", client_order_id=v.client_order_id, symbol=v.symbol)
        self._wait_final([v.id for v in orders], self.pcfg.cancel_timeout_s, count_from_open=False)

    def _wait_final(self, ids: list[str], timeout_s: float, count_from_open: bool = True) -> bool:
        """Wait until the orders are final (stream events, REST polling as the fallback).

        With ``count_from_open`` the timeout starts when the market opens (orders queued
        overnight fill at the open), else now. ``False`` on timeout.
        """
        t0 = None if count_from_open else time.monotonic()
        self.waiting = True
        try:
            return self._wait_loop(ids, timeout_s, t0)
        finally:
            self.waiting = False

    def _wait_loop(self, ids: list[str], timeout_s: float, t0: float | None) -> bool:
        assert self.broker is not None
        p = self.pcfg
        last_poll = 0.0
        while True:
            pending = [i for i in ids if not ((v := self.book.get(i)) is not None and v.final)]
            if not pending:
                return True
            now = time.monotonic()
            if now - last_poll >= min(p.poll_s, 0.25):
                last_poll = now
                for i in pending:
                    self.book.track(self.broker.order(i))
                if t0 is None and self.broker.clock().is_open:
                    t0 = time.monotonic()
            if t0 is not None and time.monotonic() - t0 > timeout_s:
                log.warning("order.wait_timeout", pending=len(pending), timeout_s=timeout_s)
                return False
            self.book.changed.wait(min(p.poll_s, 0.25))
            self.book.changed.clear()

    # ------------------------------------------------------------------ orders
    def _submit(self, ts: int, o: Planned, leg: str, out: BarOutput) -> OrderView | None:
        assert self.broker is not None
        cid = client_order_id(self.cfg.name, self.name, ts, o.symbol, leg)
        fields = {"symbol": o.symbol, "qty": o.qty, "client_order_id": cid, "bar": out.bar}
        # the broker may have it from before a crash/restart: never send an id twice
        existing = self.broker.order_by_client_id(cid)
        if existing is not None:
            self.summary.skipped += 1
            log.info("order.skip_known", **fields)
            self._publish_order(ts, out, o, cid, "skipped", None)
            return self.book.track(existing)
        # Alpaca's wash-trade guard: never while an opposite-side order is open
        if any(v.symbol == o.symbol and v.sign * o.qty < 0 for v in self.book.open_orders()):
            log.warning("order.skip_opposite_open", **fields)
            self._publish_order(ts, out, o, cid, "skipped", "opposite-side order open")
            return None
        try:
            order = self.broker.submit(o.symbol, o.qty, cid)
        except APIError as exc:
            reason = f"HTTP {status_of(exc)}: {message_of(exc)}"
            self._rejected(ts, out, o, cid, reason)
            return None
        self.book.known_ids.add(cid)
        v = self.book.track(order)
        if v.status == OrderStatus.REJECTED:
            self._rejected(ts, out, o, cid, "rejected by the broker")
            return v
        self.summary.sent += 1
        self._sent_this_process += 1
        log.info("order.submitted", **fields, leg=leg)
        self._publish_order(ts, out, o, cid, "submitted", None)
        if self._sent_this_process == self._crash_at:
            os.kill(os.getpid(), signal.SIGKILL)  # test hook: die before the checkpoint
        return v

    def _rejected(self, ts: int, out: BarOutput, o: Planned, cid: str, reason: str) -> None:
        self.summary.rejected += 1
        self.summary.reasons[reason[:60]] = self.summary.reasons.get(reason[:60], 0) + 1
        self.book.known_ids.add(cid)
        log.warning(
            "order.rejected", symbol=o.symbol, qty=o.qty, client_order_id=cid, reason=reason
        )
        self._publish_order(ts, out, o, cid, "rejected", reason)

    @staticmethod
    def _sent_record(v: OrderView) -> dict[str, Any]:
        return {"symbol": v.symbol, "qty": v.sign * v.qty, "client_order_id": v.client_order_id}

    # ------------------------------------------------------------------ trade updates
    async def _on_trade(self, update: Any) -> None:
        """trade_updates (stream thread): update the live book, queue the event."""
        try:
            event = (
                update.event
                if isinstance(update.event, TradeEvent)
                else TradeEvent(str(update.event))
            )
        except ValueError:
            return
        pq = float(update.position_qty) if update.position_qty is not None else None
        v = self.book.on_update(event, update.order, pq)
        fields = {
            "symbol": v.symbol,
            "client_order_id": v.client_order_id,
            "qty": float(update.qty) if update.qty is not None else None,
            "price": float(update.price) if update.price is not None else None,
            "position_qty": pq,
        }
        if event == TradeEvent.REJECTED:
            self.summary.rejected += 1
        if event in (TradeEvent.REJECTED, TradeEvent.CANCELED, TradeEvent.EXPIRED):
            log.warning("trade." + event.value, **fields)
        elif event != TradeEvent.NEW:
            log.info("trade." + event.value, **fields)
        if event != TradeEvent.NEW:  # published from the main thread (sockets not shared)
            ts = int(pd.Timestamp(update.timestamp).value) if update.timestamp else 0
            self._events_q.put({"ts": ts, "event": event.value, **fields})

    def _drain_events(self) -> None:
        while not self._events_q.empty():
            self._publish("fill", **self._events_q.get_nowait())

    # ------------------------------------------------------------------ output
    def _publish(self, kind: str, **body: Any) -> None:
        if self.events is not None:
            self.events.publish(kind, **body)

    def _publish_order(
        self, ts: int, out: BarOutput, o: Planned, cid: str, status: str, reason: str | None
    ) -> None:
        self._publish(
            "order",
            ts=ts,
            strategy=self.name,
            bar=out.bar,
            symbol=o.symbol,
            qty=o.qty,
            client_order_id=cid,
            status=status,
            reason=reason,
        )

    def _publish_bar_events(self, out: BarOutput, prev: int | None) -> None:
        if prev is not None and out.regime != prev:
            self._publish(
                "regime",
                ts=out.timestamp_ns,
                strategy=self.name,
                bar=out.bar,
                regime=out.regime,
                state=out.state,
                label=self._label(out.regime),
                posterior=out.posterior.tolist(),
            )
        if out.rebalanced:
            self._publish(
                "targets",
                ts=out.timestamp_ns,
                strategy=self.name,
                bar=out.bar,
                weights={s: float(out.targets[j]) for j, s in enumerate(self.symbols)},
            )
        self._publish(
            "equity",
            ts=out.timestamp_ns,
            strategy=self.name,
            bar=out.bar,
            equity=out.equity,
            cash=out.cash,
            weights={s: float(out.weights[j]) for j, s in enumerate(self.symbols)},
        )

    def _label(self, regime: int) -> str:
        return self.labels[regime] if 0 <= regime < len(self.labels) else str(regime)

    def _status(
        self,
        bar: CrossBar,
        out: BarOutput | None,
        phase: str,
        *,
        sent: int = 0,
        gap: dict[str, float] | None = None,
        broker_eq: float | None = None,
    ) -> None:
        """One operator line per live bar (stdout) and the same as a ``status`` event."""
        d = pd.Timestamp(bar.timestamp_ns).date()
        st = self.driver.state
        regime = int(st.rstate[L.G_SMOOTHED])
        prob = float(st.post[regime]) if 0 <= regime < st.post.size else float("nan")
        weights = (
            {s: round(float(out.targets[j]), 4) for j, s in enumerate(self.symbols)}
            if out is not None and out.rebalanced
            else None
        )
        eng = float(st.port[L.P_EQUITY]) * (self.k_eq or 0.0)
        fills = self.book.fills
        tgt = " ".join(f"{s}={w:.3f}" for s, w in weights.items()) if weights else "unchanged"
        gap_txt = f" gap {gap['frac'] * 100:.2f}%" if gap is not None else ""
        eq_txt = (
            f" equity engine {eng:,.0f} broker {broker_eq:,.0f}" if broker_eq is not None else ""
        )
        nxt = next((x for x in self._sessions if x.date > d), None)
        due = f" | next decision after {nxt.close:%Y-%m-%d %H:%M %Z}" if nxt else ""
        print(
            f"{d} {phase:<5} regime={self._label(regime)} p={prob:.2f} targets {tgt} "
            f"orders {sent} sent / {fills} fills{eq_txt}{gap_txt}{due}",
            flush=True,
        )
        self._publish(
            "status",
            ts=bar.timestamp_ns,
            strategy=self.name,
            phase=phase,
            regime=self._label(regime),
            prob=prob,
            targets=weights,
            sent=sent,
            fills=fills,
            engine_equity=eng if broker_eq is not None else None,
            broker_equity=broker_eq,
            gap_frac=None if gap is None else gap["frac"],
        )

    def _append_decision(
        self,
        out: BarOutput,
        phase: str,
        desired: dict[str, float] | None,
        sent: list[dict[str, Any]],
        gap: dict[str, float] | None = None,
    ) -> None:
        targets = (
            {s: float(out.targets[j]) for j, s in enumerate(self.symbols)}
            if out.rebalanced
            else None
        )
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.decisions_path.open("a") as f:
            f.write(
                json.dumps(
                    {
                        "bar": out.bar,
                        "ts": out.timestamp_ns,
                        "phase": phase,
                        "targets": targets,
                        "engine_orders": {
                            s: float(out.orders[j])
                            for j, s in enumerate(self.symbols)
                            if out.orders[j]
                        },
                        "desired": desired,
                        "sent": sent,
                        "gap": gap,
                        "equity": out.equity,
                    }
                )
                + "\n"
            )


__all__ = [
    "EXIT_UNAVAILABLE",
    "BrokerError",
    "BrokerUnavailable",
    "PaperConfig",
    "PaperTrader",
    "Summary",
    "atomic_write",
    "client_order_id",
    "parse_paper",
    "session_date",
]

"""Paper trading: a config's strategy through the streaming driver against a broker.

Each whole bar (every symbol at one time) goes through :class:`StreamingDriver` (the same
compiled step as the backtest); the bar's ``orders`` (signed share deltas) become market
orders with deterministic client order ids (hash of config, strategy, bar time, symbol).
Every decision is a structlog event; state is checkpointed atomically after every bar
(temp file + ``os.replace``). On restart the driver resumes from the checkpoint, the
broker's positions and orders are reconciled, missed bars are fetched over REST, and an
id the broker already has is never submitted again.

Settings live in the ``[paper]`` section of a run config (:class:`PaperConfig`).
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import queue
import signal
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import structlog
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from brokers.alpaca import AlpacaBroker, BrokerError
from brokers.exchange_settings import ExchangeSettings
from data_feeds.alpaca_feed import AlpacaBarFeed, CrossBar
from engine.bus.zmq_bus import DEFAULT_BARS, Publisher
from engine.config import ConfigError, RunConfig, first_error
from engine.core import layout as L
from engine.core.streaming import BarOutput, StreamingDriver

log = structlog.get_logger("regime-engine.paper")

CHECKPOINT_VERSION = 1
CRASH_ENV = "REGIME_ENGINE_PAPER_CRASH_AT"  # test hook: SIGKILL after submitting bar N


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PaperConfig(_Section):
    """The ``[paper]`` section."""

    strategy: str | None = None  # default: the config's first strategy
    broker: Literal["local", "alpaca"] = "local"
    live: bool = False  # Alpaca's live endpoint (needs broker = "alpaca")
    url: str | None = None  # REST base; default: the local exchange / Alpaca
    stream_url: str | None = None  # websocket base (market data: {base}/v2/{feed})
    feed: Literal["iex", "sip"] = "iex"
    bars: Literal["stream", "zmq"] = "stream"
    zmq_bars: str = DEFAULT_BARS
    events: str | None = None  # ZeroMQ PUB address for engine events (None: off)
    state_dir: str = "runs/paper"
    step_exchange: bool = False  # drive a stepped local exchange (POST /_sim/step)
    bar_timeout_s: float = Field(5.0, gt=0)
    max_bars: int | None = Field(None, ge=1)
    exog_from_stream: bool = True  # exogenous series arrive as data-only symbols
    exchange: ExchangeSettings = ExchangeSettings()


def parse_paper(data: dict[str, Any]) -> PaperConfig:
    """Validate ``[paper]``; errors name the key (``paper.bar_timeout_s: ...``)."""
    try:
        return PaperConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"paper.{first_error(exc)}") from None


def client_order_id(config: str, strategy: str, ts_ns: int, symbol: str) -> str:
    """Deterministic id: the same decision always gets the same id."""
    h = hashlib.sha256(f"{config}|{strategy}|{ts_ns}|{symbol}".encode()).hexdigest()
    return f"re-{h[:40]}"


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


def _local_keys() -> tuple[str, str]:
    """Env keys if set; the local exchange accepts any non-empty pair otherwise."""
    return (
        os.environ.get("APCA_API_KEY_ID") or "local-paper",
        os.environ.get("APCA_API_SECRET_KEY") or "local-paper",
    )


class PaperTrader:
    """Run one strategy of ``cfg`` against the broker named in ``cfg.paper``."""

    def __init__(self, cfg: RunConfig, pcfg: PaperConfig | None = None) -> None:
        from engine.api import build_strategy, load_panel, prepare_run

        self.cfg = cfg
        self.pcfg = pcfg or parse_paper(cfg.paper)
        p = self.pcfg
        if p.live and p.broker != "alpaca":
            raise ConfigError('paper.live: the live endpoint needs broker = "alpaca"')
        names = [s.name for s in cfg.strategies]
        if p.strategy is not None and p.strategy not in names:
            raise ConfigError(
                f"paper.strategy: unknown strategy {p.strategy!r} (config has {', '.join(names)})"
            )
        scfg = cfg.strategies[names.index(p.strategy) if p.strategy else 0]
        panel = load_panel(cfg)
        prep = prepare_run(cfg, panel)
        self.strategy = build_strategy(scfg)
        self.name = scfg.name
        self.symbols = tuple(panel.symbols)
        self.exog_names = tuple(panel.exog_names)
        self.labels = tuple(getattr(prep.detector, "labels", ()))
        self.driver = StreamingDriver.from_prepared(prep, self.strategy, refit_online=True)
        self.state_dir = Path(p.state_dir) / self.name
        self.ckpt_path = self.state_dir / "checkpoint.pkl"
        self.decisions_path = self.state_dir / "decisions.jsonl"
        self.last_ts: int | None = None
        self.bars_done = 0
        self.known_ids: set[str] = set()
        self._unsure = False  # bars before this process's first checkpoint may be at the broker
        self.rejected = 0
        self._fill_q: queue.Queue[dict[str, Any]] = queue.Queue()
        self.events: Publisher | None = None
        self.broker: AlpacaBroker | None = None
        self.feed: AlpacaBarFeed | None = None
        self.zfeed: Any = None
        self._crash_at = int(os.environ.get(CRASH_ENV, "-1"))
        ex = p.exchange
        local = p.broker == "local"
        self.url = p.url or (f"http://{ex.host}:{ex.port}" if local else None)
        self.stream_base = p.stream_url or (f"ws://{ex.host}:{ex.ws_port}" if local else None)

    # ------------------------------------------------------------------ setup
    def connect(self) -> None:
        """Broker, trade-updates stream, bar feed and event bus."""
        p = self.pcfg
        if p.broker == "local":
            os.environ.setdefault("APCA_API_KEY_ID", _local_keys()[0])
            os.environ.setdefault("APCA_API_SECRET_KEY", _local_keys()[1])
        self.broker = AlpacaBroker(
            live=p.live,
            url=self.url,
            stream_url=f"{self.stream_base}/stream" if self.stream_base else None,
        )
        self.broker.stream_trade_updates(self._on_trade)
        if p.events:
            self.events = Publisher(p.events)
        exog = self.exog_names if p.exog_from_stream else ()
        if p.bars == "zmq":
            from data_feeds.zmq_feed import ZmqBarFeed

            self.zfeed = ZmqBarFeed(self.symbols, self.exog_names, p.zmq_bars)
        from brokers.alpaca import credentials

        key, secret = credentials()
        self.feed = AlpacaBarFeed(
            self.symbols,
            exog,
            key=key,
            secret=secret,
            url=self.url,
            stream_url=f"{self.stream_base}/v2/{p.feed}" if self.stream_base else None,
            feed=p.feed,
        )

    def close(self) -> None:
        if self.feed is not None:
            self.feed.stop()
        if self.broker is not None:
            self.broker.close()
        if self.events is not None:
            self.events.close()
        if self.zfeed is not None:
            self.zfeed.close()

    # ------------------------------------------------------------------ checkpoints
    def resume(self) -> bool:
        """Load the checkpoint if there is one; ``True`` if resumed."""
        if not self.ckpt_path.exists():
            return False
        try:
            ck = pickle.loads(self.ckpt_path.read_bytes())
        except Exception as exc:
            raise ConfigError(f"{self.ckpt_path}: unreadable checkpoint ({exc})") from None
        if (
            ck.get("version") != CHECKPOINT_VERSION
            or ck.get("strategy") != self.name
            or tuple(ck.get("symbols", ())) != self.symbols
        ):
            raise ConfigError(
                f"{self.ckpt_path}: checkpoint is for another strategy/symbols; "
                "use another paper.state_dir"
            )
        self.driver.resume(ck["driver"])
        self.last_ts = ck["last_ts"]
        self.bars_done = int(ck["bars"])
        self._unsure = True
        log.info(
            "paper.resumed",
            strategy=self.name,
            bars=self.bars_done,
            last_bar=str(pd.Timestamp(self.last_ts)) if self.last_ts else None,
        )
        return True

    def checkpoint(self) -> None:
        data = {
            "version": CHECKPOINT_VERSION,
            "strategy": self.name,
            "symbols": self.symbols,
            "driver": self.driver.checkpoint(),
            "last_ts": self.last_ts,
            "bars": self.bars_done,
        }
        atomic_write(self.ckpt_path, pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
        self._unsure = False

    def reconcile(self) -> dict[str, float]:
        """Compare the broker's positions with the engine's and note the broker's ids."""
        assert self.broker is not None
        held = self.broker.positions()
        n = len(self.symbols)
        mine = self.driver.state.port[L.P_HEADER : L.P_HEADER + n]
        for j, s in enumerate(self.symbols):
            b = held.get(s, 0.0)
            if not np.isclose(b, mine[j], rtol=1e-9, atol=1e-9):
                log.warning(
                    "reconcile.position_mismatch", symbol=s, broker=b, engine=float(mine[j])
                )
        for o in self.broker.orders("all"):
            self.known_ids.add(str(o.client_order_id))
        log.info("reconcile.done", positions=held, broker_orders=len(self.known_ids))
        return held

    # ------------------------------------------------------------------ bars
    def _exchange(self, method: str, path: str) -> dict[str, Any]:
        req = urllib.request.Request(
            f"{self.url}{path}", method=method, data=b"" if method == "POST" else None
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            return dict(json.loads(r.read() or b"{}"))

    def _wait_subscribed(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._exchange("GET", "/_sim/status").get("md_clients", 0) >= 1:
                return
            time.sleep(0.02)
        log.warning("paper.no_subscription", after_s=timeout_s)

    def _next_bar(self) -> CrossBar | None:
        p = self.pcfg
        if self.zfeed is not None:
            return self.zfeed.next(int(p.bar_timeout_s * 1000))  # type: ignore[no-any-return]
        assert self.feed is not None
        try:
            return self.feed.queue.get(timeout=p.bar_timeout_s)
        except queue.Empty:
            return None

    def run(self) -> int:
        """Trade until the bars run out (local exchange) or ``max_bars``; bars processed."""
        self.resume()
        self.connect()
        assert self.feed is not None
        try:
            self.reconcile()
            local = self.pcfg.broker == "local"
            if self.zfeed is None:
                self.feed.history(self.last_ts)  # catch up first, then listen live
                self.feed.start()
                if local and self.pcfg.step_exchange:
                    self._wait_subscribed()
            done = 0
            while self.pcfg.max_bars is None or done < self.pcfg.max_bars:
                if (
                    local
                    and self.pcfg.step_exchange
                    and self.zfeed is None
                    and self.feed.queue.empty()
                ):
                    if not self._exchange("POST", "/_sim/step").get("published"):
                        break
                bar = self._next_bar()
                self.drain_fills()
                if bar is None:
                    if self.zfeed is None and self.feed.history(self.last_ts):
                        log.info("paper.caught_up_over_rest")
                        continue
                    if local and self._exchange("GET", "/_sim/status").get("done"):
                        break
                    continue
                if self.last_ts is not None and bar.timestamp_ns <= self.last_ts:
                    continue
                self.on_bar(bar)
                done += 1
            log.info(
                "paper.finished", strategy=self.name, bars=self.bars_done, rejected=self.rejected
            )
            return done
        finally:
            self.close()

    def on_bar(self, bar: CrossBar) -> BarOutput:
        """One bar: step, decide, submit, log, publish, checkpoint."""
        exog = bar.exog if bar.exog.shape == (len(self.exog_names),) else None
        prev_regime = int(self.driver.state.rstate[L.G_SMOOTHED]) if self.bars_done else None
        out = self.driver.on_bar(bar.timestamp_ns, bar.open, bar.close, bar.volume, exog)
        ts = bar.timestamp_ns
        self.last_ts = ts
        self.bars_done += 1
        orders = {s: float(out.orders[j]) for j, s in enumerate(self.symbols) if out.orders[j]}
        targets = (
            {s: float(out.targets[j]) for j, s in enumerate(self.symbols)}
            if out.rebalanced
            else None
        )
        log.info(
            "paper.decision",
            strategy=self.name,
            bar=out.bar,
            ts=str(pd.Timestamp(ts)),
            regime=out.regime,
            rebalanced=out.rebalanced,
            targets=targets,
            orders=orders,
            equity=out.equity,
        )
        self._publish_bar_events(out, prev_regime, targets)
        if orders:
            self._submit_all(ts, out, orders)
        self._append_decision(out, targets, orders)
        self.checkpoint()
        return out

    def _append_decision(self, out: BarOutput, targets: Any, orders: dict[str, float]) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with self.decisions_path.open("a") as f:
            f.write(
                json.dumps(
                    {
                        "bar": out.bar,
                        "ts": out.timestamp_ns,
                        "targets": targets,
                        "orders": orders,
                        "equity": out.equity,
                    }
                )
                + "\n"
            )

    def _publish_bar_events(self, out: BarOutput, prev: int | None, targets: Any) -> None:
        ev = self.events
        if ev is None:
            return
        if prev is not None and out.regime != prev:
            label = self.labels[out.regime] if 0 <= out.regime < len(self.labels) else None
            ev.publish(
                "regime",
                ts=out.timestamp_ns,
                strategy=self.name,
                bar=out.bar,
                regime=out.regime,
                state=out.state,
                label=label,
                posterior=out.posterior.tolist(),
            )
        if targets is not None:
            ev.publish(
                "targets", ts=out.timestamp_ns, strategy=self.name, bar=out.bar, weights=targets
            )
        ev.publish(
            "equity",
            ts=out.timestamp_ns,
            strategy=self.name,
            bar=out.bar,
            equity=out.equity,
            cash=out.cash,
            weights={s: float(out.weights[j]) for j, s in enumerate(self.symbols)},
        )

    def _submit_all(self, ts: int, out: BarOutput, orders: dict[str, float]) -> None:
        assert self.broker is not None
        ids = {s: client_order_id(self.cfg.name, self.name, ts, s) for s in orders}
        # a new decision replaces what is still pending (as in the backtest)
        for o in self.broker.orders("open"):
            cid = str(o.client_order_id)
            if cid.startswith("re-") and cid not in ids.values():
                self.broker.cancel(str(o.id))
                log.info("order.cancel_stale", client_order_id=cid, symbol=o.symbol)
        for s, q in orders.items():
            cid = ids[s]
            status = "submitted"
            if cid in self.known_ids or (self._unsure and self.broker.order_by_client_id(cid)):
                status = "skipped"
                log.info("order.skip_known", symbol=s, qty=q, client_order_id=cid)
            else:
                try:
                    order = self.broker.submit(s, q, cid)
                    if str(order.status).endswith("rejected"):
                        status = "rejected"
                        self.rejected += 1
                        log.warning("order.rejected", symbol=s, qty=q, client_order_id=cid)
                    else:
                        log.info(
                            "order.submitted", symbol=s, qty=q, client_order_id=cid, bar=out.bar
                        )
                except Exception as exc:  # rejected at submission: log and continue
                    status = "error"
                    self.rejected += 1
                    log.error("order.failed", symbol=s, qty=q, client_order_id=cid, error=str(exc))
                self.known_ids.add(cid)
            if self.events is not None:
                self.events.publish(
                    "order",
                    ts=ts,
                    strategy=self.name,
                    bar=out.bar,
                    symbol=s,
                    qty=q,
                    client_order_id=cid,
                    status=status,
                )
            if out.bar == self._crash_at:
                os.kill(os.getpid(), signal.SIGKILL)  # test hook: die before the checkpoint

    async def _on_trade(self, update: Any) -> None:
        o = update.order
        event = str(getattr(update.event, "value", update.event))
        fields = {
            "symbol": o.symbol,
            "client_order_id": o.client_order_id,
            "qty": float(update.qty) if update.qty is not None else None,
            "price": float(update.price) if update.price is not None else None,
            "position_qty": float(update.position_qty) if update.position_qty is not None else None,
        }
        if event in ("rejected", "canceled"):
            log.warning("trade." + event, **fields)
        else:
            log.info("trade." + event, **fields)
        if event != "new":  # published from the main thread (ZeroMQ sockets are not shared)
            ts = int(pd.Timestamp(update.timestamp).value)
            self._fill_q.put({"ts": ts, "event": event, **fields})

    def drain_fills(self) -> None:
        """Publish the trade updates received since the last call."""
        while not self._fill_q.empty():
            f = self._fill_q.get_nowait()
            if self.events is not None:
                self.events.publish("fill", **f)


__all__ = [
    "BrokerError",
    "PaperConfig",
    "PaperTrader",
    "atomic_write",
    "client_order_id",
    "parse_paper",
]

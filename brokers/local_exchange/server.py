"""The local Alpaca-like exchange: simulated market time, REST v2 and both websocket streams.

Time moves session by session over the panel (see :mod:`brokers.local_exchange.calendar`): open
(queued orders fill at the open), ``minute_bars_per_session`` minute bars (stream ``bars``
"b", running daily bar on ``dailyBars`` "d", orders fill at the latest minute price), close
(day orders expire), overnight. ``mode = "stepped"`` moves only on ``POST /_sim/step``;
``"realtime"`` runs one session cycle every ``seconds_per_session`` wall seconds.

Non-Alpaca endpoints live under ``/_sim/``: ``POST /_sim/step[?to=open|minute|close]``,
``GET /_sim/status``, ``GET|POST /_sim/faults`` (fault settings, plus one-shot
``{"http_error": 503, "count": 2, "drop_ws": true, "reject_next": 1, "partial_next": 1}``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from websockets.asyncio.server import Server, ServerConnection, serve

from brokers.local_exchange.bars import MinuteBars, minute_emit_ns
from brokers.local_exchange.calendar import Calendar
from brokers.local_exchange.faults import Faults
from brokers.local_exchange.matching import SimBroker
from brokers.local_exchange.rest import HttpError, HttpServer, RestServer, handler_for
from brokers.local_exchange.settings import ExchangeSettings
from engine.bus.security import host_is_loopback
from engine.config import ConfigError
from engine.ground.bars import BarPanel

log = structlog.get_logger(__name__)


class LocalExchange(RestServer):
    """Replay ``panel`` as Alpaca-like sessions through ``broker``; serve REST and websockets."""

    def __init__(
        self,
        panel: BarPanel,
        broker: SimBroker,
        settings: ExchangeSettings | None = None,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
    ) -> None:
        self.settings = s = settings or ExchangeSettings(port=0, ws_port=0, mode="stepped")
        if tuple(panel.symbols) != broker.symbols:
            raise ValueError("panel and broker symbols differ")
        if s.history_bars > panel.n_bars:
            raise ValueError(
                f"paper.exchange.history_bars = {s.history_bars} exceeds the panel's "
                f"{panel.n_bars} bars (lower it or load more data)"
            )
        self.panel = panel
        self.broker = broker
        self.cal = Calendar.from_index(panel.index)
        self.minutes = MinuteBars(panel, self.cal, s.minute_bars_per_session)
        self.faults = Faults(s.faults, s.seed)
        broker.draw = self.faults.draw_order
        broker.partial_fraction = s.faults.partial_fill_fraction
        if not s.allow_remote and not host_is_loopback(s.host):
            raise ConfigError(
                f"paper.exchange.host = {s.host!r} does not resolve to loopback only; the "
                "local exchange serves a simulated account with any key: set "
                "paper.exchange.allow_remote = true to expose it"
            )
        self.host = s.host
        self._keys = (api_key, api_secret)
        self.data_symbols = self.minutes.symbols
        self.submissions: list[tuple[str, int]] = []  # (client_order_id, HTTP status)
        self.rest_calls = 0
        self.bar_requests = 0
        self._lock = threading.RLock()  # market time
        self._pending: collections.deque[tuple[int, str, int]] = collections.deque()
        h = s.history_bars
        self.cur = h - 1  # last session that opened
        self.emitted = s.minute_bars_per_session  # minute bars published in ``cur``
        self.session_closed = True
        if h > 0:
            self.now_ns = int(self.cal.close_ns[h - 1])
            broker.on_open(int(self.cal.open_ns[h - 1]), panel.open[h - 1], panel.volume[h - 1])
            broker.on_close(self.now_ns, panel.close[h - 1])
        else:
            self.now_ns = int(self.cal.open_ns[0]) - 12 * 3600 * 10**9
            broker.now_ns = self.now_ns
        self._last_equity = broker.equity
        self._seg: tuple[float, int, float, int] | None = None
        self._md: dict[ServerConnection, dict[str, set[str]]] = {}
        self._tu: set[ServerConnection] = set()
        self._loop = asyncio.new_event_loop()
        self._ws_server: Server | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._http = HttpServer((s.host, s.port), handler_for(self))
        self.port = int(self._http.server_address[1])
        self.ws_port = 0

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.ws_port}"

    @property
    def done(self) -> bool:
        return self.cur >= len(self.cal) - 1 and self.session_closed and not self._pending

    @property
    def bar(self) -> int:
        """Index of the last completed session (-1: none)."""
        return self.cur if self.session_closed else self.cur - 1

    def start(self) -> LocalExchange:
        """Start the HTTP and websocket servers (and the realtime/fault timers) in threads.

        Idempotent: a started exchange is returned as it is.
        """
        if self._threads:
            return self
        ready = threading.Event()
        failed: list[BaseException] = []

        def run_loop() -> None:
            asyncio.set_event_loop(self._loop)

            async def boot() -> None:
                self._ws_server = await serve(
                    self._ws_handler,
                    self.host,
                    self.settings.ws_port,
                    max_size=2**22,
                    process_request=self._ws_gate,
                )
                sock = next(iter(self._ws_server.sockets))
                self.ws_port = int(sock.getsockname()[1])

            try:
                self._loop.run_until_complete(boot())
            except BaseException as exc:  # e.g. the websocket port is taken
                failed.append(exc)
                return
            finally:
                ready.set()
            self._loop.run_forever()

        self._spawn(run_loop, "exchange-ws")
        if not ready.wait(10) or failed:
            self._http.server_close()
            self._threads.clear()
            if failed and isinstance(failed[0], OSError):
                raise failed[0]
            raise RuntimeError(f"websocket server did not start: {failed[0] if failed else ''}")
        self._spawn(lambda: self._http.serve_forever(poll_interval=0.05), "exchange-http")
        if self.settings.mode == "realtime":
            self._spawn(self._realtime, "exchange-clock")
        self._spawn(self._dropper, "exchange-drops")
        log.info("exchange.started", url=self.url, ws=self.ws_url, sessions=len(self.cal))
        return self

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self) -> None:
        """Shut both servers down (idempotent)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._http.shutdown()
        self._http.server_close()

        async def close() -> None:
            if self._ws_server is not None:
                self._ws_server.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._ws_server.wait_closed(), 2)

        if self._loop.is_running():
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
        for t in self._threads:
            t.join(timeout=5)

    def __enter__(self) -> LocalExchange:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ market time
    def _queue_next_session(self) -> bool:
        i = self.cur + 1
        if i >= len(self.cal):
            return False
        self._pending.append((int(self.cal.open_ns[i]), "open", i))
        for m, ts in enumerate(minute_emit_ns(self.cal, i, self.settings.minute_bars_per_session)):
            self._pending.append((int(ts), "minute", m))
        self._pending.append((int(self.cal.close_ns[i]), "close", i))
        return True

    def _run_event(self, ts: int, kind: str, arg: int) -> None:
        b, p = self.broker, self.panel
        bars: list[tuple[str, dict[str, Any]]] = []
        with self._lock:
            self.now_ns = max(self.now_ns, ts)
            if kind == "open":
                self.cur, self.emitted, self.session_closed = arg, 0, False
                self._last_equity = b.equity
                events = b.on_open(ts, p.open[arg], p.volume[arg])
            elif kind == "minute":
                i = self.cur
                self.emitted = arg + 1
                row = self.minutes.session(i)[arg]
                events = b.on_minute(ts, row[3, : len(p.symbols)])
                bars = [("bars", m) for m in self._md_for(i, arg, "b")] + [
                    ("dailyBars", m) for m in self._md_for(i, arg, "d")
                ]
            else:
                self.session_closed = True
                events = b.on_close(ts, p.close[arg])
        if bars:
            self._run(self._broadcast_bars(bars))
        self._publish_trades(events)

    def _md_for(self, i: int, minute: int, kind: str) -> list[dict[str, Any]]:
        return self.minutes.stream_messages(kind, i, minute, set(self.data_symbols))

    def step(self, to: str | None = None) -> int | None:
        """Advance stepped time to the next close (``to="open"``: only to the next open,
        ``"minute"``: through the next minute bar, ``"close"``: the default).

        Returns the index of the session stepped into, ``None`` when no session is left.
        """
        target = to or "close"
        with self._lock:
            ran = False
            while True:
                if not self._pending and not self._queue_next_session():
                    return self.cur if ran else None
                ts, kind, arg = self._pending.popleft()
                self._run_event(ts, kind, arg)
                ran = True
                if kind == target:
                    return self.cur

    def _realtime(self) -> None:
        s = self.settings
        span = s.seconds_per_session
        night = span * s.overnight_fraction
        while not self._stop.is_set():
            with self._lock:
                if not self._queue_next_session():
                    self._seg = None
                    return
                i = self.cur + 1
                events = list(self._pending)
            o, c = int(self.cal.open_ns[i]), int(self.cal.close_ns[i])
            w0 = time.monotonic()
            self._seg = (w0, self.now_ns, w0 + night, o)
            for ts, kind, arg in events:
                frac = (ts - o) / (c - o) if kind != "open" else 0.0
                due = w0 + night + frac * (span - night)
                if self._stop.wait(max(due - time.monotonic(), 0.0)):
                    return
                with self._lock:
                    if not self._pending or self._pending[0] != (ts, kind, arg):
                        break  # someone stepped by hand
                    self._pending.popleft()
                    self._run_event(ts, kind, arg)
                    if kind == "open":
                        self._seg = (time.monotonic(), o, w0 + span, c)

    def sim_now(self) -> int:
        """The simulated time (realtime mode: interpolated between events)."""
        with self._lock:
            now, seg = self.now_ns, self._seg
        if seg is None or self.settings.mode != "realtime":
            return now
        w0, s0, w1, s1 = seg
        frac = min(max((time.monotonic() - w0) / max(w1 - w0, 1e-9), 0.0), 1.0)
        t = int(s0 + frac * (s1 - s0))
        return max(now, min(t, s1 - 1))


def build_exchange(
    cfg: Any,
    panel: BarPanel,
    settings: ExchangeSettings | None = None,
    *,
    host: str | None = None,
    port: int | None = None,
    ws_port: int | None = None,
    interval_s: float | None = None,
    api_key: str | None = None,
    api_secret: str | None = None,
) -> LocalExchange:
    """A started exchange over ``panel`` with the costs and cash of a :class:`RunConfig`.

    ``settings`` default: stepped, no history, free ports. The keyword overrides are kept for
    old callers (``interval_s``: 0 stepped, > 0 realtime seconds per session).
    """
    from brokers.local_exchange.matching import AccountRules
    from engine.assemble import costs_for

    s = settings or ExchangeSettings(port=0, ws_port=0, mode="stepped", history_bars=0)
    over: dict[str, Any] = {}
    if host is not None:
        over["host"] = host
    if port is not None:
        over["port"] = port
    if ws_port is not None:
        over["ws_port"] = ws_port
    if interval_s is not None:
        over["interval_s"] = interval_s
    if over:
        s = ExchangeSettings.model_validate({**s.model_dump(), **over})
    costs = costs_for(cfg, panel.symbols)  # the backtest's cost table, from the same code
    cash = s.initial_cash or float(cfg.execution.initial_cash)
    rules = AccountRules(
        fractional=s.fractional,
        non_fractionable=frozenset(s.non_fractionable),
        min_notional=s.min_notional,
        shorting=s.shorting,
    )
    broker = SimBroker(
        tuple(panel.symbols), costs, cash, rules=rules, data_only=tuple(panel.exog_names)
    )
    return LocalExchange(panel, broker, s, api_key=api_key, api_secret=api_secret).start()


__all__ = ["HttpError", "LocalExchange", "build_exchange"]

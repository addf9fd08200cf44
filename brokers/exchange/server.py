"""The local Alpaca-like exchange: simulated market time, REST v2 and both websocket streams.

Time moves session by session over the panel (see :mod:`brokers.exchange.calendar`): open
(queued orders fill at the open), ``minute_bars_per_session`` minute bars (stream ``bars``
"b", running daily bar on ``dailyBars`` "d", orders fill at the latest minute price), close
(day orders expire), overnight. ``mode = "stepped"`` moves only on ``POST /_sim/step``;
``"realtime"`` runs one session cycle every ``seconds_per_session`` wall seconds.

Non-Alpaca endpoints live under ``/_sim/``: ``POST /_sim/step[?to=open|close]``,
``GET /_sim/status``, ``GET|POST /_sim/faults`` (fault settings, plus one-shot
``{"http_error": 503, "count": 2, "drop_ws": true, "reject_next": 1, "partial_next": 1}``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import msgpack
import structlog
from pydantic import ValidationError
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from brokers.exchange.bars import (
    ADJUSTMENTS,
    MAX_LIMIT,
    TIMEFRAMES,
    BarQueryError,
    MinuteBars,
    decode_token,
    encode_token,
    minute_emit_ns,
)
from brokers.exchange.calendar import Calendar, iso, parse_time
from brokers.exchange.faults import Faults
from brokers.exchange.wire import (
    account_json,
    asset_json,
    num,
    order_json,
    position_json,
)
from brokers.exchange_settings import ExchangeSettings
from brokers.sim import OrderError, SimBroker, TradeEvent
from engine.config import first_error
from engine.core.bars import BarPanel

log = structlog.get_logger(__name__)

SIP_RECENT_NS = 15 * 60 * 1_000_000_000  # free plan: no SIP data from the last 15 minutes
CHANNELS = (
    "trades",
    "quotes",
    "bars",
    "updatedBars",
    "dailyBars",
    "statuses",
    "lulds",
    "corrections",
    "cancelErrors",
)


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: int = 40010000) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class LocalExchange:
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
                f"{panel.n_bars} bars"
            )
        self.panel = panel
        self.broker = broker
        self.cal = Calendar.from_index(panel.index)
        self.minutes = MinuteBars(panel, self.cal, s.minute_bars_per_session)
        self.faults = Faults(s.faults, s.seed)
        broker.draw = self.faults.draw_order
        broker.partial_fraction = s.faults.partial_fill_fraction
        self.host = s.host
        self._keys = (api_key, api_secret)
        self.data_symbols = self.minutes.symbols
        self.submissions: list[tuple[str, int]] = []  # (client_order_id, HTTP status)
        self.rest_calls = 0
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
        self._http = ThreadingHTTPServer((s.host, s.port), _handler_for(self))
        self._http.daemon_threads = True
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
    def stopping(self) -> bool:
        return self._stop.is_set()

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

    # ------------------------------------------------------------------ streams
    def _run(self, coro: Any) -> None:
        if not self._loop.is_running():
            coro.close()
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _broadcast_bars(self, bars: list[tuple[str, dict[str, Any]]]) -> None:
        for ws, subs in list(self._md.items()):
            msgs = [m for ch, m in bars if m["S"] in subs.get(ch, ()) or "*" in subs.get(ch, ())]
            if msgs:
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(msgpack.packb(msgs))

    def _publish_trades(self, events: Iterable[TradeEvent]) -> None:
        frames = [
            json.dumps({"stream": "trade_updates", "data": self._event_json(e)}) for e in events
        ]
        if frames:
            self._run(self._broadcast_trades(frames))

    async def _broadcast_trades(self, frames: list[str]) -> None:
        for ws in list(self._tu):
            for f in frames:
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(f)

    @staticmethod
    def _event_json(e: TradeEvent) -> dict[str, Any]:
        d: dict[str, Any] = {
            "event": e.event,
            "order": order_json(e.order),
            "timestamp": iso(e.timestamp_ns),
            "execution_id": str(uuid.uuid4()),
        }
        if e.price is not None:
            d.update(price=num(e.price), qty=num(e.qty), position_qty=num(e.position_qty))
        return d

    def drop_websockets(self) -> None:
        """Close every websocket connection (clients must reconnect and resubscribe)."""

        async def drop() -> None:
            for ws in list(self._md) + list(self._tu):
                with contextlib.suppress(Exception):
                    await ws.close(1011, "dropped by fault injection")

        self._run(drop())

    def _dropper(self) -> None:
        while not self._stop.is_set():
            every = self.faults.s.drop_socket_every_s
            if self._stop.wait(every if every > 0 else 0.2):
                return
            if every > 0 and self.faults.s.drop_socket_every_s > 0:
                self.drop_websockets()

    async def _ws_gate(self, conn: ServerConnection, request: Any) -> None:
        """``hang``: accept the TCP connection and never complete the handshake."""
        while self.faults.s.hang and not self._stop.is_set():
            await asyncio.sleep(0.05)

    async def _ws_handler(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else "/"
        try:
            if path.rstrip("/").endswith("/stream"):
                await self._trade_stream(ws)
            else:
                await self._market_stream(ws, path)
        except ConnectionClosed:
            pass
        finally:
            self._md.pop(ws, None)
            self._tu.discard(ws)

    def _auth_ok(self, key: Any, secret: Any) -> bool:
        want_k, want_s = self._keys
        if not key or not secret:
            return False
        return (want_k is None or key == want_k) and (want_s is None or secret == want_s)

    async def _market_stream(self, ws: ServerConnection, path: str) -> None:
        async def send(msg: dict[str, Any]) -> None:
            await ws.send(msgpack.packb([msg]))

        await send({"T": "success", "msg": "connected"})
        feed = path.rstrip("/").rsplit("/", 1)[-1]
        while True:
            raw = await ws.recv()
            try:
                msg = msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)
            except Exception:
                await send({"T": "error", "code": 400, "msg": "invalid syntax"})
                continue
            action = msg.get("action") if isinstance(msg, dict) else None
            if action == "auth":
                if ws in self._md:
                    await send({"T": "error", "code": 403, "msg": "already authenticated"})
                    continue
                if not self._auth_ok(msg.get("key"), msg.get("secret")):
                    await send({"T": "error", "code": 402, "msg": "auth failed"})
                    await ws.close()
                    return
                if feed == "sip" and not self.settings.sip_allowed:
                    await send({"T": "error", "code": 409, "msg": "insufficient subscription"})
                    await ws.close()
                    return
                limit = self.settings.md_connection_limit
                if limit and len(self._md) >= limit:
                    await send({"T": "error", "code": 406, "msg": "connection limit exceeded"})
                    await ws.close()
                    return
                await send({"T": "success", "msg": "authenticated"})
                self._md[ws] = {ch: set() for ch in CHANNELS}
            elif action in ("subscribe", "unsubscribe"):
                if ws not in self._md:
                    await send({"T": "error", "code": 401, "msg": "not authenticated"})
                    continue
                subs = self._md[ws]
                for ch in CHANNELS:
                    for sym in msg.get(ch, []) or []:
                        (subs[ch].add if action == "subscribe" else subs[ch].discard)(sym)
                await send({"T": "subscription", **{ch: sorted(subs[ch]) for ch in CHANNELS}})
            else:
                await send({"T": "error", "code": 400, "msg": "invalid syntax"})

    async def _trade_stream(self, ws: ServerConnection) -> None:
        authed = False
        while True:
            raw = await ws.recv()
            try:
                msg = json.loads(raw)
            except ValueError:
                continue
            data = msg.get("data") or {}
            if msg.get("action") in ("authenticate", "auth"):
                authed = self._auth_ok(data.get("key_id"), data.get("secret_key"))
                status = "authorized" if authed else "unauthorized"
                await ws.send(
                    json.dumps(
                        {
                            "stream": "authorization",
                            "data": {"status": status, "action": "authenticate"},
                        }
                    )
                )
                if not authed:
                    await ws.close()
                    return
            elif msg.get("action") == "listen" and authed:
                streams = data.get("streams") or []
                if "trade_updates" in streams:
                    self._tu.add(ws)
                else:
                    self._tu.discard(ws)
                await ws.send(json.dumps({"stream": "listening", "data": {"streams": streams}}))

    # ------------------------------------------------------------------ REST
    def handle(
        self, method: str, path: str, query: dict[str, str], body: Any, headers: Any
    ) -> tuple[int, Any, dict[str, str]]:
        """Route one HTTP request; returns (status, JSON-able body or None, extra headers)."""
        try:
            if path.startswith("/_sim/"):
                return 200, self._control(method, path, query, body), {}
            with self._lock:
                self.rest_calls += 1
            code = self.faults.http_fault()
            if code == 429:
                extra = {"X-RateLimit-Limit": "200", "X-RateLimit-Remaining": "0"}
                extra["X-RateLimit-Reset"] = str(int(time.time()) + 1)
                if self.faults.s.retry_after_s:
                    extra["Retry-After"] = str(self.faults.s.retry_after_s)
                return 429, {"code": 42910000, "message": "rate limit exceeded"}, extra
            if code is not None:
                return code, {"code": code * 100000, "message": "internal server error"}, {}
            if not self._auth_ok(
                headers.get("APCA-API-KEY-ID"), headers.get("APCA-API-SECRET-KEY")
            ):
                raise HttpError(401, "request is not authorized", 40110000)
            status, out = self._route(method, path, query, body)
            return status, out, {}
        except HttpError as exc:
            return exc.status, {"code": exc.code, "message": str(exc)}, {}
        except (OrderError, BarQueryError) as exc:
            b = (
                exc.body()
                if isinstance(exc, OrderError)
                else {"code": exc.code, "message": str(exc)}
            )
            return exc.status, b, {}

    def _control(self, method: str, path: str, q: dict[str, str], body: Any) -> Any:
        if path == "/_sim/step" and method == "POST":
            to = q.get("to")
            if to not in (None, "open", "minute", "close"):
                raise HttpError(422, "to must be open, minute or close")
            before = (self.cur, self.session_closed)
            self.step(to)
            return {
                "bar": self.bar,
                "timestamp": iso(self.now_ns),
                "is_open": not self.session_closed,
                "published": (self.cur, self.session_closed) != before,
                "done": self.done,
            }
        if path == "/_sim/status":
            return self.status()
        if path == "/_sim/faults":
            if method == "POST":
                self.inject(**(body or {}))
            return {"faults": self.faults.s.model_dump(), "injected": self.faults.injected}
        raise HttpError(404, f"no route {method} {path}")

    def status(self) -> dict[str, Any]:
        """The ``/_sim/status`` dump."""
        b = self.broker
        with b.lock:
            positions = b.positions()
            open_orders = len(b.open_orders())
            cash = b.cash
        return {
            "bar": self.bar,
            "n_bars": self.panel.n_bars,
            "session": self.cur,
            "is_open": not self.session_closed,
            "timestamp": iso(self.sim_now()),
            "minutes_emitted": self.emitted,
            "done": self.done,
            "mode": self.settings.mode,
            "md_clients": sum(1 for s in self._md.values() if any(s.values())),
            "tu_clients": len(self._tu),
            "positions": positions,
            "open_orders": open_orders,
            "cash": cash,
            "rest_calls": self.rest_calls,
            "submissions": len(self.submissions),
        }

    def inject(
        self,
        http_error: int | None = None,
        count: int = 1,
        drop_ws: bool = False,
        reject_next: int = 0,
        partial_next: int = 0,
        **settings: Any,
    ) -> None:
        """Faults at run time: settings (``FaultSettings`` fields) and one-shot faults."""
        if settings:
            try:
                self.faults.update(settings)
            except ValidationError as exc:
                raise HttpError(422, f"invalid fault settings: {first_error(exc)}") from None
        with self.broker.lock:
            if http_error is not None:
                self.faults.queued.extend([int(http_error)] * int(count))
            self.broker.reject_next += int(reject_next)
            self.broker.partial_next += int(partial_next)
        if drop_ws:
            self.drop_websockets()

    def _route(self, method: str, path: str, q: dict[str, str], body: Any) -> tuple[int, Any]:
        b = self.broker
        parts = [unquote(p) for p in path.split("/") if p]
        if parts[:1] != ["v2"]:
            raise HttpError(404, "endpoint not found", 40410000)
        res = parts[1:]
        if res == ["clock"] and method == "GET":
            return 200, self.cal.clock_json(self.sim_now())
        if res == ["calendar"] and method == "GET":
            return 200, self.cal.calendar_json(q.get("start"), q.get("end"))
        if res == ["stocks", "bars"] and method == "GET":
            return 200, self._bars(q)
        if len(res) == 3 and res[0] == "stocks" and res[2] == "bars" and method == "GET":
            multi = self._bars({**q, "symbols": res[1]})
            bars = multi["bars"].get(res[1], [])
            return 200, {
                "bars": bars,
                "symbol": res[1],
                "next_page_token": multi["next_page_token"],
            }
        with b.lock:
            if res == ["account"] and method == "GET":
                return 200, account_json(b, int(self.cal.open_ns[0]), self._last_equity)
            if res == ["assets"] and method == "GET":
                return 200, [self._asset(s) for s in self.data_symbols]
            if len(res) == 2 and res[0] == "assets" and method == "GET":
                if res[1] not in self.data_symbols:
                    raise HttpError(404, f"asset not found for {res[1]}", 40410000)
                return 200, self._asset(res[1])
            if res == ["orders"] and method == "POST":
                if not isinstance(body, dict):
                    raise HttpError(422, "request body must be a JSON object", 40010000)
                return 200, self._submit(body)
            if res == ["orders"] and method == "GET":
                return 200, self._orders(q)
            if res == ["orders"] and method == "DELETE":
                out = []
                for oo in b.open_orders():
                    self._cancel(oo.id)
                    out.append({"id": oo.id, "status": 200, "body": order_json(oo)})
                return 207, out
            if res == ["orders:by_client_order_id"] and method == "GET":
                oid = b.by_client.get(q.get("client_order_id", ""))
                if oid is None:
                    raise HttpError(404, "order not found", 40410000)
                return 200, order_json(b.orders[oid])
            if len(res) == 2 and res[0] == "orders":
                o = b.orders.get(res[1])
                if o is None:
                    raise HttpError(404, f"order not found for {res[1]}", 40410000)
                if method == "GET":
                    return 200, order_json(o)
                if method == "DELETE":
                    self._cancel(o.id)
                    return 204, None
                if method == "PATCH":
                    return 200, self._replace(o.id, body if isinstance(body, dict) else {})
            if res == ["positions"] and method == "GET":
                return 200, [position_json(b, s) for s in b.positions()]
            if res == ["positions"] and method == "DELETE":
                if q.get("cancel_orders", "false").lower() == "true":
                    for oo in b.open_orders():
                        self._cancel(oo.id)
                out = []
                for s in list(b.positions()):
                    try:
                        out.append({"symbol": s, "status": 200, "body": self._close(s, {})})
                    except OrderError as exc:
                        out.append({"symbol": s, "status": exc.status, "body": exc.body()})
                return 207, out
            if len(res) == 2 and res[0] == "positions":
                if res[1] not in b.index or b.position(res[1]) == 0.0:
                    raise HttpError(404, "position does not exist", 40410000)
                if method == "GET":
                    return 200, position_json(b, res[1])
                if method == "DELETE":
                    return 200, self._close(res[1], q)
        raise HttpError(404, "endpoint not found", 40410000)

    def _asset(self, symbol: str) -> dict[str, Any]:
        s = self.settings
        tradable = symbol in self.broker.index
        return asset_json(
            symbol,
            tradable=tradable,
            fractionable=s.fractional and symbol not in s.non_fractionable,
            shortable=self.broker.rules.shorting,
        )

    def _close(self, symbol: str, q: dict[str, str]) -> dict[str, Any]:
        held = self.broker.position(symbol)
        if "qty" in q:
            qty = float(q["qty"])
        else:
            qty = abs(held) * float(q.get("percentage", 100)) / 100
            qty = round(qty, 9)
        side = "sell" if held > 0 else "buy"
        return self._submit(
            {"symbol": symbol, "qty": qty, "type": "market", "side": side, "time_in_force": "day"}
        )

    def _cancel(self, order_id: str) -> None:
        events = self.broker.cancel(order_id)
        self._publish_trades(events)
        if events:
            delay = self.faults.s.cancel_delay_s

            def finish() -> None:
                self._publish_trades(self.broker.finish_cancel(order_id))

            if delay <= 0:
                finish()
            else:
                t = threading.Timer(delay, finish)
                t.daemon = True
                t.start()

    def _submit(self, body: dict[str, Any]) -> Any:
        def f(key: str) -> float | None:
            v = body.get(key)
            if v is None:
                return None
            try:
                return float(v)
            except (TypeError, ValueError):
                raise OrderError(422, f"invalid {key}", 40010001) from None

        cid = str(body.get("client_order_id") or "")
        try:
            order, events = self.broker.submit(
                str(body.get("symbol")),
                str(body.get("side")),
                qty=f("qty"),
                notional=f("notional"),
                type=str(body.get("type", "market")),
                time_in_force=str(body.get("time_in_force", "day")),
                client_order_id=cid or None,
                limit_price=f("limit_price"),
            )
        except OrderError as exc:
            self.submissions.append((cid, exc.status))
            raise
        self.submissions.append((order.client_order_id, 200))
        out = order_json(events[0].order)
        events += self.broker.fill_marketable()
        self._publish_trades(events)
        return out

    def _replace(self, order_id: str, body: dict[str, Any]) -> dict[str, Any]:
        def f(key: str) -> float | None:
            v = body.get(key)
            try:
                return None if v is None else float(v)
            except (TypeError, ValueError):
                raise OrderError(422, f"invalid {key}", 40010001) from None

        new, events = self.broker.replace(
            order_id,
            qty=f("qty"),
            limit_price=f("limit_price"),
            time_in_force=body.get("time_in_force"),
            client_order_id=body.get("client_order_id"),
        )
        self.submissions.append((new.client_order_id, 200))
        out = order_json(new)
        events += self.broker.fill_marketable()
        self._publish_trades(events)
        return out

    def _orders(self, q: dict[str, str]) -> list[dict[str, Any]]:
        status = q.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise HttpError(422, "invalid status", 42210000)
        syms = set(q["symbols"].split(",")) if q.get("symbols") else None
        try:
            limit = int(q.get("limit", 50))
            after = parse_time(q["after"], "UTC") if q.get("after") else None
            until = parse_time(q["until"], "UTC") if q.get("until") else None
        except ValueError:
            raise HttpError(422, "invalid limit/after/until", 42210000) from None
        if not 1 <= limit <= 500:
            raise HttpError(422, "limit must be between 1 and 500", 42210000)
        out = []
        for o in self.broker.orders.values():
            if (status == "open") != o.is_open and status != "all":
                continue
            if syms is not None and o.symbol not in syms:
                continue
            if q.get("side") and o.side != q["side"]:
                continue
            if after is not None and o.created_ns <= after:
                continue
            if until is not None and o.created_ns >= until:
                continue
            out.append(o)
        desc = q.get("direction", "desc") == "desc"
        out.sort(key=lambda o: (o.created_ns, int(uuid.UUID(o.id))), reverse=desc)
        return [order_json(o) for o in out[:limit]]

    def _bars(self, q: dict[str, str]) -> dict[str, Any]:
        syms = [s for s in (q.get("symbols") or "").split(",") if s]
        if not syms:
            raise BarQueryError(400, "symbols is required", 40010000)
        frame = TIMEFRAMES.get(q.get("timeframe", ""))
        if frame is None:
            raise BarQueryError(
                422, f"invalid timeframe {q.get('timeframe')!r} (this simulator serves 1Min, 1Day)"
            )
        adj = q.get("adjustment", "raw")
        if adj not in ADJUSTMENTS:
            raise BarQueryError(422, f"invalid adjustment {adj!r}")
        feed = q.get("feed", "iex")
        if feed not in ("iex", "sip", "delayed_sip", "otc", "boats"):
            raise BarQueryError(422, f"invalid feed {feed!r}")
        try:
            limit = int(q.get("limit") or 1000)
        except ValueError:
            raise BarQueryError(422, "invalid limit") from None
        if not 1 <= limit <= MAX_LIMIT:
            raise BarQueryError(422, f"invalid limit: must be between 1 and {MAX_LIMIT}")
        with self._lock:
            now, last, emitted = self.now_ns, self.cur, self.emitted
            if self.session_closed:
                emitted = self.settings.minute_bars_per_session
        try:
            day0 = int(self.cal.day_ns[min(max(last, 0), len(self.cal) - 1)])
            start = parse_time(q["start"]) if q.get("start") else day0
            end = parse_time(q["end"]) if q.get("end") else now
        except ValueError:
            raise BarQueryError(422, "invalid start/end time") from None
        if feed == "sip" and not self.settings.sip_allowed and end > now - SIP_RECENT_NS:
            raise BarQueryError(403, "subscription does not permit querying recent SIP data", 0)
        offset = decode_token(q["page_token"]) if q.get("page_token") else 0
        rows: list[tuple[str, dict[str, Any]]] = []
        for s in sorted(set(syms)):
            if s not in self.minutes.col:
                continue  # Alpaca answers unknown symbols with no bars
            got = self.minutes.rows(s, frame, last, emitted, start, min(end, now))
            if q.get("sort", "asc") == "desc":
                got.reverse()
            rows += [(s, r) for r in got]
        page = rows[offset : offset + limit]
        out: dict[str, list[dict[str, Any]]] = {}
        for s, r in page:
            out.setdefault(s, []).append(r)
        nxt = encode_token(offset + limit) if offset + limit < len(rows) else None
        return {"bars": out, "next_page_token": nxt}


def _handler_for(ex: LocalExchange) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()  # headers and body go out in two writes: no Nagle delay
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def _do(self, method: str) -> None:
            parts = urlsplit(self.path)
            while ex.faults.s.hang and not ex.stopping and not parts.path.startswith("/_sim/"):
                time.sleep(0.05)  # accept the connection, never answer (``/_sim/`` still works)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            extra: dict[str, str] = {}
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                status, out = 400, {"code": 40010000, "message": "request body format is invalid"}
            else:
                try:
                    status, out, extra = ex.handle(method, parts.path, query, body, self.headers)
                except Exception as exc:  # a bug in the exchange: answer 500, keep serving
                    log.exception("exchange.error", path=parts.path)
                    status, out = 500, {"code": 50010000, "message": str(exc)}
            data = b"" if out is None else json.dumps(out).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            if data:
                self.wfile.write(data)

        def do_GET(self) -> None:
            self._do("GET")

        def do_POST(self) -> None:
            self._do("POST")

        def do_DELETE(self) -> None:
            self._do("DELETE")

        def do_PATCH(self) -> None:
            self._do("PATCH")

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


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
    from brokers.sim import AccountRules
    from engine.core import layout as L
    from engine.core.spec import cost_table

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
    costs = cost_table(panel.symbols, cfg.costs.default(), cfg.costs.per_symbol())
    cash = s.initial_cash or float(cfg.execution.build().array()[L.E_INITIAL_CASH])
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

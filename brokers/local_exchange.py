"""A local Alpaca-compatible paper exchange on 127.0.0.1, backed by :class:`SimBroker`.

It speaks the subset of Alpaca's protocols that alpaca-py uses (see
``/work/shared/notes/alpaca-protocol.md``): REST v2 (account, orders, positions, clock,
``/v2/stocks/bars``) on an HTTP port, and on a websocket port the msgpack market-data
stream (any path but ``/stream``, e.g. ``/v2/iex``) and the JSON ``trade_updates`` stream
(``/stream``). Bars of a :class:`~engine.core.bars.BarPanel` are replayed one at a time,
either every ``interval_s`` seconds or when someone calls ``POST /_sim/step`` (stepped
mode, ``interval_s = 0``). Exogenous series are published as data-only symbols.

Control endpoints (not Alpaca): ``POST /_sim/step``, ``GET /_sim/status``,
``POST /_sim/faults`` with any of ``{"http_error": 503, "count": 2, "drop_ws": true,
"reject_next": 1, "partial_next": 1}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgpack
import numpy as np
import pandas as pd
import structlog
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from brokers.exchange_settings import ExchangeSettings
from brokers.sim import OrderError, SimBroker, SimOrder, TradeEvent
from engine.core.bars import BarPanel

log = structlog.get_logger(__name__)

_NS = uuid.UUID("6f1c2b1e-0000-4000-8000-000000000000")


def iso(ns: int | None) -> str | None:
    """RFC 3339 UTC time of a nanosecond timestamp."""
    if ns is None:
        return None
    return pd.Timestamp(ns, tz="UTC").isoformat().replace("+00:00", "Z")


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
        "expired_at": None,
        "canceled_at": iso(o.cancel_ns),
        "failed_at": iso(o.updated_ns) if o.status == "rejected" else None,
        "replaced_at": None,
        "replaced_by": None,
        "replaces": None,
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


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: int = 40010000) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class LocalExchange:
    """Replay ``panel`` through ``broker`` and serve both over HTTP and websockets."""

    def __init__(
        self,
        panel: BarPanel,
        broker: SimBroker,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ws_port: int = 0,
        interval_s: float = 0.0,
        api_key: str | None = None,
        api_secret: str | None = None,
    ) -> None:
        if tuple(panel.symbols) != broker.symbols:
            raise ValueError("panel and broker symbols differ")
        self.panel = panel
        self.broker = broker
        self.host = host
        self.interval_s = float(interval_s)
        self._keys = (api_key, api_secret)
        self.bar = -1  # index of the last published bar
        self.data_symbols = tuple(panel.symbols) + tuple(panel.exog_names)
        self.http_errors: list[int] = []
        self.submissions: list[tuple[str, int]] = []  # (client_order_id, HTTP status)
        self.rest_calls = 0
        self._lock = threading.RLock()
        self._md: dict[ServerConnection, set[str]] = {}
        self._tu: set[ServerConnection] = set()
        self._loop = asyncio.new_event_loop()
        self._ws_server: Server | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._http = ThreadingHTTPServer((host, port), _handler_for(self))
        self._http.daemon_threads = True
        self._ws_port_req = ws_port
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
        return self.bar >= self.panel.n_bars - 1

    def start(self) -> LocalExchange:
        """Start the HTTP and websocket servers (and the replay timer) in threads."""
        ready = threading.Event()

        def run_loop() -> None:
            asyncio.set_event_loop(self._loop)

            async def boot() -> None:
                self._ws_server = await serve(
                    self._ws_handler, self.host, self._ws_port_req, max_size=2**22
                )
                sock = next(iter(self._ws_server.sockets))
                self.ws_port = int(sock.getsockname()[1])
                ready.set()

            self._loop.run_until_complete(boot())
            self._loop.run_forever()

        t = threading.Thread(target=run_loop, name="exchange-ws", daemon=True)
        t.start()
        self._threads.append(t)
        if not ready.wait(10):
            raise RuntimeError("websocket server did not start")
        h = threading.Thread(target=self._http.serve_forever, name="exchange-http", daemon=True)
        h.start()
        self._threads.append(h)
        if self.interval_s > 0:
            tm = threading.Thread(target=self._timer, name="exchange-timer", daemon=True)
            tm.start()
            self._threads.append(tm)
        log.info("exchange.started", url=self.url, ws=self.ws_url, bars=self.panel.n_bars)
        return self

    def stop(self) -> None:
        """Shut both servers down."""
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

    def _timer(self) -> None:
        while not self._stop.wait(self.interval_s):
            if self.step() is None:
                return

    # ------------------------------------------------------------------ replay
    def step(self) -> int | None:
        """Publish the next bar (fills at its open first); ``None`` when none is left."""
        with self._lock:
            if self.done:
                return None
            self.bar += 1
            t, p = self.bar, self.panel
            ts = int(p.timestamps_ns[t])
            events = self.broker.on_bar(ts, p.open[t], p.close[t], p.volume[t])
            bars = self._bar_messages(t)
        self._publish_trades(events)
        self._run(self._broadcast_bars(bars))
        return t

    def _bar_messages(self, t: int) -> list[dict[str, Any]]:
        p = self.panel
        stamp = msgpack.Timestamp.from_unix_nano(int(p.timestamps_ns[t]))
        out = []
        for j, s in enumerate(p.symbols):
            o, c, v = float(p.open[t, j]), float(p.close[t, j]), float(p.volume[t, j])
            out.append(
                {
                    "T": "b",
                    "S": s,
                    "o": o,
                    "h": max(o, c),
                    "l": min(o, c),
                    "c": c,
                    "v": v,
                    "n": 1,
                    "vw": (o + c) / 2,
                    "t": stamp,
                }
            )
        for k, s in enumerate(p.exog_names):
            x = float(p.exog[t, k])
            out.append(
                {
                    "T": "b",
                    "S": s,
                    "o": x,
                    "h": x,
                    "l": x,
                    "c": x,
                    "v": 0.0,
                    "n": 0,
                    "vw": x,
                    "t": stamp,
                }
            )
        return out

    def _run(self, coro: Any) -> None:
        if not self._loop.is_running():
            coro.close()
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _broadcast_bars(self, bars: list[dict[str, Any]]) -> None:
        for ws, subs in list(self._md.items()):
            msgs = [b for b in bars if b["S"] in subs or "*" in subs]
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

    # ------------------------------------------------------------------ websockets
    async def _ws_handler(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else "/"
        try:
            if path.rstrip("/").endswith("/stream"):
                await self._trade_stream(ws)
            else:
                await self._market_stream(ws)
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

    async def _market_stream(self, ws: ServerConnection) -> None:
        await ws.send(msgpack.packb([{"T": "success", "msg": "connected"}]))
        while True:
            raw = await ws.recv()
            msg = msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)
            action = msg.get("action")
            if action == "auth":
                if not self._auth_ok(msg.get("key"), msg.get("secret")):
                    await ws.send(
                        msgpack.packb([{"T": "error", "code": 402, "msg": "auth failed"}])
                    )
                    await ws.close()
                    return
                await ws.send(msgpack.packb([{"T": "success", "msg": "authenticated"}]))
                self._md.setdefault(ws, set())
            elif action in ("subscribe", "unsubscribe"):
                if ws not in self._md:
                    await ws.send(
                        msgpack.packb([{"T": "error", "code": 401, "msg": "not authenticated"}])
                    )
                    continue
                subs = self._md[ws]
                for s in msg.get("bars", []) or []:
                    (subs.add if action == "subscribe" else subs.discard)(s)
                await ws.send(
                    msgpack.packb(
                        [
                            {
                                "T": "subscription",
                                "trades": [],
                                "quotes": [],
                                "bars": sorted(subs),
                                "updatedBars": [],
                                "dailyBars": [],
                                "statuses": [],
                                "lulds": [],
                                "corrections": [],
                                "cancelErrors": [],
                            }
                        ]
                    )
                )

    async def _trade_stream(self, ws: ServerConnection) -> None:
        authed = False
        while True:
            raw = await ws.recv()
            msg = json.loads(raw)
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
                await ws.send(json.dumps({"stream": "listening", "data": {"streams": streams}}))

    # ------------------------------------------------------------------ REST
    def handle(
        self, method: str, path: str, query: dict[str, str], body: Any, headers: Any
    ) -> tuple[int, Any]:
        """Route one HTTP request; returns (status, JSON-able body or None)."""
        try:
            if path.startswith("/_sim/"):
                return 200, self._control(method, path, body)
            with self._lock:
                self.rest_calls += 1
                if self.http_errors:
                    code = self.http_errors.pop(0)
                    return code, {"code": code * 100000, "message": "injected fault"}
            if not self._auth_ok(
                headers.get("APCA-API-KEY-ID"), headers.get("APCA-API-SECRET-KEY")
            ):
                raise HttpError(401, "unauthorized", 40110000)
            return 200, self._route(method, path, query, body)
        except HttpError as exc:
            return exc.status, {"code": exc.code, "message": str(exc)}
        except OrderError as exc:
            return exc.status, {"code": exc.code, "message": str(exc)}

    def _control(self, method: str, path: str, body: Any) -> Any:
        if path == "/_sim/step" and method == "POST":
            bar = self.step()
            return {"bar": self.bar, "published": bar is not None, "done": self.done}
        if path == "/_sim/status":
            return self.status()
        if path == "/_sim/faults" and method == "POST":
            self.inject(**(body or {}))
            return {"ok": True}
        raise HttpError(404, f"no route {method} {path}")

    def status(self) -> dict[str, Any]:
        return {
            "bar": self.bar,
            "n_bars": self.panel.n_bars,
            "done": self.done,
            "md_clients": sum(1 for s in self._md.values() if s),
            "tu_clients": len(self._tu),
        }

    def inject(
        self,
        http_error: int | None = None,
        count: int = 1,
        drop_ws: bool = False,
        reject_next: int = 0,
        partial_next: int = 0,
    ) -> None:
        """Fault injection: HTTP errors on the next calls, dropped sockets, bad orders."""
        with self._lock:
            if http_error is not None:
                self.http_errors.extend([int(http_error)] * int(count))
            self.broker.reject_next += int(reject_next)
            self.broker.partial_next += int(partial_next)
        if drop_ws:
            self.drop_websockets()

    def _route(self, method: str, path: str, q: dict[str, str], body: Any) -> Any:
        b = self.broker
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["v2"]:
            raise HttpError(404, f"no route {method} {path}")
        res = parts[1:]
        with b.lock:
            if res == ["account"] and method == "GET":
                return self._account()
            if res == ["clock"] and method == "GET":
                return self._clock()
            if res == ["orders"] and method == "POST":
                return self._submit(body or {})
            if res == ["orders"] and method == "GET":
                return self._orders(q)
            if res == ["orders"] and method == "DELETE":
                out = []
                for oo in b.open_orders():
                    self._publish_trades(b.cancel(oo.id))
                    out.append({"id": oo.id, "status": 200, "body": order_json(oo)})
                return out
            if res == ["orders:by_client_order_id"] and method == "GET":
                oid = b.by_client.get(q.get("client_order_id", ""))
                if oid is None:
                    raise HttpError(404, "order not found", 40410000)
                return order_json(b.orders[oid])
            if len(res) == 2 and res[0] == "orders":
                o = b.orders.get(res[1])
                if o is None:
                    raise HttpError(404, "order not found", 40410000)
                if method == "GET":
                    return order_json(o)
                if method == "DELETE":
                    self._publish_trades(b.cancel(o.id))
                    return None
            if res == ["positions"] and method == "GET":
                return [self._position(s) for s in b.positions()]
            if len(res) == 2 and res[0] == "positions" and method == "GET":
                if res[1] not in b.positions():
                    raise HttpError(404, "position does not exist", 40410000)
                return self._position(res[1])
            if len(res) == 2 and res[0] == "positions" and method == "DELETE":
                held = b.positions().get(res[1], 0.0)
                if held == 0.0:
                    raise HttpError(404, "position does not exist", 40410000)
                qty = (
                    abs(held) * float(q.get("percentage", 100)) / 100
                    if "qty" not in q
                    else float(q["qty"])
                )
                return self._submit(
                    {
                        "symbol": res[1],
                        "qty": qty,
                        "type": "market",
                        "side": "sell" if held > 0 else "buy",
                        "time_in_force": "day",
                    }
                )
            if res == ["stocks", "bars"] and method == "GET":
                return self._bars(q)
        raise HttpError(404, f"no route {method} {path}")

    def _submit(self, body: dict[str, Any]) -> Any:
        def f(key: str) -> float | None:
            v = body.get(key)
            return None if v is None else float(v)

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
        except (TypeError, ValueError) as exc:
            self.submissions.append((cid, 422))
            raise HttpError(422, f"invalid order: {exc}") from None
        self.submissions.append((order.client_order_id, 200))
        self._publish_trades(events)
        return order_json(order)

    def _orders(self, q: dict[str, str]) -> list[dict[str, Any]]:
        status = q.get("status", "open")
        syms = set(q["symbols"].split(",")) if q.get("symbols") else None
        out = []
        for o in self.broker.orders.values():
            if status == "open" and not o.is_open:
                continue
            if status == "closed" and o.is_open:
                continue
            if syms is not None and o.symbol not in syms:
                continue
            out.append(o)
        out.sort(key=lambda o: (o.created_ns, o.id), reverse=q.get("direction", "desc") == "desc")
        limit = int(q.get("limit", 50))
        return [order_json(o) for o in out[:limit]]

    def _position(self, symbol: str) -> dict[str, Any]:
        b = self.broker
        j = b.index[symbol]
        qty = b.position(symbol)
        px = float(b.last_close[j]) if np.isfinite(b.last_close[j]) else 0.0
        avg = float(b.avg_price[j])
        return {
            "asset_id": asset_id(symbol),
            "symbol": symbol,
            "exchange": "NYSE",
            "asset_class": "us_equity",
            "avg_entry_price": num(avg),
            "qty": num(qty),
            "qty_available": num(qty),
            "side": "long" if qty >= 0 else "short",
            "market_value": num(qty * px),
            "cost_basis": num(qty * avg),
            "unrealized_pl": num(qty * (px - avg)),
            "unrealized_plpc": "0",
            "unrealized_intraday_pl": "0",
            "unrealized_intraday_plpc": "0",
            "current_price": num(px),
            "lastday_price": num(px),
            "change_today": "0",
        }

    def _account(self) -> dict[str, Any]:
        b = self.broker
        return {
            "id": str(uuid.uuid5(_NS, "account")),
            "account_number": "PA0000000LOCAL",
            "status": "ACTIVE",
            "crypto_status": "INACTIVE",
            "currency": "USD",
            "cash": num(b.cash),
            "equity": num(b.equity),
            "last_equity": num(b.equity),
            "portfolio_value": num(b.equity),
            "buying_power": num(max(b.cash, 0.0)),
            "regt_buying_power": num(max(b.cash, 0.0)),
            "non_marginable_buying_power": num(max(b.cash, 0.0)),
            "long_market_value": num(b.equity - b.cash),
            "short_market_value": "0",
            "initial_margin": "0",
            "maintenance_margin": "0",
            "multiplier": "1",
            "pattern_day_trader": False,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "shorting_enabled": False,
            "trade_suspended_by_user": False,
            "created_at": iso(int(self.panel.timestamps_ns[0])),
            "daytrade_count": 0,
            "sma": "0",
        }

    def _clock(self) -> dict[str, Any]:
        ts = self.panel.timestamps_ns
        now = int(ts[max(self.bar, 0)])
        nxt = int(ts[min(self.bar + 1, len(ts) - 1)])
        return {
            "timestamp": iso(now),
            "is_open": not self.done,
            "next_open": iso(nxt),
            "next_close": iso(nxt),
        }

    def _bars(self, q: dict[str, str]) -> dict[str, Any]:
        syms = [s for s in (q.get("symbols") or "").split(",") if s]
        unknown = [s for s in syms if s not in self.data_symbols]
        if not syms or unknown:
            raise HttpError(422, f"invalid symbols: {','.join(unknown) or '(none)'}")
        ts = self.panel.timestamps_ns[: self.bar + 1]
        lo = 0 if not q.get("start") else int(np.searchsorted(ts, _ns(q["start"]), "left"))
        hi = len(ts) if not q.get("end") else int(np.searchsorted(ts, _ns(q["end"]), "right"))
        rows: list[tuple[str, int]] = [(s, t) for s in sorted(syms) for t in range(lo, hi)]
        start = int(q.get("page_token") or 0)
        limit = min(int(q.get("limit") or 1000), 10000)
        page = rows[start : start + limit]
        out: dict[str, list[dict[str, Any]]] = {}
        for s, t in page:
            msg = self._bar_messages(t)[self.data_symbols.index(s)]
            out.setdefault(s, []).append(
                {
                    "t": iso(int(self.panel.timestamps_ns[t])),
                    "o": msg["o"],
                    "h": msg["h"],
                    "l": msg["l"],
                    "c": msg["c"],
                    "v": msg["v"],
                    "n": msg["n"],
                    "vw": msg["vw"],
                }
            )
        nxt = str(start + limit) if start + limit < len(rows) else None
        return {"bars": out, "next_page_token": nxt}


def _ns(text: str) -> int:
    ts = pd.Timestamp(text)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return int(ts.value)


def _handler_for(ex: LocalExchange) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _do(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            n = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(n) if n else b""
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                status, out = 400, {"code": 40000000, "message": "invalid JSON body"}
            else:
                try:
                    status, out = ex.handle(method, parts.path, query, body, self.headers)
                except Exception as exc:  # a bug in the exchange: answer 500, keep serving
                    log.exception("exchange.error", path=parts.path)
                    status, out = 500, {"code": 50000000, "message": str(exc)}
            data = b"" if out is None else json.dumps(out).encode()
            self.send_response(204 if out is None and status == 200 else status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
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
) -> LocalExchange:
    """An exchange over ``panel`` with the costs and cash of a :class:`RunConfig`.

    ``settings`` default: stepped, on free ports. The keyword overrides are kept for old callers.
    """
    from engine.core.spec import cost_table

    s = settings or ExchangeSettings(port=0, ws_port=0, mode="stepped", history_bars=0)
    interval = (
        (0.0 if s.mode == "stepped" else s.seconds_per_session)
        if interval_s is None
        else interval_s
    )
    costs = cost_table(panel.symbols, cfg.costs.default(), cfg.costs.per_symbol())
    broker = SimBroker(tuple(panel.symbols), costs, cfg.execution.build().array())
    return LocalExchange(
        panel,
        broker,
        host=host or s.host,
        port=s.port if port is None else port,
        ws_port=s.ws_port if ws_port is None else ws_port,
        interval_s=interval,
    )


__all__ = ["LocalExchange", "build_exchange", "order_json"]

"""A small Alpaca-like server for the paper loop's tests, written from Alpaca's docs.

Independent of the project's local exchange (``brokers/local_exchange.py``), so the loop is
checked against two servers. What it models (the rules the loop must respect):

- sessions: one per panel row, 09:30-16:00 New York; ``/v2/clock`` and ``/v2/calendar``
  give the *simulated* time; ``history`` rows are complete at start, the clock in the
  after-close of the last of them;
- the open (``open_session``): queued day market orders fill at the session's open price
  (orders sent during the session fill at once, at the same price); the close
  (``close_session``): open day orders expire, the day's bar is complete;
- daily bars: REST ``/v2/stocks/bars`` (paginated, ``feed=sip`` refused with 403 as on a
  free plan) returns the session *in progress* too while the market is open (o = open,
  c = open so far), and the ``dailyBars`` stream sends ``d`` messages for it: a client
  must use the clock to know when a day is complete;
- buying power = cash - open buy orders' reserve; sells add nothing until they fill;
  an order beyond it is refused (403 "insufficient buying power");
- wash-trade guard (403, 40310000), duplicate ``client_order_id`` (422, 40010001),
  at most 9 decimals, whole shares for ``non_fractionable`` assets, a minimum notional;
- a cash account: selling more than held is rejected;
- cancel: ``pending_cancel`` then ``canceled`` after ``cancel_delay_s`` (a fill can win);
- faults (seeded): ``reject_rate`` (accepted, then a ``rejected`` event), ``partial_rate``
  (half fills at the open, the rest expires at the close), ``rate_limit_rate`` (429),
  ``burst_every``/``burst_len`` (consecutive 500s), ``drop_every_s`` (websockets closed),
  ``hang`` (accepts TCP and never answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import msgpack
import numpy as np
import pandas as pd
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

NY = ZoneInfo("America/New_York")


def iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def num(x: float | None) -> str | None:
    return None if x is None else repr(float(x))


@dataclass
class Ord:
    id: str
    cid: str
    symbol: str
    side: str
    qty: float
    created: datetime
    status: str = "new"
    filled: float = 0.0
    avg: float | None = None
    partial: bool = False
    updated: datetime | None = None

    @property
    def open(self) -> bool:
        return self.status in ("new", "accepted", "partially_filled", "pending_cancel")

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "client_order_id": self.cid,
            "created_at": iso(self.created),
            "updated_at": iso(self.updated or self.created),
            "submitted_at": iso(self.created),
            "filled_at": iso(self.updated) if self.status == "filled" else None,
            "expired_at": None,
            "canceled_at": None,
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, self.symbol)),
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": None,
            "qty": num(self.qty),
            "filled_qty": num(self.filled),
            "filled_avg_price": num(self.avg),
            "order_class": "simple",
            "order_type": "market",
            "type": "market",
            "side": self.side,
            "time_in_force": "day",
            "limit_price": None,
            "stop_price": None,
            "status": self.status,
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
        }


@dataclass
class Faults:
    reject_rate: float = 0.0
    partial_rate: float = 0.0
    rate_limit_rate: float = 0.0
    burst_every: int = 0
    burst_len: int = 0
    drop_every_s: float = 0.0
    cancel_delay_s: float = 0.02


@dataclass
class FakeAlpaca:
    """The server; ``start()`` it, ``open_session()``/``close_session()`` or ``realtime``."""

    dates: list[Any]
    symbols: tuple[str, ...]
    opens: np.ndarray
    closes: np.ndarray
    history: int = 300
    cash: float = 100_000.0
    non_fractionable: tuple[str, ...] = ()
    min_notional: float = 1.0
    faults: Faults = field(default_factory=Faults)
    seed: int = 0
    seconds_per_session: float = 0.0  # > 0: realtime thread
    overnight_fraction: float = 0.5
    hang: bool = False

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.cur = self.history - 1  # last complete session
        self.is_open = False
        self.positions: dict[str, float] = {}
        self.orders: dict[str, Ord] = {}
        self.by_cid: dict[str, str] = {}
        self.submissions: list[str] = []  # accepted client ids, in order
        self.calls = 0
        self.min_position: dict[str, float] = {}
        self.lock = threading.RLock()
        self._md: dict[ServerConnection, set[str]] = {}
        self._tu: set[ServerConnection] = set()
        self._loop = asyncio.new_event_loop()
        self._stop = threading.Event()
        self._burst_left = 0
        self.paused = threading.Event()
        self.bars_queries: list[dict[str, str]] = []
        self.index = {s: j for j, s in enumerate(self.symbols)}

    # ------------------------------------------------------------------ time
    def session(self, i: int) -> tuple[datetime, datetime]:
        d = pd.Timestamp(self.dates[i]).date()
        o = datetime(d.year, d.month, d.day, 9, 30, tzinfo=NY)
        return o, datetime(d.year, d.month, d.day, 16, 0, tzinfo=NY)

    @property
    def done(self) -> bool:
        return self.cur >= len(self.dates) - 1 and not self.is_open

    def now(self) -> datetime:
        if self.is_open:
            return self.session(self.cur + 1)[0] + pd.Timedelta(minutes=1)
        return self.session(self.cur)[1] + pd.Timedelta(minutes=1)

    def open_session(self) -> None:
        with self.lock:
            if self.is_open or self.cur + 1 >= len(self.dates):
                return
            self.is_open = True
            events = []
            for o in list(self.orders.values()):
                if o.open and o.status != "pending_cancel":
                    events += self._fill(o)
        self._trades(events)
        self._daily(self.cur + 1, final=False)

    def close_session(self) -> None:
        with self.lock:
            if not self.is_open:
                return
            events = []
            for o in self.orders.values():
                if o.open:
                    o.status, o.updated = "expired", self.now()
                    events.append(self._event("expired", o))
            self.is_open = False
            self.cur += 1
        self._trades(events)
        self._daily(self.cur, final=True)

    def step(self) -> None:
        self.open_session()
        self.close_session()

    def _realtime(self) -> None:
        night = self.seconds_per_session * self.overnight_fraction
        day = self.seconds_per_session - night
        last_drop = time.monotonic()
        while not self._stop.wait(night) and not self.done:
            while self.paused.is_set() and not self._stop.wait(0.01):
                pass  # the test holds the clock while no loop is up (slow process starts)
            self.open_session()
            if self._stop.wait(day):
                return
            self.close_session()
            if self.faults.drop_every_s and time.monotonic() - last_drop > self.faults.drop_every_s:
                last_drop = time.monotonic()
                self.drop_sockets()

    # ------------------------------------------------------------------ orders
    def price(self, symbol: str) -> float:
        j = self.index[symbol]
        i = self.cur + 1 if self.is_open else self.cur
        return float(self.opens[i, j] if self.is_open else self.closes[i, j])

    def _fill(self, o: Ord) -> list[dict[str, Any]]:
        px = float(self.opens[self.cur + 1, self.index[o.symbol]])
        q = o.qty - o.filled
        if not o.partial and self.rng.random() < self.faults.partial_rate:
            o.partial = True
            q = round(q / 2, 9) if o.symbol not in self.non_fractionable else float(int(q / 2))
        if q <= 0:
            return []
        sign = 1.0 if o.side == "buy" else -1.0
        self.cash -= sign * q * px
        pos = self.positions.get(o.symbol, 0.0) + sign * q
        self.positions[o.symbol] = round(pos, 9)
        self.min_position[o.symbol] = min(self.min_position.get(o.symbol, 0.0), pos)
        o.avg = px
        o.filled = round(o.filled + q, 9)
        o.updated = self.now()
        done = o.filled >= o.qty - 1e-12
        o.status = "filled" if done else "partially_filled"
        return [self._event("fill" if done else "partial_fill", o, px, q)]

    def _event(self, ev: str, o: Ord, px: float | None = None, q: float | None = None) -> dict:
        d: dict[str, Any] = {"event": ev, "order": o.json(), "timestamp": iso(self.now())}
        if px is not None:
            d.update(price=num(px), qty=num(q), position_qty=num(self.positions.get(o.symbol)))
        return d

    def buying_power(self) -> float:
        reserve = sum(
            (o.qty - o.filled) * self.price(o.symbol)
            for o in self.orders.values()
            if o.open and o.side == "buy"
        )
        return max(self.cash - reserve, 0.0)

    def equity(self) -> float:
        return self.cash + sum(q * self.price(s) for s, q in self.positions.items())

    def submit(self, body: dict[str, Any]) -> tuple[int, Any]:
        sym, side = str(body.get("symbol")), str(body.get("side"))
        cid = str(body.get("client_order_id") or uuid.uuid4())
        if sym not in self.index:
            return 422, {"code": 40010000, "message": f"asset {sym} not found"}
        if cid in self.by_cid:
            return 422, {"code": 40010001, "message": "client_order_id must be unique"}
        if body.get("notional") is not None:
            return 422, {"code": 40010000, "message": "notional not supported here"}
        text = str(body.get("qty"))
        qty = float(text)
        if qty <= 0 or ("." in text and len(text.split(".")[1].rstrip("0")) > 9):
            return 422, {"code": 40010000, "message": "qty must be > 0 with at most 9 decimals"}
        if sym in self.non_fractionable and qty != int(qty):
            return 422, {"code": 40010000, "message": "fractional orders not supported for asset"}
        px = self.price(sym)
        if qty != int(qty) and qty * px < self.min_notional:
            return 403, {"code": 40310000, "message": "order notional below minimum"}
        for o in self.orders.values():
            if o.open and o.symbol == sym and o.side != side:
                return 403, {
                    "code": 40310000,
                    "message": "potential wash trade detected. use complex orders",
                }
        if side == "buy" and qty * px > self.buying_power() + 1e-6:
            return 403, {"code": 40310000, "message": "insufficient buying power"}
        if side == "sell":
            held = self.positions.get(sym, 0.0) - sum(
                o.qty - o.filled for o in self.orders.values() if o.open and o.symbol == sym
            )
            if qty > held + 1e-9:
                return 403, {"code": 40310000, "message": "insufficient qty available for order"}
        o = Ord(str(uuid.uuid4()), cid, sym, side, qty, self.now())
        self.orders[o.id], self.by_cid[cid] = o, o.id
        self.submissions.append(cid)
        events = [self._event("new", o)]
        if self.rng.random() < self.faults.reject_rate:
            o.status = "rejected"
            events.append(self._event("rejected", o))
        elif self.is_open:
            events += self._fill(o)
        self._trades(events)
        return 200, o.json()

    def cancel(self, oid: str) -> tuple[int, Any]:
        o = self.orders.get(oid)
        if o is None:
            return 404, {"code": 40410000, "message": "order not found"}
        if not o.open:
            return 422, {"code": 42210000, "message": f"order is already in {o.status} state"}
        o.status = "pending_cancel"

        def later() -> None:
            time.sleep(self.faults.cancel_delay_s)
            with self.lock:
                if o.status == "pending_cancel":
                    o.status, o.updated = "canceled", self.now()
                    ev = [self._event("canceled", o)]
                else:
                    ev = []
            self._trades(ev)

        threading.Thread(target=later, daemon=True).start()
        return 204, None

    # ------------------------------------------------------------------ REST
    def handle(self, method: str, path: str, q: dict[str, str], body: Any) -> tuple[int, Any]:
        with self.lock:
            self.calls += 1
            if self._burst_left > 0:
                self._burst_left -= 1
                return 500, {"code": 50000000, "message": "internal server error"}
            if self.faults.burst_every and self.calls % self.faults.burst_every == 0:
                self._burst_left = self.faults.burst_len - 1
                return 500, {"code": 50000000, "message": "internal server error"}
            if self.rng.random() < self.faults.rate_limit_rate:
                return 429, {"code": 42910000, "message": "rate limit exceeded"}
            return self._route(method, path, q, body)

    def _route(self, method: str, path: str, q: dict[str, str], body: Any) -> tuple[int, Any]:
        parts = [p for p in path.split("/") if p]
        if path == "/_sim/status":
            return 200, {"done": self.done, "cur": self.cur, "open": self.is_open}
        res = parts[1:]
        if res == ["account"]:
            eq = self.equity()
            return 200, {
                "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, "acct")),
                "account_number": "PAFAKE0001",
                "status": "ACTIVE",
                "currency": "USD",
                "cash": num(self.cash),
                "equity": num(eq),
                "last_equity": num(eq),
                "portfolio_value": num(eq),
                "buying_power": num(self.buying_power()),
                "non_marginable_buying_power": num(self.buying_power()),
                "pattern_day_trader": False,
                "trading_blocked": False,
                "transfers_blocked": False,
                "account_blocked": False,
                "shorting_enabled": False,
                "multiplier": "1",
            }
        if res == ["clock"]:
            i = self.cur + 1
            nxt = self.session(min(i, len(self.dates) - 1))
            return 200, {
                "timestamp": iso(self.now()),
                "is_open": self.is_open,
                "next_open": iso(
                    self.session(i + 1)[0] if self.is_open and i + 1 < len(self.dates) else nxt[0]
                ),
                "next_close": iso(nxt[1]),
            }
        if res == ["calendar"]:
            lo = pd.Timestamp(q.get("start", "1970-01-01")).date()
            hi = pd.Timestamp(q.get("end", "2100-01-01")).date()
            return 200, [
                {"date": str(d), "open": "09:30", "close": "16:00"}
                for d in (pd.Timestamp(x).date() for x in self.dates)
                if lo <= d <= hi
            ]
        if len(res) == 2 and res[0] == "assets":
            s = res[1]
            if s not in self.index:
                return 404, {"code": 40410000, "message": "asset not found"}
            return 200, {
                "id": str(uuid.uuid5(uuid.NAMESPACE_DNS, s)),
                "class": "us_equity",
                "exchange": "NYSE",
                "symbol": s,
                "status": "active",
                "tradable": True,
                "marginable": True,
                "shortable": False,
                "easy_to_borrow": False,
                "fractionable": s not in self.non_fractionable,
            }
        if res == ["orders"] and method == "POST":
            return self.submit(body or {})
        if res == ["orders"] and method == "GET":
            st = q.get("status", "open")
            out = [
                o.json() for o in self.orders.values() if st == "all" or (st == "open") == o.open
            ]
            return 200, out[-int(q.get("limit", 50)) :]
        if res == ["orders:by_client_order_id"]:
            oid = self.by_cid.get(q.get("client_order_id", ""))
            if oid is None:
                return 404, {"code": 40410000, "message": "order not found"}
            return 200, self.orders[oid].json()
        if len(res) == 2 and res[0] == "orders":
            if method == "DELETE":
                return self.cancel(res[1])
            o = self.orders.get(res[1])
            return (200, o.json()) if o else (404, {"code": 40410000, "message": "not found"})
        if res == ["positions"]:
            return 200, [
                {
                    "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, s)),
                    "symbol": s,
                    "exchange": "NYSE",
                    "asset_class": "us_equity",
                    "avg_entry_price": "1",
                    "qty": num(abs(p)),
                    "side": "long" if p >= 0 else "short",
                    "cost_basis": "0",
                    "market_value": num(p * self.price(s)),
                }
                for s, p in self.positions.items()
                if p != 0
            ]
        if res == ["stocks", "bars"]:
            return self._bars(q)
        return 404, {"code": 40410000, "message": f"no route {method} {path}"}

    def _bars(self, q: dict[str, str]) -> tuple[int, Any]:
        self.bars_queries.append(dict(q))
        if q.get("feed") == "sip":
            return 403, {"message": "subscription does not permit querying recent SIP data"}
        syms = [s for s in q.get("symbols", "").split(",") if s]
        last = self.cur + 1 if self.is_open else self.cur  # today's bar while in progress
        lo = pd.Timestamp(q["start"]).tz_convert(NY).date() if q.get("start") else None
        hi = pd.Timestamp(q["end"]).tz_convert(NY).date() if q.get("end") else None
        rows = []
        for s in sorted(syms):
            if s not in self.index:
                continue  # Alpaca answers 200 without the symbols it does not have
            j = self.index[s]
            for i in range(last + 1):
                d = pd.Timestamp(self.dates[i]).date()
                if (lo and d < lo) or (hi and d > hi):
                    continue
                o = float(self.opens[i, j])
                c = o if (self.is_open and i == last) else float(self.closes[i, j])
                t = datetime(d.year, d.month, d.day, tzinfo=NY)
                rows.append(
                    (
                        s,
                        {
                            "t": iso(t),
                            "o": o,
                            "h": max(o, c),
                            "l": min(o, c),
                            "c": c,
                            "v": 1000.0,
                            "n": 1,
                            "vw": (o + c) / 2,
                        },
                    )
                )
        start = int(q.get("page_token") or 0)
        limit = min(int(q.get("limit") or 1000), 10000)
        out: dict[str, list[Any]] = {}
        for s, b in rows[start : start + limit]:
            out.setdefault(s, []).append(b)
        nxt = str(start + limit) if start + limit < len(rows) else None
        return 200, {"bars": out, "next_page_token": nxt}

    # ------------------------------------------------------------------ websockets
    def _daily(self, i: int, final: bool) -> None:
        d = pd.Timestamp(self.dates[i]).date()
        t = msgpack.Timestamp.from_datetime(datetime(d.year, d.month, d.day, tzinfo=NY))
        msgs = []
        for s, j in self.index.items():
            o = float(self.opens[i, j])
            c = float(self.closes[i, j]) if final else o
            msgs.append(
                {
                    "T": "d",
                    "S": s,
                    "o": o,
                    "h": max(o, c),
                    "l": min(o, c),
                    "c": c,
                    "v": 1000.0,
                    "n": 1,
                    "vw": (o + c) / 2,
                    "t": t,
                }
            )
        self._run(self._send_md(msgs))

    async def _send_md(self, msgs: list[dict[str, Any]]) -> None:
        for ws, subs in list(self._md.items()):
            mine = [m for m in msgs if m["S"] in subs]
            if mine:
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(msgpack.packb(mine))

    def _trades(self, events: list[dict[str, Any]]) -> None:
        if events:
            self._run(
                self._send_tu([json.dumps({"stream": "trade_updates", "data": e}) for e in events])
            )

    async def _send_tu(self, frames: list[str]) -> None:
        for ws in list(self._tu):
            for f in frames:
                with contextlib.suppress(ConnectionClosed):
                    await ws.send(f)

    def _run(self, coro: Any) -> None:
        if not self._loop.is_running():
            coro.close()
            return
        asyncio.run_coroutine_threadsafe(coro, self._loop)

    def drop_sockets(self) -> None:
        async def drop() -> None:
            for ws in list(self._md) + list(self._tu):
                with contextlib.suppress(Exception):
                    await ws.close(1011, "dropped")

        self._run(drop())

    async def _ws(self, ws: ServerConnection) -> None:
        path = ws.request.path if ws.request is not None else "/"
        try:
            if path.rstrip("/").endswith("/stream"):
                while True:
                    msg = json.loads(await ws.recv())
                    if msg.get("action") in ("authenticate", "auth"):
                        await ws.send(
                            json.dumps(
                                {
                                    "stream": "authorization",
                                    "data": {"status": "authorized", "action": "authenticate"},
                                }
                            )
                        )
                    elif msg.get("action") == "listen":
                        self._tu.add(ws)
                        await ws.send(
                            json.dumps(
                                {"stream": "listening", "data": {"streams": ["trade_updates"]}}
                            )
                        )
            else:
                await ws.send(msgpack.packb([{"T": "success", "msg": "connected"}]))
                while True:
                    raw = await ws.recv()
                    msg = msgpack.unpackb(raw) if isinstance(raw, bytes) else json.loads(raw)
                    if msg.get("action") == "auth":
                        await ws.send(msgpack.packb([{"T": "success", "msg": "authenticated"}]))
                        self._md.setdefault(ws, set())
                    elif msg.get("action") == "subscribe":
                        subs = self._md.setdefault(ws, set())
                        subs.update(msg.get("dailyBars", []) or [])
                        await ws.send(
                            msgpack.packb(
                                [
                                    {
                                        "T": "subscription",
                                        "trades": [],
                                        "quotes": [],
                                        "bars": [],
                                        "updatedBars": [],
                                        "dailyBars": sorted(subs),
                                        "statuses": [],
                                        "lulds": [],
                                        "corrections": [],
                                        "cancelErrors": [],
                                    }
                                ]
                            )
                        )
        except ConnectionClosed:
            pass
        finally:
            self._md.pop(ws, None)
            self._tu.discard(ws)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> FakeAlpaca:
        if self.hang:  # accept connections, never answer
            self._hang = socket.create_server(("127.0.0.1", 0))
            self.port = self._hang.getsockname()[1]
            self.ws_port = self.port
            return self
        ready = threading.Event()

        def loop() -> None:
            asyncio.set_event_loop(self._loop)

            async def boot() -> None:
                self._wss = await serve(self._ws, "127.0.0.1", 0)
                self.ws_port = next(iter(self._wss.sockets)).getsockname()[1]
                ready.set()

            self._loop.run_until_complete(boot())
            self._loop.run_forever()

        threading.Thread(target=loop, daemon=True).start()
        ready.wait(10)
        srv = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _do(self, method: str) -> None:
                parts = urlsplit(self.path)
                q = {k: v[-1] for k, v in parse_qs(parts.query).items()}
                n = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(n)) if n else None
                status, out = srv.handle(method, parts.path, q, body)
                data = b"" if out is None else json.dumps(out).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._do("GET")

            def do_POST(self) -> None:
                self._do("POST")

            def do_DELETE(self) -> None:
                self._do("DELETE")

            def log_message(self, *a: Any) -> None:
                return

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                return  # a client killed mid-request (the SIGKILL tests)

        self._http = Server(("127.0.0.1", 0), H)
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        threading.Thread(target=self._http.serve_forever, daemon=True).start()
        if self.seconds_per_session > 0:
            threading.Thread(target=self._realtime, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def stop(self) -> None:
        self._stop.set()
        if self.hang:
            self._hang.close()
            return
        self._http.shutdown()
        self._http.server_close()
        self._loop.call_soon_threadsafe(self._loop.stop)

    def __enter__(self) -> FakeAlpaca:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def from_panel(panel: Any, **kw: Any) -> FakeAlpaca:
    """A fake over a :class:`BarPanel`; exogenous series are data-only symbols."""
    ex = np.asarray(panel.exog)
    return FakeAlpaca(
        dates=list(pd.to_datetime(panel.timestamps_ns)),
        symbols=tuple(panel.symbols) + tuple(panel.exog_names),
        opens=np.hstack([np.asarray(panel.open), ex]),
        closes=np.hstack([np.asarray(panel.close), ex]),
        **kw,
    )

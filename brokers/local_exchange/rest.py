"""The REST side of the local exchange: Alpaca's ``/v2`` routes and the ``/_sim/`` controls."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import structlog
from pydantic import ValidationError

from brokers.local_exchange.bars import (
    ADJUSTMENTS,
    MAX_LIMIT,
    TIMEFRAMES,
    BarQueryError,
    MinuteBars,
    decode_token,
    encode_token,
)
from brokers.local_exchange.calendar import Calendar, iso, parse_time
from brokers.local_exchange.matching import OrderError, SimBroker
from brokers.local_exchange.streams import StreamServer, alias_statuses
from brokers.local_exchange.wire import account_json, asset_json, order_json, position_json
from engine.config import first_error
from engine.ground.bars import BarPanel

log = structlog.get_logger(__name__)

SIP_RECENT_NS = 15 * 60 * 1_000_000_000  # free plan: no SIP data from the last 15 minutes


class HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanished mid-request (killed, timed out) is not an error here."""

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        log.exception("exchange.http_error", client=str(client_address))


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: int = 40010000) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class RestServer(StreamServer):
    """REST side of :class:`~brokers.local_exchange.server.LocalExchange` (state set up there)."""

    panel: BarPanel
    broker: SimBroker
    cal: Calendar
    minutes: MinuteBars
    data_symbols: tuple[str, ...]
    submissions: list[tuple[str, int]]
    rest_calls: int
    bar_requests: int  # GET .../bars answered (pages)
    now_ns: int
    cur: int
    emitted: int
    session_closed: bool
    _last_equity: float
    _lock: threading.RLock

    @property
    def bar(self) -> int:
        raise NotImplementedError

    @property
    def done(self) -> bool:
        raise NotImplementedError

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def step(self, to: str | None = None) -> int | None:
        raise NotImplementedError

    def sim_now(self) -> int:
        raise NotImplementedError

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
            return status, alias_statuses(out, self.faults.s.status_alias), {}
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
            "bar_requests": self.bar_requests,
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
                acct = account_json(b, int(self.cal.open_ns[0]), self._last_equity)
                fs = self.faults.s
                acct.update(
                    status=fs.account_status,
                    trading_blocked=fs.trading_blocked,
                    account_blocked=fs.account_blocked,
                    trade_suspended_by_user=fs.trade_suspended_by_user,
                )
                return 200, acct
            if res == ["assets"] and method == "GET":
                return 200, [self._asset(s) for s in self.data_symbols]
            if len(res) == 2 and res[0] == "assets" and method == "GET":
                if res[1] not in self.data_symbols:
                    raise HttpError(404, f"asset not found for {res[1]}", 40410000)
                return 200, self._asset(res[1])
            if res == ["orders"] and method == "POST":
                fs = self.faults.s
                if (
                    fs.trading_blocked
                    or fs.account_blocked
                    or fs.trade_suspended_by_user
                    or fs.account_status != "ACTIVE"
                ):  # message assumed (brokers/README.md)
                    raise HttpError(403, "account is not allowed to trade", 40310000)
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
        limit = min(limit, self.settings.bars_page_limit)
        with self._lock:
            self.bar_requests += 1
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


def handler_for(ex: RestServer) -> type[BaseHTTPRequestHandler]:
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


__all__ = ["HttpError", "HttpServer", "RestServer", "handler_for"]

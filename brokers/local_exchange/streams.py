"""The two websocket streams of the local exchange: msgpack market data and JSON trade updates.

Market data (any path but ``/stream``, e.g. ``/v2/iex``): ``connected`` -> ``auth`` ->
``authenticated`` -> ``subscribe`` (channels below) -> ``subscription`` ack, then ``b``/``d``
bars. Trade updates (``/stream``): ``authenticate`` -> ``authorized``, ``listen`` ->
``listening``, then ``trade_updates`` events. See ``brokers/README.md`` for the sources.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import uuid
from collections.abc import Iterable
from typing import Any

import msgpack
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from brokers.local_exchange.calendar import iso
from brokers.local_exchange.faults import Faults
from brokers.local_exchange.matching import TradeEvent
from brokers.local_exchange.settings import ExchangeSettings
from brokers.local_exchange.wire import num, order_json

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


class StreamServer:
    """Websocket side of :class:`~brokers.local_exchange.server.LocalExchange` (set up there)."""

    settings: ExchangeSettings
    faults: Faults
    _keys: tuple[str | None, str | None]
    _md: dict[ServerConnection, dict[str, set[str]]]
    _tu: set[ServerConnection]
    _loop: asyncio.AbstractEventLoop
    _stop: threading.Event

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
        fs = self.faults.s
        datas = []
        for e in events:
            d = self._event_json(e)
            datas.append(d)
            extra = fs.extra_events.get(e.event)
            if extra:  # e.g. "calculated" after a fill (an event alpaca-py cannot parse)
                datas.append({**d, "event": extra, "execution_id": str(uuid.uuid4())})
        frames = []
        for d in datas:
            alias_statuses(d, fs.status_alias)
            frames.append(json.dumps({"stream": "trade_updates", "data": d}))
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


def alias_statuses(obj: Any, alias: dict[str, str]) -> Any:
    """Report orders' statuses under ``alias`` (a fault: ``{"filled": "calculated"}``)."""
    if not alias:
        return obj
    if isinstance(obj, dict):
        if "client_order_id" in obj and obj.get("status") in alias:
            obj["status"] = alias[obj["status"]]
        for v in obj.values():
            if isinstance(v, dict | list):
                alias_statuses(v, alias)
    elif isinstance(obj, list):
        for v in obj:
            alias_statuses(v, alias)
    return obj


__all__ = ["CHANNELS", "StreamServer", "alias_statuses"]

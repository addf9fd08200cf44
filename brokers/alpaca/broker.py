"""Alpaca's trading API as the engine's :class:`~engine.live.ports.Broker` and
:class:`~engine.live.ports.MarketClock` (alpaca-py ``TradingClient`` and ``TradingStream``).

The paper endpoint is the default; Alpaca's live endpoint needs ``live=True`` *and* a live
URL (:func:`~brokers.alpaca.rest.endpoint_kind`). ``url``/``stream_url`` point the same
clients at the local paper exchange or any Alpaca-compatible server; ``sim_status`` asks such
a server's ``/_sim/status`` whether its replay has ended (never asked of Alpaca).
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Callable
from datetime import date
from typing import Any

import structlog
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import GetCalendarRequest, GetOrdersRequest, MarketOrderRequest
from alpaca.trading.stream import TradingStream

from brokers.alpaca import translate as tr
from brokers.alpaca.rest import (
    Retrying,
    bound_client,
    code_of,
    credentials,
    endpoint_kind,
    message_of,
    refused,
    set_timeout,
    status_of,
    stop_stream,
)
from engine.live.ports import Account, Asset, Clock, Order, Session, TradeUpdate

log = structlog.get_logger(__name__)
DUPLICATE_CODES = frozenset({40010001})  # "client_order_id must be unique"
DEFAULT_URLS = {"live": "https://api.alpaca.markets", "paper": "paper-api.alpaca.markets"}


class AlpacaBroker(Retrying):
    """Orders, positions, account, clock, calendar and assets through ``TradingClient``."""

    def __init__(
        self,
        *,
        live: bool = False,
        url: str | None = None,
        stream_url: str | None = None,
        timeout_s: float = 10.0,
        retries: int = 8,
        retry_budget_s: float = 60.0,
        backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
        sim_status: bool = False,
    ) -> None:
        key, secret = credentials()
        kind = endpoint_kind(url, live)
        super().__init__(
            url or DEFAULT_URLS["live" if live else "paper"],
            timeout_s=timeout_s,
            retries=retries,
            retry_budget_s=retry_budget_s,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
        )
        self.endpoint = kind.upper()
        self.client = bound_client(
            TradingClient(key, secret, paper=not live, url_override=url), timeout_s
        )
        self._stream_args: dict[str, Any] = {
            "api_key": key,
            "secret_key": secret,
            "paper": not live,
            "url_override": stream_url,
        }
        self._sim_status = f"{url}/_sim/status" if sim_status and url else None
        self._stream: TradingStream | None = None
        self._thread: threading.Thread | None = None
        self.unreadable = 0  # trade updates that could not be read (learnt by polling)

    # ------------------------------------------------------------------ account
    def connect(self, budget_s: float) -> Account:
        """The account within ``budget_s`` (quiet retries), then the run's timeouts."""
        timeout = self.timeout_s
        self.timeout_s = min(timeout, budget_s / 3)
        set_timeout(self.client, self.timeout_s)
        self.quiet_retries = True
        try:
            return self.account(budget_s=budget_s)
        finally:
            self.quiet_retries = False
            self.timeout_s = timeout
            set_timeout(self.client, timeout)

    def account(self, budget_s: float | None = None) -> Account:
        return tr.account_of(self.call("get_account", self.client.get_account, budget_s=budget_s))

    def asset(self, symbol: str) -> Asset | None:
        """``/v2/assets/{symbol}``; ``None`` when the broker does not know it."""
        try:
            a = self.call("get_asset", lambda: self.client.get_asset(symbol))
        except APIError as exc:
            if status_of(exc) in (404, 422):
                return None
            raise refused(exc) from None
        return tr.asset_of(symbol, a)

    def positions(self) -> dict[str, float]:
        return tr.positions_of(self.call("get_all_positions", self.client.get_all_positions))

    # ------------------------------------------------------------------ clock
    def clock(self) -> Clock:
        return tr.clock_of(self.call("get_clock", self.client.get_clock))

    def calendar(self, start: date, end: date) -> list[Session]:
        """Trading sessions between ``start`` and ``end`` (inclusive)."""
        req = GetCalendarRequest(start=start, end=end)
        rows = self.call("get_calendar", lambda: self.client.get_calendar(req))
        return [tr.session_of(r) for r in rows]

    def finished(self) -> bool:
        """A local exchange has replayed its last session (``False`` for Alpaca)."""
        if self._sim_status is None:
            return False
        try:
            with urllib.request.urlopen(self._sim_status, timeout=2) as r:
                return bool(json.loads(r.read() or b"{}").get("done"))
        except Exception:
            return False

    # ------------------------------------------------------------------ orders
    def orders(self, status: str = "open", limit: int = 500) -> list[Order]:
        req = GetOrdersRequest(status=QueryOrderStatus(status), limit=limit)
        rows = self.call("get_orders", lambda: self.client.get_orders(req))
        return [tr.order_of(o) for o in rows]

    def open_orders(self) -> list[Order]:
        return self.orders("open")

    def order(self, order_id: str) -> Order:
        return tr.order_of(self.call("get_order", lambda: self.client.get_order_by_id(order_id)))

    def order_by_client_id(self, client_order_id: str) -> Order | None:
        """The order with this client id, or ``None`` if the broker has none."""
        try:
            o = self.call(
                "get_order_by_client_id",
                lambda: self.client.get_order_by_client_id(client_order_id),
            )
        except APIError as exc:
            if status_of(exc) in (404, 422):
                return None
            raise refused(exc) from None
        return tr.order_of(o)

    def submit(self, symbol: str, qty: float, client_order_id: str) -> Order:
        """Submit a day market order for signed ``qty``.

        A duplicate client order id (HTTP 422, e.g. a retried request that had reached the
        broker) returns the existing order; any other refusal is an ``OrderRefused``.
        """
        req = MarketOrderRequest(
            symbol=symbol,
            side=OrderSide.BUY if qty > 0 else OrderSide.SELL,
            time_in_force=TimeInForce.DAY,
            client_order_id=client_order_id,
            qty=abs(qty),
        )
        try:
            return tr.order_of(self.call("submit_order", lambda: self.client.submit_order(req)))
        except APIError as exc:
            if status_of(exc) == 422 and (
                code_of(exc) in DUPLICATE_CODES or "client_order_id" in message_of(exc)
            ):
                existing = self.order_by_client_id(client_order_id)
                if existing is not None:
                    log.info("order.already_at_broker", client_order_id=client_order_id)
                    return existing
            raise refused(exc) from None

    def cancel(self, order_id: str) -> bool:
        """Request a cancel; ``False`` if the order was already closed or unknown."""
        try:
            self.call("cancel_order", lambda: self.client.cancel_order_by_id(order_id))
            return True
        except APIError as exc:
            if status_of(exc) in (404, 422):
                return False
            raise refused(exc) from None

    # ------------------------------------------------------------------ trade updates
    def stream_trade_updates(self, handler: Callable[[TradeUpdate], None]) -> None:
        """Run the trade-updates stream in a daemon thread, calling ``handler``."""

        async def on_update(msg: Any) -> None:
            # raw: alpaca-py's TradeUpdate model fails on events its enum lacks (done_for_day,
            # calculated, stopped, suspended, order_*_rejected) and the stream then drops the
            # connection; parsed here instead (notes/alpaca-protocol.md, "More facts")
            try:
                u = tr.update_of_raw(msg.get("data") or {})
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("broker.trade_update_unreadable", error=str(exc)[:200])
                self.unreadable += 1
                return
            if u.event.value == "other":
                log.info("broker.trade_update_other", event=str(msg["data"].get("event")))
            handler(u)

        stream = TradingStream(**self._stream_args, raw_data=True)
        stream._reconnect_min_backoff = 0.1  # first reconnect quickly after a drop
        stream._reconnect_max_backoff = 5.0
        stream.subscribe_trade_updates(on_update)
        self._stream = stream
        self._thread = threading.Thread(target=self._run_stream, name="trade-updates", daemon=True)
        self._thread.start()

    def _run_stream(self) -> None:
        assert self._stream is not None
        try:
            self._stream.run()
        except Exception as exc:  # the loop polls as a fallback; never a thread traceback
            log.warning("broker.trade_stream_stopped", error=str(exc)[:200])

    def close(self) -> None:
        """Stop the trade-updates stream."""
        stop_stream(self._stream, self._thread)


__all__ = ["AlpacaBroker"]

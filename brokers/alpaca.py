"""Alpaca broker adapter on alpaca-py, unchanged.

Credentials come only from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` (never logged or
written). The paper endpoint is the default; the live endpoint needs ``live=True``.
``url``/``stream_url`` point the same clients at the local paper exchange.

REST calls are retried with exponential backoff on HTTP 429/5xx and connection errors
(alpaca-py's own fixed 3 s retry is switched off so ours is the only one). The
trade-updates stream runs in a thread; alpaca-py reconnects and re-listens after a drop,
and this adapter shortens its first reconnect delay.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import requests
import structlog
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Order, Position, TradeAccount, TradeUpdate
from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, MarketOrderRequest
from alpaca.trading.stream import TradingStream

log = structlog.get_logger(__name__)

KEY_ENV = "APCA_API_KEY_ID"
SECRET_ENV = "APCA_API_SECRET_KEY"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
DUPLICATE_CODE = 40010001


class BrokerError(RuntimeError):
    """A broker problem that ends the run with one clear line (missing keys, ...)."""


def credentials() -> tuple[str, str]:
    """The API key pair from the environment; a one-line error naming what is missing."""
    key, secret = os.environ.get(KEY_ENV, ""), os.environ.get(SECRET_ENV, "")
    missing = [n for n, v in ((KEY_ENV, key), (SECRET_ENV, secret)) if not v]
    if missing:
        raise BrokerError(
            f"missing Alpaca credentials: set {' and '.join(missing)} in the environment"
        )
    return key, secret


def status_of(exc: APIError) -> int | None:
    try:
        return int(exc.status_code)
    except (AttributeError, TypeError, ValueError):
        return None


def code_of(exc: APIError) -> int | None:
    try:
        return int(exc.code)
    except (AttributeError, TypeError, ValueError):
        return None


class AlpacaBroker:
    """Orders, positions, account and clock through alpaca-py's :class:`TradingClient`."""

    def __init__(
        self,
        *,
        live: bool = False,
        url: str | None = None,
        stream_url: str | None = None,
        retries: int = 6,
        backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
    ) -> None:
        key, secret = credentials()
        self.live = live
        self.client = TradingClient(key, secret, paper=not live, url_override=url)
        self.client._retry_codes = []  # our backoff replaces alpaca-py's fixed 3 s retry
        self._stream_args: dict[str, Any] = {
            "api_key": key,
            "secret_key": secret,
            "paper": not live,
            "url_override": stream_url,
        }
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self._stream: TradingStream | None = None
        self._thread: threading.Thread | None = None
        log.info("broker.alpaca", endpoint="live" if live else "paper", url=url or "default")

    # ------------------------------------------------------------------ retries
    def call(self, what: str, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` retrying 429/5xx and connection errors with exponential backoff."""
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except APIError as exc:
                status = status_of(exc)
                if status not in RETRY_STATUS or attempt == self.retries:
                    raise
                err = f"HTTP {status}"
            except requests.RequestException as exc:
                if attempt == self.retries:
                    raise
                err = type(exc).__name__
            delay = min(self.max_backoff_s, self.backoff_s * 2**attempt)
            delay *= 0.5 + random.random() / 2
            log.warning(
                "broker.retry", call=what, error=err, attempt=attempt + 1, delay_s=round(delay, 3)
            )
            time.sleep(delay)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ queries
    def account(self) -> TradeAccount:
        return self.call("get_account", self.client.get_account)  # type: ignore[return-value]

    def clock(self) -> Any:
        return self.call("get_clock", self.client.get_clock)

    def positions(self) -> dict[str, float]:
        """Held quantity by symbol (signed)."""
        rows: list[Position] = self.call("get_all_positions", self.client.get_all_positions)  # type: ignore[assignment]
        return {
            p.symbol: float(p.qty)
            * (-1.0 if str(p.side).endswith("short") and float(p.qty) > 0 else 1.0)
            for p in rows
        }

    def orders(self, status: str = "open", limit: int = 500) -> list[Order]:
        req = GetOrdersRequest(status=QueryOrderStatus(status), limit=limit)
        return self.call("get_orders", lambda: self.client.get_orders(req))  # type: ignore[return-value]

    def order_by_client_id(self, client_order_id: str) -> Order | None:
        """The order with this client id, or ``None`` if the broker has none."""
        try:
            return self.call(  # type: ignore[return-value]
                "get_order_by_client_id",
                lambda: self.client.get_order_by_client_id(client_order_id),
            )
        except APIError as exc:
            if status_of(exc) == 404:
                return None
            raise

    # ------------------------------------------------------------------ orders
    def submit(
        self,
        symbol: str,
        qty: float,
        client_order_id: str,
        *,
        limit_price: float | None = None,
        notional: float | None = None,
    ) -> Order:
        """Submit a market (or limit) order for signed ``qty`` (or ``notional``).

        A duplicate client order id (HTTP 422, the order is already there, e.g. after a
        retried request) returns the existing order instead of failing.
        """
        side = OrderSide.BUY if (notional if notional is not None else qty) > 0 else OrderSide.SELL
        amount: dict[str, float] = (
            {"notional": abs(notional)} if notional is not None else {"qty": abs(qty)}
        )
        req: MarketOrderRequest | LimitOrderRequest
        if limit_price is not None:
            req = LimitOrderRequest(
                symbol=symbol,
                side=side,
                time_in_force=TimeInForce.DAY,
                client_order_id=client_order_id,
                limit_price=limit_price,
                **amount,
            )
        else:
            req = MarketOrderRequest(
                symbol=symbol,
                side=side,
                time_in_force=TimeInForce.DAY,
                client_order_id=client_order_id,
                **amount,
            )
        try:
            return self.call("submit_order", lambda: self.client.submit_order(req))  # type: ignore[return-value]
        except APIError as exc:
            if status_of(exc) == 422 and code_of(exc) == DUPLICATE_CODE:
                existing = self.order_by_client_id(client_order_id)
                if existing is not None:
                    log.info("order.already_at_broker", client_order_id=client_order_id)
                    return existing
            raise

    def cancel(self, order_id: str) -> bool:
        """Cancel an order; ``False`` if it was already closed or unknown."""
        try:
            self.call("cancel_order", lambda: self.client.cancel_order_by_id(order_id))
            return True
        except APIError as exc:
            if status_of(exc) in (404, 422):
                return False
            raise

    # ------------------------------------------------------------------ trade updates
    def stream_trade_updates(self, handler: Callable[[TradeUpdate], Awaitable[None]]) -> None:
        """Run the trade-updates stream in a daemon thread, calling ``handler``."""
        stream = TradingStream(**self._stream_args)
        stream._reconnect_min_backoff = 0.1  # first reconnect quickly after a drop
        stream._reconnect_max_backoff = 5.0
        stream.subscribe_trade_updates(handler)
        self._stream = stream
        self._thread = threading.Thread(target=stream.run, name="trade-updates", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the trade-updates stream."""
        if self._stream is not None and self._stream._loop is not None:
            try:
                self._stream.stop()
            except Exception:  # best effort at shutdown
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)


__all__ = ["AlpacaBroker", "BrokerError", "credentials"]

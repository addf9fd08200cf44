"""Alpaca broker adapter on alpaca-py (the library unchanged, its HTTP session bounded).

Credentials come only from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` (never logged or
written). The paper endpoint is the default; Alpaca's live endpoint needs ``live=True``
*and* a live URL (:func:`endpoint_kind`). ``url``/``stream_url`` point the same clients at
the local paper exchange or any Alpaca-compatible server.

Every HTTP call has a timeout: alpaca-py's ``RESTClient`` sends through a
``requests.Session`` without one, so :class:`TimeoutSession` (a ``Session`` whose
``request`` fills in ``timeout``) replaces it. REST calls are retried with exponential
backoff on HTTP 429/5xx, connection errors and timeouts, up to ``retries`` attempts and
``retry_budget_s`` seconds (alpaca-py's own fixed 3 s retry is switched off); a retried
``submit_order`` sends the same request, hence the same ``client_order_id``. When the
budget is spent :class:`BrokerUnavailable` is raised (the caller decides: exit or wait).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests
import structlog
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Order, Position, TradeUpdate
from alpaca.trading.requests import (
    GetCalendarRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
)
from alpaca.trading.stream import TradingStream

log = structlog.get_logger(__name__)

KEY_ENV = "APCA_API_KEY_ID"
SECRET_ENV = "APCA_API_SECRET_KEY"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
DUPLICATE_CODES = frozenset({40010001})  # "client_order_id must be unique"
WASH_TRADE_CODES = frozenset({42210000, 40310000})
LIVE_HOSTS = frozenset({"api.alpaca.markets"})
PAPER_HOSTS = frozenset({"paper-api.alpaca.markets"})
NY = ZoneInfo("America/New_York")


class BrokerError(RuntimeError):
    """A broker problem that ends the run with one clear line (missing keys, ...)."""


class BrokerUnavailable(BrokerError):
    """The broker did not answer (connection refused, timeout, 5xx) within the budget."""


def credentials() -> tuple[str, str]:
    """The API key pair from the environment; a one-line error naming what is missing."""
    key, secret = os.environ.get(KEY_ENV, ""), os.environ.get(SECRET_ENV, "")
    missing = [n for n, v in ((KEY_ENV, key), (SECRET_ENV, secret)) if not v]
    if missing:
        raise BrokerError(
            f"missing Alpaca credentials: set {' and '.join(missing)} in the environment"
        )
    return key, secret


def endpoint_kind(url: str | None, live: bool) -> str:
    """``"live"``, ``"paper"`` or ``"custom"`` for a REST base URL (None: Alpaca's default).

    Live trading needs both ``live=True`` and Alpaca's live host; either alone is refused
    with :class:`BrokerError` so that a URL typo can never trade real money silently.
    """
    host = urlsplit(url).hostname if url else None
    if host is None:
        kind = "live" if live else "paper"
    elif host in LIVE_HOSTS:
        kind = "live"
    elif host in PAPER_HOSTS:
        kind = "paper"
    else:
        kind = "custom"
    if kind == "live" and not live:
        raise BrokerError(f"{url} is Alpaca's LIVE endpoint: pass --live to trade real money")
    if live and (url is None or kind != "live"):
        raise BrokerError(
            '--live needs paper.url = "https://api.alpaca.markets" (Alpaca\'s live endpoint)'
        )
    return kind


class TimeoutSession(requests.Session):
    """A ``requests.Session`` that applies ``timeout`` to every request without one."""

    def __init__(self, timeout: float | tuple[float, float]) -> None:
        super().__init__()
        self.timeout = timeout

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        return super().request(method, url, *args, **kwargs)


def bound_client(client: Any, timeout_s: float) -> Any:
    """Give an alpaca-py REST client a session with timeouts and no built-in retry."""
    client._session = TimeoutSession((min(timeout_s, 5.0), timeout_s))
    client._retry_codes = []  # our backoff replaces alpaca-py's fixed 3 s retry
    return client


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


def message_of(exc: APIError) -> str:
    try:
        return str(exc.message)
    except Exception:  # alpaca-py parses the body lazily; a non-JSON body has no message
        return str(exc)[:200]


@dataclass(frozen=True)
class Account:
    """The account fields the loop needs (Alpaca sends them as strings)."""

    account_number: str
    status: str
    cash: float
    buying_power: float
    equity: float


@dataclass(frozen=True)
class Session:
    """One trading session of the calendar, open/close as aware datetimes (New York)."""

    date: date
    open: datetime
    close: datetime


@dataclass(frozen=True)
class AssetInfo:
    symbol: str
    tradable: bool
    fractionable: bool


class AlpacaBroker:
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
    ) -> None:
        key, secret = credentials()
        self.kind = endpoint_kind(url, live)
        self.live = live
        self.url = url
        self.client = bound_client(
            TradingClient(key, secret, paper=not live, url_override=url), timeout_s
        )
        self._stream_args: dict[str, Any] = {
            "api_key": key,
            "secret_key": secret,
            "paper": not live,
            "url_override": stream_url,
        }
        self.timeout_s = timeout_s
        self.retries = retries
        self.retry_budget_s = retry_budget_s
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.retried = 0
        self.quiet_retries = False  # at start: the one-line error says it all
        self._stream: TradingStream | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ retries
    def call(self, what: str, fn: Callable[[], Any], *, budget_s: float | None = None) -> Any:
        """Run ``fn`` retrying 429/5xx, connection errors and timeouts with backoff.

        Gives up with :class:`BrokerUnavailable` after ``retries`` retries or when the
        next wait would pass ``budget_s`` (default ``retry_budget_s``); other HTTP errors
        (4xx) are raised as the ``APIError`` they are.
        """
        budget = self.retry_budget_s if budget_s is None else budget_s
        budget = max(budget, self.timeout_s)  # at least one whole attempt
        t0 = time.monotonic()
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except APIError as exc:
                status = status_of(exc)
                if status not in RETRY_STATUS:
                    raise
                err = f"HTTP {status}"
            except requests.RequestException as exc:
                err = type(exc).__name__
            delay = min(self.max_backoff_s, self.backoff_s * 2**attempt)
            delay *= 0.5 + random.random() / 2
            # give up when another wait + a whole (timed-out) attempt would pass the budget
            if attempt == self.retries or time.monotonic() - t0 + delay + self.timeout_s > budget:
                raise BrokerUnavailable(
                    f"broker {self.url or 'alpaca'} unavailable: {what} failed "
                    f"{attempt + 1} times ({err})"
                )
            self.retried += 1
            (log.info if self.quiet_retries else log.warning)(
                "broker.retry", call=what, error=err, attempt=attempt + 1, delay_s=round(delay, 3)
            )
            time.sleep(delay)
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ queries
    def account(self, *, budget_s: float | None = None) -> Account:
        a = self.call("get_account", self.client.get_account, budget_s=budget_s)
        return Account(
            account_number=str(a.account_number),
            status=str(getattr(a.status, "value", a.status)),
            cash=float(a.cash or 0.0),
            buying_power=float(a.buying_power or 0.0),
            equity=float(a.equity or 0.0),
        )

    def clock(self) -> Any:
        """Alpaca's clock (``timestamp``, ``is_open``, ``next_open``, ``next_close``)."""
        return self.call("get_clock", self.client.get_clock)

    def calendar(self, start: date, end: date) -> list[Session]:
        """Trading sessions between ``start`` and ``end`` (inclusive)."""
        req = GetCalendarRequest(start=start, end=end)
        rows = self.call("get_calendar", lambda: self.client.get_calendar(req))
        return [
            Session(r.date, r.open.replace(tzinfo=NY), r.close.replace(tzinfo=NY)) for r in rows
        ]

    def asset(self, symbol: str) -> AssetInfo | None:
        """``/v2/assets/{symbol}``; ``None`` when the broker does not know it."""
        try:
            a = self.call("get_asset", lambda: self.client.get_asset(symbol))
        except APIError as exc:
            if status_of(exc) in (404, 422):
                return None
            raise
        return AssetInfo(symbol, bool(a.tradable), bool(a.fractionable))

    def positions(self) -> dict[str, float]:
        """Held quantity by symbol (negative for a short position)."""
        rows: list[Position] = self.call("get_all_positions", self.client.get_all_positions)
        out = {}
        for p in rows:
            q = float(p.qty)
            side = str(getattr(p.side, "value", p.side))
            out[p.symbol] = -abs(q) if side == "short" else q
        return out

    def orders(self, status: str = "open", limit: int = 500) -> list[Order]:
        req = GetOrdersRequest(status=QueryOrderStatus(status), limit=limit)
        return self.call("get_orders", lambda: self.client.get_orders(req))  # type: ignore[no-any-return]

    def order(self, order_id: str) -> Order:
        return self.call("get_order", lambda: self.client.get_order_by_id(order_id))  # type: ignore[no-any-return]

    def order_by_client_id(self, client_order_id: str) -> Order | None:
        """The order with this client id, or ``None`` if the broker has none."""
        try:
            return self.call(  # type: ignore[no-any-return]
                "get_order_by_client_id",
                lambda: self.client.get_order_by_client_id(client_order_id),
            )
        except APIError as exc:
            if status_of(exc) in (404, 422):
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
    ) -> Order:
        """Submit a day market (or limit) order for signed ``qty``.

        A duplicate client order id (HTTP 422, e.g. a retried request that had reached
        the broker) returns the existing order instead of failing.
        """
        side = OrderSide.BUY if qty > 0 else OrderSide.SELL
        req: MarketOrderRequest | LimitOrderRequest
        common: dict[str, Any] = {
            "symbol": symbol,
            "side": side,
            "time_in_force": TimeInForce.DAY,
            "client_order_id": client_order_id,
            "qty": abs(qty),
        }
        if limit_price is not None:
            req = LimitOrderRequest(limit_price=limit_price, **common)
        else:
            req = MarketOrderRequest(**common)
        try:
            return self.call("submit_order", lambda: self.client.submit_order(req))  # type: ignore[no-any-return]
        except APIError as exc:
            if status_of(exc) == 422 and (
                code_of(exc) in DUPLICATE_CODES or "client_order_id" in message_of(exc)
            ):
                existing = self.order_by_client_id(client_order_id)
                if existing is not None:
                    log.info("order.already_at_broker", client_order_id=client_order_id)
                    return existing
            raise

    def cancel(self, order_id: str) -> bool:
        """Request a cancel; ``False`` if the order was already closed or unknown."""
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
        if self._stream is not None and self._stream._loop is not None:
            try:
                self._stream.stop()
            except Exception:  # best effort at shutdown
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)


__all__ = [
    "Account",
    "AlpacaBroker",
    "AssetInfo",
    "BrokerError",
    "BrokerUnavailable",
    "Session",
    "bound_client",
    "credentials",
    "endpoint_kind",
]

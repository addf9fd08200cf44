"""alpaca-py's REST clients, bounded: credentials, the live guard, timeouts, retries.

Credentials come only from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` (never logged or
written). Every HTTP call has a timeout: alpaca-py's ``RESTClient`` sends through a
``requests.Session`` without one, so :class:`TimeoutSession` (a ``Session`` whose ``request``
fills in ``timeout``) replaces it. Calls are retried with exponential back-off on HTTP
429/5xx, connection errors and timeouts, up to ``retries`` attempts and ``retry_budget_s``
seconds (alpaca-py's own fixed 3 s retry is switched off); a retried ``submit_order`` sends
the same request, hence the same ``client_order_id``. When the budget is spent
:class:`~engine.live.ports.BrokerUnavailable` is raised (the loop decides: exit or wait).

Rate limits (docs "Rate limit": ``X-RateLimit-Limit``, ``-Remaining``, ``-Reset`` as a Unix
time; ``Retry-After``, RFC 9110, in seconds or as an HTTP date, where a 429 carries one;
notes/alpaca-protocol.md): the session reads them on every response. After a 429 no request
is sent before ``Retry-After`` (or, without it, before ``X-RateLimit-Reset``); after a
response saying ``X-RateLimit-Remaining: 0`` none before ``X-RateLimit-Reset``. alpaca-py's
own retry reads neither (``common/rest.py``: 3 tries, 3 s apart).
"""

from __future__ import annotations

import email.utils
import os
import random
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests
import structlog
from alpaca.common.exceptions import APIError

from engine.live.ports import BrokerError, BrokerUnavailable, OrderRefused

log = structlog.get_logger(__name__)

KEY_ENV = "APCA_API_KEY_ID"
SECRET_ENV = "APCA_API_SECRET_KEY"
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
LIVE_HOSTS = frozenset({"api.alpaca.markets"})
PAPER_HOSTS = frozenset({"paper-api.alpaca.markets"})


def stop_stream(stream: Any, thread: Any) -> None:
    """Stop an alpaca-py websocket stream (if it started) and join its thread: best effort,
    at shutdown."""
    if stream is not None and stream._loop is not None:
        try:
            stream.stop()
        except Exception:  # best effort at shutdown
            pass
    if thread is not None:
        thread.join(timeout=5)


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


MAX_SERVER_WAIT_S = 120.0  # a rate-limit wait asked by the server is honoured up to this


def server_wait_s(headers: Any, status: int, now: float | None = None) -> float:
    """Seconds the server asks the client to wait before its next request (0: none).

    A 429's ``Retry-After`` (delta seconds or an HTTP date), else its ``X-RateLimit-Reset``;
    any response's ``X-RateLimit-Remaining: 0`` with ``X-RateLimit-Reset`` (Unix seconds).
    """
    if headers is None:
        return 0.0
    now = time.time() if now is None else now
    wait = 0.0
    reset = _float(headers.get("X-RateLimit-Reset"))
    remaining = _float(headers.get("X-RateLimit-Remaining"))
    if status == 429:
        ra = headers.get("Retry-After")
        if ra is not None:
            secs = _float(ra)
            if secs is None:
                try:
                    when = email.utils.parsedate_to_datetime(str(ra))
                    secs = when.timestamp() - now
                except (TypeError, ValueError, IndexError):
                    secs = None
            wait = max(wait, secs or 0.0)
        elif reset is not None:
            wait = max(wait, reset - now)
    if remaining is not None and remaining <= 0 and reset is not None:
        wait = max(wait, reset - now)
    return min(max(wait, 0.0), MAX_SERVER_WAIT_S)


def _float(x: Any) -> float | None:
    try:
        return None if x is None else float(x)
    except (TypeError, ValueError):
        return None


class TimeoutSession(requests.Session):
    """A ``requests.Session`` that applies ``timeout`` to every request without one and
    honours the server's rate-limit headers: no request before :attr:`not_before`."""

    def __init__(self, timeout: float | tuple[float, float]) -> None:
        super().__init__()
        self.timeout = timeout
        self.not_before = 0.0  # time.monotonic() before which nothing is sent
        self.waited_s = 0.0  # total time spent honouring rate-limit headers
        self._lock = threading.Lock()

    def request(self, method: str, url: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        self.hold()
        response = super().request(method, url, *args, **kwargs)
        self.observe(response.headers, response.status_code)
        return response

    def observe(self, headers: Any, status: int) -> float:
        """Note what the server asks of the next request; returns the wait in seconds."""
        wait = server_wait_s(headers, status)
        if wait > 0:
            with self._lock:
                self.not_before = max(self.not_before, time.monotonic() + wait)
            log.info("broker.rate_limit_wait", status=status, wait_s=round(wait, 3))
        return wait

    def remaining_wait(self) -> float:
        return max(self.not_before - time.monotonic(), 0.0)

    def hold(self) -> None:
        wait = self.remaining_wait()
        if wait > 0:
            self.waited_s += wait
            time.sleep(wait)


def bound_client(client: Any, timeout_s: float) -> Any:
    """Give an alpaca-py REST client a session with timeouts and no built-in retry."""
    client._session = TimeoutSession((min(timeout_s, 5.0), timeout_s))
    client._retry_codes = []  # our back-off replaces alpaca-py's fixed 3 s retry
    return client


def set_timeout(client: Any, timeout_s: float) -> None:
    """Change the timeouts of a client given by :func:`bound_client`."""
    client._session.timeout = (min(timeout_s, 5.0), timeout_s)


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


def refused(exc: APIError) -> OrderRefused:
    """An ``APIError`` (a 4xx) as the engine's :class:`OrderRefused`."""
    return OrderRefused(message_of(exc), status_of(exc), code_of(exc))


class Retrying:
    """Runs REST calls with back-off; counts the retries (:attr:`retried`)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        retries: int = 8,
        retry_budget_s: float = 60.0,
        backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
    ) -> None:
        self.url, self.timeout_s, self.retries = url, timeout_s, retries
        self.retry_budget_s, self.backoff_s, self.max_backoff_s = (
            retry_budget_s,
            backoff_s,
            max_backoff_s,
        )
        self.retried = 0
        self.quiet_retries = False  # at start: the one-line error says it all

    def call(self, what: str, fn: Callable[[], Any], *, budget_s: float | None = None) -> Any:
        """Run ``fn`` retrying 429/5xx, connection errors and timeouts with back-off.

        Gives up with :class:`BrokerUnavailable` after ``retries`` retries or when the next
        wait would pass ``budget_s`` (default ``retry_budget_s``); other HTTP errors (4xx)
        are raised as the ``APIError`` they are (the caller translates them).
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
                asked = server_wait_s(getattr(exc.response, "headers", None), status or 0)
            except requests.RequestException as exc:
                err = type(exc).__name__
                asked = 0.0
            delay = min(self.max_backoff_s, self.backoff_s * 2**attempt)
            delay *= 0.5 + random.random() / 2
            if asked > 0:  # wait at least what the server asks (Retry-After / reset)
                delay = max(delay, asked)
                err += f", server asks {asked:.1f} s"
            # give up when another wait + a whole (timed-out) attempt would pass the budget
            if attempt == self.retries or time.monotonic() - t0 + delay + self.timeout_s > budget:
                raise BrokerUnavailable(
                    f"broker {self.url} unavailable: {what} failed {attempt + 1} times ({err})"
                )
            self.retried += 1
            (log.info if self.quiet_retries else log.warning)(
                "broker.retry", call=what, error=err, attempt=attempt + 1, delay_s=round(delay, 3)
            )
            time.sleep(delay)
        raise AssertionError("unreachable")


__all__ = [
    "Retrying",
    "TimeoutSession",
    "bound_client",
    "code_of",
    "credentials",
    "endpoint_kind",
    "message_of",
    "refused",
    "server_wait_s",
    "set_timeout",
    "status_of",
]

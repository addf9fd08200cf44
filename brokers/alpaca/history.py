"""Alpaca's historical bars for backtests (``[data] source = "alpaca"``), through alpaca-py.

:class:`AlpacaHistory` asks ``GET /v2/stocks/bars`` (``StockHistoricalDataClient``, raw
data, ``url_override`` for the local exchange or any Alpaca-compatible server) for some
symbols over whole days and returns a long table (``timestamp, symbol, open, high, low,
close, volume``). alpaca-py follows ``next_page_token`` itself (pages of up to 10,000 bars
across symbols, ``common/rest.py::_get_marketdata``); each page is one call of the client's
``get``, which is wrapped here to count the pages and to retry a page (429/5xx, connection
errors; ``Retry-After`` and ``X-RateLimit-*`` honoured by :class:`~brokers.alpaca.rest.
TimeoutSession`) without starting the paging again.

Keys come from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` only and are never logged. A
refusal (e.g. ``feed = "sip"`` on a free plan: 403 "subscription does not permit querying
recent SIP data") or an unreachable server is one :class:`~engine.ground.bars.DataError`
line. Daily and longer bars are stamped with their session date (New York), as the paper
loop does (:func:`brokers.alpaca.bars.session_date`); intraday bars with their New York
wall-clock time.

The Parquet cache and the incremental fetches are not here (``data_feeds.broker_cache``):
this module only talks to the venue, and the composition root reaches it through
``brokers.history`` (the registry of history sources, by name).
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd
import requests
import structlog
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

from brokers.alpaca.bars import session_date
from brokers.alpaca.rest import Retrying, bound_client, credentials, message_of, status_of
from engine.ground.bars import DataError
from engine.live.ports import BrokerError, BrokerUnavailable

log = structlog.get_logger(__name__)
NY = ZoneInfo("America/New_York")
DATA_URL = "https://data.alpaca.markets"
_TF = re.compile(r"^(\d+)(Min|T|Hour|H|Day|D|Week|W|Month|M)$")
_UNITS = {
    "Min": TimeFrameUnit.Minute,
    "T": TimeFrameUnit.Minute,
    "Hour": TimeFrameUnit.Hour,
    "H": TimeFrameUnit.Hour,
    "Day": TimeFrameUnit.Day,
    "D": TimeFrameUnit.Day,
    "Week": TimeFrameUnit.Week,
    "W": TimeFrameUnit.Week,
    "Month": TimeFrameUnit.Month,
    "M": TimeFrameUnit.Month,
}
COLUMNS = ["timestamp", "symbol", "open", "high", "low", "close", "volume"]


def timeframe(text: str) -> TimeFrame:
    """``"1Day"``, ``"15Min"``, ``"1Hour"``, ``"1Week"``, ``"1Month"`` as alpaca-py's
    ``TimeFrame``; anything else a :class:`DataError`."""
    m = _TF.match(text.strip())
    if not m:
        raise DataError(f"data.timeframe: {text!r} is not an Alpaca timeframe (e.g. 1Day, 1Hour)")
    try:
        return TimeFrame(int(m.group(1)), _UNITS[m.group(2)])
    except ValueError as exc:
        raise DataError(f"data.timeframe: {text!r}: {exc}") from None


class AlpacaHistory:
    """Historical bars of one feed, adjustment and timeframe from Alpaca (or ``url``)."""

    def __init__(
        self,
        *,
        feed: str = "iex",
        adjustment: str = "all",
        timeframe_: str = "1Day",
        url: str | None = None,
        timeout_s: float = 30.0,
        retry_budget_s: float = 60.0,
    ) -> None:
        try:
            key, secret = credentials()
        except BrokerError as exc:
            raise DataError(f"data.source = 'alpaca': {exc}") from None
        self.feed, self.adjustment, self.timeframe = feed, adjustment, timeframe_
        self._tf = timeframe(timeframe_)
        self.daily = self._tf.unit_value in (
            TimeFrameUnit.Day,
            TimeFrameUnit.Week,
            TimeFrameUnit.Month,
        )
        self.url = url or DATA_URL
        self.pages = 0  # REST pages fetched (each one GET /v2/stocks/bars)
        client = StockHistoricalDataClient(key, secret, raw_data=True, url_override=url)
        self._client = bound_client(client, timeout_s)
        self._retry = Retrying(self.url, timeout_s=timeout_s, retry_budget_s=retry_budget_s)
        get = client.get

        def paged_get(path: str, data: Any = None, **kw: Any) -> Any:
            self.pages += 1
            return self._retry.call("historical bars", lambda: get(path, data, **kw))

        client.get = paged_get  # type: ignore[method-assign]

    def describe(self) -> str:
        return f"feed={self.feed}, adjustment={self.adjustment}, timeframe={self.timeframe}"

    def fetch(self, symbols: list[str], start: date, end: date) -> pd.DataFrame:
        """Every bar of ``symbols`` from ``start`` to ``end`` (whole New York days), as a
        long table sorted by symbol then time (empty when the server has none)."""
        req = StockBarsRequest(
            symbol_or_symbols=list(symbols),
            timeframe=self._tf,
            start=datetime.combine(start, datetime.min.time(), tzinfo=NY),
            end=datetime.combine(end, datetime.max.time().replace(microsecond=0), tzinfo=NY),
            feed=DataFeed(self.feed),
            adjustment=Adjustment(self.adjustment),
        )
        before = self.pages
        try:
            raw = self._client.get_stock_bars(req)
        except APIError as exc:
            msg = message_of(exc)
            hint = ' (a free plan serves feed = "iex")' if "SIP" in msg or "sip" in msg else ""
            raise DataError(
                f"alpaca history ({self.describe()}) refused by {self.url}: "
                f"HTTP {status_of(exc)}: {msg}{hint}"
            ) from None
        except BrokerUnavailable as exc:
            raise DataError(f"alpaca history ({self.describe()}): {exc}") from None
        except requests.RequestException as exc:
            raise DataError(
                f"alpaca history: cannot reach {self.url} ({type(exc).__name__})"
            ) from None
        rows: list[tuple[Any, ...]] = []
        for sym, bars in (raw or {}).items():
            for b in bars or ():
                rows.append(
                    (
                        b["t"],
                        sym,
                        float(b["o"]),
                        float(b["h"]),
                        float(b["l"]),
                        float(b["c"]),
                        float(b.get("v") or 0.0),
                    )
                )
        df = pd.DataFrame(rows, columns=COLUMNS)
        if self.daily:
            df["timestamp"] = pd.to_datetime([session_date(t) for t in df["timestamp"]])
        else:
            ts = pd.to_datetime(df["timestamp"], utc=True)
            df["timestamp"] = ts.dt.tz_convert(NY).dt.tz_localize(None)
        df["timestamp"] = df["timestamp"].astype("datetime64[ns]")
        df = df.sort_values(["symbol", "timestamp"], kind="stable").drop_duplicates(
            ["symbol", "timestamp"], keep="last"
        )
        log.info(
            "alpaca.history",
            symbols=len(symbols),
            start=str(start),
            end=str(end),
            pages=self.pages - before,
            bars=len(df),
        )
        return df.reset_index(drop=True)


__all__ = ["COLUMNS", "DATA_URL", "AlpacaHistory", "timeframe"]

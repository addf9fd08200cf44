"""Shared set-up: a small stepped exchange and alpaca-py clients pointed at it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alpaca.data.live.stock import StockDataStream
from alpaca.trading.client import TradingClient
from alpaca.trading.stream import TradingStream

import data_feeds
from brokers.local_exchange import LocalExchange, build_exchange
from brokers.local_exchange.settings import ExchangeSettings
from engine.config import RunConfig
from engine.ground.bars import BarPanel

KEY, SECRET = "test-key", "test-secret"
HISTORY = 5


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.01)
    return False


@pytest.fixture(scope="session")
def panel() -> BarPanel:
    return data_feeds.load_bundled(["SPX", "UST10"], "2005-01-01", "2005-03-01", panel="classic")


@pytest.fixture()
def make_exchange(panel: BarPanel) -> Iterator[Callable[..., LocalExchange]]:
    made: list[LocalExchange] = []

    def make(**kw: Any) -> LocalExchange:
        base: dict[str, Any] = {"port": 0, "ws_port": 0, "mode": "stepped", "history_bars": HISTORY}
        ex = build_exchange(RunConfig(), panel, ExchangeSettings.model_validate({**base, **kw}))
        made.append(ex.start())
        return ex

    yield make
    for ex in made:
        ex.stop()


@pytest.fixture()
def exchange(make_exchange: Callable[..., LocalExchange]) -> LocalExchange:
    return make_exchange()


@pytest.fixture()
def tc(exchange: LocalExchange) -> TradingClient:
    return TradingClient(KEY, SECRET, paper=True, url_override=exchange.url)


class Streams:
    """alpaca-py's two streams on background threads, collecting what they receive."""

    def __init__(self, ex: LocalExchange) -> None:
        self.ex = ex
        self.bars: list[Any] = []
        self.daily: list[Any] = []
        self.updates: list[Any] = []
        self.md: StockDataStream | None = None
        self.tu: TradingStream | None = None

    def market(self, *symbols: str, feed: str = "iex") -> StockDataStream:
        ds = StockDataStream(KEY, SECRET, url_override=f"{self.ex.ws_url}/v2/{feed}")

        async def on_bar(b: Any) -> None:
            self.bars.append(b)

        async def on_daily(b: Any) -> None:
            self.daily.append(b)

        ds.subscribe_bars(on_bar, *symbols)
        ds.subscribe_daily_bars(on_daily, *symbols)
        self.md = ds
        self._run(ds)
        return ds

    def trades(self) -> TradingStream:
        ts = TradingStream(KEY, SECRET, paper=True, url_override=f"{self.ex.ws_url}/stream")

        async def on_update(u: Any) -> None:
            self.updates.append(u)

        ts.subscribe_trade_updates(on_update)
        self.tu = ts
        self._run(ts)
        return ts

    @staticmethod
    def _run(stream: Any) -> None:
        stream._reconnect_min_backoff = 0.05
        threading.Thread(target=stream.run, daemon=True).start()

    def events(self, cid: str | None = None) -> list[str]:
        return [
            str(u.event.value if hasattr(u.event, "value") else u.event)
            for u in list(self.updates)
            if cid is None or u.order.client_order_id == cid
        ]

    def stop(self) -> None:
        for s in (self.md, self.tu):
            if s is not None:
                s.stop()
        asyncio.set_event_loop(asyncio.new_event_loop())


@pytest.fixture()
def streams(exchange: LocalExchange) -> Iterator[Streams]:
    s = Streams(exchange)
    yield s
    s.stop()

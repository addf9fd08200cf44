"""alpaca-py, unchanged, against the local paper exchange (loopback, free ports)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.live.stock import StockDataStream
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import MarketOrderRequest
from alpaca.trading.stream import TradingStream

import data_feeds
from brokers.alpaca import AlpacaBroker, BrokerError, credentials
from brokers.local_exchange import LocalExchange, build_exchange
from engine.config import RunConfig

KEY, SECRET = "test-key", "test-secret"


def wait_for(cond: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture()
def exchange() -> Iterator[LocalExchange]:
    panel = data_feeds.load_bundled(["SPX", "UST10"], "2005-01-01", "2005-03-01")
    ex = build_exchange(RunConfig(), panel).start()
    yield ex
    ex.stop()


@pytest.fixture()
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)


def run_stream(stream: StockDataStream | TradingStream) -> threading.Thread:
    stream._reconnect_min_backoff = 0.05
    t = threading.Thread(target=stream.run, daemon=True)
    t.start()
    return t


def test_alpaca_clients_end_to_end(exchange: LocalExchange) -> None:
    tc = TradingClient(KEY, SECRET, paper=True, url_override=exchange.url)
    assert float(tc.get_account().cash) == 1_000_000.0
    bars: list = []
    updates: list = []
    ds = StockDataStream(KEY, SECRET, url_override=exchange.ws_url + "/v2/iex")

    async def on_bar(b: object) -> None:
        bars.append(b)

    async def on_update(u: object) -> None:
        updates.append(u)

    ds.subscribe_bars(on_bar, "SPX", "UST10")
    ts = TradingStream(KEY, SECRET, paper=True, url_override=exchange.ws_url + "/stream")
    ts.subscribe_trade_updates(on_update)
    run_stream(ds), run_stream(ts)
    st = exchange.status
    assert wait_for(lambda: st()["md_clients"] == 1 and st()["tu_clients"] == 1)
    exchange.step()
    assert wait_for(lambda: len(bars) == 2)
    req = MarketOrderRequest(
        symbol="SPX",
        qty=10,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.DAY,
        client_order_id="cid-1",
    )
    assert tc.submit_order(req).status == OrderStatus.NEW
    with pytest.raises(APIError) as err:
        tc.submit_order(req)
    assert err.value.status_code == 422
    exchange.step()
    assert wait_for(lambda: any(u.event == "fill" for u in updates))
    order = tc.get_order_by_client_id("cid-1")
    assert order.status == OrderStatus.FILLED and float(order.filled_qty) == 10
    # filled at the second bar's open, moved by nothing (commission only)
    assert float(order.filled_avg_price) == exchange.panel.open[1, 0]
    (pos,) = tc.get_all_positions()
    assert pos.symbol == "SPX" and float(pos.qty) == 10
    hist = StockHistoricalDataClient(KEY, SECRET, url_override=exchange.url)
    got = hist.get_stock_bars(
        StockBarsRequest(symbol_or_symbols=["SPX"], timeframe=TimeFrame.Day, start="2005-01-01")
    ).data
    assert len(got["SPX"]) == 2  # only what was published: no look-ahead
    ds.stop(), ts.stop()


def test_missing_keys_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.setenv("APCA_API_SECRET_KEY", "x")
    with pytest.raises(BrokerError, match="APCA_API_KEY_ID") as err:
        credentials()
    assert "\n" not in str(err.value) and "x" not in str(err.value).split(":")[0]


def test_retry_on_429_and_5xx(exchange: LocalExchange, keys: None) -> None:
    b = AlpacaBroker(url=exchange.url, backoff_s=0.01)
    exchange.inject(http_error=429, count=2)
    exchange.inject(http_error=503, count=1)
    calls = exchange.rest_calls
    assert float(b.account().cash) == 1_000_000.0
    assert exchange.rest_calls - calls == 4
    exchange.inject(http_error=500, count=10)
    with pytest.raises(APIError):
        AlpacaBroker(url=exchange.url, backoff_s=0.001, retries=2).account()


def test_reject_and_partial_fill_then_cancel(exchange: LocalExchange, keys: None) -> None:
    b = AlpacaBroker(url=exchange.url, stream_url=exchange.ws_url + "/stream", backoff_s=0.01)
    events: list[tuple[str, str]] = []

    async def on_update(u: object) -> None:
        events.append(
            (
                str(u.event.value if hasattr(u.event, "value") else u.event),  # type: ignore[attr-defined]
                u.order.client_order_id,
            )
        )  # type: ignore[attr-defined]

    b.stream_trade_updates(on_update)
    assert wait_for(lambda: exchange.status()["tu_clients"] == 1)
    exchange.step()
    exchange.inject(reject_next=1)
    assert b.submit("SPX", 5, "rej").status == OrderStatus.REJECTED
    exchange.inject(partial_next=1)
    b.submit("SPX", 10, "part")
    exchange.step()
    assert wait_for(lambda: ("canceled", "part") in events)
    assert ("rejected", "rej") in events and ("partial_fill", "part") in events
    o = b.order_by_client_id("part")
    assert o is not None and o.status == OrderStatus.CANCELED and float(o.filled_qty) == 5
    assert b.positions() == {"SPX": 5.0}
    assert b.order_by_client_id("nope") is None
    # a duplicate id returns the existing order instead of failing
    assert b.submit("SPX", 10, "part").id == o.id
    b.close()


def test_dropped_websockets_reconnect_and_resubscribe(exchange: LocalExchange) -> None:
    bars: list = []
    ds = StockDataStream(KEY, SECRET, url_override=exchange.ws_url + "/v2/iex")

    async def on_bar(x: object) -> None:
        bars.append(x)

    ds.subscribe_bars(on_bar, "SPX")
    run_stream(ds)
    assert wait_for(lambda: exchange.status()["md_clients"] == 1)
    exchange.step()
    assert wait_for(lambda: len(bars) == 1)
    exchange.inject(drop_ws=True)
    assert wait_for(lambda: exchange.status()["md_clients"] == 0, 5)
    assert wait_for(lambda: exchange.status()["md_clients"] == 1, 10)  # reconnected + resubscribed
    exchange.step()
    assert wait_for(lambda: len(bars) == 2)
    ds.stop()
    asyncio.set_event_loop(asyncio.new_event_loop())

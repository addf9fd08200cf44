"""Simulated market time and market data, read through alpaca-py's own clients."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import msgpack
import numpy as np
import pandas as pd
import pytest
import requests
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient
from alpaca.trading.requests import GetCalendarRequest
from websockets.asyncio.client import connect

from brokers.local_exchange import LocalExchange
from engine.ground.bars import BarPanel
from tests.brokers.conftest import HISTORY, KEY, SECRET, Streams, wait_for

NY = "America/New_York"
H = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}


def ny(date: pd.Timestamp, hh: int, mm: int) -> pd.Timestamp:
    return pd.Timestamp(date.year, date.month, date.day, hh, mm, tz=NY)


def test_clock_and_calendar_progress_session_by_session(
    exchange: LocalExchange, tc: TradingClient, panel: BarPanel
) -> None:
    d = panel.index
    c = tc.get_clock()
    assert not c.is_open  # starts after the close of the last history session
    assert pd.Timestamp(c.timestamp) == ny(d[HISTORY - 1], 16, 0)
    assert pd.Timestamp(c.next_open) == ny(d[HISTORY], 9, 30)
    exchange.step(to="open")
    c = tc.get_clock()
    assert c.is_open and pd.Timestamp(c.timestamp) == ny(d[HISTORY], 9, 30)
    assert pd.Timestamp(c.next_close) == ny(d[HISTORY], 16, 0)
    r = requests.post(exchange.url + "/_sim/step", timeout=5).json()
    assert r["bar"] == HISTORY and not r["is_open"]
    c = tc.get_clock()
    assert not c.is_open and pd.Timestamp(c.timestamp) == ny(d[HISTORY], 16, 0)
    assert pd.Timestamp(c.next_open) == ny(d[HISTORY + 1], 9, 30)
    # the calendar lists panel dates only: the weekend 2005-01-08/09 is not a session
    cal = tc.get_calendar(GetCalendarRequest(start=dt.date(2005, 1, 3), end=dt.date(2005, 1, 14)))
    assert [x.date for x in cal] == [t.date() for t in d if t <= pd.Timestamp("2005-01-14")]
    assert all(x.open.time() == dt.time(9, 30) and x.close.time() == dt.time(16, 0) for x in cal)
    assert dt.date(2005, 1, 8) not in {x.date for x in cal}


def test_history_then_in_progress_then_completed_daily_bar(
    exchange: LocalExchange, panel: BarPanel
) -> None:
    hist = StockHistoricalDataClient(KEY, SECRET, url_override=exchange.url)
    req = StockBarsRequest(symbol_or_symbols=["SPX"], timeframe=TimeFrame.Day, start="2005-01-01")
    bars = hist.get_stock_bars(req).data["SPX"]
    assert len(bars) == HISTORY  # the history sessions, nothing after them
    assert [b.timestamp for b in bars] == [ny(t, 0, 0) for t in panel.index[:HISTORY]]
    np.testing.assert_array_equal([b.close for b in bars], panel.close[:HISTORY, 0])
    exchange.step(to="minute")  # the open and the first minute bar of the next session
    bars = hist.get_stock_bars(req).data["SPX"]
    assert len(bars) == HISTORY + 1
    today = bars[-1]
    assert today.open == panel.open[HISTORY, 0]
    assert today.close != panel.close[HISTORY, 0]  # in progress: not the day's close yet
    assert today.volume < panel.volume[HISTORY, 0]
    exchange.step()  # to the close
    today = hist.get_stock_bars(req).data["SPX"][-1]
    assert (today.open, today.close, today.volume) == (
        panel.open[HISTORY, 0],
        panel.close[HISTORY, 0],
        panel.volume[HISTORY, 0],
    )
    assert today.high >= max(today.open, today.close) and today.low <= min(today.open, today.close)


def test_minute_bars_on_bars_daily_bars_on_daily_bars(
    exchange: LocalExchange, streams: Streams, panel: BarPanel
) -> None:
    m = exchange.settings.minute_bars_per_session
    streams.market("SPX", "UST10")
    assert wait_for(lambda: exchange.status()["md_clients"] == 1)
    exchange.step()
    assert wait_for(lambda: len(streams.bars) == 2 * m and len(streams.daily) == 2 * m)
    spx = [b for b in streams.bars if b.symbol == "SPX"]
    day = ny(panel.index[HISTORY], 0, 0)
    starts = [pd.Timestamp(b.timestamp) for b in spx]
    assert starts[0] == ny(panel.index[HISTORY], 9, 30)
    assert starts[-1] == ny(panel.index[HISTORY], 15, 59)
    # the minute bars make up exactly the day's bar
    assert spx[0].open == panel.open[HISTORY, 0] and spx[-1].close == panel.close[HISTORY, 0]
    assert sum(b.volume for b in spx) == pytest.approx(panel.volume[HISTORY, 0])
    assert max(b.high for b in spx) == max(panel.high[HISTORY, 0], panel.open[HISTORY, 0])
    # dailyBars: the running daily bar after each minute, stamped with the day; the last is final
    d_spx = [b for b in streams.daily if b.symbol == "SPX"]
    assert {pd.Timestamp(b.timestamp) for b in d_spx} == {day}
    assert [b.close for b in d_spx] == [b.close for b in spx]
    assert d_spx[-1].volume == pytest.approx(panel.volume[HISTORY, 0])
    # REST 1Min bars are the streamed ones
    hist = StockHistoricalDataClient(KEY, SECRET, url_override=exchange.url)
    rest = hist.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="SPX", timeframe=TimeFrame.Minute, start=day.tz_convert("UTC")
        )
    ).data["SPX"]
    assert [(b.timestamp, b.close) for b in rest] == [(b.timestamp, b.close) for b in spx]


def test_bars_pagination_limits_feed_and_adjustment(exchange: LocalExchange) -> None:
    url = exchange.url + "/v2/stocks/bars"
    q = {"symbols": "SPX,UST10", "timeframe": "1Day", "start": "2005-01-01", "limit": 3}
    got: list[tuple[str, str]] = []
    pages = 0
    while True:
        r = requests.get(url, params=q, headers=H, timeout=5)
        assert r.status_code == 200
        body = r.json()
        pages += 1
        got += [(s, b["t"]) for s, bs in body["bars"].items() for b in bs]
        if not body["next_page_token"]:
            break
        q["page_token"] = body["next_page_token"]
    assert pages == 4 and len(got) == 2 * HISTORY and len(set(got)) == len(got)
    bad = requests.get(url, params={**q, "limit": 10001}, headers=H, timeout=5)
    assert bad.status_code == 422
    recent = {"symbols": "SPX", "timeframe": "1Day", "feed": "sip"}
    sip = requests.get(url, params=recent, headers=H, timeout=5)
    assert sip.status_code == 403
    assert sip.json()["message"] == "subscription does not permit querying recent SIP data"
    old = {"symbols": "SPX", "timeframe": "1Day", "start": "2005-01-01", "end": "2005-01-05"}
    assert requests.get(url, params={**old, "feed": "sip"}, headers=H).status_code == 200
    raw = requests.get(url, params=old, headers=H).json()
    split = requests.get(url, params={**old, "adjustment": "split"}, headers=H).json()
    assert raw == split  # no corporate actions in the simulation
    desc = requests.get(url, params={**old, "sort": "desc"}, headers=H).json()
    assert desc["bars"]["SPX"] == raw["bars"]["SPX"][::-1]


def test_sip_stream_refused_on_free_plan(exchange: LocalExchange) -> None:
    async def talk() -> list[dict]:
        async with connect(exchange.ws_url + "/v2/sip") as ws:
            first = msgpack.unpackb(await ws.recv())
            await ws.send(msgpack.packb({"action": "auth", "key": KEY, "secret": SECRET}))
            return [first[0], msgpack.unpackb(await ws.recv())[0]]

    connected, err = asyncio.run(talk())
    assert connected == {"T": "success", "msg": "connected"}
    assert err == {"T": "error", "code": 409, "msg": "insufficient subscription"}


def test_realtime_mode_moves_on_its_own(make_exchange) -> None:  # type: ignore[no-untyped-def]
    ex = make_exchange(mode="realtime", seconds_per_session=0.3, overnight_fraction=0.5)
    tc = TradingClient(KEY, SECRET, paper=True, url_override=ex.url)
    seen_open, stamps = set(), []
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.5:
        c = tc.get_clock()
        seen_open.add(c.is_open)
        stamps.append(pd.Timestamp(c.timestamp))
        time.sleep(0.02)
    assert seen_open == {True, False}
    assert stamps == sorted(stamps)  # simulated time never runs backwards
    assert ex.bar >= HISTORY + 2  # about five sessions in 1.5 s


def test_free_plan_connection_limit_and_single_symbol_bars(make_exchange) -> None:  # type: ignore[no-untyped-def]
    ex = make_exchange(md_connection_limit=1)

    async def auth(ws) -> dict:  # type: ignore[no-untyped-def]
        await ws.recv()
        await ws.send(msgpack.packb({"action": "auth", "key": KEY, "secret": SECRET}))
        return msgpack.unpackb(await ws.recv())[0]

    async def two() -> tuple[dict, dict]:
        async with connect(ex.ws_url + "/v2/iex") as a, connect(ex.ws_url + "/v2/iex") as b:
            return await auth(a), await auth(b)

    first, second = asyncio.run(two())
    assert first == {"T": "success", "msg": "authenticated"}
    assert second == {"T": "error", "code": 406, "msg": "connection limit exceeded"}
    one = requests.get(
        ex.url + "/v2/stocks/SPX/bars",
        params={"timeframe": "1Day", "start": "2005-01-01"},
        headers=H,
    ).json()
    assert one["symbol"] == "SPX" and len(one["bars"]) == HISTORY


def test_finer_steps_cross_the_close(exchange: LocalExchange, panel: BarPanel) -> None:
    m = exchange.settings.minute_bars_per_session
    for _ in range(m):
        exchange.step(to="minute")
    assert exchange.cur == HISTORY and exchange.emitted == m and not exchange.session_closed
    exchange.step(to="minute")  # the close, the next open and its first minute bar
    assert exchange.cur == HISTORY + 1 and exchange.emitted == 1 and exchange.bar == HISTORY
    exchange.step(to="open")  # mid-session: through the close to the following open
    assert exchange.cur == HISTORY + 2 and exchange.emitted == 0
    exchange.step(to="close")
    assert exchange.bar == HISTORY + 2
    while exchange.step() is not None:
        pass
    assert exchange.done and exchange.bar == panel.n_bars - 1
    r = requests.post(exchange.url + "/_sim/step", timeout=5).json()
    assert r["done"] and not r["published"]

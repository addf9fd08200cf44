"""Seeded faults: 429s, 5xx bursts, rejects/partials, dropped websockets, a hung server."""

from __future__ import annotations

import asyncio

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, TimeInForce
from alpaca.trading.requests import MarketOrderRequest
from websockets.asyncio.client import connect

from brokers.local_exchange import LocalExchange
from tests.brokers.conftest import KEY, SECRET, Streams, wait_for

H = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}


def statuses(ex: LocalExchange, n: int) -> list[int]:
    return [
        requests.get(ex.url + "/v2/account", headers=H, timeout=5).status_code for _ in range(n)
    ]


def test_rate_limit_429_is_seeded_and_reproducible(make_exchange) -> None:  # type: ignore[no-untyped-def]
    faults = {"rate_limit_rate": 0.3}
    a = statuses(make_exchange(seed=7, faults=faults), 40)
    b = statuses(make_exchange(seed=7, faults=faults), 40)
    c = statuses(make_exchange(seed=8, faults=faults), 40)
    assert a == b and a != c
    assert set(a) == {200, 429} and 4 <= a.count(429) <= 20
    ex = make_exchange(faults={"rate_limit_rate": 1.0, "retry_after_s": 2})
    r = requests.get(ex.url + "/v2/clock", headers=H, timeout=5)
    assert r.status_code == 429 and r.json() == {"code": 42910000, "message": "rate limit exceeded"}
    assert r.headers["X-RateLimit-Remaining"] == "0" and r.headers["Retry-After"] == "2"
    capped = make_exchange(faults={"requests_per_minute": 5})
    assert statuses(capped, 7) == [200] * 5 + [429] * 2


def test_5xx_bursts_and_runtime_toggles(exchange: LocalExchange) -> None:
    r = requests.post(
        exchange.url + "/_sim/faults",
        json={"error_burst_every": 4, "error_burst_len": 2},
        timeout=5,
    )
    assert r.json()["faults"]["error_burst_every"] == 4
    assert statuses(exchange, 10) == [200, 200, 200, 500, 500, 200, 200, 500, 500, 200]
    tc = TradingClient(KEY, SECRET, paper=True, url_override=exchange.url)
    with pytest.raises(APIError) as err:  # alpaca-py does not retry a 500
        tc.get_account()
        tc.get_account()
    assert err.value.status_code == 500
    requests.post(exchange.url + "/_sim/faults", json={"error_burst_every": 0}, timeout=5)
    assert statuses(exchange, 5) == [200] * 5
    bad = requests.post(exchange.url + "/_sim/faults", json={"reject_rate": 2}, timeout=5)
    assert bad.status_code == 422 and "reject_rate" in bad.json()["message"]


def test_reject_and_partial_rates(make_exchange) -> None:  # type: ignore[no-untyped-def]
    ex = make_exchange(seed=3, faults={"reject_rate": 0.5, "partial_fill_rate": 0.5})
    tc = TradingClient(KEY, SECRET, paper=True, url_override=ex.url)
    ids = [
        tc.submit_order(
            MarketOrderRequest(
                symbol="SPX", qty=10, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
            )
        ).id
        for _ in range(20)
    ]
    ex.step()
    got = [str(tc.get_order_by_id(i).status.value) for i in ids]
    assert set(got) == {"rejected", "filled", "expired"}  # expired: partly filled, then the close
    part = [tc.get_order_by_id(i) for i, s in zip(ids, got, strict=True) if s == "expired"]
    assert all(float(o.filled_qty) == 5 for o in part)


def test_dropped_websockets_both_streams_reconnect(
    exchange: LocalExchange, streams: Streams
) -> None:
    streams.market("SPX")
    streams.trades()
    st = exchange.status
    assert wait_for(lambda: st()["md_clients"] == 1 and st()["tu_clients"] == 1)
    exchange.inject(drop_socket_every_s=0.5)
    assert wait_for(lambda: st()["md_clients"] == 0 or st()["tu_clients"] == 0, 3)
    exchange.inject(drop_socket_every_s=0.0)
    assert wait_for(lambda: st()["md_clients"] == 1 and st()["tu_clients"] == 1, 10)
    exchange.step()  # data and trade updates flow again after the reconnect
    assert wait_for(lambda: len(streams.bars) == exchange.settings.minute_bars_per_session)


def test_hang_accepts_and_never_answers(exchange: LocalExchange) -> None:
    exchange.inject(hang=True)
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(exchange.url + "/v2/clock", headers=H, timeout=0.3)

    async def ws() -> None:
        async with connect(exchange.ws_url + "/v2/iex", open_timeout=0.3):
            pass

    with pytest.raises(TimeoutError):
        asyncio.run(ws())
    off = requests.post(exchange.url + "/_sim/faults", json={"hang": False}, timeout=5)
    assert off.status_code == 200  # /_sim/ still answers, so a test can turn it off
    assert requests.get(exchange.url + "/v2/clock", headers=H, timeout=2).status_code == 200

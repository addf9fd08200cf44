"""Alpaca's order rules at the local exchange, exercised with alpaca-py's TradingClient."""

from __future__ import annotations

import time

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
)

from brokers.local_exchange import LocalExchange
from engine.ground.bars import BarPanel
from tests.brokers.conftest import HISTORY, KEY, SECRET, Streams, wait_for

DAY = TimeInForce.DAY


def market(symbol: str, side: str, qty: float | None = None, **kw: object) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol=symbol,
        qty=qty,
        side=OrderSide(side),
        time_in_force=kw.pop("tif", DAY),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def refused(tc: TradingClient, req: object) -> APIError:
    with pytest.raises(APIError) as err:
        tc.submit_order(req)  # type: ignore[arg-type]
    return err.value


def test_queued_order_fills_at_the_next_open_price(
    exchange: LocalExchange, tc: TradingClient, panel: BarPanel
) -> None:
    o = tc.submit_order(market("SPX", "buy", 10, client_order_id="q1"))
    assert o.status == OrderStatus.NEW  # market closed: queued
    assert not tc.get_clock().is_open
    exchange.step(to="open")
    o = tc.get_order_by_client_id("q1")
    assert o.status == OrderStatus.FILLED and float(o.filled_qty) == 10
    assert float(o.filled_avg_price) == panel.open[HISTORY, 0]  # costs: commission only
    (pos,) = tc.get_all_positions()
    assert pos.symbol == "SPX" and float(pos.qty) == 10
    cash = float(tc.get_account().cash)
    fee = 10 * panel.open[HISTORY, 0] * 5e-4  # RunConfig's 5 bps commission
    assert cash == pytest.approx(1_000_000 - 10 * panel.open[HISTORY, 0] - fee)


def test_buying_power_held_by_buys_and_not_released_by_unfilled_sells(
    exchange: LocalExchange, tc: TradingClient, panel: BarPanel
) -> None:
    px = panel.close[HISTORY - 1, 0]
    n = int(900_000 // px)
    tc.submit_order(market("SPX", "buy", n))
    bp = float(tc.get_account().buying_power)
    assert bp == pytest.approx(1_000_000 - n * px)  # reduced at once by the open buy
    exchange.step()  # filled at the open
    assert float(tc.get_open_position("SPX").qty) == n
    # sell it all (queued overnight), then try to spend the proceeds before the sell fills
    tc.submit_order(market("SPX", "sell", n, client_order_id="s1"))
    ust = panel.close[HISTORY, 1]
    big = int(500_000 // ust)
    err = refused(tc, market("UST10", "buy", big))
    assert err.status_code == 403 and err.code == 40310000
    assert err.message == "insufficient buying power"
    exchange.step(to="open")  # the sell fills at the open ...
    assert tc.get_order_by_client_id("s1").status == OrderStatus.FILLED
    assert tc.submit_order(market("UST10", "buy", big)).status == OrderStatus.NEW  # ... now ok


def test_wash_trade_guard_and_no_short_selling(exchange: LocalExchange, tc: TradingClient) -> None:
    err = refused(tc, market("SPX", "sell", 1))
    assert (err.status_code, err.code) == (403, 40310000)
    assert err.message == "account is not allowed to short"
    tc.submit_order(market("SPX", "buy", 5))
    err = refused(tc, market("SPX", "sell", 1))  # opposite side while the buy is open
    assert (err.status_code, err.code) == (422, 42210000)
    assert err.message == "potential wash trade detected. use complex orders"
    exchange.step()
    err = refused(tc, market("SPX", "sell", 6))
    assert err.status_code == 403
    assert err.message == "insufficient qty available for order (requested: 6, available: 5)"
    assert tc.submit_order(market("SPX", "sell", 5)).status == OrderStatus.NEW


def test_quantity_rules(make_exchange) -> None:  # type: ignore[no-untyped-def]
    ex = make_exchange(non_fractionable=["UST10"], min_notional=1.0)
    tc = TradingClient(KEY, SECRET, paper=True, url_override=ex.url)
    err = refused(tc, market("SPX", "buy", 0.1234567891))  # 10 decimals
    assert (err.status_code, err.code) == (422, 42210000)
    assert tc.submit_order(market("SPX", "buy", 0.123456789)).status == OrderStatus.NEW
    err = refused(tc, market("UST10", "buy", 1.5))
    assert err.status_code == 422 and err.message == 'asset "UST10" is not fractionable'
    assert tc.submit_order(market("UST10", "buy", 2)).status == OrderStatus.NEW  # whole: fine
    err = refused(
        tc, MarketOrderRequest(symbol="SPX", notional=0.5, side=OrderSide.BUY, time_in_force=DAY)
    )
    assert err.status_code == 403 and err.message == "cost basis must be >= 1"
    err = refused(tc, market("SPX", "buy", 0.5, tif=TimeInForce.GTC))
    assert err.message == "fractional orders must be DAY orders"
    lim = LimitOrderRequest(
        symbol="SPX", qty=0.5, side=OrderSide.BUY, time_in_force=DAY, limit_price=1
    )
    assert refused(tc, lim).message == "fractional orders must be market orders"
    tc.submit_order(market("SPX", "buy", 1, client_order_id="dup"))
    err = refused(tc, market("SPX", "buy", 1, client_order_id="dup"))
    assert (err.status_code, err.code, err.message) == (
        422,
        40010001,
        "client_order_id must be unique",
    )
    assert tc.get_asset("SPX").fractionable and not tc.get_asset("UST10").fractionable
    assert not tc.get_asset("UST10Y_YIELD").tradable  # exogenous series: data only
    assert refused(tc, market("UST10Y_YIELD", "buy", 1)).status_code == 422


def test_partial_fill_then_expiry_at_close_and_reject_events(
    exchange: LocalExchange, tc: TradingClient, streams: Streams
) -> None:
    streams.trades()
    assert wait_for(lambda: exchange.status()["tu_clients"] == 1)
    exchange.inject(partial_next=1)
    tc.submit_order(market("SPX", "buy", 10, client_order_id="part"))
    exchange.inject(reject_next=1)
    r = tc.submit_order(market("SPX", "buy", 3, client_order_id="rej"))
    assert r.status == OrderStatus.NEW  # accepted over HTTP, rejected on the stream
    exchange.step()
    assert wait_for(lambda: "expired" in streams.events("part"))
    assert streams.events("part") == ["new", "partial_fill", "expired"]
    assert streams.events("rej") == ["new", "rejected"]
    o = tc.get_order_by_client_id("part")
    assert o.status == OrderStatus.EXPIRED and float(o.filled_qty) == 5
    fill = next(u for u in streams.updates if u.event == "partial_fill")
    assert float(fill.position_qty) == 5 and float(fill.qty) == 5
    assert tc.get_order_by_client_id("rej").status == OrderStatus.REJECTED
    assert float(tc.get_open_position("SPX").qty) == 5


def test_day_orders_expire_gtc_orders_stay(exchange: LocalExchange, tc: TradingClient) -> None:
    low = LimitOrderRequest(
        symbol="SPX", qty=1, side=OrderSide.BUY, time_in_force=DAY, limit_price=1
    )
    gtc = LimitOrderRequest(
        symbol="SPX", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=1
    )
    d, g = tc.submit_order(low), tc.submit_order(gtc)
    exchange.step()
    assert tc.get_order_by_id(d.id).status == OrderStatus.EXPIRED
    assert tc.get_order_by_id(g.id).status == OrderStatus.NEW
    closed = tc.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    assert [str(o.id) for o in closed] == [str(d.id)]
    both = tc.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, direction="asc"))
    assert [str(o.id) for o in both] == [str(d.id), str(g.id)]
    assert tc.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["UST10"])) == []


def test_cancel_is_pending_then_canceled_and_a_fill_can_win(
    exchange: LocalExchange, tc: TradingClient, streams: Streams
) -> None:
    streams.trades()
    assert wait_for(lambda: exchange.status()["tu_clients"] == 1)
    exchange.inject(cancel_delay_s=0.2)
    a = tc.submit_order(market("SPX", "buy", 1, client_order_id="a"))
    tc.cancel_order_by_id(a.id)
    assert tc.get_order_by_id(a.id).status == OrderStatus.PENDING_CANCEL
    assert wait_for(lambda: tc.get_order_by_id(a.id).status == OrderStatus.CANCELED, 3)
    exchange.inject(cancel_delay_s=30.0)
    b = tc.submit_order(market("SPX", "buy", 1, client_order_id="b"))
    tc.cancel_order_by_id(b.id)
    exchange.step(to="open")  # the open comes before the cancel completes: the fill wins
    assert tc.get_order_by_id(b.id).status == OrderStatus.FILLED
    assert wait_for(lambda: "fill" in streams.events("b"))
    assert streams.events("a") == ["new", "pending_cancel", "canceled"]
    assert streams.events("b") == ["new", "pending_cancel", "fill"]
    with pytest.raises(APIError) as err:
        tc.cancel_order_by_id(b.id)
    assert err.value.status_code == 422


def test_close_position_and_orders_during_the_session(
    exchange: LocalExchange, tc: TradingClient, panel: BarPanel
) -> None:
    exchange.step(to="open")
    o = tc.submit_order(market("SPX", "buy", 4))
    assert o.status == OrderStatus.NEW  # the response; the fill follows at once
    o = tc.get_order_by_id(o.id)
    assert o.status == OrderStatus.FILLED
    assert float(o.filled_avg_price) == panel.open[HISTORY, 0]  # latest price: the open
    exchange.step(to="minute")
    c = tc.close_position("SPX", ClosePositionRequest(percentage="50"))
    c = tc.get_order_by_id(c.id)
    assert c.side == OrderSide.SELL and float(c.filled_qty) == 2
    assert float(c.filled_avg_price) == exchange.minutes.session(HISTORY)[0, 3, 0]
    assert float(tc.get_open_position("SPX").qty) == 2
    t0 = time.monotonic()
    acct = tc.get_account()
    assert float(acct.equity) == pytest.approx(float(acct.cash) + 2 * float(c.filled_avg_price))
    assert time.monotonic() - t0 < 2


def test_malformed_order_bodies_are_refused_not_crashed(exchange: LocalExchange) -> None:
    import requests

    h = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
    url = exchange.url + "/v2/orders"
    assert requests.post(url, data=b"[1, 2]", headers=h, timeout=5).status_code == 422
    assert requests.post(url, data=b"{not json", headers=h, timeout=5).status_code == 400
    bad = {"symbol": "SPX", "side": "buy", "type": "market", "time_in_force": "day", "qty": "x"}
    assert requests.post(url, json=bad, headers=h, timeout=5).status_code == 422
    nan = {**bad, "qty": "NaN"}
    assert requests.post(url, json=nan, headers=h, timeout=5).status_code == 422
    assert requests.post(url, json={**bad, "qty": 1}, timeout=5).status_code == 401  # no keys


def test_replace_an_open_order(exchange: LocalExchange, tc: TradingClient) -> None:
    from alpaca.trading.requests import ReplaceOrderRequest

    old = tc.submit_order(
        LimitOrderRequest(symbol="SPX", qty=2, side=OrderSide.BUY, time_in_force=DAY, limit_price=1)
    )
    new = tc.replace_order_by_id(old.id, ReplaceOrderRequest(qty=3, client_order_id="r2"))
    assert float(new.qty) == 3 and str(new.replaces) == str(old.id)
    old = tc.get_order_by_id(old.id)
    assert old.status == OrderStatus.REPLACED and str(old.replaced_by) == str(new.id)
    with pytest.raises(APIError) as err:  # only open orders can be replaced
        tc.replace_order_by_id(old.id, ReplaceOrderRequest(qty=4))
    assert err.value.status_code == 422

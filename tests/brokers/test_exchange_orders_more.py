"""More order paths: opg/cls, notional orders, order queries, cancel-all and close-all."""

from __future__ import annotations

import datetime as dt

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, MarketOrderRequest

from brokers.local_exchange import LocalExchange
from engine.ground.bars import BarPanel
from tests.brokers.conftest import HISTORY


def mkt(
    symbol: str, side: str, tif: TimeInForce = TimeInForce.DAY, **kw: object
) -> MarketOrderRequest:
    return MarketOrderRequest(symbol=symbol, side=OrderSide(side), time_in_force=tif, **kw)  # type: ignore[arg-type]


def test_opg_fills_at_the_open_cls_at_the_close(
    exchange: LocalExchange, tc: TradingClient, panel: BarPanel
) -> None:
    opg = tc.submit_order(mkt("SPX", "buy", TimeInForce.OPG, qty=2))
    cls = tc.submit_order(mkt("UST10", "buy", TimeInForce.CLS, qty=3))
    exchange.step(to="minute")
    assert float(tc.get_order_by_id(opg.id).filled_avg_price) == panel.open[HISTORY, 0]
    assert tc.get_order_by_id(cls.id).status == OrderStatus.NEW  # waits for the close
    with pytest.raises(APIError):  # the opening auction is over
        tc.submit_order(mkt("SPX", "buy", TimeInForce.OPG, qty=1))
    exchange.step()
    c = tc.get_order_by_id(cls.id)
    assert c.status == OrderStatus.FILLED and float(c.filled_avg_price) == panel.close[HISTORY, 1]


def test_notional_order_buys_that_many_dollars(
    exchange: LocalExchange, tc: TradingClient, panel: BarPanel
) -> None:
    o = tc.submit_order(mkt("SPX", "buy", notional=1000))
    assert o.notional is not None and o.qty is None
    exchange.step(to="open")
    o = tc.get_order_by_id(o.id)
    assert o.status == OrderStatus.FILLED
    assert float(o.filled_qty) * float(o.filled_avg_price) == pytest.approx(1000)
    assert float(o.filled_avg_price) == panel.open[HISTORY, 0]


def test_order_queries(exchange: LocalExchange, tc: TradingClient) -> None:
    a = tc.submit_order(mkt("SPX", "buy", qty=1))
    exchange.step()
    b = tc.submit_order(mkt("SPX", "sell", qty=1))
    c = tc.submit_order(mkt("UST10", "buy", qty=1))
    ids = lambda req: [str(o.id) for o in tc.get_orders(req)]  # noqa: E731
    assert ids(GetOrdersRequest(status=QueryOrderStatus.ALL)) == [str(c.id), str(b.id), str(a.id)]
    assert ids(GetOrdersRequest(status=QueryOrderStatus.ALL, limit=1)) == [str(c.id)]
    assert ids(GetOrdersRequest(status=QueryOrderStatus.OPEN, side=OrderSide.SELL)) == [str(b.id)]
    day2 = exchange.cal.open_ns[HISTORY]  # a was submitted before this open, b and c after it
    after = dt.datetime.fromtimestamp(day2 / 1e9, tz=dt.UTC)
    assert ids(GetOrdersRequest(status=QueryOrderStatus.ALL, after=after, direction="asc")) == [
        str(b.id),
        str(c.id),
    ]
    assert ids(GetOrdersRequest(status=QueryOrderStatus.ALL, until=after)) == [str(a.id)]


def test_cancel_all_and_close_all(exchange: LocalExchange, tc: TradingClient) -> None:
    tc.submit_order(mkt("SPX", "buy", qty=5))
    tc.submit_order(mkt("UST10", "buy", qty=5))
    exchange.step(to="open")
    lim = LimitOrderRequest(
        symbol="UST10", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=1
    )
    tc.submit_order(lim)
    exchange.inject(cancel_delay_s=0.0)
    res = tc.cancel_orders()
    assert len(res) == 1 and res[0].status == 200
    assert tc.get_orders(GetOrdersRequest(status=QueryOrderStatus.OPEN)) == []
    closed = tc.close_all_positions()
    assert sorted(r.symbol for r in closed) == ["SPX", "UST10"]
    assert tc.get_all_positions() == []  # in the session: closed at the latest price at once

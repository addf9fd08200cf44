"""A short real-time run with every fault on at once: the exchange stays consistent."""

from __future__ import annotations

import time

import requests

from brokers.local_exchange import LocalExchange
from tests.brokers.conftest import KEY, SECRET, Streams, wait_for

H = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}


def call(method: str, url: str, seen: dict[int, int], **kw: object) -> requests.Response:
    """Retry 429/5xx like a careful client; count what came back."""
    for _ in range(50):
        r = requests.request(method, url, headers=H, timeout=5, **kw)  # type: ignore[arg-type]
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        if r.status_code not in (429, 500):
            return r
        time.sleep(0.005)
    raise AssertionError("too many faults in a row")


def test_realtime_with_all_faults(make_exchange) -> None:  # type: ignore[no-untyped-def]
    faults = {
        "reject_rate": 0.2,
        "partial_fill_rate": 0.3,
        "rate_limit_rate": 0.1,
        "error_burst_every": 15,
        "error_burst_len": 3,
        "drop_socket_every_s": 0.6,
    }
    ex: LocalExchange = make_exchange(
        mode="realtime", seconds_per_session=0.15, history_bars=28, seed=5, faults=faults
    )
    streams = Streams(ex)
    streams.market("SPX")
    streams.trades()
    seen: dict[int, int] = {}
    sessions_ordered: set[str] = set()
    last_day = ex.cal.dates[-1].strftime("%Y-%m-%d")  # after it no session opens any more
    try:
        while not ex.done:
            clock = call("GET", ex.url + "/v2/clock", seen).json()
            day = clock["next_open"][:10]
            if not clock["is_open"] and day not in sessions_ordered and day <= last_day:
                sessions_ordered.add(day)
                body = {
                    "symbol": "SPX",
                    "qty": 3,
                    "side": "buy",
                    "type": "market",
                    "time_in_force": "day",
                    "client_order_id": f"rt-{day}",
                }
                r = call("POST", ex.url + "/v2/orders", seen, json=body)
                assert r.status_code in (200, 422), r.text  # 422: a retried duplicate id
            time.sleep(0.01)
        assert wait_for(lambda: not ex.broker.open_orders(), 3)
        orders = call("GET", ex.url + "/v2/orders", seen, params={"status": "all", "limit": 500})
        got = orders.json()
        assert {o["client_order_id"] for o in got} == {f"rt-{d}" for d in sessions_ordered}
        assert {o["status"] for o in got} <= {"filled", "rejected", "expired"}
        filled = sum(float(o["filled_qty"]) for o in got)
        pos = call("GET", ex.url + "/v2/positions", seen).json()
        held = float(pos[0]["qty"]) if pos else 0.0
        assert held == filled  # the book adds up whatever the faults did
        assert {"rejected", "expired"} <= {o["status"] for o in got}
        assert seen.get(429, 0) + seen.get(500, 0) == sum(ex.faults.injected.values())
        assert len(streams.bars) > 0 and len(streams.updates) > 0
    finally:
        streams.stop()

"""Bar-in to order-out latency on loopback, p50/p99, two ways.

1. ZeroMQ path: a publisher thread sends bars of the bundled panel over tcp loopback; the
   engine receives each bar (ZmqBarFeed), runs the streaming driver, turns the bar's
   orders into order messages with deterministic client ids and publishes them (PUB).
   Latency = from the bar's send to the last order message sent, on every bar.
2. The paper loop against the local Alpaca-like exchange (``--sessions N``, stepped, in
   this process): latency = from the exchange completing a session's close (the daily bar
   is final; the ``dailyBars`` message wakes the loop) to the broker accepting the
   decision's first order (the REST ``POST /v2/orders`` answered), on every session whose
   decision placed orders (daily rebalancing so that most do). It includes the clock,
   calendar, bars, account, positions and orders calls of a decision through alpaca-py.

Run: ``python -m benchmarks.latency [--bars N] [--sessions N]``.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np

from data_feeds.zmq_feed import ZmqBarFeed, publish_bar
from engine.api import prepare_run
from engine.assemble import build_strategy, load_panel
from engine.bus.zmq_bus import Publisher
from engine.config import RunConfig
from engine.core.streaming import StreamingDriver
from engine.live.planning import client_order_id


def loop_latency(sessions: int) -> None:
    """Exchange close -> first order accepted, through the whole paper loop."""
    import tempfile
    from typing import Any

    from brokers.cli import paper_node
    from brokers.local_exchange import build_exchange
    from brokers.local_exchange.settings import ExchangeSettings
    from engine.config import parse_config

    strategy = {
        "kind": "regime",
        "name": "daily",
        "rebalance": "D",
        "warmup": {"SPX": 0.6, "UST10": 0.4},
        "table": {
            "calm": {"SPX": 0.7, "UST10": 0.2, "WTI": 0.1},
            "volatile": {"SPX": 0.35, "UST10": 0.5, "CASH": 0.15},
            "crisis": {"SPX": 0.05, "UST10": 0.6, "CASH": 0.35},
        },
    }
    base: dict[str, Any] = {
        "name": "lat",
        "data": {
            "source": "bundled:classic",
            "symbols": ["SPX", "UST10", "WTI", "CASH"],
            "start": "2003-01-01",
            "end": "2006-12-31",
        },
        "detector": {"kind": "rule", "market": "SPX", "history": 40, "min_history": 20},
        "strategies": [strategy],
    }
    cfg = parse_config(base)
    panel = load_panel(cfg)
    settings = ExchangeSettings(port=0, ws_port=0, mode="stepped", history_bars=320)
    first_order: list[float] = []

    lat: list[float] = []
    with build_exchange(cfg, panel, settings) as ex, tempfile.TemporaryDirectory() as tmp:
        paper = {"url": ex.url, "stream_url": ex.ws_url, "state_dir": tmp, "poll_s": 0.5}
        tr = paper_node(parse_config({**base, "paper": paper}))
        connect = tr.connect

        def timed_connect() -> None:  # the time of the first order each decision sends
            connect()
            tr.ex.on_sent = lambda: first_order or first_order.append(time.perf_counter())

        tr.connect = timed_connect  # type: ignore[method-assign]
        th = threading.Thread(target=tr.run, daemon=True)
        th.start()
        while tr.summary.decisions < 1:
            time.sleep(0.01)
        for _ in range(sessions):
            ex.step(to="open")
            time.sleep(0.05)  # the fills of the previous decision arrive
            first_order.clear()
            n0 = tr.summary.decisions
            t0 = time.perf_counter()
            ex.step()  # to the close: the daily bar is complete
            deadline = time.monotonic() + 10
            # done, or waiting for its sells to fill at the next open (deferred buys)
            while tr.summary.decisions == n0 and not first_order and time.monotonic() < deadline:
                time.sleep(0.0005)
            if first_order:
                lat.append((first_order[0] - t0) * 1e3)
        tr.p = tr.p.model_copy(update={"max_bars": 1})
        ex.step()
        th.join(30)
    a = np.array(lat)
    print(
        f"paper loop, local exchange on loopback ({len(a)} of {sessions} sessions with orders): "
        f"close -> first order accepted p50 {np.percentile(a, 50):.1f} ms, "
        f"p99 {np.percentile(a, 99):.1f} ms, max {a.max():.1f} ms"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=3000)
    ap.add_argument("--sessions", type=int, default=200)
    args = ap.parse_args()
    if args.sessions:
        loop_latency(args.sessions)
    cfg = RunConfig()
    panel = load_panel(cfg)
    n = min(args.bars, panel.n_bars)
    prep = prepare_run(cfg, panel)
    scfg = next(s for s in cfg.strategies if s.name == "regime_aware")
    driver = StreamingDriver.from_prepared(prep, build_strategy(scfg), refit_online=True)
    # warm up the compiled step on a throwaway driver
    warm = StreamingDriver.from_prepared(prep, build_strategy(scfg), refit_online=True)
    for t in range(3):
        warm.on_bar(
            int(panel.timestamps_ns[t]),
            panel.open[t],
            panel.close[t],
            panel.volume[t],
            panel.exog[t],
        )
    feed = ZmqBarFeed(panel.symbols, panel.exog_names, "tcp://127.0.0.1:*")
    orders_out = Publisher("tcp://127.0.0.1:*")
    pub = Publisher(feed.address, bind=False)
    for _ in range(100):  # slow joiner: wait until the feed hears the publisher
        publish_bar(pub, panel, 0)
        if feed.next(50) is not None:
            break
    feed.last_ns = None
    sent: dict[int, int] = {}
    go = threading.Semaphore(0)

    def producer() -> None:
        for t in range(n):
            ts = int(panel.timestamps_ns[t])
            sent[ts] = time.perf_counter_ns()
            publish_bar(pub, panel, t)
            go.acquire()  # one bar in flight: measure latency, not queueing

    th = threading.Thread(target=producer, daemon=True)
    th.start()
    lat, lat_orders = [], []
    for _ in range(n):
        bar = feed.next(5000)
        if bar is None:
            break
        out = driver.on_bar(bar.timestamp_ns, bar.open, bar.close, bar.volume, bar.exog)
        for j in np.flatnonzero(out.orders):
            s = panel.symbols[j]
            orders_out.publish(
                "order",
                ts=bar.timestamp_ns,
                strategy="regime_aware",
                bar=out.bar,
                symbol=s,
                qty=float(out.orders[j]),
                status="submitted",
                client_order_id=client_order_id("bench", "regime_aware", bar.timestamp_ns, s),
            )
        dt = (time.perf_counter_ns() - sent[bar.timestamp_ns]) / 1e3
        lat.append(dt)
        if out.orders.any():
            lat_orders.append(dt)
        go.release()
    a = np.array(lat)
    print(f"bars: {len(a)}  (regime_aware, {panel.n_assets} assets, tcp loopback)")
    print(
        f"bar-in -> decision/order-out latency: p50 {np.percentile(a, 50):.1f} us, "
        f"p99 {np.percentile(a, 99):.1f} us, max {a.max():.1f} us"
    )
    if lat_orders:
        b = np.array(lat_orders)
        print(
            f"bars with orders ({len(b)}): p50 {np.percentile(b, 50):.1f} us, "
            f"p99 {np.percentile(b, 99):.1f} us"
        )


if __name__ == "__main__":
    main()

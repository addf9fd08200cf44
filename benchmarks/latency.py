"""Bar-in (ZeroMQ) to order-out latency of the regime-aware strategy, p50/p99.

A publisher thread sends bars of the bundled panel over tcp loopback; the engine loop
receives each bar (ZmqBarFeed), runs the streaming driver, turns the bar's orders into
order messages with deterministic client ids and publishes them (PUB). Latency = from the
bar's send (perf counter) to the last order message sent, measured on every bar; the
broker's network is excluded. Run: ``.venv/bin/python benchmarks/latency.py [--bars N]``.
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np

from brokers.paper import client_order_id
from data_feeds.zmq_feed import ZmqBarFeed, publish_bar
from engine.api import build_strategy, load_panel, prepare_run
from engine.bus.zmq_bus import Publisher
from engine.config import RunConfig
from engine.core.streaming import StreamingDriver


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bars", type=int, default=3000)
    args = ap.parse_args()
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

"""The ZeroMQ bus: schema round trip and versioning, bars in through ZmqBarFeed."""

from __future__ import annotations

import time

import msgpack
import numpy as np
import pytest

import data_feeds
from data_feeds.zmq_feed import ZmqBarFeed, publish_bar
from engine.bus import Publisher, Subscriber, decode, encode
from engine.bus.cli import format_message
from engine.bus.schema import SchemaError


def test_schema_round_trip_and_versions() -> None:
    msg = decode(encode("order", {"symbol": "SPX", "qty": 1.5}))
    assert msg.kind == "order" and msg.body["v"] == 1 and msg.body["qty"] == 1.5
    with pytest.raises(SchemaError, match="version"):
        decode([b"order", msgpack.packb({"v": 99, "kind": "order"})])
    with pytest.raises(SchemaError):
        encode("nonsense", {})


def test_bars_in_events_out_over_loopback() -> None:
    panel = data_feeds.load_bundled(["SPX", "UST10"], "2005-01-01", "2005-02-01")
    feed = ZmqBarFeed(panel.symbols, panel.exog_names, "tcp://127.0.0.1:*")
    pub = Publisher(feed.address, bind=False)
    events = Publisher("tcp://127.0.0.1:*")
    sub = Subscriber(events.address, ("equity",))
    got = []
    deadline = time.monotonic() + 10
    t = 0
    while t < 5 and time.monotonic() < deadline:  # slow joiner: republish until heard
        publish_bar(pub, panel, t)
        bar = feed.next(100)
        if bar is None:
            continue
        assert bar.timestamp_ns == panel.timestamps_ns[t]
        np.testing.assert_array_equal(bar.close, panel.close[t])
        got.append(bar)
        events.publish(
            "equity", ts=bar.timestamp_ns, strategy="s", bar=t, equity=1.0, cash=1.0, weights={}
        )
        t += 1
    assert len(got) == 5
    msgs = [m for _ in range(10) if (m := sub.recv(300)) is not None]
    assert msgs and all(m.kind == "equity" for m in msgs)
    assert "EQUITY" in format_message(msgs[0])
    for s in (pub, events, sub, feed):
        s.close()

"""The bus and the ZeroMQ bar input: loopback only unless allowed, then CURVE."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import zmq
import zmq.auth

from data_feeds.zmq_feed import ZmqBarFeed
from engine.bus.security import BusSecurityError, curve_from_dir, is_loopback
from engine.bus.zmq_bus import Publisher, Subscriber


def test_loopback_detection() -> None:
    for a in ("tcp://127.0.0.1:5556", "tcp://localhost:1", "tcp://[::1]:5", "ipc:///tmp/x"):
        assert is_loopback(a), a
    for a in ("tcp://*:5556", "tcp://0.0.0.0:5556", "tcp://10.0.0.5:1", "tcp://eth0:1"):
        assert not is_loopback(a), a


@pytest.mark.parametrize("address", ["tcp://*:0", "tcp://0.0.0.0:0"])
def test_non_loopback_refused_without_the_flag(address: str) -> None:
    with pytest.raises(BusSecurityError, match="not a loopback address"):
        Publisher(address)
    with pytest.raises(BusSecurityError, match="not a loopback address"):
        ZmqBarFeed(("SPX",), (), address)
    with pytest.raises(BusSecurityError, match="needs CURVE keys"):
        Publisher(address, allow_remote=True)


def _keys(tmp: Path) -> Path:
    d = tmp / "curve"
    (d / "authorized").mkdir(parents=True)
    zmq.auth.create_certificates(d, "server")
    zmq.auth.create_certificates(d, "client")
    (tmp / "other").mkdir()
    zmq.auth.create_certificates(tmp / "other", "client")
    (d / "authorized" / "client.key").write_bytes((d / "client.key").read_bytes())
    return d


def _recv_any(sub: Subscriber, pub: Publisher, seconds: float = 2.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pub.publish("equity", ts=1, strategy="s", bar=0, equity=1.0, cash=1.0, weights={})
        if sub.recv(50) is not None:
            return True
    return False


def test_curve_authenticates_clients(tmp_path: Path) -> None:
    d = _keys(tmp_path)
    pub = Publisher("tcp://0.0.0.0:0", allow_remote=True, curve=curve_from_dir(str(d), "server"))
    port = pub.address.rsplit(":", 1)[1]
    good = Subscriber(
        f"tcp://127.0.0.1:{port}", allow_remote=True, curve=curve_from_dir(str(d), "client")
    )
    # a client whose key is not authorized, and one without CURVE at all
    other = tmp_path / "other"
    (other / "server.key").write_bytes((d / "server.key").read_bytes())
    bad = Subscriber(
        f"tcp://127.0.0.1:{port}", allow_remote=True, curve=curve_from_dir(str(other), "client")
    )
    plain = Subscriber(f"tcp://127.0.0.1:{port}")
    try:
        assert _recv_any(good, pub)
        assert not _recv_any(bad, pub, 1.0)
        assert not _recv_any(plain, pub, 0.5)
    finally:
        for s in (good, bad, plain, pub):
            s.close()


def test_missing_keys_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(BusSecurityError, match="cannot load CURVE server keys"):
        curve_from_dir(str(tmp_path), "server")


def test_monitor_prints_the_status_and_gap_lines() -> None:
    from engine.bus.cli import format_message
    from engine.bus.schema import Message

    ts = 1_117_584_000_000_000_000  # 2005-06-01
    status = Message(
        "status",
        {
            "ts": ts,
            "strategy": "s",
            "phase": "LIVE",
            "regime": "calm",
            "prob": 0.93,
            "targets": {"SPX": 0.7, "UST10": 0.3},
            "sent": 2,
            "fills": 5,
            "engine_equity": 1000.0,
            "broker_equity": 990.0,
            "gap_frac": 0.01,
        },
    )
    line = format_message(status)
    assert line.startswith("2005-06-01 LIVE") and "regime=calm p=0.93" in line
    assert "SPX=0.700" in line and "2 sent / 5 fills" in line and "gap 1.00%" in line
    gap = Message(
        "reconcile",
        {
            "ts": ts,
            "strategy": "s",
            "bar": 3,
            "gap_value": 10.0,
            "gap_frac": 0.002,
            "diff": {"SPX": -0.5},
        },
    )
    assert "GAP" in format_message(gap) and "SPX=-0.5000" in format_message(gap)
    order = Message(
        "order",
        {
            "ts": ts,
            "strategy": "s",
            "symbol": "SPX",
            "qty": 1.0,
            "status": "rejected",
            "reason": "HTTP 403: insufficient buying power",
            "client_order_id": "re-x",
        },
    )
    assert "[rejected] (HTTP 403: insufficient buying power)" in format_message(order)

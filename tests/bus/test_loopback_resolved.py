"""Loopback checks on resolved addresses: a host *name* that merely starts with "127." is
not loopback (libzmq and bind resolve names), and the local exchange refuses to bind a host
that is not loopback unless told to."""

from __future__ import annotations

import socket

import pytest

from engine.bus.security import host_is_loopback, is_loopback


@pytest.mark.parametrize(
    "address",
    ["tcp://127.0.0.1:5555", "tcp://127.5.6.7:1", "tcp://localhost:5555", "tcp://[::1]:5555",
     "ipc:///tmp/x", "inproc://x"],
)  # fmt: skip
def test_loopback_addresses(address: str) -> None:
    assert is_loopback(address)


@pytest.mark.parametrize(
    "address",
    [
        "tcp://127.evil.example:5555",  # a name starting with "127.": resolved, not trusted
        "tcp://127.0.0.1.nip.io:5555",
        "tcp://*:5555",
        "tcp://0.0.0.0:5555",
        "tcp://[::]:5555",
        "tcp://10.0.0.1:5555",
        "tcp://no-such-host.invalid:5555",
        "tcp://127.0.0.1;10.0.0.1:5555",
        "udp://127.0.0.1:5555",
    ],
)
def test_not_loopback(address: str) -> None:
    assert not is_loopback(address)


def test_a_name_is_judged_by_what_it_resolves_to(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake(host, *a, **k):  # type: ignore[no-untyped-def]
        ips = {"127.x.example": ["93.184.216.34"], "mine.example": ["127.0.0.1", "::1"]}[host]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, 0)) for ip in ips]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    assert not host_is_loopback("127.x.example")
    assert host_is_loopback("mine.example")


def test_local_exchange_refuses_a_non_loopback_bind_unless_told() -> None:
    from brokers.local_exchange import build_exchange
    from brokers.local_exchange.settings import ExchangeSettings
    from engine.assemble import load_panel
    from engine.config import ConfigError, parse_config
    from tests.paper.conftest import BASE

    cfg = parse_config(BASE)
    panel = load_panel(cfg)
    for host in ("0.0.0.0", "127.evil.example"):
        s = ExchangeSettings(host=host, port=0, ws_port=0, mode="stepped", history_bars=300)
        with pytest.raises(ConfigError, match="allow_remote"):
            build_exchange(cfg, panel, s)
    s = ExchangeSettings(host="0.0.0.0", port=0, ws_port=0, mode="stepped", history_bars=300,
                         allow_remote=True)  # fmt: skip
    with build_exchange(cfg, panel, s) as ex:  # told to: it binds every address
        assert ex.port > 0

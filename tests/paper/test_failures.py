"""Failure is a state: timeouts on every HTTP call, down at start, outages, live guard."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from brokers.alpaca import AlpacaBroker, BrokerError, BrokerUnavailable, endpoint_kind
from tests.paper.conftest import BASE, Stepper, from_panel, trader
from tests.paper.test_checkpoint import run_paper_cli, toml_of

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", "k")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "s")


def test_hung_server_times_out_within_the_bound() -> None:
    """A server that accepts and never answers: a timeout error within the bound."""
    srv = socket.create_server(("127.0.0.1", 0))
    try:
        url = f"http://127.0.0.1:{srv.getsockname()[1]}"
        b = AlpacaBroker(url=url, timeout_s=0.5, retry_budget_s=1.5, backoff_s=0.05)
        t0 = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="ReadTimeout"):
            b.clock()
        took = time.monotonic() - t0
        assert took < 1.5 + 0.5 + 0.5  # budget + one timeout + slack
    finally:
        srv.close()


def test_retries_reuse_the_client_order_id(panel) -> None:  # type: ignore[no-untyped-def]
    """5xx bursts and 429s are retried with the same request: one order, one id."""
    with from_panel(panel, history=320) as fake:
        fake.faults.burst_every, fake.faults.burst_len = 3, 2
        fake.calls = 2  # the submit is call 3: a burst of two 500s
        b = AlpacaBroker(url=fake.url, backoff_s=0.01)
        o = b.submit("SPX", 1.5, "re-test-1")
        assert b.retried == 2
        assert fake.submissions == ["re-test-1"]
        again = b.submit("SPX", 1.5, "re-test-1")  # a duplicate returns the order
        assert str(again.id) == str(o.id) and fake.submissions == ["re-test-1"]


def test_outage_mid_run_backs_off_then_exits_checkpointed(tmp_path: Path, panel) -> None:  # type: ignore[no-untyped-def]
    with from_panel(panel, history=320) as fake:
        tr = trader(fake, tmp_path, outage_limit_s=1.5, max_bars=5)
        st = Stepper(fake, tr).start()
        fake.faults.burst_every, fake.faults.burst_len = 1, 10**9  # every call: HTTP 500
        t0 = time.monotonic()
        st.thread.join(60)
        assert not st.thread.is_alive()
        assert isinstance(st.error, BrokerUnavailable) and "gave up" in str(st.error)
        assert time.monotonic() - t0 < 1.5 + 35  # limit + one call's retry budget
        assert (tmp_path / "regime_aware/checkpoint.json").exists()


def test_live_needs_flag_and_live_url() -> None:
    assert endpoint_kind(None, False) == "paper"
    assert endpoint_kind("http://127.0.0.1:8765", False) == "custom"
    assert endpoint_kind("https://api.alpaca.markets", True) == "live"
    with pytest.raises(BrokerError, match="LIVE endpoint"):
        endpoint_kind("https://api.alpaca.markets", False)
    with pytest.raises(BrokerError, match="--live needs"):
        endpoint_kind("https://paper-api.alpaca.markets", True)
    with pytest.raises(BrokerError, match="--live needs"):
        endpoint_kind(None, True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_broker_down_at_start_is_one_line_and_nonzero_within_30s(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    paper = {"url": f"http://127.0.0.1:{_free_port()}", "state_dir": str(tmp_path / "s")}
    cfg.write_text(toml_of({**BASE, "paper": paper}))
    t0 = time.monotonic()
    r = run_paper_cli(cfg, timeout=60)
    took = time.monotonic() - t0
    assert r.returncode == 3
    assert took < 30
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "unavailable" in err[0]
    assert "Traceback" not in r.stderr + r.stdout


@pytest.mark.acceptance
@pytest.mark.timeout(120)
def test_hung_server_at_start_is_one_line_within_30s(tmp_path: Path) -> None:
    srv = socket.create_server(("127.0.0.1", 0))
    try:
        cfg = tmp_path / "c.toml"
        url = f"http://127.0.0.1:{srv.getsockname()[1]}"
        cfg.write_text(toml_of({**BASE, "paper": {"url": url, "state_dir": str(tmp_path)}}))
        t0 = time.monotonic()
        r = run_paper_cli(cfg, timeout=60)
        assert r.returncode == 3 and time.monotonic() - t0 < 30
        assert r.stderr.strip().splitlines() == [r.stderr.strip().splitlines()[-1]]
        assert "ReadTimeout" in r.stderr
    finally:
        srv.close()


def test_sip_refused_on_a_free_plan_is_one_line(tmp_path: Path, panel) -> None:  # type: ignore[no-untyped-def]
    with from_panel(panel, history=320) as fake:
        tr = trader(fake, tmp_path, feed="sip")
        with pytest.raises(BrokerError, match=r"feed=sip.*HTTP 403: subscription does not"):
            tr.run()

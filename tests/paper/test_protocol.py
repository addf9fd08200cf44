"""Alpaca protocol points (brokers/README.md, "Alpaca behaviours modelled"), each against a
server returning it: the project's local exchange with its fault settings (status aliases,
extra events, account state, Retry-After), through the real alpaca-py clients.

- ``calculated`` is final (and any order whose ``filled_qty == qty``); ``stopped``, ``held``,
  ``pending_new``, ``accepted_for_bidding`` are still working;
- trade-update events alpaca-py 0.44 cannot parse reach the loop (the stream is read raw);
- an account that may not trade is refused at start (exit 2, one line, no order) and stops
  the run mid-way (exit 3, one line, state checkpointed, no order after);
- a 429's ``Retry-After`` and ``X-RateLimit-Remaining: 0`` / ``-Reset`` are honoured.
"""

from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from brokers.alpaca import AlpacaBroker
from brokers.alpaca.rest import server_wait_s
from brokers.local_exchange import build_exchange
from brokers.local_exchange.settings import ExchangeSettings
from engine.config import parse_config
from engine.live.execution import Executor
from engine.live.ports import (
    AccountBlocked,
    Order,
    OrderStatus,
    TradeEvent,
    TradeUpdate,
    TradingHalted,
)
from tests.paper.conftest import BASE, Stepper, trader
from tests.paper.test_checkpoint import run_paper_cli, toml_of

HISTORY = 320


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", "k")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "s")


def exchange(panel: Any, **faults: Any) -> Any:
    s = ExchangeSettings(
        port=0, ws_port=0, mode="stepped", history_bars=HISTORY, faults=faults or {}
    )
    return build_exchange(parse_config(BASE), panel, s)


def order(status: str, qty: float = 10.0, filled: float = 0.0) -> Order:
    return Order("i", "c", "SPX", 1.0, qty, filled, OrderStatus.of(status))


# ---------------------------------------------------------------------- order statuses
@pytest.mark.parametrize(
    ("status", "final"),
    [
        ("calculated", True),
        ("filled", True),
        ("done_for_day", True),
        ("stopped", False),
        ("held", False),
        ("pending_new", False),
        ("pending_cancel", False),
        ("pending_replace", False),
        ("pending_review", False),
        ("accepted_for_bidding", False),
        ("accepted", False),
        ("new", False),
        ("partially_filled", False),
    ],
)
def test_which_statuses_are_final(status: str, final: bool) -> None:
    assert order(status).final is final
    assert order(status, filled=10.0).final  # filled_qty == qty: done, whatever the status


class Counters:
    """Cancels sent and waits that timed out, counted around the real classes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.cancels = 0
        self.timeouts = 0
        cancel, wait = AlpacaBroker.cancel, Executor.wait_final

        def counted_cancel(b: AlpacaBroker, order_id: str) -> bool:
            self.cancels += 1
            return cancel(b, order_id)

        def counted_wait(ex: Executor, *a: Any, **k: Any) -> bool:
            ok = wait(ex, *a, **k)
            self.timeouts += not ok
            return ok

        monkeypatch.setattr(AlpacaBroker, "cancel", counted_cancel)
        monkeypatch.setattr(Executor, "wait_final", counted_wait)


def run_sessions(ex: Any, tmp: Path, n: int, **paper: Any) -> tuple[Any, Stepper]:
    tr = trader(ex, tmp, max_bars=n, **paper)
    st = Stepper(ex, tr).start()
    return tr, st


@pytest.fixture(scope="module")
def plain_ids(panel: Any, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Client order ids the loop sends over 8 sessions against the plain exchange."""
    import os

    os.environ.setdefault("APCA_API_KEY_ID", "k")
    os.environ.setdefault("APCA_API_SECRET_KEY", "s")
    with exchange(panel) as ex:
        _, st = run_sessions(ex, tmp_path_factory.mktemp("plain"), 8)
        st.sessions(8)
        st.join()
        return [c for c, _ in ex.submissions]


def test_calculated_is_final(tmp_path: Path, panel, plain_ids, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Filled orders reported as ``calculated`` (REST and stream, plus a raw ``calculated``
    event after each fill): no cancel, no wait time-out, no order skipped as opposite-side
    open; the loop sends exactly what it sends against the plain exchange."""
    n = Counters(monkeypatch)
    alias = {"status_alias": {"filled": "calculated"}, "extra_events": {"fill": "calculated"}}
    with exchange(panel, **alias) as ex:
        tr, st = run_sessions(ex, tmp_path, 8)
        st.sessions(8)
        st.join()
        ids = [c for c, _ in ex.submissions]
        statuses = {o.status for o in tr.book.orders.values()}
    assert ids == plain_ids and all(code == 200 for _, code in ex.submissions)
    assert n.cancels == 0 and n.timeouts == 0
    assert OrderStatus.CALCULATED in statuses and OrderStatus.FILLED not in statuses
    assert not tr.book.open_orders()


@pytest.mark.parametrize("status", ["stopped", "held", "pending_new", "accepted_for_bidding"])
def test_working_statuses_stay_open(tmp_path: Path, panel, plain_ids, status: str) -> None:  # type: ignore[no-untyped-def]
    """Queued orders reported as ``status``: still open for the loop until they fill, and
    the run sends exactly what it sends against the plain exchange."""
    with exchange(panel, status_alias={"new": status}) as ex:
        tr, st = run_sessions(ex, tmp_path, 8)
        queued = tr.book.open_orders()  # the first decision's orders wait for the open
        assert queued and {o.status for o in queued} == {OrderStatus(status)}
        st.sessions(8)
        st.join()
        ids = [c for c, _ in ex.submissions]
    assert ids == plain_ids and all(code == 200 for _, code in ex.submissions)


# ---------------------------------------------------------------------- raw trade events
UNPARSED = [
    "done_for_day",
    "calculated",
    "stopped",
    "suspended",
    "order_replace_rejected",
    "order_cancel_rejected",
]


def test_events_alpaca_py_cannot_parse_reach_the_loop(panel) -> None:  # type: ignore[no-untyped-def]
    """Each event alpaca-py's ``TradeEvent`` lacks arrives as the engine's event, and the
    stream keeps going (the fill after it arrives too)."""
    got: list[TradeUpdate] = []
    seen = threading.Event()

    def handler(u: TradeUpdate) -> None:
        got.append(u)
        seen.set()

    with exchange(panel) as ex:
        b = AlpacaBroker(url=ex.url, stream_url=f"{ex.ws_url}/stream", backoff_s=0.01)
        b.stream_trade_updates(handler)
        deadline = time.monotonic() + 10
        while ex.status()["tu_clients"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        try:
            for i, name in enumerate(UNPARSED):
                ex.inject(extra_events={"new": name})
                b.submit("SPX", 1.0, f"raw-{i}")
                deadline = time.monotonic() + 5
                while name not in {u.event.value for u in got} and time.monotonic() < deadline:
                    time.sleep(0.01)
            ex.inject(extra_events={})
            ex.step(to="open")  # the queued orders fill: events after the unparsed ones
            deadline = time.monotonic() + 5
            while (
                sum(u.event == TradeEvent.FILL for u in got) < len(UNPARSED)
                and time.monotonic() < deadline
            ):
                time.sleep(0.01)
        finally:
            b.close()
    events = [u.event.value for u in got]
    for name in UNPARSED:
        assert name in events, (name, events)
    assert events.count("fill") == len(UNPARSED)
    assert b.unreadable == 0


# ---------------------------------------------------------------------- account state
@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"trading_blocked": True}, "trading_blocked"),
        ({"account_blocked": True}, "account_blocked"),
        ({"trade_suspended_by_user": True}, "trade_suspended_by_user"),
        ({"account_status": "ACCOUNT_CLOSED"}, "status=ACCOUNT_CLOSED"),
    ],
)
def test_blocked_account_is_refused_at_start(tmp_path: Path, panel, fault, reason) -> None:  # type: ignore[no-untyped-def]
    with exchange(panel, **fault) as ex:
        tr = trader(ex, tmp_path, max_bars=3)
        with pytest.raises(AccountBlocked, match=reason):
            tr.run()
        assert ex.submissions == [] and ex.status()["tu_clients"] == 0
    assert not (tmp_path / "regime_aware/checkpoint.json").exists()


def test_blocked_account_at_start_cli_is_exit_2_one_line(tmp_path: Path, panel) -> None:  # type: ignore[no-untyped-def]
    with exchange(panel, account_status="ACCOUNT_CLOSED", account_blocked=True) as ex:
        cfg = tmp_path / "c.toml"
        paper = {"url": ex.url, "stream_url": ex.ws_url, "state_dir": str(tmp_path / "s")}
        cfg.write_text(toml_of({**BASE, "paper": paper}))
        r = run_paper_cli(cfg)
        assert ex.submissions == []
    assert r.returncode == 2, r.stderr
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: account "), err
    assert "may not trade" in err[0] and "status=ACCOUNT_CLOSED" in err[0]


def test_blocked_mid_run_stops_checkpointed_without_orders(tmp_path: Path, panel) -> None:  # type: ignore[no-untyped-def]
    """Trading blocked after some sessions: the next decision sends nothing, the state is
    checkpointed (that decision redone on restart) and the run ends with TradingHalted."""
    with exchange(panel) as ex:
        tr, st = run_sessions(ex, tmp_path, 40)
        st.sessions(3)
        before = list(ex.submissions)
        ck = tmp_path / "regime_aware/checkpoint.json"
        ex.inject(trading_blocked=True)
        st.sessions(30)  # the next rebalance decision finds the account blocked
        st.thread.join(30)
        assert not st.thread.is_alive()
        assert isinstance(st.error, TradingHalted), st.error
        assert "may no longer trade (trading_blocked)" in str(st.error)
        assert ex.submissions == before  # nothing sent (not even refused) after the block
        assert ck.exists()
        # restart once unblocked: the halted decision is redone and trades
        ex.inject(trading_blocked=False)
        tr2 = trader(ex, tmp_path, max_bars=1)
        assert tr2.resume() and tr2.trader.last_ts is not None
        assert tr2.trader.last_ts < int(tr.trader.last_ts or 0)


def test_blocked_mid_run_cli_exit_3_one_line(tmp_path: Path, panel, capsys) -> None:  # type: ignore[no-untyped-def]
    """``paper`` (the CLI's handler) on the in-memory venue: blocked after the first
    decision -> exit 3, one line on stderr, checkpoint written."""
    import structlog

    from engine.live.cli import cmd_paper
    from engine.live.testing import fake_venue

    structlog.reset_defaults()  # log lines on stdout whatever an earlier test configured
    v = fake_venue(panel, HISTORY)
    clock, broker = v.clock, v.broker

    def block(kind: str, s: Any) -> None:
        if kind == "close":
            broker.blocked = "account_blocked, status=ACCOUNT_CLOSED"

    clock.listeners.append(block)  # type: ignore[attr-defined]
    cfg = tmp_path / "c.toml"
    cfg.write_text(toml_of({**BASE, "paper": {"state_dir": str(tmp_path / "s")}}))
    args = argparse.Namespace(config=str(cfg))
    rc = cmd_paper(args, lambda req: v)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 3, err
    assert (
        len(err) == 1 and "may no longer trade (account_blocked, status=ACCOUNT_CLOSED)" in err[0]
    )
    assert len(broker.submissions) > 0 and not broker.refusals  # the first decision only
    assert (tmp_path / "s/regime_aware/checkpoint.json").exists()


# ---------------------------------------------------------------------- rate limits
def test_server_wait_reads_retry_after_and_reset() -> None:
    now = 1_000_000.0
    assert server_wait_s({"Retry-After": "3"}, 429, now) == 3.0
    http_date = "Mon, 12 Jan 1970 13:46:43 GMT"  # now + 3 s as an HTTP date
    assert server_wait_s({"Retry-After": http_date}, 429, now) == pytest.approx(3.0)
    assert server_wait_s({"X-RateLimit-Reset": str(now + 2)}, 429, now) == 2.0
    reset = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(now + 4)}
    assert server_wait_s(reset, 200, now) == 4.0
    assert server_wait_s({"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "9e9"}, 200, now) == 0
    assert server_wait_s({}, 429, now) == 0.0


def test_retry_after_on_429_is_honoured(panel) -> None:  # type: ignore[no-untyped-def]
    """A 429 with ``Retry-After: 2``: the retry comes no sooner than 2 s later (alpaca-py's
    own retry would wait 3 s whatever the header; the old back-off 0.05-0.1 s)."""
    with exchange(panel, retry_after_s=2) as ex:
        b = AlpacaBroker(url=ex.url, backoff_s=0.01, retry_budget_s=30)
        b.clock()
        calls = ex.rest_calls
        ex.inject(http_error=429)
        t0 = time.monotonic()
        b.clock()
        took = time.monotonic() - t0
    assert ex.rest_calls == calls + 2 and b.retried == 1
    assert 2.0 <= took < 4.0


def test_rate_limit_remaining_zero_holds_the_next_request(panel) -> None:  # type: ignore[no-untyped-def]
    """``X-RateLimit-Remaining: 0`` with ``X-RateLimit-Reset`` in 1-2 s on a response: the
    next request waits for the reset instead of drawing a 429."""
    with exchange(panel) as ex:
        b = AlpacaBroker(url=ex.url, backoff_s=0.01)
        session = b.client._session
        reset = time.time() + 1.5
        session.observe({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)}, 200)
        b.clock()
    assert time.time() >= reset - 0.05 and session.waited_s > 1.0

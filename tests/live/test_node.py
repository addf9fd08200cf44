"""The loop (engine.live.node) on the in-memory venue (engine.live.testing): a steppable clock,
a FakeBroker, no HTTP, no threads, no sleeps. Warm-up without orders, only the latest decision
trades, a restart after a kill never resubmits, the broker's book is the truth (external
changes, rejects, partial fills), and a kill anywhere around the commit leaves each decision
in the journal exactly once."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from engine.assemble import load_panel
from engine.config import parse_config
from engine.live.cli import build_node
from engine.live.node import Node
from engine.live.planning import client_order_id
from engine.live.testing import FakeBroker, SteppableClock, fake_venue
from tests.paper.conftest import BASE

HISTORY = 320


class Killed(BaseException):
    """The process dies here (nothing after it runs; no handler catches it)."""


@pytest.fixture(scope="module")
def panel():  # type: ignore[no-untyped-def]
    return load_panel(parse_config(BASE))


def node(state: Path, venue: Any, **paper: Any) -> Node:
    cfg = parse_config({**BASE, "paper": {"state_dir": str(state), **paper}})
    n = build_node(cfg, None, lambda req: venue)
    n.resume()
    n.connect()
    return n


def parts(venue: Any) -> tuple[SteppableClock, FakeBroker]:
    return venue.clock, venue.broker


def ids_for(panel: Any, t: int) -> set[str]:
    ts = int(panel.timestamps_ns[t])
    return {
        client_order_id("t", "regime_aware", ts, s, leg) for s in panel.symbols for leg in "sab"
    }


def journal(state: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (state / "regime_aware/decisions.jsonl").open()]


def assert_at_targets(broker: FakeBroker, desired: dict[str, float], panel: Any) -> None:
    for s, want in desired.items():
        gap = abs(broker.held.get(s, 0.0) - want)
        price = broker.price(s)
        assert gap <= 1e-9 * (1 + abs(want)) or gap * price < 1.0, (s, broker.held.get(s), want)


def test_warm_up_places_no_order_and_only_the_latest_decision_trades(tmp_path, panel) -> None:  # type: ignore[no-untyped-def]
    v = fake_venue(panel, HISTORY)
    clock, broker = parts(v)
    n = node(tmp_path, v)
    assert n.poll() == HISTORY
    assert broker.submissions and set(broker.submissions) <= ids_for(panel, HISTORY - 1)
    dec = journal(tmp_path)
    assert [d["phase"] for d in dec] == ["warmup"] * (HISTORY - 1) + ["live"]
    assert [d["bar"] for d in dec] == list(range(HISTORY))
    assert n.summary.warmup_bars == HISTORY - 1 and n.summary.decisions == 1
    first = len(broker.submissions)
    clock.step()  # the queued orders fill at the open; session 320 closes
    assert all(o.final for o in broker.orders.values())
    assert n.poll() == 1
    assert set(broker.submissions[first:]) <= ids_for(panel, HISTORY)
    assert n.poll() == 0 and journal(tmp_path)[-1]["bar"] == HISTORY
    assert not broker.refusals and all(q >= 0 for q in broker.min_position.values())


def test_start_during_a_session_waits_for_the_close(tmp_path, panel) -> None:  # type: ignore[no-untyped-def]
    v = fake_venue(panel, HISTORY)
    clock, broker = parts(v)
    # session 320 in progress: bar 319's fill time (the open) has passed
    clock.advance_to(clock.sessions[HISTORY].open + timedelta(minutes=5))
    n = node(tmp_path, v)
    assert n.poll() == HISTORY and broker.submissions == []
    clock.to_close()
    assert n.poll() == 1
    assert broker.submissions and set(broker.submissions) <= ids_for(panel, HISTORY)


def test_restart_that_missed_sessions_acts_once_on_the_latest(tmp_path, panel) -> None:  # type: ignore[no-untyped-def]
    v = fake_venue(panel, HISTORY)
    clock, broker = parts(v)
    node(tmp_path, v).poll()
    before = len(broker.submissions)
    for _ in range(5):  # the loop is down for five sessions
        clock.step()
    n = node(tmp_path, v)
    assert n.resumed and n.poll() == 5
    assert set(broker.submissions[before:]) <= ids_for(panel, HISTORY + 4)
    assert [d["phase"] for d in journal(tmp_path)[HISTORY:]] == ["warmup"] * 4 + ["live"]
    assert n.summary.catchup_bars == 4


@pytest.mark.parametrize("kill", ["after the first order", "before the commit"])
def test_restart_after_a_kill_does_not_resubmit(tmp_path, panel, kill: str) -> None:  # type: ignore[no-untyped-def]
    v = fake_venue(panel, HISTORY)
    clock, broker = parts(v)
    n = node(tmp_path, v)
    if kill == "after the first order":
        n.ex.on_sent = lambda: (_ for _ in ()).throw(Killed())  # type: ignore[union-attr]
    else:
        commit = n.journal.commit

        def dying_commit(state: dict[str, Any]) -> None:
            if n.summary.decisions:  # the decision is done: die before it is committed
                raise Killed
            commit(state)

        n.journal.commit = dying_commit  # type: ignore[method-assign]
    with pytest.raises(Killed):
        n.poll()
    sent = list(broker.submissions)
    assert sent
    again = node(tmp_path, v)  # same state folder, same broker
    assert again.resumed and again.poll() == 1
    assert len(broker.submissions) == len(set(broker.submissions)), "an id was sent twice"
    assert set(broker.submissions) <= ids_for(panel, HISTORY - 1)
    if kill == "before the commit":
        assert broker.submissions == sent  # everything was at the broker already
    dec = journal(tmp_path)
    assert [d["bar"] for d in dec] == list(range(HISTORY)), "a journal line repeats"
    clock.to_open()  # the redone decision's orders (and the first life's) fill
    assert_at_targets(broker, dec[-1]["desired"], panel)
    clock.to_close()
    assert again.poll() == 1 and not broker.refusals


@pytest.mark.parametrize("where", ["before the append", "half way through the append"])
def test_a_kill_during_the_commit_leaves_no_duplicated_journal_line(  # type: ignore[no-untyped-def]
    tmp_path, panel, where: str
) -> None:
    """The checkpoint (with the decision lines) is written; the process dies before or while
    the lines reach decisions.jsonl: the restart writes them once."""
    v = fake_venue(panel, HISTORY)
    clock, _ = parts(v)
    n = node(tmp_path, v)
    n.poll()
    clock.step()
    append = n.journal._append

    def dying_append(lines: list[dict[str, Any]]) -> None:
        if any(x["phase"] == "live" for x in lines):
            if where != "before the append":
                data = "".join(json.dumps(x) + "\n" for x in lines).encode()
                with n.journal.decisions_path.open("ab") as f:
                    f.write(data[: len(data) // 2])
            raise Killed
        append(lines)

    n.journal._append = dying_append  # type: ignore[method-assign]
    with pytest.raises(Killed):
        n.poll()
    again = node(tmp_path, v)
    assert again.trader.bars == HISTORY + 1  # the decision was committed: not redone
    assert again.poll() == 0
    clock.step()
    assert again.poll() == 1
    dec = journal(tmp_path)
    assert [d["bar"] for d in dec] == list(range(HISTORY + 2)), "a journal line repeats"
    assert [d["phase"] for d in dec[-3:]] == ["live"] * 3


def test_the_book_is_reconciled_to_the_brokers(tmp_path, panel) -> None:  # type: ignore[no-untyped-def]
    v = fake_venue(panel, HISTORY)
    clock, broker = parts(v)
    n = node(tmp_path, v)
    n.poll()
    clock.step()
    spx = broker.held["SPX"]
    broker.held["SPX"] = spx / 2  # shares gone at the broker behind the loop's back
    broker.cash += spx / 2 * broker.price("SPX")
    n.poll()
    last = journal(tmp_path)[-1]
    assert last["gap"]["frac"] > 0.05, last["gap"]
    assert any(o["symbol"] == "SPX" and o["qty"] > 0 for o in last["sent"])
    clock.to_open()  # the decision's orders fill
    assert_at_targets(broker, last["desired"], panel)


def test_rejects_and_partial_fills_are_closed_by_the_next_decisions(tmp_path, panel) -> None:  # type: ignore[no-untyped-def]
    v = fake_venue(panel, HISTORY)
    clock, broker = parts(v)
    broker.reject, broker.partial = {"SPX"}, {"UST10": 0.5}
    n = node(tmp_path, v)
    n.poll()
    clock.step()  # UST10 half filled at the open, the rest expires at the close
    assert n.summary.rejected >= 1 and "SPX" not in broker.held
    statuses = {o.symbol: o.status.value for o in broker.orders.values()}
    assert statuses["SPX"] == "rejected" and statuses["UST10"] == "expired"
    assert 0 < broker.held["UST10"]
    broker.reject, broker.partial = set(), {}
    n.poll()
    last = journal(tmp_path)[-1]
    assert last["gap"]["frac"] > 0.1  # SPX and half of UST10 missing
    clock.to_open()
    assert_at_targets(broker, last["desired"], panel)
    waits = []
    wait = n.ex.wait_final  # type: ignore[union-attr]
    n.ex.wait_final = lambda *a, **k: waits.append(a) or wait(*a, **k)  # type: ignore[union-attr,method-assign]
    for _ in range(40):  # two months: rebalances whose buys wait for their sells to fill
        clock.to_close()  # (a wait for the sells moved the clock to the next open)
        n.poll()
    assert waits, "no decision deferred its buys"
    assert not broker.refusals, broker.refusals
    assert all(q >= -1e-12 for q in broker.min_position.values())
    assert len(broker.submissions) == len(set(broker.submissions))
    live = [d for d in journal(tmp_path) if d["phase"] == "live"]
    assert len(live) == 42
    assert np.isfinite([d["equity"] for d in live]).all()

"""Real-time replay with faults and SIGKILLs, the paper loop in a subprocess.

A bar every fraction of a second (the server's own clock, not stepped); injected rejects,
partial fills, 429s, 5xx bursts and dropped sockets; the loop is SIGKILLed at seeded random
moments and restarted. Checks: no client order id sent twice, the broker never short, the
broker's final positions (plus what the last decision queued, when the exchange ends before
the next open) = the last decision's targets within one rounding step (or a gap under the $1
minimum notional). The CI version is short; the acceptance one does 5
kills on both servers (``pytest -m acceptance tests/paper/test_replay.py``).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from brokers.local_exchange import build_exchange
from brokers.local_exchange.settings import ExchangeSettings, FaultSettings
from engine.config import parse_config
from tests.paper.conftest import BASE
from tests.paper.fake_alpaca import Faults, from_panel
from tests.paper.test_checkpoint import toml_of

ROOT = Path(__file__).resolve().parents[2]
HISTORY = 320


def _start(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "paper", str(cfg)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def replay(
    tmp_path: Path, panel: Any, server: str, *, kills: int, sessions: int, sps: float, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    n = HISTORY + sessions
    if server == "fake":
        ex = from_panel(panel, history=HISTORY, seconds_per_session=sps, seed=seed)
        ex.dates, ex.opens, ex.closes = ex.dates[:n], ex.opens[:n], ex.closes[:n]
        ex.faults = Faults(
            reject_rate=0.05,
            partial_rate=0.15,
            rate_limit_rate=0.02,
            burst_every=60,
            burst_len=3,
            drop_every_s=2.0,
        )
    else:
        end = str(panel.index[n - 1].date())
        cfg = parse_config({**BASE, "data": {**BASE["data"], "end": end}})
        from engine.assemble import load_panel

        p2 = load_panel(cfg)
        faults = FaultSettings(
            reject_rate=0.05,
            partial_fill_rate=0.15,
            rate_limit_rate=0.02,
            error_burst_every=60,
            error_burst_len=3,
            drop_socket_every_s=2.0,
        )
        settings = ExchangeSettings(
            port=0,
            ws_port=0,
            mode="realtime",
            seconds_per_session=sps,
            history_bars=HISTORY,
            seed=seed,
            faults=faults,
        )
        ex = build_exchange(cfg, p2, settings)
    ex.start()
    state = tmp_path / "state"
    paper = {
        "broker": "local",
        "url": ex.url,
        "stream_url": ex.ws_url,
        "state_dir": str(state),
        "poll_s": 0.02,
        "sell_fill_timeout_s": 2.0,
        "idle_exit_s": 20.0,
    }
    cfg_path = tmp_path / "paper.toml"
    cfg_path.write_text(toml_of({**BASE, "paper": paper}))
    log = tmp_path / "paper.log"
    try:
        t_start = time.monotonic()
        hold = ex.paused if server == "fake" else None

        def up(k: int) -> subprocess.Popen[bytes]:
            """Start the loop; the fake's clock waits for it (process starts are slow on a
            loaded machine), the local exchange's does not."""
            p = _start(cfg_path, log)
            deadline = time.monotonic() + 60
            while log.read_text().count("paper.start") <= k and time.monotonic() < deadline:
                time.sleep(0.02)
            if hold is not None:
                hold.clear()
            return p

        for k in range(kills):
            if hold is not None:
                hold.set()
            p = up(k)
            time.sleep(rng.uniform(0.5, 4.0))  # a seeded random moment after it is up
            p.send_signal(signal.SIGKILL)
            p.wait(30)
        if hold is not None:
            hold.set()
        p = up(kills)
        # faults off for the last sessions so that the final book can settle
        while (ex.cur if server == "fake" else ex.bar) < n - 8:
            time.sleep(0.05)
        if server == "fake":
            ex.faults = Faults()
        else:
            ex.inject(
                reject_rate=0.0,
                partial_fill_rate=0.0,
                rate_limit_rate=0.0,
                error_burst_every=0,
                drop_socket_every_s=0.0,
            )
        rc = p.wait(300)
        out = log.read_text()
        assert rc == 0, out[-3000:]
        assert "Traceback" not in out
        dec = [json.loads(x) for x in (state / "regime_aware/decisions.jsonl").open()]
        live = [d for d in dec if d["phase"] == "live"]
        last = live[-1]  # the last decision traded (n - 2 unless overtaken by the clock)
        assert last["bar"] >= n - 5, "the loop stopped trading before the end"
        # orders the last decision queued count when the exchange ended before its open
        if server == "fake":
            held = dict(ex.positions)
            for o in ex.orders.values():
                if o.open:
                    sign = 1.0 if o.side == "buy" else -1.0
                    held[o.symbol] = held.get(o.symbol, 0.0) + sign * (o.qty - o.filled)
            accepted = ex.submissions
            refused_dup = 0  # the fake refuses duplicates; it records only accepted ids
            never_short = all(q >= -1e-12 for q in ex.min_position.values())
            rejected = sum(o.status == "rejected" for o in ex.orders.values())
            partial = sum(o.partial for o in ex.orders.values())
        else:
            held = ex.broker.positions()
            for o in ex.broker.orders.values():
                if o.is_open:
                    sign = 1.0 if o.side == "buy" else -1.0
                    held[o.symbol] = held.get(o.symbol, 0.0) + sign * (o.qty - o.filled_qty)
            accepted = [c for c, code in ex.submissions if code == 200]
            refused_dup = sum(
                1
                for i, (c, code) in enumerate(ex.submissions)
                if code == 422 and c in {x for x, k in ex.submissions[:i] if k == 200}
            )
            never_short = all(q >= 0 for q in ex.broker.positions().values())
            rejected = sum(1 for o in ex.broker.orders.values() if o.status == "rejected")
            partial = sum(1 for o in ex.broker.orders.values() if 0 < o.filled_qty < o.qty)
        assert len(accepted) == len(set(accepted)), "a client order id was accepted twice"
        assert refused_dup == 0, "the loop re-sent an id the broker already had"
        assert never_short
        px = dict(zip(panel.symbols, panel.close[n - 1], strict=True))
        worst = 0.0
        for s, want in last["desired"].items():
            gap = abs(held.get(s, 0.0) - want)
            worst = max(worst, gap * px[s])
            assert gap <= 1e-9 * (1 + want) or gap * px[s] < 1.0, (s, held.get(s), want)
        return {
            "orders": len(accepted),
            "rejected": rejected,
            "partial": partial,
            "worst_gap_usd": worst,
            "seconds": time.monotonic() - t_start,
            "starts": out.count("paper.start"),
            "kills_mid_decision": kills,
        }
    finally:
        ex.stop()


def test_replay_short_ci(tmp_path: Path, panel) -> None:  # type: ignore[no-untyped-def]
    stats = replay(tmp_path, panel, "fake", kills=2, sessions=50, sps=0.6, seed=11)
    assert stats["orders"] > 5


@pytest.mark.acceptance
@pytest.mark.timeout(1800)  # 280 sessions at 0.4 s each, five restarts, per server
@pytest.mark.parametrize("server", ["fake", "local"])
def test_replay_five_sigkills(tmp_path: Path, panel, server: str) -> None:  # type: ignore[no-untyped-def]
    stats = replay(tmp_path, panel, server, kills=5, sessions=280, sps=0.4, seed=7)
    print(f"\nreplay {server}: {stats}")
    assert stats["rejected"] > 0 and stats["partial"] > 0

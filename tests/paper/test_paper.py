"""Paper trading through alpaca-py against the local exchange: parity with the backtest,
restart safety under SIGKILL, config errors."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from brokers.local_exchange import build_exchange
from brokers.paper import PaperTrader, client_order_id, parse_paper
from engine.api import load_panel, run_backtest
from engine.config import ConfigError, parse_config

ROOT = Path(__file__).resolve().parents[2]
DATA = {
    "source": "bundled:classic",
    "start": "2005-01-01",
    "end": "2005-08-10",
    "symbols": ["SPX", "UST10", "WTI", "CASH"],
}
STRATEGY = {
    "kind": "regime",
    "name": "regime_aware",
    "rebalance": "M",
    "warmup": {"SPX": 0.6, "UST10": 0.4},
    "table": {
        "calm": {"SPX": 0.7, "UST10": 0.2, "WTI": 0.1},
        "volatile": {"SPX": 0.35, "UST10": 0.5, "CASH": 0.15},
        "crisis": {"SPX": 0.05, "UST10": 0.6, "CASH": 0.35},
    },
}
# a short trailing history so the rule detector speaks and switches within the window:
# parity is then shown across regime changes, not only warm-up and calendar rebalances
DETECTOR = {"kind": "rule", "market": "SPX", "history": 40, "min_history": 20}
BASE = {
    "name": "t",
    "data": DATA,
    "features": {"ma_window": 20},
    "costs": {"commission_bps": 5.0},
    "detector": DETECTOR,
    "strategies": [STRATEGY],
}


@pytest.fixture(scope="module")
def backtest():  # type: ignore[no-untyped-def]
    result = run_backtest(parse_config(BASE), progress=False)
    smoothed = result.regimes["smoothed_state"].to_numpy()
    assert (smoothed[1:] != smoothed[:-1]).sum() >= 3  # the window has regime switches
    return result.runs["regime_aware"]


def paper_cfg(ex, state_dir: Path, **extra):  # type: ignore[no-untyped-def]
    paper = {
        "step_exchange": True,
        "bar_timeout_s": 2.0,
        "state_dir": str(state_dir),
        "exchange": {"port": ex.port, "ws_port": ex.ws_port},
        **extra,
    }
    return {**BASE, "paper": paper}


def expected_positions(run) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Backtest positions, summed in fill order like the broker (kernel records)."""
    symbols = list(run.weights.columns)
    pos = np.zeros(len(symbols))
    for rec in run.raw_fills:
        pos[int(rec[1])] += rec[2]
    return {s: float(q) for s, q in zip(symbols, pos) if q != 0}


def test_paper_matches_backtest(tmp_path: Path, backtest) -> None:  # type: ignore[no-untyped-def]
    cfg0 = parse_config(BASE)
    panel = load_panel(cfg0)
    with build_exchange(cfg0, panel) as ex:
        trader = PaperTrader(parse_config(paper_cfg(ex, tmp_path)))
        assert trader.run() == panel.n_bars
        dec = [json.loads(x) for x in (tmp_path / "regime_aware/decisions.jsonl").open()]
        orders = np.array([[d["orders"].get(s, 0.0) for s in panel.symbols] for d in dec])
        targets = np.array(
            [
                [np.nan] * panel.n_assets
                if d["targets"] is None
                else [d["targets"][s] for s in panel.symbols]
                for d in dec
            ]
        )
        # same targets and orders, bar for bar, bit for bit
        np.testing.assert_array_equal(orders, backtest.orders.to_numpy())
        np.testing.assert_array_equal(targets, backtest.targets.to_numpy())
        assert np.count_nonzero(orders) > 5
        # the exchange filled them like the backtest did
        got = ex.broker.positions()
        assert got.keys() == expected_positions(backtest).keys()
        for s, q in expected_positions(backtest).items():
            assert got[s] == pytest.approx(q, rel=1e-9)
        ids = [c for c, _ in ex.submissions]
        assert len(ids) == len(set(ids)) == np.count_nonzero(orders)
        assert ids[0] == client_order_id(
            "t",
            "regime_aware",
            dec[0]["ts"] if orders[0].any() else next(d["ts"] for d in dec if d["orders"]),
            next(iter(next(d["orders"] for d in dec if d["orders"]))),
        )


def _start(cfg_path: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "paper", str(cfg_path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def test_sigkill_restarts_never_double_submit(tmp_path: Path, backtest) -> None:  # type: ignore[no-untyped-def]
    import tomllib  # noqa: F401  (config written as JSON-compatible TOML below)

    cfg0 = parse_config(BASE)
    panel = load_panel(cfg0)
    order_bars = [int(t) for t in np.flatnonzero(backtest.orders.to_numpy().any(axis=1))]
    rng = random.Random(7)
    with build_exchange(cfg0, panel) as ex:
        cfg_path = tmp_path / "paper.toml"
        cfg_path.write_text(_toml(paper_cfg(ex, tmp_path / "state")))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        # 1: die right after submitting a rebalance bar's first order, before its checkpoint
        crash_bar = rng.choice(order_bars[1:4])
        p = _start(cfg_path, {**env, "REGIME_ENGINE_PAPER_CRASH_AT": str(crash_bar)})
        assert p.wait(120) == -signal.SIGKILL
        # 2, 3: SIGKILL from outside at random bars
        for _ in range(2):
            target = min(ex.bar + rng.randint(5, 30), panel.n_bars - 5)
            p = _start(cfg_path, env)
            deadline = time.monotonic() + 120
            while ex.bar < target and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.005)
            p.send_signal(signal.SIGKILL)
            p.wait(30)
        assert 0 < ex.bar < panel.n_bars - 1
        # finish
        p = _start(cfg_path, env)
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err.decode()[-2000:]
        assert ex.done
        ids = [c for c, _ in ex.submissions]
        assert len(ids) == len(set(ids)), "a client order id was submitted twice"
        assert all(code == 200 for _, code in ex.submissions)
        got = ex.broker.positions()
        for s, q in expected_positions(backtest).items():
            assert got[s] == pytest.approx(q, rel=1e-9)
        assert got.keys() == expected_positions(backtest).keys()


def _toml(d: dict, prefix: str = "") -> str:
    """Tiny TOML writer for the test config (tables, scalars, lists, inline maps)."""

    def val(v):  # type: ignore[no-untyped-def]
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)

    scal = [
        f"{k} = {val(v)}"
        for k, v in d.items()
        if not isinstance(v, dict | list)
        or (isinstance(v, list) and not any(isinstance(x, dict) for x in v))
    ]
    out = "\n".join(scal) + "\n"
    for k, v in d.items():
        if isinstance(v, dict):
            out += f"\n[{prefix}{k}]\n" + _toml(v, f"{prefix}{k}.").split("\n[", 1)[0]
            rest = _toml(v, f"{prefix}{k}.")
            if "\n[" in rest:
                out += "\n[" + rest.split("\n[", 1)[1]
        elif isinstance(v, list) and any(isinstance(x, dict) for x in v):
            for x in v:
                body = "\n".join(f"{a} = {val(b)}" for a, b in x.items())
                out += f"\n[[{prefix}{k}]]\n{body}\n"
    return out


def test_paper_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"paper\.bar_timout_s: unknown key"):
        parse_paper({"bar_timout_s": 1})
    with pytest.raises(ConfigError, match=r"paper\.exchange\.port"):
        parse_paper({"exchange": {"port": "x"}})
    with pytest.raises(ConfigError, match=r"paper\.strategy"):
        PaperTrader(parse_config({**BASE, "paper": {"strategy": "nope"}}))
    with pytest.raises(ConfigError, match=r"paper\.live"):
        PaperTrader(parse_config({**BASE, "paper": {"live": True}}))

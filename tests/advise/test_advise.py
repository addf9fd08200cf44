"""`regime-engine advise`: warning in 2008-10, none on a calm 2006 date, JSON output,
trades that bring holdings to the targets, the bus message, no look-ahead of --as-of."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import numpy as np
import pytest

from engine.advise import (
    EXIT_WARNING,
    Holdings,
    advise,
    conditional_var,
    load_positions,
    split_config,
)
from engine.cli import main

ROOT = Path(__file__).resolve().parents[2]
FAST = {"refit_every = 126": "refit_every = 252", "n_restarts = 2": "n_restarts = 1"}


@functools.cache
def _config(tmp: str = "/tmp") -> Path:
    text = (ROOT / "configs" / "advise.toml").read_text()
    for a, b in FAST.items():
        assert a in text
        text = text.replace(a, b)
    p = Path(tmp) / "advise_fast_test.toml"
    p.write_text(text)
    return p


@functools.cache
def _advice(as_of: str, with_positions: bool = False) -> dict:
    cfg, adv = split_config(_config())
    h = Holdings({"SPX": 300.0, "RUT": 1000.0}, 50_000.0) if with_positions else None
    return advise(cfg, adv, h, as_of)


def test_warning_fires_inside_2008_10(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["advise", str(_config()), "--as-of", "2008-10-15"])
    out = capsys.readouterr().out
    assert code == EXIT_WARNING
    assert "as of 2008-10-15" in out and "RISK WARNING" in out
    assert re.search(r"var_10d_99", out)


def test_no_warning_on_a_calm_2006_date() -> None:
    a = _advice("2006-11-15")
    assert a["as_of"] == "2006-11-15"
    assert not a["warning"]["active"], a["warning"]
    assert a["regime"]["label"] == "calm"


def test_json_output_parses(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    pos = tmp_path / "pos.csv"
    pos.write_text("symbol,qty\nSPX,300\nRUT,1000\ncurrency,50000\n")
    code = main(
        ["advise", str(_config()), "--as-of", "2008-10-15", "--json", "--positions", str(pos)]
    )
    a = json.loads(capsys.readouterr().out)
    assert code == EXIT_WARNING and a["warning"]["active"]
    assert a["as_of"] == "2008-10-15"
    assert abs(sum(a["regime"]["probabilities"].values()) - 1.0) < 1e-9
    assert a["regime"]["duration_bars"] >= 1
    for part in ("target", "current"):
        r = a["risk"][part]
        assert 0 < r["var_1d_95"] <= r["cvar_1d_95"]
        assert r["var_1d_95"] <= r["var_1d_99"]
        assert r["var_10d_99"] > r["var_1d_99"]


def test_trades_bring_holdings_to_targets() -> None:
    a = _advice("2008-10-15", True)
    held = dict(a["holdings"])
    for t in a["trades"]:
        held[t["symbol"]] += t["qty"]
        assert t["value"] == pytest.approx(t["qty"] * a["prices"][t["symbol"]])
    value = a["portfolio_value"]
    assert value == pytest.approx(50_000 + 300 * a["prices"]["SPX"] + 1000 * a["prices"]["RUT"])
    for s, w in a["target_weights"].items():
        assert held[s] * a["prices"][s] == pytest.approx(w * value, rel=1e-9, abs=1e-6)
    # the crisis row of the configured table
    assert a["target_weights"] == pytest.approx(
        {"SPX": 0.05, "RUT": 0.0, "DAX": 0.0, "N225": 0.0, "UST10": 0.6, "CASH": 0.35}
    )


def test_as_of_sees_no_later_bar() -> None:
    """The advice as of a date depends on bars up to that date only (the data is cut)."""
    from engine.advise import cut_panel
    from engine.assemble import load_panel

    cfg, _ = split_config(_config())
    p = cut_panel(load_panel(cfg), "2008-10-15")
    assert str(p.index[-1].date()) == "2008-10-15"
    a = _advice("2008-10-15")
    assert a["prices"]["SPX"] == pytest.approx(float(p.close[-1, p.column("SPX")]))


def test_positions_toml_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    t = tmp_path / "pos.toml"
    t.write_text("cash = 1000.0\n[positions]\nSPX = 2\nUST10 = 3.5\n")
    h = load_positions(t)
    assert h.cash == 1000.0 and h.qty == {"SPX": 2.0, "UST10": 3.5}
    bad = tmp_path / "bad.toml"
    bad.write_text("[positions]\nAAPL = 1\n")
    code = main(["advise", str(_config()), "--as-of", "2006-11-15", "--positions", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "AAPL" in err and len(err.strip().splitlines()) == 1


def test_conditional_var_methods() -> None:
    rng = np.random.default_rng(0)
    r = rng.normal(0, 0.01, size=(2000, 2))
    mask = np.zeros(2000, dtype=bool)
    mask[:1000] = True
    w = np.array([0.5, 0.5])
    out = conditional_var(r, mask, w, (0.99,), 10, 60, 60)
    assert out["conditioned"] and out["bars"] == 1000 and out["method_10d"] == "overlapping"
    assert out["var_1d_99"] == pytest.approx(-np.quantile(r[:1000] @ w, 0.01))
    short = conditional_var(r, np.arange(2000) % 3 == 0, w, (0.99,), 10, 60, 60)
    assert short["method_10d"] == "sqrt_time"
    assert short["var_10d_99"] == pytest.approx(short["var_1d_99"] * np.sqrt(10))


def test_publish_on_the_bus() -> None:
    """The PUB binds (default) and waits for subscribers; a monitor-style SUB connects."""
    import socket
    import threading

    from engine.advise import publish
    from engine.bus.zmq_bus import Subscriber

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{s.getsockname()[1]}"
    a = _advice("2008-10-15")
    sub = Subscriber(address, ("regime", "targets"))
    th = threading.Thread(target=publish, args=(address, a, 1.0))
    th.start()
    try:
        got = {}
        for _ in range(2):
            m = sub.recv(5000)
            assert m is not None
            got[m.kind] = m.body
        assert got["regime"]["warning"] is True and got["regime"]["label"] == "crisis"
        assert set(got["targets"]["weights"]) == {"SPX", "RUT", "DAX", "N225", "UST10", "CASH"}
    finally:
        th.join()
        sub.close()


def test_stale_data_is_flagged() -> None:
    """Advice whose last bar is weeks old says so; a fresh bar or an explicit --as-of not."""
    import pandas as pd

    from engine.advise import staleness

    now = pd.Timestamp("2024-06-14 12:00")
    assert staleness(pd.Timestamp("2024-06-13"), 1.0, now) is None  # yesterday's close
    assert staleness(pd.Timestamp("2024-06-07"), 1.0, now) == pytest.approx(7.5)
    assert staleness(pd.Timestamp("2024-05-31"), 30.0, now) is None  # monthly bars: 2 weeks
    a = _advice("2008-10-15")  # --as-of given: a deliberate look back, not stale advice
    assert a["stale_days"] is None


def test_stale_warning_on_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    """The bundled data end years ago: plain `advise` warns on stderr and in the text."""
    code = main(["advise", str(_config())])
    captured = capsys.readouterr()
    assert code in (0, EXIT_WARNING)
    assert re.search(r"warning: the data end on 20\d\d-\d\d-\d\d, [\d,]+ days ago", captured.err)
    assert "STALE DATA" in captured.out


def test_negative_cash_and_shorts_are_refused() -> None:
    from engine.advise import check_holdings
    from engine.ground.bars import DataError

    with pytest.raises(DataError, match="cash is -5"):
        check_holdings(Holdings({}, -5.0), allow_short=False)
    with pytest.raises(DataError, match=r"SPX quantity is -2 \(a short\)"):
        check_holdings(Holdings({"SPX": -2.0}, 100.0), allow_short=False)
    check_holdings(Holdings({"SPX": -2.0}, 100.0), allow_short=True)


def test_default_strategy_is_validates_candidate() -> None:
    """advise, validate and backtest's baselines name the same default strategy: the first
    regime or optimized one (a config of static + optimized used to advise the static)."""
    from engine.advise import AdviseConfig, pick_strategy
    from engine.config import RunConfig
    from engine.validate import _pick, parse_validation

    cfg = RunConfig.model_validate(
        {
            "strategies": [
                {"kind": "static", "name": "sixty_forty", "weights": {"SPX": 0.6, "UST": 0.4}},
                {"kind": "optimized", "name": "opt", "objective": "risk_parity"},
                {"kind": "regime", "name": "later", "table": {}, "warmup": "equal"},
            ]
        }
    )
    assert cfg.state_aware() == ["opt", "later"]
    assert pick_strategy(cfg, AdviseConfig()).name == "opt"
    assert _pick(cfg, parse_validation(cfg)) == ("opt", "sixty_forty")
    only_static = RunConfig.model_validate(
        {"strategies": [{"kind": "static", "name": "ew", "weights": "equal"}]}
    )
    assert pick_strategy(only_static, AdviseConfig()).name == "ew"

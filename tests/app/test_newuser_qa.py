"""Regressions found by the new-user check of every entry point (issue-21..25 merge)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine import fmt
from engine.analysis.metrics import summary_table
from engine.cli import main
from engine.config import ConfigError, parse_config
from engine.report.tables import table

OPT = {"kind": "optimized", "name": "o", "assets": ["SPX", "UST10"]}


def _no_cash_run(tmp_path: Path) -> Path:
    """A two-symbol long CSV (no cash asset, so every Sharpe is at rf = 0) and a config."""
    idx = pd.bdate_range("2020-01-01", periods=300)
    rng = np.random.default_rng(1)
    rows = []
    for sym, vol in (("AAA", 0.01), ("BBB", 0.004)):
        close = 100 * np.exp(np.cumsum(rng.normal(0.0003, vol, len(idx))))
        rows.append(pd.DataFrame({"date": idx, "symbol": sym, "close": close}))
    pd.concat(rows).sort_values(["date", "symbol"]).to_csv(tmp_path / "p.csv", index=False)
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        '[data]\nsource = "p.csv"\nohlc_from_close = true\n[detector]\nkind = "none"\n'
        '[[strategies]]\nkind = "static"\nname = "ew"\nweights = "equal"\nrebalance = "M"\n'
    )
    return cfg


def test_rf0_sharpe_is_one_column_in_console_and_report(tmp_path, capsys):
    """Without a cash asset the Sharpe is at rf = 0: the console table and the report's
    tables showed "sharpe (rf = 0)" twice (the rf = 0 twin repeated the column)."""
    cfg = _no_cash_run(tmp_path)
    assert main(["backtest", str(cfg), "--out", str(tmp_path / "out"), "--no-report"]) == 0
    head = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("strategy"))
    assert head.count("sharpe (rf = 0)") == 1 and head.count("sortino (rf = 0)") == 1
    eq = pd.read_csv(tmp_path / "out" / "equity.csv", index_col=0, parse_dates=True)
    t = summary_table(eq)
    assert t.attrs["rf_label"] == "0" and "sharpe_rf0" in t.columns
    html = table(t)
    assert html.count("Sharpe (rf = 0)") == 1 and html.count("Sortino (rf = 0)") == 1
    t.attrs["rf_label"] = "CASH"  # with a risk-free series both stay, each labelled
    head = fmt.text_table(t).splitlines()[0]
    assert "sharpe (rf = CASH)" in head and head.count("sharpe (rf = 0)") == 1


@pytest.mark.parametrize(
    ("section", "needle"),
    [
        # a number out of [0, 1]: the number member speaks, not "should be 'none' or ..."
        (
            {"strategies": [{**OPT, "shrinkage": 1.5}]},
            "strategies.0.optimized.shrinkage: Input should be less than or equal to 1 (got 1.5)",
        ),
        (
            {"strategies": [{**OPT, "shrinkage": "lw"}]},
            "strategies.0.optimized.shrinkage: Input should be 'none' or 'ledoit_wolf' (got 'lw')",
        ),
        (
            {"detector": {"kind": "hmm", "min_train": 0}},
            "detector.hmm.min_train: Input should be greater than or equal to 10 (got 0)",
        ),
        (
            {"strategies": [{"kind": "static", "name": "s", "weights": {"SPX": "x"}}]},
            "strategies.0.static.weights.SPX: Input should be a valid number",
        ),
        (
            {"strategies": [{**OPT, "max_weight": {"*": "a"}}]},
            "strategies.0.optimized.max_weight.*: Input should be a valid number",
        ),
    ],
)
def test_union_errors_name_the_key_without_pydantic_member_tags(section, needle):
    """A value failing a union (``shrinkage``: a name or a number; ``min_train``: bars or a
    time string) read ``shrinkage.literal['none','ledoit_wolf']: ... (got 1.5)`` or
    ``min_train.constrained-int``: pydantic's member tags in the key, and the wrong
    member's complaint."""
    with pytest.raises(ConfigError) as exc:
        parse_config(section)
    msg = str(exc.value)
    assert needle in msg, msg
    assert "constrained-" not in msg and "literal[" not in msg and "dict[" not in msg


def test_paper_report_console_shows_no_negative_zero():
    """A gap of -1e-11 printed ``= -0.00`` and sessions ``-0.0000``: the project's numbers
    carry no sign when they round to zero (engine.fmt)."""
    from engine.live.paper_report import PaperReport, console
    from engine.live.tracking import PARTS

    sessions = pd.DataFrame(
        {"date": ["2005-06-09"], "target_diff": [0.0], "shares_diff": [0.0], "gap": [-1e-11]}
    )
    split = dict.fromkeys(PARTS, 0.0) | {PARTS[0]: -1e-12, PARTS[1]: 1234.5}
    rep = PaperReport("s", sessions, pd.DataFrame(), split, 1_000_000.0, 1_000_000.00001, 1e6, 0.0)
    text = console(rep)
    assert "-0.00" not in text, text
    assert f"{PARTS[1]} +1,234.50" in text and "= 0.00 =" in text


def test_report_refuses_a_cut_baselines_csv_without_a_manifest(tmp_path, capsys):
    """With manifest.json gone (copied folder, older tooling) a baselines.csv cut mid-row
    was read as it stood: the report showed the cut row's blank cells and lost the rest."""
    out = tmp_path / "run"
    assert main(["backtest", "--no-report", "--out", str(out)]) == 0
    (out / "manifest.json").unlink()
    assert main(["report", str(out)]) == 0  # whole, it still reads
    capsys.readouterr()
    f = out / "baselines.csv"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    assert main(["report", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "baselines.csv" in err[0] and "cut short" in err[0], err


def test_paper_report_on_a_state_folder_that_never_traded(tmp_path, capsys):
    """A paper run stopped before its first live decision (a stale exog file, exit 3)
    leaves a checkpoint and no journal: the error says so instead of only 'no
    decisions.jsonl'; an empty folder keeps the plain message."""
    (tmp_path / "s" / "regime_aware").mkdir(parents=True)
    (tmp_path / "s" / "regime_aware" / "checkpoint.json").write_text("{}")
    (tmp_path / "empty").mkdir()
    assert main(["paper-report", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no live decision yet" in err[0], err
    assert main(["paper-report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no decisions.jsonl" in err[0] and "checkpoint" not in err[0]


def test_list_features_names_the_log_and_exog_forms(capsys):
    """`list features` showed vol_fast but not log_vol_fast (the default HMM's old input,
    in the README) nor the exog.NAME inputs: each form is one line."""
    assert main(["list", "features"]) == 0
    rows = {ln.split()[0] for ln in capsys.readouterr().out.splitlines()[1:]}
    assert {"logret", "vol_fast", "log_NAME", "exog.NAME"} <= rows


def _unwritable(tmp_path: Path) -> str:
    (tmp_path / "a_file").write_text("")
    return str(tmp_path / "a_file" / "out")  # its parent is a file: nothing can be made there


def test_validate_and_sweep_check_out_before_the_run(tmp_path, capsys, monkeypatch):
    """validate and sweep wrote --out only after the run (minutes of work, then an error)."""
    import engine.sweep.runner
    import engine.validate

    def never(*a, **k):
        raise AssertionError("the run started before --out was checked")

    monkeypatch.setattr(engine.validate, "run_validation", never)
    monkeypatch.setattr(engine.sweep.runner, "run_sweep", never)
    sweep_cfg = tmp_path / "sweep.toml"
    sweep_cfg.write_text(
        '[[strategies]]\nkind = "static"\nname = "s"\nweights = "equal"\n'
        '[sweep]\nstrategy_name = "s"\n[sweep.strategy]\nrebalance = ["M", "Q"]\n'
    )
    for args in (["validate"], ["sweep", str(sweep_cfg)]):
        assert main([*args, "--out", _unwritable(tmp_path)]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: --out ") and "cannot write" in err[0]


def test_python_m_engine_cli_reports_a_bad_out_as_bad_input(tmp_path):
    """Under `python -m engine.cli` (the README's way without the console script) the
    module ran as __main__, so a UsageError raised via `from engine.cli import ...` (bad
    --out of validate/sweep, --html of paper-report) was not main's class: 'internal
    error', exit 1, instead of one line and exit 2."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    p = subprocess.run(
        [sys.executable, "-m", "engine.cli", "validate", "--out", _unwritable(tmp_path)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    err = p.stderr.strip().splitlines()
    assert p.returncode == 2, p.stderr
    assert len(err) == 1 and err[0].startswith("error: --out ") and "internal" not in err[0]


def test_sweep_table_says_its_sharpe_is_at_rf_0(tmp_path, capsys):
    """The sweep's metrics are at rf = 0 (metrics_nb) while backtest's headline is over the
    cash asset: its console column read a bare "sharpe"."""
    cfg = _no_cash_run(tmp_path)
    cfg.write_text(
        cfg.read_text()
        + '[sweep]\nstrategy_name = "ew"\n[sweep.strategy]\nrebalance = ["M", "Q"]\n'
    )
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "sw"), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "top 5 by Sharpe (rf = 0):" in out
    head = next(ln for ln in out.splitlines() if ln.startswith("combo"))
    assert "sharpe (rf = 0)" in head


def test_a_bad_rebalance_lists_none_among_the_choices():
    """rebalance = "X" answered "should be 'D', 'W', 'M', 'Q' or 'Y'" though "none" (bought
    once and held, issue 23) is accepted too."""
    bad = {"kind": "static", "name": "s", "weights": "equal", "rebalance": "X"}
    with pytest.raises(ConfigError) as exc:
        parse_config({"strategies": [bad]})
    assert "strategies.0.static.rebalance: expected one of 'D', 'W', 'M', 'Q', 'Y' or 'none'" in (
        str(exc.value)
    )
    ok = parse_config({"strategies": [{**bad, "rebalance": "none"}]})
    assert ok.strategies[0].rebalance is None


def test_an_intraday_warm_up_start_shows_its_time(tmp_path, capsys):
    """On hourly bars the headline's "after the detector's warm-up (from 2023-04-12, ...)"
    hid which bar of the day it starts at; dates stay bare for daily data."""
    ts = [
        d + pd.Timedelta(hours=14.5 + h)
        for d in pd.bdate_range("2023-01-02", periods=60)
        for h in range(7)
    ]
    rng = np.random.default_rng(0)
    for sym, vol in (("AAA", 0.004), ("BBB", 0.001)):
        close = 100 * np.exp(np.cumsum(rng.normal(0, vol, len(ts))))
        pd.DataFrame({"timestamp": ts, "close": close}).to_csv(tmp_path / f"{sym}.csv", index=False)
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        '[data]\nsource = ["AAA.csv", "BBB.csv"]\nohlc_from_close = true\n'
        '[detector]\nkind = "hmm"\nmarket = "AAA"\nmin_train = 100\nrefit_every = 0\n'
        '[[strategies]]\nkind = "static"\nname = "ew"\nweights = "equal"\n'
        '[[strategies]]\nkind = "regime"\nname = "ra"\nwarmup = { AAA = 0.5, BBB = 0.5 }\n'
        "[strategies.table]\ncalm = { AAA = 0.5, BBB = 0.5 }\nvolatile = { AAA = 0.3, BBB = 0.3 }\n"
        "crisis = { AAA = 0.1, BBB = 0.1 }\n"
    )
    assert main(["backtest", str(cfg), "--out", str(tmp_path / "out"), "--no-report"]) == 0
    out = capsys.readouterr().out
    start = ts[100]  # the first fit's bar: min_train = 100
    assert f"after the detector's warm-up (from {start:%Y-%m-%d %H:%M}, 100 bars left out)" in out
    assert f"baselines after the detector's warm-up (from {start:%Y-%m-%d %H:%M};" in out


def test_a_sweep_axis_mixing_names_and_numbers_saves(tmp_path):
    """[sweep.strategy] shrinkage = ["none", "ledoit_wolf", 0.5] (each a valid value) ended
    in 'internal error (ArrowTypeError ...)' writing results.parquet: a column of text and
    numbers is written as text; numbers alone stay numbers, "none" (None) stays null."""
    from types import SimpleNamespace

    from engine.sweep.metrics_nb import METRIC_NAMES
    from engine.sweep.runner import SweepResult, results_table

    params = [
        {"strategy.shrinkage": v, "strategy.half_life": h, "strategy.rebalance": r}
        for v, h, r in (("none", 63.0, None), ("ledoit_wolf", 126, "M"), (0.5, 63.0, "Q"))
    ]
    plan = SimpleNamespace(params=params, n_combos=3)
    t = results_table(plan, np.zeros((3, len(METRIC_NAMES))), np.zeros(3, dtype=np.int64))  # type: ignore[arg-type]
    assert t["strategy.shrinkage"].tolist() == ["none", "ledoit_wolf", "0.5"]
    assert t["strategy.half_life"].tolist() == [63.0, 126.0, 63.0]
    assert pd.isna(t["strategy.rebalance"][0]) and t["strategy.rebalance"][1:].tolist() == [
        "M",
        "Q",
    ]
    SweepResult(t, {}, plan).save(tmp_path)  # type: ignore[arg-type]
    back = pd.read_parquet(tmp_path / "results.parquet")
    assert back["strategy.shrinkage"].tolist() == ["none", "ledoit_wolf", "0.5"]

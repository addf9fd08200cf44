"""One formatting layer on the console: `backtest`, `sweep` and `advise` print rates as
percentages, money with separators, losses negative (the report's conventions)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.cli import main

CFG = """
[data]
start = "2006-01-01"
end = "2008-12-31"
[detector]
kind = "rule"
history = 120
min_history = 60
[sweep]
[sweep.costs]
commission_bps = [1.0, 5.0]
"""


@pytest.fixture()
def cfg(tmp_path: Path) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(CFG)
    return p


def _row(text: str, first: str) -> list[str]:
    return next(re.split(r"\s{2,}", ln.strip()) for ln in text.splitlines() if ln.startswith(first))


def test_backtest_table(cfg: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", str(cfg), "--out", str(tmp_path / "r"), "--no-report"]) == 0
    out = capsys.readouterr().out
    head = _row(out, "strategy")
    row = dict(zip(head, _row(out, "static_60_40")))
    assert re.fullmatch(r"-?\d+\.\d\d%", row["cagr"])
    assert re.fullmatch(r"-\d+\.\d\d%", row["max_drawdown"])  # a loss: negative, as charted
    assert re.fullmatch(r"-\d+\.\d\d%", row["cvar95"])
    assert re.fullmatch(r"[\d,]+", row["total_costs"])


def test_sweep_prints_percentages(cfg: Path, tmp_path: Path, capsys) -> None:
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "s"), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    head = _row(out, "combo")
    rows = [dict(zip(head, _row(out, k))) for k in ("0 ", "1 ")]
    for r in rows:
        assert re.fullmatch(r"-?\d+\.\d\d%", r["cagr"]), r  # not -0.0208
        assert re.fullmatch(r"-\d+\.\d\d%", r["max_drawdown"]), r
    assert {r["costs.commission_bps"] for r in rows} == {"1", "5"}


def test_advise_money_columns(cfg: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["advise", str(cfg), "--as-of", "2008-10-15"])
    out = capsys.readouterr().out
    assert "uninvested cash" in out and "CASH (cash asset)" in out
    assert "CVaR (money)" in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("var_1d_95"))
    var, var_money, cvar, cvar_money = line.split()[1:]
    assert var.startswith("-") and var.endswith("%") and cvar.startswith("-")
    assert re.fullmatch(r"-[\d,]+", var_money) and re.fullmatch(r"-[\d,]+", cvar_money)

"""New-user QA with real data (arch's S&P 500 written out as users have it): the numbers a
user checks by hand, and the ways out the error lines promise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.cli import main


def _sp500() -> pd.DataFrame:
    arch_data = pytest.importorskip("arch.data.sp500")
    return arch_data.load().loc["2015-01-01":"2016-12-31"]


@pytest.mark.parametrize("date_format", ["%Y-%m-%d", "%d/%m/%Y", "%m/%d/%Y"])
def test_yahoo_csv_buy_and_hold_equals_pandas(tmp_path: Path, capsys, date_format: str) -> None:
    """``Date,Open,High,Low,Close,Adj Close,Volume`` in three date orders: the target in
    shares at the first close, bought at the second bar's open with 5 bps, held to the last
    close (the day-first file failed)."""
    sp = _sp500()
    sp.to_csv(tmp_path / "SPX.csv", date_format=date_format)
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        '[data]\nsource = "SPX.csv"\n[detector]\nkind = "none"\n[[strategies]]\n'
        'kind = "static"\nname = "bh"\nweights = { SPX = 1.0 }\nrebalance = "none"\n'
    )
    out = tmp_path / "out"
    assert main(["backtest", str(cfg), "--no-report", "--out", str(out)]) == 0
    eq = pd.read_csv(out / "equity.csv", index_col=0, parse_dates=True)["bh"]
    assert eq.index[0] == pd.Timestamp("2015-01-02") and eq.index[-1] == pd.Timestamp("2016-12-30")
    close = sp["Adj Close"]  # Yahoo's adjusted bars: the open scaled the same
    open_ = sp["Open"] * close / sp["Close"]
    qty = 1e6 / close.iloc[0]  # the target in shares at the first close, filled next open
    assert qty * open_.iloc[1] * (1 + 5e-4) < 1e6  # affordable: not scaled down to cash
    cash = 1e6 - qty * open_.iloc[1] * (1 + 5e-4)
    np.testing.assert_allclose(eq.iloc[-1], qty * close.iloc[-1] + cash, rtol=1e-9)


def test_init_max_jump_lets_a_real_crash_through(tmp_path: Path, capsys) -> None:
    """A real one-day fall beyond the split heuristic (AAPL -52 % on 2000-09-29 in skfolio's
    prices) stopped ``init`` with "raise data.max_jump", a key of a config ``init`` had not
    written yet: ``init --max-jump`` takes it and writes it."""
    idx = pd.bdate_range("2020-01-01", periods=300)
    close = 100.0 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 300)))
    close[150:] *= 0.4  # -60 % in a day: beyond the default factor 1.9
    pd.DataFrame({"date": idx, "AAA": close, "BBB": np.linspace(50, 60, 300)}).to_csv(
        tmp_path / "p.csv", index=False
    )
    cfg = tmp_path / "mine.toml"
    assert main(["init", str(tmp_path / "p.csv"), "--out", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "data.max_jump = 1.9" in err and err.endswith("(init: --max-jump)")
    assert main(["init", str(tmp_path / "p.csv"), "--out", str(cfg), "--max-jump", "3"]) == 0
    assert "max_jump = 3 " in cfg.read_text()
    assert main(["backtest", str(cfg), "--no-report", "--out", str(tmp_path / "o")]) == 0

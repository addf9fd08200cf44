"""No silent wrong answer: weights mean what they say, dust is not a trade, intraday
sessions, your own data in one step, the compile notice (issue 11)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.api import run_backtest
from engine.config import ConfigError, parse_config
from engine.core.spec import new_period_flags
from engine.ground.bars import BarPanel
from tests.conftest import random_panel


def _cfg(strategies: list[dict], **over: object) -> dict:
    return {
        "detector": {"kind": "none"},
        "costs": {"commission_bps": 0.0},
        "strategies": strategies,
        **over,
    }


def _static(weights: object, **kw: object) -> dict:
    return {"kind": "static", "name": "s", "weights": weights, **kw}


# ------------------------------------------------------------------ weights


def test_short_without_allow_short_is_refused_and_allowed_with_it():
    with pytest.raises(ConfigError, match=r"weight of A1 is -0.2 < 0.*allow_short"):
        parse_config(_cfg([_static({"A0": 1.2, "A1": -0.2})]))
    # allowed with shorting and leverage (gross 1.4)
    cfg = _cfg(
        [_static({"A0": 1.2, "A1": -0.2})],
        execution={
            "allow_short": True,
            "allow_leverage": True,
            "max_gross": 1.5,
            "financing_rate": 0.0,
        },
    )
    res = run_backtest(cfg, panel=random_panel(60, 2))
    w = res.runs["s"].weights.iloc[-1]
    assert w["A1"] < -0.1 and w["A0"] > 1.1


def test_sum_above_one_needs_leverage_or_normalize():
    with pytest.raises(ConfigError, match=r"weights sum to 1.7 \(gross\) > 1"):
        parse_config(_cfg([_static({"A0": 1.0, "A1": 0.7})]))
    cfg = _cfg([_static({"A0": 1.0, "A1": 0.7}, normalize=True)])
    res = run_backtest(cfg, panel=random_panel(60, 2))
    t = res.runs["s"].targets.dropna().iloc[0]
    assert t["A0"] == pytest.approx(1.0 / 1.7) and t["A1"] == pytest.approx(0.7 / 1.7)


def test_sum_below_one_is_cash():
    res = run_backtest(_cfg([_static({"A0": 0.5})]), panel=random_panel(60, 2))
    run = res.runs["s"]
    w = run.weights.iloc[-1]
    assert w["A0"] == pytest.approx(0.5, abs=0.03) and w["A1"] == 0.0
    assert run.cash.iloc[-1] / run.equity.iloc[-1] == pytest.approx(0.5, abs=0.03)


def test_regime_table_rules_name_the_row():
    bad = {
        "kind": "regime",
        "name": "r",
        "warmup": {"A0": 1.0},
        "table": {"calm": {"A0": 0.8, "A1": 0.4}},
    }
    with pytest.raises(ConfigError, match=r"strategies.0.table.calm \(r\): weights sum to 1.2"):
        parse_config(_cfg([bad]))


class ShortsOnBar:
    """A Python strategy that turns short on its 30th bar."""

    rebalance = None

    def __init__(self, name: str) -> None:
        self.name = name

    def on_bar(self, ctx):
        return {"A0": 1.0} if ctx.bar < 30 else {"A0": 1.1, "A1": -0.1}

    def on_regime_change(self, ctx):
        return None


def test_custom_strategy_target_error_names_strategy_and_bar():
    cfg = _cfg([{"kind": "custom", "name": "py", "target": "tests.app.test_trust:ShortsOnBar"}])
    panel = random_panel(60, 2)
    with pytest.raises(ConfigError) as err:
        run_backtest(cfg, panel=panel)
    msg = str(err.value)
    assert msg.startswith("strategies.py: strategy 'py', bar 30 (")
    assert str(panel.index[30]) in msg and "weight of A1 is -0.1 < 0" in msg


# ------------------------------------------------------------------ dust


def test_dust_never_becomes_a_fill_or_a_trade():
    """Daily rebalancing to targets that are already held: the recomputed orders are
    float noise (~1e-13 shares); none may become a fill."""
    panel = random_panel(80, 2)
    flat = BarPanel(  # constant prices: held weights stay exactly on target
        panel.index,
        panel.symbols,
        np.full_like(panel.close, 50.0),
        np.full_like(panel.close, 50.0),
        np.full_like(panel.close, 50.0),
        np.full_like(panel.close, 50.0),
        panel.volume,
    )
    res = run_backtest(_cfg([_static({"A0": 0.3, "A1": 0.7}, rebalance="D")]), panel=flat)
    fills = res.runs["s"].fills
    assert len(fills) == 2  # the two initial buys only
    assert res.metrics["s"]["n_trades"] == 2
    # min_trade_value: an order below it is not placed
    cfg = _cfg([_static({"A0": 0.3, "A1": 0.7}, drift=0.0)], execution={"min_trade_value": 1e9})
    assert len(run_backtest(cfg, panel=flat).runs["s"].fills) == 0


# ------------------------------------------------------------------ intraday


def _minute_panel(days: int = 3) -> BarPanel:
    idx = []
    for d in pd.bdate_range("2024-05-02", periods=days):  # Thu, Fri, Mon
        idx.append(pd.date_range(d + pd.Timedelta("9h31min"), periods=390, freq="min"))
    index = idx[0].append(idx[1:])
    n = len(index)
    close = np.column_stack([np.linspace(100, 101, n), np.linspace(50, 49, n)])
    return BarPanel(
        index,
        ("A0", "A1"),
        close,
        close * 1.001,
        close * 0.999,
        close,
        np.full((n, 2), 1e6),
        tz="America/New_York",
    )


def test_daily_rebalancing_on_minute_bars_is_once_per_session():
    p = _minute_panel()
    flags = new_period_flags(p.timestamps_ns, "D")
    assert np.flatnonzero(flags).tolist() == [390, 780]  # the first bar of each new session
    assert np.flatnonzero(new_period_flags(p.timestamps_ns, "W")).tolist() == [780]  # Monday
    res = run_backtest(_cfg([_static({"A0": 0.5, "A1": 0.5}, rebalance="D")]), panel=p)
    decided = res.runs["s"].targets.dropna().index
    assert list(decided.strftime("%m-%d %H:%M")) == ["05-02 09:31", "05-03 09:31", "05-06 09:31"]


def test_intraday_metrics_use_session_periods_per_year():
    res = run_backtest(_cfg([_static({"A0": 1.0}, rebalance=None)]), panel=_minute_panel())
    assert res.metrics["s"]["periods_per_year"] == 390 * 252


# ------------------------------------------------------------------ own data in one step


def _write_two_csvs(tmp: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    idx = pd.bdate_range("2012-01-02", periods=900)
    paths = []
    for sym, vol in (("stocks", 0.012), ("bonds", 0.004)):
        r = rng.normal(2e-4, vol, len(idx))
        close = 100 * np.exp(np.cumsum(r))
        df = pd.DataFrame(
            {
                "date": idx.strftime("%Y-%m-%d"),
                "open": close,
                "high": close * 1.002,
                "low": close * 0.998,
                "close": close,
            }
        )
        paths.append(tmp / f"{sym}.csv")
        df.to_csv(paths[-1], index=False)
    return paths


def test_init_then_backtest_two_csvs_in_three_strategies_out(tmp_path, capsys):
    """The README's worked example: `init` writes a config that runs as is."""
    from engine.cli import main

    files = _write_two_csvs(tmp_path)
    cfg_path = tmp_path / "mine.toml"
    assert main(["init", *map(str, files), "--out", str(cfg_path)]) == 0
    text = cfg_path.read_text()
    assert 'symbols = ["stocks", "bonds"]' in text and 'market = "stocks"' in text
    assert main(["backtest", str(cfg_path), "--out", str(tmp_path / "run"), "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "900 daily bars (252/yr) x 2 assets (stocks, bonds)" in out
    for name in ("equal_weight", "inverse_vol", "regime_aware"):
        assert name in out
    assert "sharpe (rf = 0)" in out  # no cash asset in these files


def test_symbols_and_market_default_from_the_files(tmp_path):
    from structlog.testing import capture_logs

    files = _write_two_csvs(tmp_path)
    cfg = {
        "data": {"source": [str(f) for f in files], "start": "2012-01-01"},
        "detector": {"kind": "rule", "min_history": 100, "history": 300},
        "costs": {"commission_bps": 0.0},
        "strategies": [{"kind": "static", "name": "eq", "weights": "equal"}],
    }
    with capture_logs() as logs:
        res = run_backtest(cfg)
    assert res.panel.symbols == ("stocks", "bonds")
    said = [e for e in logs if e["event"] == "detector.market"]
    assert said and said[0]["market"] == "stocks"


def test_compile_notice_is_printed_once_when_numba_compiles():
    import numba

    from engine import logs

    buf = io.StringIO()
    logs._compile_listener = None
    logs.announce_cold_cache(stream=buf)
    try:

        @numba.njit(cache=False)
        def f(x):
            return x + 1

        @numba.njit(cache=False)
        def g(x):
            return x * 2

        f(1)
        g(1.0)
        assert buf.getvalue() == logs.COMPILE_NOTICE + "\n"
    finally:
        from numba.core import event

        event.unregister("numba:compile", logs._compile_listener)
        logs._compile_listener = None


def test_short_positions_pay_the_borrow_fee_every_bar():
    """Constant prices, 30% short at borrow_bps = 200: cash falls by value * 2% / 252 a bar."""
    panel = random_panel(40, 2)
    flat = np.full_like(panel.close, 50.0)
    p = BarPanel(panel.index, panel.symbols, flat, flat, flat, flat, panel.volume)
    base = {
        "execution": {"allow_short": True},
        "costs": {"commission_bps": 0.0, "symbols": {"A1": {"borrow_bps": 200.0}}},
    }
    cfg = {**_cfg([_static({"A0": 0.5, "A1": -0.3}, rebalance=None)]), **base}
    eq = run_backtest(cfg, panel=p).runs["s"].equity
    short_value = 0.3 * 1_000_000
    # first fill at bar 1's open; the fee accrues from bar 2 on, on the (constant) short
    drops = -np.diff(eq.to_numpy())[2:]
    np.testing.assert_allclose(drops, short_value * 0.02 / 252, rtol=1e-3)
    no_fee = {**cfg, "costs": {"commission_bps": 0.0}}
    assert run_backtest(no_fee, panel=p).runs["s"].equity.iloc[-1] == pytest.approx(1e6)


def test_report_of_minute_bars_annualises_with_session_bars(tmp_path):
    from engine.cli import report_ppy, write_html_report

    res = run_backtest(_cfg([_static({"A0": 1.0}, rebalance=None)]), panel=_minute_panel())
    assert report_ppy(res) == 390 * 252
    out = write_html_report(res, tmp_path / "r.html")
    assert out.stat().st_size > 0

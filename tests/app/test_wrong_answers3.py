"""No silent wrong answer, round 2, remaining items (issue 23): detector schedules in time,
``init`` sized to the data, ``list``, leading blanks, the normalize hint, constant inputs,
buy-and-hold and the streaming driver. Each a hand-computed number or the exact line."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.assemble import assemble
from engine.cli import main
from engine.config import ConfigError, parse_config
from engine.ground.bars import BarPanel
from tests.conftest import random_panel


def _hmm(**det: object) -> dict:
    return {
        "detector": {"kind": "hmm", "market": "A0", **det},
        "strategies": [{"kind": "static", "name": "s", "weights": "equal"}],
    }


def _weekly(n: int) -> BarPanel:
    p = random_panel(n, 2)
    idx = pd.date_range("2000-01-07", periods=n, freq="W-FRI")
    return BarPanel(idx, ("A0", "A1"), p.open, p.high, p.low, p.close, p.volume)


def _daily(n: int) -> BarPanel:
    p = random_panel(n, 2)
    idx = pd.bdate_range("2000-01-03", periods=n)
    return BarPanel(idx, ("A0", "A1"), p.open, p.high, p.low, p.close, p.volume)


# ------------------------------------------------------------------ 1. schedules in time
@pytest.mark.parametrize(
    ("value", "panel", "bars"),
    [
        ("2y", _daily(1200), 504),  # 2 x 252
        ("18m", _daily(1200), 378),  # 18/12 x 252
        ("26w", _daily(1200), 126),  # 26 x 7 / 365.25 x 252 = 125.6
        ("4w", _daily(1200), 19),  # 4 x 7 / 365.25 x 252 = 19.3
        ("2y", _weekly(300), 104),  # 2 x 52
        ("26w", _weekly(300), 26),
        ("63bars", _daily(1200), 63),
        (200, _daily(1200), 200),  # unitless: bars
    ],
)
def test_min_train_in_time_is_bars_of_the_data_frequency(value, panel, bars):
    run = assemble(parse_config(_hmm(min_train=value, refit_every=0, skip=5)), panel)
    assert run.detector_config.min_train == bars
    assert run.detector.fit_bars(panel.n_bars).tolist() == [bars]


def test_refit_every_in_time():
    run = assemble(parse_config(_hmm(min_train="1y", refit_every="26w")), _daily(1000))
    assert run.detector.fit_bars(1000).tolist() == [252, 378, 504, 630, 756, 882]


def test_bocpd_min_train_in_time():
    cfg = parse_config(_hmm() | {"detector": {"kind": "bocpd", "market": "A0", "min_train": "1y"}})
    run = assemble(cfg, _weekly(300))
    assert run.detector.fit_bars(300).tolist() == [52]


@pytest.mark.parametrize(
    ("det", "panel", "line"),
    [
        (
            {"min_train": "1h"},
            _daily(600),
            "detector.min_train: '1h' is 0 bar(s) of daily data (252/yr); it needs at least 10",
        ),
        (
            {"min_train": "2w"},
            _weekly(300),
            "detector.min_train: '2w' is 2 bar(s) of weekly data (52/yr); it needs at least 10",
        ),
        (
            {"refit_every": "1d"},
            _weekly(300),
            "detector.refit_every: '1d' is 0 bar(s) of weekly data (52/yr); it needs at least 1",
        ),
    ],
)
def test_schedule_in_time_below_its_minimum_is_refused(det, panel, line):
    with pytest.raises(ConfigError) as err:
        assemble(parse_config(_hmm(**det)), panel)
    assert str(err.value) == line


@pytest.mark.parametrize("bad", ["18x", "2 years", "y"])
def test_malformed_time_string_names_the_key(bad):
    with pytest.raises(ConfigError) as err:
        parse_config(_hmm(min_train=bad))
    assert str(err.value) == (
        f"<config>: detector.hmm.min_train: {bad!r}: expected bars (an int) or a number and "
        "a unit (y, q, m or mo, w, d, h, min, bars), e.g. '2y' or '26w'"
    )


def test_min_train_beyond_the_data_names_counts_and_key():
    run = assemble(parse_config(_hmm(min_train="2y")), _daily(418))
    with pytest.raises(ConfigError) as err:
        run.prepare()
    assert str(err.value) == (
        "detector.min_train: the first fit needs 504 bars (~2.0 years) (min_train = '2y') "
        "and the data has 418 bars; set detector.min_train below 418 (e.g. 139) or give "
        "more history"
    )
    run = assemble(parse_config(_hmm(min_train=500)), _daily(418))
    with pytest.raises(ConfigError, match=r"^detector.min_train: the first fit needs 500 bars"):
        run.prepare()


# ------------------------------------------------------------------ 2. init sized to the data
def _close_csv(path: Path, n: int) -> Path:
    rng = np.random.default_rng(3)
    idx = pd.bdate_range("2020-01-01", periods=n)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, 2)), axis=0))
    pd.DataFrame({"date": idx.strftime("%Y-%m-%d"), "AAA": close[:, 0], "BBB": close[:, 1]}).to_csv(
        path, index=False
    )
    return path


def test_init_on_418_bars_writes_a_min_train_that_fits_and_says_so(tmp_path, capsys):
    data = _close_csv(tmp_path / "short.csv", 418)
    toml = tmp_path / "short.toml"
    assert main(["init", str(data), "--out", str(toml)]) == 0
    out = capsys.readouterr().out
    assert (
        "note: detector.min_train = 139: the first fit after 139 bars (~6.6 months) of your "
        "418 bars (the default, 504, is more than the data has)"
    ) in out
    assert "\nmin_train = 139  # sized to the data" in toml.read_text()
    assert main(["backtest", str(toml), "--out", str(tmp_path / "run"), "--no-report"]) == 0


def test_backtest_too_short_for_min_train_is_one_line(tmp_path, capsys):
    data = _close_csv(tmp_path / "short.csv", 418)
    toml = tmp_path / "short.toml"
    assert main(["init", str(data), "--out", str(toml)]) == 0
    toml.write_text(toml.read_text().replace("\nmin_train = 139 ", "\nmin_train = 504 "))
    capsys.readouterr()
    rc = main(["backtest", str(toml), "--out", str(tmp_path / "run"), "--no-report"])
    assert rc == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: detector.min_train: the first fit needs 504 bars (~2.0 years) and the data "
        "has 418 bars; set detector.min_train below 418 (e.g. 139) or give more history"
    )


# ------------------------------------------------------------------ 7. buy-and-hold in TOML
def _two_assets(n: int = 120) -> BarPanel:
    """A0 flat at 100 for 5 bars then rising linearly to 200; A1 flat at 100."""
    a0 = np.concatenate([np.full(5, 100.0), np.linspace(100.0, 200.0, n - 5)])
    close = np.column_stack([a0, np.full(n, 100.0)])
    idx = pd.bdate_range("2001-01-01", periods=n)
    return BarPanel(idx, ("A0", "A1"), close, close, close, close, np.full_like(close, 1e9))


def _bh_cfg(**strategy: object) -> dict:
    return {
        "detector": {"kind": "none"},
        "costs": {"commission_bps": 0.0},
        "strategies": [{"kind": "static", "name": "bh", "weights": "equal", **strategy}],
    }


def test_buy_and_hold_from_toml_lets_weights_drift():
    from engine.api import run_backtest

    toml = tomllib.loads('kind = "static"\nname = "bh"\nweights = "equal"\nrebalance = "none"\n')
    cfg = parse_config(_bh_cfg() | {"strategies": [toml]})
    res = run_backtest(cfg, panel=_two_assets())
    run = res.runs["bh"]
    # bought once at 100/100 with half each: A0 doubles, A1 stays: 0.5 x 2 + 0.5 x 1 = 1.5
    assert run.equity.iloc[-1] / run.equity.iloc[0] == pytest.approx(1.5, rel=1e-9)
    assert res.metrics["bh"]["n_trades"] == 2  # one buy per asset, never again
    assert run.weights["A0"].iloc[-1] == pytest.approx(2 / 3, rel=1e-9)  # 1.0 / 1.5
    monthly = run_backtest(parse_config(_bh_cfg(rebalance="M")), panel=_two_assets())
    assert monthly.metrics["bh"]["n_trades"] > 2  # the calendar one trades back to 50/50
    assert monthly.runs["bh"].weights["A0"].iloc[-1] < 0.6


@pytest.mark.parametrize(
    ("strategy", "line"),
    [
        (
            {"kind": "inverse_vol", "name": "iv", "rebalance": "none"},
            '<config>: strategies.0.inverse_vol: rebalance: "none" would fix the inverse-vol '
            "weights on the first bar, before any volatility is measured; use kind = "
            '"static" for buy-and-hold, or a calendar (D, W, M, Q, Y) or a drift band',
        ),
        (
            {"kind": "optimized", "name": "o", "rebalance": "none"},
            '<config>: strategies.0.optimized.rebalance: "none" is not available for kind '
            "optimized (its weights are solved again on a calendar: D, W, M, Q or Y; for "
            'buy-and-hold use kind = "static")',
        ),
        (
            {
                "kind": "regime",
                "name": "r",
                "rebalance": "none",
                "on_change": False,
                "warmup": "equal",
                "table": {"calm": "equal"},
            },
            '<config>: strategies.0.regime: rebalance: "none" with on_change = false never '
            "trades after the warm-up weights; set on_change = true or a calendar (D, W, M, "
            "Q, Y)",
        ),
    ],
)
def test_buy_and_hold_refused_where_it_means_nothing(strategy, line):
    with pytest.raises(ConfigError) as err:
        parse_config({"detector": {"kind": "none"}, "strategies": [strategy]})
    assert str(err.value) == line


def test_regime_rebalance_none_trades_on_regime_changes_only():
    cfg = parse_config(
        {
            "detector": {"kind": "none"},
            "strategies": [
                {"kind": "regime", "name": "r", "rebalance": "none", "warmup": "equal",
                 "table": {"all": "equal"}},
            ],
        }
    )  # fmt: skip
    assert cfg.strategies[0].rebalance is None  # the default: no calendar


# ------------------------------------------------------------------ 5. the normalize hint
def test_custom_strategy_above_gross_one_is_not_told_to_normalize():
    from engine.api import run_backtest

    p = random_panel(120, 2)
    panel = BarPanel(p.index, ("SPX", "UST10"), p.open, p.high, p.low, p.close, p.volume)
    cfg = parse_config(
        {
            "detector": {"kind": "none"},
            "execution": {"allow_short": True},
            "strategies": [
                {
                    "kind": "custom",
                    "name": "lev",
                    "target": "strategies.example:PythonTilt",
                    "params": {"calm_equity": 1.5, "other_equity": 1.5},  # SPX 1.5, UST10 -0.5
                }
            ],
        }
    )
    with pytest.raises(ConfigError) as err:
        run_backtest(cfg, panel=panel)
    assert str(err.value) == (
        "strategies.lev: strategy 'lev', bar 0 (2001-01-01 00:00:00): target weights sum to 2 "
        "(gross) > 1; enable execution.allow_leverage (with max_gross) or scale the "
        "strategy's targets to a gross of at most 1 (a custom strategy's targets are "
        "fractions of equity; it takes no normalize key)"
    )
    with pytest.raises(ConfigError, match="normalize"):  # and the key it names is refused
        parse_config(
            {"strategies": [{"kind": "custom", "name": "c", "target": "m:C", "normalize": True}]}
        )


@pytest.mark.parametrize(
    ("strategy", "fix"),
    [
        (
            {"kind": "static", "name": "s", "weights": {"A0": 0.9, "A1": 0.6}},
            "enable execution.allow_leverage (with max_gross) or set normalize = true",
        ),
        (
            {"kind": "optimized", "name": "s", "warmup": {"A0": 0.9, "A1": 0.6}},
            "enable execution.allow_leverage (with max_gross) or give warmup weights summing "
            "to at most 1",
        ),
    ],
)
def test_gross_hint_fits_the_kind(strategy, fix):
    with pytest.raises(ConfigError) as err:
        parse_config({"detector": {"kind": "none"}, "strategies": [strategy]})
    assert str(err.value).endswith(f"weights sum to 1.5 (gross) > 1; {fix}")

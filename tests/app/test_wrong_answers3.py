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


# ------------------------------------------------------------------ 6. constant inputs
def _constant_market(n: int = 300) -> BarPanel:
    rng = np.random.default_rng(3)
    a1 = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    close = np.column_stack([np.full(n, 100.0), a1])
    idx = pd.bdate_range("2001-01-01", periods=n)
    return BarPanel(idx, ("A0", "A1"), close, close, close, close, np.full_like(close, 1e9))


FITTED_KINDS = ["hmm", "gmm", "kmeans", "jump", "supervised", "bocpd", "gru"]


@pytest.mark.parametrize("kind", FITTED_KINDS)
def test_a_constant_input_is_refused_by_every_fitted_detector(kind):
    from engine.api import run_backtest

    if kind == "gru":
        pytest.importorskip("torch")
    det: dict = {"kind": kind, "market": "A0", "min_train": 60, "skip": 5}
    if kind not in ("bocpd", "hmm"):
        det["refit_every"] = 100
    cfg = parse_config(
        {
            "detector": det,
            "costs": {"commission_bps": 0.0},
            "strategies": [{"kind": "static", "name": "s", "weights": {"A1": 0.5}}],
        }
    )
    panel = _constant_market()
    with pytest.raises(ConfigError) as err:
        run_backtest(cfg, panel=panel)
    idx = panel.index
    assert str(err.value) == (
        f"detector: input 'logret' is constant from {idx[5].date()} to {idx[59].date()} "
        "(the training window, bars 5 to 59): nothing to fit; use a market whose price "
        "moves (detector.market) or other detector.features"
    )


def test_a_constant_input_is_refused_by_a_scikit_learn_detector():
    from engine.api import run_backtest

    cfg = parse_config(
        {
            "detector": {
                "kind": "custom",
                "target": "strategies.sklearn_detector:random_forest_detector",
                "params": {"market": "A0", "n_estimators": 5},
            },
            "strategies": [{"kind": "static", "name": "s", "weights": {"A1": 0.5}}],
        }
    )
    panel = _constant_market(600)
    with pytest.raises(ConfigError) as err:
        run_backtest(cfg, panel=panel)
    idx = panel.index
    assert str(err.value) == (
        f"detector: input 'logret' is constant from {idx[21].date()} to {idx[503].date()} "
        "(the training window, bars 21 to 503): nothing to fit; use a market whose price "
        "moves (detector.market) or other detector.features"
    )


@pytest.mark.parametrize("kind", ["gmm", "kmeans", "jump", "supervised"])
def test_a_rolling_window_that_stands_still_keeps_the_model_so_far(kind):
    """A price that moves, then stands still for longer than the rolling window: the refit
    on the still window keeps the previous model (as the HMM does) instead of failing."""
    from engine.regimes.inputs import Schedule

    rng = np.random.default_rng(5)
    moving = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    a0 = np.concatenate([moving, np.full(200, moving[-1])])
    close = np.column_stack([a0, a0])
    idx = pd.bdate_range("2001-01-01", periods=400)
    panel = BarPanel(idx, ("A0", "A1"), close, close, close, close, np.full_like(close, 1e9))
    cfg = parse_config(
        {
            "detector": {
                "kind": kind,
                "market": "A0",
                "min_train": 150,
                "refit_every": 100,
                "window": "rolling",
                "window_length": 80,
                "skip": 5,
            },
            "strategies": [{"kind": "static", "name": "s", "weights": {"A1": 0.5}}],
        }
    )
    prep = assemble(cfg, panel).prepare()
    params = prep.dparams
    assert prep.fit_bars.tolist() == [150, 250, 350]
    np.testing.assert_array_equal(params[2], params[1])  # bars 270-349: still, model kept
    assert Schedule(150, 100, 80, 5).rows(350) == slice(270, 350)


# ------------------------------------------------------------------ 3. regime-engine list
LIST_PLUGIN = '''
"""A user plug-in: one feature, one detector factory, one strategy."""
import numpy as np

from engine.plugins.features import WindowFeature, register


def _trend(window):
    """Log change over the window (user doc line)."""
    return float(np.log(window[-1] / window[0]))


register(WindowFeature(name="listed_trend", fn=_trend, window=10))


def my_detector(panel, market="A0"):
    """Two states from the user's own rule."""
    raise NotImplementedError


class MyStrategy:
    """Holds what the user says."""
'''


def test_list_shows_builtins_and_the_configs_plugins(tmp_path, capsys):
    (tmp_path / "listplug.py").write_text(LIST_PLUGIN)
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        '[plugins]\nmodules = ["listplug"]\n\n[detector]\nkind = "custom"\n'
        'target = "listplug:my_detector"\n\n[[strategies]]\nkind = "custom"\nname = "mine"\n'
        'target = "listplug:MyStrategy"\n'
    )
    assert main(["list", "--config", str(cfg)]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {" ".join(line.split()) for line in lines if line.startswith("  ")}
    for row in (
        'static Fixed weights (a table or "equal") rebalanced on a calendar, a drift band, '
        "or held.",
        "hmm Gaussian HMM (EM fit) + numba forward filter: the default regime detector.",
        "logret built-in: log return of the close over one bar",
        "listed_trend user WindowFeature (per asset, 10 bars, from listplug): Log change over "
        "the window (user doc line).",
        "custom listplug:my_detector Two states from the user's own rule.",
        "custom listplug:MyStrategy (mine) Holds what the user says.",
    ):
        assert row in rows, row
    assert lines.index("detectors ([detector] kind = ...):") < lines.index(
        "features ([detector] features, SYMBOL.name; strategies by name):"
    )


def test_list_is_a_lazy_subcommand(capsys):
    from engine.cli import LAZY_COMMANDS

    assert LAZY_COMMANDS["list"][0] == "engine.catalog"
    assert main(["list", "detectors"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "detectors ([detector] kind = ...):"
    kinds = [line.split()[0] for line in out[1:]]
    assert kinds == [
        "none",
        "rule",
        "hmm",
        "gmm",
        "kmeans",
        "jump",
        "supervised",
        "bocpd",
        "gru",
        "custom",
    ]
    assert main(["list", "--config", "/nonexistent.toml"]) == 2
    assert capsys.readouterr().err.strip() == "error: /nonexistent.toml: config file not found"


# ------------------------------------------------------------------ 4. blanks before a listing
def _listing_csv(path: Path) -> Path:
    """AAA from 2020-01-01; BBB blank until 2020-01-06 (listed then) and blank on 01-13."""
    idx = pd.bdate_range("2020-01-01", periods=20)
    aaa = np.concatenate([np.full(5, 100.0), np.linspace(100.0, 120.0, 15)])
    bbb = np.concatenate([np.full(3, np.nan), np.full(2, 50.0), np.linspace(50.0, 70.0, 15)])
    bbb[8] = np.nan  # 2020-01-13: an interior blank, carried forward
    df = pd.DataFrame({"date": idx.strftime("%Y-%m-%d"), "AAA": aaa, "BBB": bbb})
    df.to_csv(path, index=False)
    return path


def test_blank_cells_before_a_listing_start_the_run_at_the_common_start(tmp_path):
    from structlog.testing import capture_logs

    from engine.api import run_backtest

    src = _listing_csv(tmp_path / "wide.csv")
    raw = {
        "data": {"source": str(src), "ohlc_from_close": True, "fill": "ffill"},
        "detector": {"kind": "none"},
        "costs": {"commission_bps": 0.0},
        "strategies": [{"kind": "static", "name": "ew", "weights": "equal", "rebalance": "none"}],
    }
    with capture_logs() as logs:
        res = run_backtest(parse_config(raw), progress=False)
    listed = [e for e in logs if e["event"] == "data.not_listed_yet"]
    assert [(e["symbol"], e["first_price"], e["blank_rows"]) for e in listed] == [
        ("BBB", "2020-01-06", 3)
    ]
    gaps = [e for e in logs if e["event"] == "data.blank_cells"]
    assert [(e["symbol"], e["first_blank"]) for e in gaps] == [("BBB", "2020-01-13")]
    run = res.runs["ew"]
    assert run.equity.index[0] == pd.Timestamp("2020-01-06")  # the common start
    assert len(run.equity) == 17  # 20 dates less the 3 before BBB's listing
    # equal weight bought at 100 / 50 (flat for the first two bars), held: 0.5 x 120/100
    # + 0.5 x 70/50 = 1.3
    assert run.equity.iloc[-1] / run.equity.iloc[0] == pytest.approx(1.3, rel=1e-12)
    import data_feeds

    panel = data_feeds.load_csv(src, ohlc_from_close=True, fill="ffill")
    bbb = pd.Series(panel.close[:, 1], index=panel.index)
    assert bbb["2020-01-13"] == bbb["2020-01-10"]  # the interior blank: the previous close


def test_a_symbol_blank_throughout_is_one_line(tmp_path):
    import data_feeds
    from engine.ground.bars import DataError

    p = tmp_path / "wide.csv"
    p.write_text("date,AAA,BBB\n2020-01-01,1.0,\n2020-01-02,1.1,\n2020-01-03,1.2,\n")
    with pytest.raises(DataError) as err:
        data_feeds.load_csv(p, ohlc_from_close=True, fill="ffill")
    assert str(err.value) == f"{p}: symbol BBB: every cell is blank (no price at all)"


# ------------------------------------------------------------------ 8. the streaming driver
def test_the_readmes_streaming_driver_snippet_runs_as_written():
    """Run in a fresh process, as a reader would (its assert: bit-identical equity)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    section = (root / "README.md").read_text().split("## Which driver runs: compiled or", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    printed = section.split("```", 2)[2].split("prints `", 1)[1].split("`", 1)[0]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.splitlines()[0] == printed  # (structlog info lines follow it)

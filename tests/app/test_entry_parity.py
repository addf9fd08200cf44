"""One config, every entry point: backtest, validate, sweep, advise and paper build the same
run (through :func:`engine.assemble.assemble`) and give the same targets on common bars.

The configs carry the four things that drifted between entry points before the composition
root (each failed in at least one of validate, sweep or paper on cb11006):
no ``[detector] market`` on symbols without SPX; a time-named feature window (``"3d"``,
``"2w"``); hourly bars with ``borrow_bps`` (periods per year from the data, not 252); a
user feature named in ``[detector] features``. The bundled case adds an exogenous input
and a ``ma_gap`` input whose window (126 bars) is longer than ``detector.skip``: every
entry point fits past it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import engine.core.backtest as core_backtest
from brokers.cli import paper_node
from data_feeds.synthetic import generate_regime_panel
from engine.advise import AdviseConfig, advise
from engine.api import run_backtest
from engine.assemble import assemble
from engine.config import ConfigError, RunConfig, parse_config
from engine.core.streaming import replay
from engine.plugins.features import REGISTRY, IncrementalFeature, register
from engine.sweep import SerialExecutor, run_sweep
from engine.validate import parse_validation, run_validation
from strategies.features_example import ewm_momentum_nb

HOURS = ("09:30", "10:30", "11:30", "12:30", "13:30", "14:30", "15:30")
TABLE = {
    "calm": {"QQQ": 0.7, "IEF": 0.3},
    "volatile": {"QQQ": 0.4, "IEF": 0.4, "CASH": 0.2},
    "crisis": {"QQQ": 0.1, "IEF": 0.5, "CASH": 0.4},
}


@pytest.fixture(scope="module", autouse=True)
def user_feature():  # type: ignore[no-untyped-def]
    """``ewm_mom`` (one column per asset), registered for this module only."""
    alpha = 1.0 - 0.5 ** (1.0 / 20.0)
    f = register(
        IncrementalFeature(
            name="ewm_mom", update=ewm_momentum_nb, params=np.array([alpha]), state_size=8
        )
    )
    yield f
    REGISTRY.pop("ewm_mom", None)


def _hourly_csv(folder: Path) -> Path:
    """Seven bars a session, 2 years: QQQ, IEF, CASH (asset classes unknown: no SPX)."""
    days, _ = generate_regime_panel(
        360,
        means=[[4e-4, 1e-4, 5e-5], [-8e-4, 3e-4, 5e-5]],
        vols=[[0.004, 0.002, 1e-5], [0.012, 0.004, 1e-5]],
        mean_dwell=[40, 15],
        seed=11,
        symbols=["QQQ", "IEF", "CASH"],
        gap_frac=0.0,
    )
    rng = np.random.default_rng(5)
    stamps = [pd.Timestamp(f"{d.date()} {h}") for d in days.index for h in HOURS]
    steps = rng.normal(0.0, 1.0, (len(stamps), 3)) * np.array([0.003, 0.0012, 1e-6])
    close = 100.0 * np.exp(np.cumsum(steps, axis=0))
    rows = {"timestamp": stamps}
    for j, s in enumerate(("QQQ", "IEF", "CASH")):
        rows[f"{s}_close"] = close[:, j]
    path = folder / "hourly.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _hourly_config(folder: Path) -> dict[str, Any]:
    return {
        "name": "parity_hourly",
        "data": {"source": str(_hourly_csv(folder)), "ohlc_from_close": True},
        "features": {"hl_fast": "3d", "hl_slow": "2w"},
        "costs": {"commission_bps": 2.0, "borrow_bps": 50.0},
        "execution": {
            "allow_short": True,
            "allow_leverage": True,
            "max_gross": 2.0,
            "financing_rate": 0.0,
        },
        "detector": {
            "kind": "hmm",
            "features": ["logret", "ewm_mom"],
            "min_train": 700,
            "refit_every": 0,
        },
        "strategies": [
            {"kind": "static", "name": "static", "weights": {"QQQ": 0.6, "IEF": 0.4}},
            {
                "kind": "regime",
                "name": "regime_aware",
                "rebalance": "W",
                "warmup": {"QQQ": 1.2, "IEF": 0.2, "CASH": -0.4},  # a short: borrow accrues
                "table": TABLE,
            },
        ],
    }


def _bundled_config() -> dict[str, Any]:
    table = {
        k: {s.replace("QQQ", "NASDAQ").replace("IEF", "UST10"): w for s, w in v.items()}
        for k, v in TABLE.items()
    }
    return {
        "name": "parity_bundled",
        "data": {
            "symbols": ["NASDAQ", "UST10", "CASH"],
            "start": "2004-01-01",
            "end": "2009-12-31",
        },
        "features": {"hl_fast": "2w", "hl_slow": "3m", "ma_window": "6m"},
        "detector": {
            "kind": "hmm",
            "features": ["logret", "ewm_mom", "exog.log_VIX", "ma_gap"],
            "min_train": 504,
            "refit_every": 0,
        },
        "strategies": [
            {"kind": "static", "name": "static", "weights": {"NASDAQ": 0.6, "UST10": 0.4}},
            {
                "kind": "regime",
                "name": "regime_aware",
                "rebalance": "M",
                "warmup": {"NASDAQ": 0.6, "UST10": 0.4},
                "table": table,
            },
        ],
    }


@pytest.fixture(scope="module", params=["hourly", "bundled"])
def cfg(request, tmp_path_factory) -> RunConfig:  # type: ignore[no-untyped-def]
    raw = (
        _hourly_config(tmp_path_factory.mktemp("data"))
        if request.param == "hourly"
        else (_bundled_config())
    )
    return parse_config(raw)


@pytest.fixture(scope="module")
def backtest(cfg: RunConfig):  # type: ignore[no-untyped-def]
    return run_backtest(cfg, progress=False)


def _same_prepared(a: Any, b: Any) -> None:
    """Two Prepared runs carry the same settings into the core."""
    assert a.panel.symbols == b.panel.symbols and a.panel.exog_names == b.panel.exog_names
    for field in ("costs", "eparams", "fparams", "smooth"):
        assert np.array_equal(getattr(a, field), getattr(b, field)), field
    assert [f.name for f in a.user_features] == [f.name for f in b.user_features]
    det_a = getattr(a.detector, "inner", a.detector)  # validate: a fold schedule around it
    assert det_a == b.detector


def test_the_run_is_resolved_from_the_data(cfg: RunConfig) -> None:
    run = assemble(cfg)
    assert run.market == run.panel.symbols[0]  # no SPX here: the first equity-like symbol
    assert [f.name for f in run.user_features] == ["ewm_mom"]
    assert "ewm_mom" in "".join(run.inputs.exog_names)
    if run.frequency.name != "daily":  # hourly: 7 bars a session
        assert run.periods_per_year == pytest.approx(7 * 252, rel=0.05)
        assert run.execution.array().tolist() != cfg.execution.build().array().tolist()
    with pytest.raises(ConfigError, match="needs the data's bar frequency"):
        cfg.features.build()  # what validate, sweep and paper did before: refused
    assert run.features.array().tolist() == cfg.features.build(run.frequency).array().tolist()
    gap = "ma_gap" in cfg.detector.features  # fitted past its 126-bar moving average
    assert run.detector_config.skip == (126 if gap else cfg.detector.skip)


def test_validate_builds_the_backtest_run(cfg: RunConfig, backtest, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    seen: list[Any] = []
    real = core_backtest.prepare

    def spy(*args: Any, **kw: Any) -> Any:
        seen.append(real(*args, **kw))
        return seen[-1]

    monkeypatch.setattr("engine.assemble.prepare", spy)
    ref = assemble(cfg).prepare()
    seen.clear()
    years = assemble(cfg).panel.n_bars / assemble(cfg).periods_per_year
    v = parse_validation(
        cfg.model_copy(
            update={
                "validation": {
                    "train_years": round(years * 0.6, 2),
                    "test_years": round(years * 0.2, 2),
                    "bootstrap_reps": 20,
                    "cost_bps": [5.0],
                    "cv": {"enabled": False},
                }
            }
        )
    )
    res = run_validation(cfg, v)
    assert seen, "validate did not prepare its run through the composition root"
    _same_prepared(seen[0], ref)
    assert len(res.folds) >= 1
    # the walk-forward run's targets before its first refit are the backtest's warm-up ones
    first = int(seen[0].fit_bars[0])
    bt = backtest.runs["regime_aware"].targets.to_numpy()[:first]
    assert np.isfinite(bt).any()


def test_sweep_one_combination_equals_the_backtest(cfg: RunConfig, backtest) -> None:  # type: ignore[no-untyped-def]
    raw = cfg.model_dump(mode="json", exclude_unset=True)
    raw["sweep"] = {
        "strategy_name": "regime_aware",
        "costs": {"commission_bps": [cfg.costs.commission_bps]},
    }
    out = run_sweep(parse_config(raw), executor=SerialExecutor())
    assert len(out.table) == 1
    row = out.table.iloc[0]
    ref = backtest.runs["regime_aware"].equity.to_numpy()
    assert row["final_equity"] == ref[-1]
    mine = backtest.metrics["regime_aware"]
    # annualised with the data's periods per year in both (Sharpe aside: the backtest's is
    # over the CASH series when there is one, the sweep's at rf = 0)
    for name in ("total_return", "cagr", "volatility", "max_drawdown"):
        assert row[name] == pytest.approx(mine[name], rel=1e-9, abs=1e-12), name


def test_advise_targets_are_the_backtests_last(cfg: RunConfig, backtest) -> None:  # type: ignore[no-untyped-def]
    a = advise(cfg, AdviseConfig(strategy="regime_aware", changepoint="none"))
    targets = backtest.runs["regime_aware"].targets.to_numpy()
    rows = np.flatnonzero(np.isfinite(targets).any(axis=1))
    want = dict(zip(backtest.panel.symbols, targets[rows[-1]], strict=True))
    assert a["target_weights"] == pytest.approx(want, rel=0, abs=0)


def test_paper_driver_replays_the_backtest(cfg: RunConfig, backtest, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    raw = cfg.model_dump(mode="json", exclude_unset=True)
    raw["paper"] = {"broker": "local", "strategy": "regime_aware", "state_dir": str(tmp_path)}
    tr = paper_node(parse_config(raw))  # builds its run; connects only in run()
    outs = replay(tr.trader.driver, tr.panel)
    got = np.array([o.targets for o in outs])
    want = backtest.runs["regime_aware"].targets.to_numpy()
    assert np.array_equal(got, want, equal_nan=True)
    eq = np.array([o.equity for o in outs])
    assert np.array_equal(eq, backtest.runs["regime_aware"].equity.to_numpy())

"""Sweeps: config validation, plan expansion, fit cache, metrics, executor identity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.analysis.metrics import summary
from engine.api import prepare_run
from engine.assemble import build_strategy, load_panel
from engine.config import ConfigError, parse_config
from engine.core.backtest import run_strategy_raw
from engine.core.result import fills_frame
from engine.sweep import FitCache, LocalExecutor, SerialExecutor, build_plan, run_sweep
from engine.sweep.metrics_nb import METRIC_NAMES, metrics_nb

SMALL = {
    "data": {"end": "2006-12-31"},
    "detector": {"kind": "rule"},  # fast to fit; the sweep mechanics don't depend on the kind
    "sweep": {
        "strategy_name": "regime_aware",
        "detector": {"high_pct": [0.7, 0.8], "smoothing.min_dwell": [0, 5]},
        "strategy": {"drift": [0.0, 0.05]},
        "costs": {"commission_bps": [1.0, 10.0]},
    },
}


@pytest.fixture(scope="module")
def small_cfg():
    return parse_config(SMALL)


@pytest.fixture(scope="module")
def panel(small_cfg):
    return load_panel(small_cfg)


@pytest.fixture(scope="module")
def serial_result(small_cfg, panel):
    return run_sweep(small_cfg, panel=panel, executor=SerialExecutor())


def test_grid_expands_and_dedupes(small_cfg):
    plan = build_plan(small_cfg)
    assert plan.n_combos == 16
    assert len(plan.detectors) == 4 and len(plan.strategies) == 2 and len(plan.costs) == 2
    assert plan.params[0] == {
        "detector.high_pct": 0.7,
        "detector.smoothing.min_dwell": 0,
        "strategy.drift": 0.0,
        "costs.commission_bps": 1.0,
    }


def test_random_mode_is_seeded():
    raw = {
        "sweep": {
            "mode": "random",
            "n_samples": 7,
            "seed": 3,
            "costs": {"commission_bps": {"low": 0.5, "high": 20.0, "log": True}},
            "strategy": {"rebalance": ["M", "Q"]},
        }
    }
    a, b = build_plan(parse_config(raw)), build_plan(parse_config(raw))
    assert a.n_combos == 7 and a.params == b.params
    assert all(0.5 <= p["costs.commission_bps"] <= 20.0 for p in a.params)


@pytest.mark.parametrize(
    ("sweep", "message"),
    [
        ({"mdoe": "grid"}, "sweep.mdoe: unknown key"),
        ({"costs": {"comission_bps": [1.0]}}, "sweep.costs.comission_bps: unknown key"),
        ({"costs": {"commission_bps": ["x"]}}, "sweep.costs.commission_bps"),
        ({"detector": {"history": [5]}}, "sweep.detector.history"),
        ({"strategy": {"drift": []}}, "sweep.strategy.drift: empty list"),
        ({"costs": {"commission_bps": {"low": 1, "high": 2}}}, 'mode = "random"'),
        ({"strategy_name": "nope"}, "sweep.strategy_name"),
    ],
)
def test_bad_sweep_config_names_the_key(sweep, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        build_plan(parse_config({"sweep": sweep}))


def test_results_match_a_plain_backtest(small_cfg, panel, serial_result):
    """Combination 5 equals run_backtest's path for the same settings, and its metrics
    equal engine.analysis.metrics.summary to 1e-9."""
    row = serial_result.table.iloc[5]
    params = serial_result.plan.params[5]
    raw = small_cfg.model_dump(mode="json")
    raw.pop("sweep")
    raw["detector"]["high_pct"] = params["detector.high_pct"]
    raw["detector"]["smoothing"]["min_dwell"] = params["detector.smoothing.min_dwell"]
    raw["costs"]["commission_bps"] = params["costs.commission_bps"]
    strat = next(s for s in raw["strategies"] if s["name"] == "regime_aware")
    strat["drift"] = params["strategy.drift"]
    cfg = parse_config(raw)
    prep = prepare_run(cfg, panel)
    scfg = next(s for s in cfg.strategies if s.name == "regime_aware")
    out = run_strategy_raw(prep, build_strategy(scfg))  # type: ignore[arg-type]
    equity = pd.Series(out[0], index=panel.index)
    ref = summary(equity, fills_frame("x", panel, out[9]))
    assert row["final_equity"] == out[0][-1]
    for name in METRIC_NAMES:
        assert row[name] == pytest.approx(ref[name], rel=1e-9, abs=1e-12, nan_ok=True), name


def test_metrics_kernel_edge_cases():
    out = np.empty(len(METRIC_NAMES))
    metrics_nb(np.full(10, 100.0), np.zeros((0, 8)), 252.0, out)
    m = dict(zip(METRIC_NAMES, out))
    assert m["total_return"] == 0.0 and m["max_drawdown"] == 0.0 and m["n_trades"] == 0
    assert np.isnan(m["sharpe"]) and np.isnan(m["calmar"])


def test_fit_cache_one_fit_per_detector_setting(small_cfg, panel, tmp_path, serial_result):
    # smoothing does not change the fit: 4 detector configs -> 2 fits
    assert serial_result.timings["n_fits"] == 2
    assert sorted(serial_result.table["fit"].unique()) == [0, 1]
    cache = FitCache(tmp_path)
    first = run_sweep(small_cfg, panel=panel, executor=SerialExecutor(), cache=cache)
    assert cache.misses == 2 and len(list(tmp_path.glob("*.npz"))) == 2
    again = run_sweep(small_cfg, panel=panel, executor=SerialExecutor(), cache=FitCache(tmp_path))
    assert again.timings["fit_cache_hits"] == 2
    pd.testing.assert_frame_equal(first.table, again.table)


def test_local_processes_identical_to_serial(small_cfg, panel, serial_result):
    local = run_sweep(small_cfg, panel=panel, executor=LocalExecutor(2))
    pd.testing.assert_frame_equal(local.table, serial_result.table, check_exact=True)


def test_dask_local_cluster_identical_to_local(small_cfg, panel, serial_result):
    distributed = pytest.importorskip("distributed")
    from engine.sweep import DaskExecutor

    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        ex = DaskExecutor(client)
        result = run_sweep(small_cfg, panel=panel, executor=ex)
    pd.testing.assert_frame_equal(result.table, serial_result.table, check_exact=True)


def test_save_writes_tables(serial_result, tmp_path):
    serial_result.save(tmp_path)
    back = pd.read_parquet(tmp_path / "results.parquet")
    pd.testing.assert_frame_equal(back, serial_result.table)
    assert (tmp_path / "results.csv").is_file() and (tmp_path / "heatmap.png").is_file()


def test_cli_sweep(tmp_path, capsys):
    from engine.cli import main

    cfg = tmp_path / "s.toml"
    cfg.write_text(
        '[data]\nend = "2004-12-31"\n[sweep]\n[sweep.costs]\ncommission_bps = [1.0, 5.0]\n'
    )
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "out"), "--workers", "1"]) == 0
    assert "2 combinations" in capsys.readouterr().out
    assert (tmp_path / "out" / "results.parquet").is_file()
    bad = tmp_path / "bad.toml"
    bad.write_text("[sweep]\nmdoe = 1\n")
    assert main(["sweep", str(bad)]) == 2
    assert "sweep.mdoe: unknown key" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["rule", "hmm"])
def test_shared_passes_equal_unshared_bit_for_bit(kind, panel):
    """One features + regime pass per (fit, features, smoothing), shared by every strategy,
    cost and execution setting: the results table and every combination's raw run are
    those of each combination computing its own, bit for bit."""
    from engine.assemble import assemble
    from engine.sweep.config import build_plan
    from engine.sweep.executors import SerialExecutor as Serial
    from engine.sweep.runner import build_data, fit_all
    from engine.sweep.tasks import run_one

    raw = {
        "data": {"end": "2006-12-31"},
        "detector": (
            {"kind": "hmm", "min_train": 504, "refit_every": 252, "n_restarts": 1, "n_iter": 20}
            if kind == "hmm"
            else {"kind": "rule"}
        ),
        "sweep": {
            "strategy_name": "regime_aware",
            "detector": {"smoothing.min_dwell": [0, 5]},
            "features": {"hl_fast": [10.0, 21.0]},
            "strategy": {"drift": [0.0, 0.05], "rebalance": ["M", "W"]},
            "costs": {"commission_bps": [1.0, 10.0]},
            "execution": {"trade_band": [0.0, 0.02]},
        },
    }
    if kind == "hmm":
        raw["sweep"]["detector"]["covariance"] = ["full", "diag"]
    cfg = parse_config(raw)
    shared = run_sweep(cfg, panel=panel, executor=SerialExecutor())
    alone = run_sweep(cfg, panel=panel, executor=SerialExecutor(), share_passes=False)
    pd.testing.assert_frame_equal(shared.table, alone.table, check_exact=True)
    plan = build_plan(cfg)
    base = assemble(cfg, panel, [])
    fits, fit_idx, _ = fit_all(plan, base, Serial(), FitCache())
    data_s = build_data(plan, base, fits, fit_idx, share=True)
    data_u = build_data(plan, base, fits, fit_idx, share=False)
    n_groups = len({tuple(r) for r in data_s.combos[:, [0, 1, 5]]})
    assert len(data_s.regimes) == n_groups < plan.n_combos  # shared, not one per combination
    assert all(r is not None for r in data_s.feat_rows)
    for i in range(plan.n_combos):
        a, b = run_one(data_s, i), run_one(data_u, i)
        for field in a._fields:
            if field == "features":  # not recorded in sweeps: one uninitialised row
                continue
            x, y = np.asarray(getattr(a, field)), np.asarray(getattr(b, field))
            assert x.shape == y.shape and np.array_equal(x, y, equal_nan=True), (i, field)


def test_optimizer_axes_equal_individual_backtests():
    """kind = "optimized": objective x half_life as sweep axes (2 x 2); each combination's
    metrics equal the backtest of the same settings run alone (the optimiser bound to the
    sweep's shared regime pass = bound to the backtest's prepared run)."""
    from engine.api import run_backtest

    strat = {
        "kind": "optimized",
        "name": "opt",
        "assets": ["SPX", "RUT", "UST10"],
        "window": 252,
        "min_history": 126,
        "max_weight": 0.7,
    }
    raw = {
        "data": {
            "source": "bundled:modern",
            "symbols": ["SPX", "RUT", "UST10", "CASH"],
            "start": "2003-01-01",
            "end": "2007-12-31",
        },
        "detector": {"kind": "rule"},
        "costs": {"commission_bps": 5.0},
        "strategies": [strat],
        "sweep": {
            "strategy_name": "opt",
            "strategy": {"objective": ["min_variance", "risk_parity"], "half_life": [0.0, 63.0]},
        },
    }
    cfg = parse_config(raw)
    res = run_sweep(cfg, executor=SerialExecutor())
    assert len(res.table) == 4
    assert len({tuple(r) for r in res.table[["final_equity", "sharpe"]].to_numpy()}) == 4
    for i, params in enumerate(res.plan.params):
        alone = {k: v for k, v in raw.items() if k != "sweep"}
        alone["strategies"] = [
            {
                **strat,
                "objective": params["strategy.objective"],
                "half_life": params["strategy.half_life"],
            }
        ]
        bt = run_backtest(parse_config(alone))
        run = bt.runs["opt"]
        row = res.table.iloc[i]
        assert row["final_equity"] == run.equity.iloc[-1], params
        assert bt.metrics["opt"]["optimizer_solves"] > 30
        ref = summary(run.equity, run.fills)
        for name in METRIC_NAMES:
            assert row[name] == pytest.approx(ref[name], rel=1e-9, abs=1e-12, nan_ok=True), (
                params,
                name,
            )

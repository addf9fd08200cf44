"""A detector fed ``ma_gap`` fits past its warm-up: the feature is 0 until its moving
average has ``features.ma_window`` bars, so ``detector.skip`` is raised to the window
(logged), in a backtest and in every sweep combination alike."""

from __future__ import annotations

from typing import Any

import pytest

from engine.api import run_backtest
from engine.assemble import assemble, load_panel, past_feature_warmup
from engine.config import parse_config
from engine.core.spec import Features
from engine.sweep import SerialExecutor, run_sweep


def raw(ma_window: int = 300, **detector: Any) -> dict[str, Any]:
    return {
        "data": {"end": "2006-12-31"},
        "features": {"ma_window": ma_window},
        "detector": {
            "kind": "hmm",
            "features": ["logret", "SPX.ma_gap"],
            "min_train": 504,
            "refit_every": 252,
            **detector,
        },
    }


@pytest.fixture(scope="module")
def panel():
    return load_panel(parse_config(raw()))


def test_skip_is_raised_to_the_window_only_for_ma_gap_inputs() -> None:
    det = parse_config(raw()).detector
    assert past_feature_warmup(det, Features(ma_window=300)).skip == 300
    assert past_feature_warmup(det, Features(ma_window=10)) is det  # skip 21 covers it
    for names in (["log_ma_gap"], ["ma_gap"], ["SPX.log_ma_gap", "logret"]):
        d = det.model_copy(update={"features": tuple(names)})
        assert past_feature_warmup(d, Features(ma_window=300)).skip == 300, names
    plain = det.model_copy(update={"features": ("logret", "log_vol_fast")})
    assert past_feature_warmup(plain, Features(ma_window=300)) is plain
    late = det.model_copy(update={"skip": 400})
    assert past_feature_warmup(late, Features(ma_window=300)) is late


def test_backtest_fits_leave_out_the_warm_up_like_an_explicit_skip(panel) -> None:
    run = assemble(parse_config(raw()), panel)
    assert run.detector_config.skip == 300
    auto = run_backtest(raw(), panel=panel, progress=False)
    explicit = run_backtest(raw(skip=300), panel=panel, progress=False)
    zeros = run_backtest(raw(ma_window=30), panel=panel, progress=False)  # warm-up < skip
    assert auto.equity.equals(explicit.equity)
    assert not auto.equity.equals(zeros.equity)


def test_each_sweep_combination_fits_past_its_own_window(panel) -> None:
    cfg = raw()
    cfg["sweep"] = {"features": {"ma_window": [250, 350]}, "strategy_name": "regime_aware"}
    res = run_sweep(parse_config(cfg), panel=panel, executor=SerialExecutor())
    assert res.table["fit"].tolist() == [0, 1]  # one fit per window
    for final, params in zip(res.table["final_equity"], res.plan.params, strict=True):
        alone = run_backtest(raw(ma_window=params["features.ma_window"]), panel=panel)
        assert final == alone.equity["regime_aware"].iloc[-1], params

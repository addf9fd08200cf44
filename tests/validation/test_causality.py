"""Walk-forward stitching is causal: test-period results up to fold k's end do not change
when the data after that end is truncated or replaced by noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.analysis.walkforward import ScheduledDetector, fold_table, make_folds, oos_returns
from engine.core.backtest import prepare, run_strategies
from engine.core.spec import CostModel, cost_table
from engine.ground.bars import BarPanel
from engine.regimes.config import KMeansDetectorConfig, RuleDetectorConfig

TRAIN, TEST = 504, 252


@pytest.fixture(scope="module")
def panel() -> BarPanel:
    import data_feeds

    return data_feeds.load_bundled(
        ["SPX", "UST10", "WTI", "CASH"], "2004-01-01", "2009-12-31", "classic"
    )


@pytest.fixture(scope="module")
def strategies():
    from strategies.regime_switching import RegimeSwitching
    from strategies.static import StaticAllocation

    table = {
        "0": {"SPX": 0.7, "UST10": 0.2, "WTI": 0.1},
        "1": {"SPX": 0.35, "UST10": 0.5, "WTI": 0.05, "CASH": 0.1},
        "2": {"SPX": 0.05, "UST10": 0.6, "CASH": 0.35},
    }
    return [
        StaticAllocation("static_60_40", {"SPX": 0.6, "UST10": 0.4}, "M"),
        RegimeSwitching("regime_aware", table, {"SPX": 0.6, "UST10": 0.4}, "M"),
    ]


def walk_forward(panel: BarPanel, strategies, kind: str, window: str):
    folds = make_folds(panel.n_bars, TRAIN, TEST, window)  # type: ignore[arg-type]
    det_cfg = (
        KMeansDetectorConfig(n_init=1, min_train=252, seed=0)
        if kind == "kmeans"
        else RuleDetectorConfig()
    )
    det = ScheduledDetector(det_cfg.build(panel), folds)
    costs = cost_table(panel.symbols, CostModel(commission_bps=5.0))
    prep = prepare(panel, det, costs)
    res = run_strategies(prep, strategies)
    return folds, res.equity, prep


def perturb(panel: BarPanel, end: int, mode: str, seed: int) -> BarPanel:
    if mode == "truncate":
        return panel.head(end)
    rng = np.random.default_rng(seed)
    shock = np.ones_like(panel.close)
    shock[end:] = np.exp(np.cumsum(rng.normal(0.0, 0.03, shock[end:].shape), axis=0))
    return BarPanel(
        panel.index,
        panel.symbols,
        panel.open * shock,
        panel.high * shock * 1.01,
        panel.low * shock * 0.99,
        panel.close * shock,
        panel.volume,
        panel.exog,
        panel.exog_names,
        panel.asset_classes,
    )


@settings(deadline=None, max_examples=6)
@given(
    k=st.integers(0, 2),
    mode=st.sampled_from(["truncate", "noise"]),
    kind=st.sampled_from(["rule", "kmeans"]),
    window=st.sampled_from(["expanding", "rolling"]),
    seed=st.integers(0, 1000),
)
def test_oos_results_ignore_the_future(panel, strategies, k, mode, kind, window, seed):
    folds, eq, prep = walk_forward(panel, strategies, kind, window)
    end = folds[k].test_end
    assert end < panel.n_bars  # there is a future to change
    folds2, eq2, prep2 = walk_forward(perturb(panel, end, mode, seed), strategies, kind, window)
    assert folds2[: k + 1] == folds[: k + 1]
    # detector parameters in force up to the end of fold k are identical
    n_fit = int(np.sum(prep.fit_bars < end))
    np.testing.assert_array_equal(prep2.fit_bars[:n_fit], prep.fit_bars[:n_fit])
    np.testing.assert_array_equal(prep2.dparams[:n_fit], prep.dparams[:n_fit])
    # equity, stitched OOS returns and the per-fold table up to fold k are identical
    pd.testing.assert_frame_equal(eq2.iloc[:end], eq.iloc[:end])
    r, r2 = oos_returns(eq, folds[: k + 1]), oos_returns(eq2.iloc[:end], folds2[: k + 1])
    pd.testing.assert_frame_equal(r2, r)
    pd.testing.assert_frame_equal(fold_table(eq2, folds2[: k + 1]), fold_table(eq, folds[: k + 1]))
    if mode == "noise":  # the perturbation did reach the later folds
        assert not np.allclose(eq2.to_numpy()[end + 5 :], eq.to_numpy()[end + 5 :])


@pytest.mark.parametrize("kind", ["kmeans", "hmm"])
def test_fit_memo_reuses_same_window_fits_with_the_same_result(panel: BarPanel, kind: str):
    """A FitMemo shared by two walk-forwards over the same data and folds: the second
    fits nothing and gets the same parameters; other data or another detector refit."""
    from engine.analysis.walkforward import FitMemo
    from engine.regimes.config import HMMDetectorConfig

    folds = make_folds(panel.n_bars, TRAIN, TEST, "expanding")
    cfg = (
        KMeansDetectorConfig(n_init=1, min_train=252, seed=0)
        if kind == "kmeans"
        else HMMDetectorConfig(market="SPX", min_train=252, n_restarts=1, n_iter=30)
    )
    costs = cost_table(panel.symbols, CostModel(commission_bps=5.0))
    plain = prepare(panel, ScheduledDetector(cfg.build(panel), folds), costs)
    memo = FitMemo()
    first = prepare(panel, ScheduledDetector(cfg.build(panel), folds, memo=memo), costs)
    n_fits = memo.misses
    assert n_fits == len(plain.fit_bars) and memo.hits == 0
    again = prepare(panel, ScheduledDetector(cfg.build(panel), folds, memo=memo), costs)
    assert memo.misses == n_fits and memo.hits == n_fits
    for prep in (first, again):
        assert prep.dparams.tobytes() == plain.dparams.tobytes()
    other = cfg.model_copy(update={"seed": 1})
    prepare(panel, ScheduledDetector(other.build(panel), folds, memo=memo), costs)
    assert memo.misses == 2 * n_fits
    noisy = perturb(panel, 300, "noise", 0)
    prepare(noisy, ScheduledDetector(cfg.build(noisy), folds, memo=memo), costs)
    assert memo.misses > 2 * n_fits

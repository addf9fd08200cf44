"""The compiled drivers compute features and regimes ahead of the loop, a block of bars at
a time (``detect_pass_nb``): bit for bit the step bar by bar (the streaming driver), for
every detector kind, with the feature rows given or computed, in one block or several;
the Gaussian filter over a run of bars equals its one-bar calls."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from data_feeds.synthetic import two_state_example
from engine.core.backtest import (
    fresh_state,
    period_flags,
    prepare,
    run_strategy_raw,
    setup_for,
    strategy_params,
)
from engine.core.driver import run_driver
from engine.core.spec import CostModel, Smoothing, cost_table
from engine.core.streaming import StreamingDriver, outputs_to_run, replay
from engine.ground import layout as L
from engine.ground.bars import BarPanel
from engine.regimes.online_nb import (
    detector_update_nb,
    filter_rows_nb,
    gaussian_rows_nb,
    score_rows_nb,
)
from strategies.example import CompiledTilt
from strategies.regime_switching import RegimeSwitching
from tests.conftest import random_panel
from tests.regimes.test_no_lookahead import ADAPTER, N_BARS
from tests.regimes.test_no_lookahead import CONFIGS as LOOKAHEAD_CONFIGS

#: every detector kind of the look-ahead test (same panel and settings), plus none
CONFIGS: dict[str, dict[str, object]] = {"none": {"kind": "none"}, **LOOKAHEAD_CONFIGS}
RUN_FIELDS = (
    *("equity", "cash", "decision_bars", "targets", "orders"),
    *("post", "raw", "smoothed", "costs", "fills"),
)


@functools.lru_cache(maxsize=1)
def _panel() -> BarPanel:
    return two_state_example(N_BARS, 3.0, 60.0, seed=11)[0]


@functools.cache
def _prepared(name: str, user_policy: bool = False):  # type: ignore[no-untyped-def]
    """The prepared panel and a regime strategy: the built-in regime table, or a user
    njit policy reading features and the regime (the generic compiled driver)."""
    panel = _panel()
    det = ADAPTER.validate_python(CONFIGS[name]).build(panel)  # type: ignore[attr-defined]
    costs = cost_table(panel.symbols, CostModel(commission_bps=5.0))
    every = panel.symbols if user_policy else ()
    prep = prepare(panel, det, costs, smoothing=Smoothing(0.55, 3, 2), feature_assets=every)
    a, b = panel.symbols[0], panel.symbols[-1]
    if user_policy:
        return prep, CompiledTilt("tilt", equity=a, bond=b, calm_equity=0.7, other_equity=0.2)
    k = len(prep.detector.labels)
    table = {str(s): {a: (s + 1) / (k + 1), b: 1 - (s + 1) / (k + 1)} for s in range(k)}
    strat = RegimeSwitching("switch", table=table, warmup={a: 0.5, b: 0.5}, rebalance="M")
    return prep, strat


def _run(prep, strat, given: bool):  # type: ignore[no-untyped-def]
    """The compiled driver with the feature rows given (one block) or computed ahead in
    blocks; the raw run and the state after it."""
    panel = prep.panel
    fparams = prep.fparams_for(strat)
    assert np.array_equal(fparams, prep.fparams)  # the given rows are this run's features
    state = fresh_state(prep, strat.state_size(), fparams)
    raw = run_driver(
        strat.policy,
        panel.open,
        panel.close,
        panel.volume,
        panel.exog,
        period_flags(panel.index, strat.rebalance),
        setup_for(prep, strategy_params(strat, prep.names), fparams),
        state,
        prep.n_features,
        False,
        feat_rows=np.ascontiguousarray(prep.features) if given else None,
    )
    return raw, state


def _assert_same_run(a, b, what: str) -> None:  # type: ignore[no-untyped-def]
    for field in RUN_FIELDS:
        x, y = getattr(a, field), getattr(b, field)
        assert x.shape == y.shape, f"{what}: {field}"
        assert np.array_equal(x, y, equal_nan=True), f"{what}: {field} differs"


@pytest.mark.parametrize(
    ("name", "user_policy"),
    [(name, False) for name in CONFIGS] + [("hmm", True), ("rule", True), ("none", True)],
)
def test_regimes_ahead_equal_the_step_bar_by_bar(name: str, user_policy: bool) -> None:
    prep, strat = _prepared(name, user_policy)
    given, s_given = _run(prep, strat, True)
    computed, s_computed = _run(prep, strat, False)
    _, streamed = outputs_to_run(strat.name, prep.panel, replay(
        StreamingDriver.from_prepared(prep, strat), prep.panel
    ))  # fmt: skip
    _assert_same_run(given, streamed, f"{name}: rows given vs the step")
    _assert_same_run(computed, streamed, f"{name}: rows computed vs the step")
    for field in ("port", "fstate", "dstate", "rstate", "sstate", "post"):
        if field == "fstate":  # given rows: the feature state is not advanced
            continue
        x, y = getattr(s_given, field), getattr(s_computed, field)
        assert np.array_equal(x, y, equal_nan=True), f"{name}: state.{field} differs"
    # not vacuous: the detector spoke, the strategy traded, the public path gives the rows
    if name != "none":
        assert (given.raw >= 0).sum() > 300
    assert given.fills.shape[0] > 10
    public = run_strategy_raw(prep, strat)
    assert np.array_equal(public.equity, given.equity)
    assert np.array_equal(public.post, given.post)


@pytest.mark.parametrize("name", ["rule", "hmm"])
def test_several_blocks_equal_one_block(name: str) -> None:
    """700 assets: the feature buffer holds 249 bars, so a 600-bar run computes its
    features and regimes in three blocks; equal to the one-block run of the given rows."""
    panel = random_panel(600, 700, seed=5)
    cfg = {"rule": {"kind": "rule", "market": "A0", "history": 120, "min_history": 60},
           "hmm": {"kind": "hmm", "market": "A0", "n_restarts": 1, "n_iter": 20,
                   "min_train": 150, "refit_every": 100}}[name]  # fmt: skip
    det = ADAPTER.validate_python(cfg).build(panel)  # type: ignore[attr-defined]
    prep = prepare(panel, det, cost_table(panel.symbols, CostModel(commission_bps=5.0)))
    k = len(prep.detector.labels)
    table = {str(s): {"A0": 1.0 - 0.3 * s, "A1": 0.3 * s} for s in range(k)}
    strat = RegimeSwitching("switch", table=table, warmup={"A0": 0.5, "A1": 0.5}, rebalance="M")
    assert prep.n_features == 4200 and (1 << 20) // prep.n_features == 249
    one, s_one = _run(prep, strat, True)
    blocks, s_blocks = _run(prep, strat, False)
    _assert_same_run(one, blocks, name)
    for field in ("port", "dstate", "rstate", "sstate", "post"):
        x, y = getattr(s_one, field), getattr(s_blocks, field)
        assert np.array_equal(x, y, equal_nan=True), f"{name}: state.{field} differs"
    assert len(np.unique(one.smoothed[one.smoothed >= 0])) >= 2
    assert one.decision_bars.size > 5


@pytest.mark.parametrize("name", ["hmm", "hmm_rolling_diag", "gmm", "kmeans"])
def test_gaussian_rows_equal_one_bar_updates(name: str) -> None:
    """A run of bars in one call equals the bar-by-bar online update: posteriors, the
    state after each bar, the likeliest state and the summed log normalisers."""
    prep, _ = _prepared(name)
    dp = np.ascontiguousarray(prep.dparams[-1])
    feats = np.ascontiguousarray(prep.features)
    exog = np.zeros((feats.shape[0], 1))
    k = int(dp[L.D_N_STATES])
    size = prep.detector.state_size(prep.n_features)
    s_bar, s_rows = np.zeros(size), np.zeros(size)
    post_bar = np.empty((feats.shape[0], k))
    post_rows = np.empty((feats.shape[0], k))
    log_lik = 0.0
    cut = 301  # two calls: the state carries over between them
    for t in range(feats.shape[0]):
        last = detector_update_nb(dp, s_bar, feats[t], exog[t], post_bar[t])
        log_lik += s_bar[L.DXS_LOGNORM]
        if t == cut - 1:
            first, ll_first = gaussian_rows_nb(dp, s_rows, feats, exog, 0, cut, post_rows)
            assert first == np.argmax(post_bar[t]) and np.array_equal(s_rows, s_bar)
    best, ll_rest = gaussian_rows_nb(dp, s_rows, feats, exog, cut, feats.shape[0], post_rows)
    assert np.array_equal(post_rows, post_bar)
    assert np.array_equal(s_rows, s_bar)
    assert best == last
    assert np.isfinite(log_lik) and ll_first + ll_rest == pytest.approx(log_lik, rel=1e-12)
    # the batch helpers agree with the bar-by-bar sum and posteriors, bit for bit
    fresh = np.zeros(size)
    ref_sum = 0.0
    for t in range(feats.shape[0]):
        detector_update_nb(dp, fresh, feats[t], exog[t], post_bar[t])
        ref_sum += fresh[L.DXS_LOGNORM]
    assert score_rows_nb(dp, feats, exog, size, k) == ref_sum
    assert np.array_equal(filter_rows_nb(dp, feats, exog, size, k), post_bar)
    assert gaussian_rows_nb(dp, np.zeros(size), feats, exog, 5, 5, post_rows) == (-1, 0.0)


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("user_policy", [False, True])
def test_regimes_given_ahead_equal_the_run_that_computes_them(name: str, user_policy: bool) -> None:
    """One phase-2 pass (``regime_pass``, what a sweep shares between strategies and cost
    models) given to the driver: the same run, the same end states, bit for bit."""
    from engine.core.driver import regime_pass

    prep, strat = _prepared(name, user_policy)
    panel = prep.panel
    fparams = prep.fparams_for(strat)
    ref, s_ref = _run(prep, strat, True)
    for given_rows in (True, False):
        state = fresh_state(prep, strat.state_size(), fparams)
        setup = setup_for(prep, strategy_params(strat, prep.names), fparams)
        regimes = regime_pass(prep.features, panel.exog, setup, state)
        raw = run_driver(
            strat.policy,
            panel.open,
            panel.close,
            panel.volume,
            panel.exog,
            period_flags(panel.index, strat.rebalance),
            setup,
            state,
            prep.n_features,
            False,
            feat_rows=np.ascontiguousarray(prep.features) if given_rows else None,
            regimes=regimes,
        )
        _assert_same_run(raw, ref, f"{name}: regimes given (rows given: {given_rows})")
        for field in ("port", "dstate", "rstate", "sstate", "post"):
            x, y = getattr(state, field), getattr(s_ref, field)
            assert np.array_equal(x, y, equal_nan=True), f"{name}: state.{field} differs"

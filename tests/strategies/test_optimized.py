"""kind = "optimized": moments against numpy, the optimiser against skfolio and a closed
form, constraints refused before the run, failed solves kept and counted, no look-ahead
per objective, and compiled == streaming targets bit for bit on the bundled panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.config import ConfigError, parse_config
from engine.ground.bars import BarPanel
from strategies import optimized as opt
from strategies.optimized_nb import (
    decay_weights_nb,
    ledoit_wolf_nb,
    mixture_nb,
    predict_nb,
    scenario_weights_nb,
    soft_transitions_nb,
    state_moments_nb,
)

OBJECTIVES = opt.OBJECTIVES


def _posteriors(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    p = rng.dirichlet(np.ones(k) * 0.7, size=n)
    return np.ascontiguousarray(p)


# ------------------------------------------------------------------ moments
def test_posterior_weighted_moments_equal_numpy():
    rng = np.random.default_rng(1)
    R = rng.normal(0.0003, 0.01, (300, 4))
    P = _posteriors(rng, 300, 3)
    d = decay_weights_nb(300, 50.0)
    assert d[-1] == 1.0 and d[-51] == pytest.approx(0.5)
    mu, cov, mass, ess = state_moments_nb(R, P, d)
    for k in range(3):
        w = d * P[:, k]
        np.testing.assert_allclose(mu[k], np.average(R, axis=0, weights=w), rtol=0, atol=1e-15)
        np.testing.assert_allclose(cov[k], np.cov(R.T, aweights=w, ddof=0), rtol=1e-12, atol=0)
        assert mass[k] == pytest.approx(w.sum())
        assert ess[k] == pytest.approx(w.sum() ** 2 / (w**2).sum())


def test_ledoit_wolf_equal_weights_is_sklearns():
    from sklearn.covariance import ledoit_wolf

    rng = np.random.default_rng(2)
    R = rng.normal(0.0, 0.01, (120, 5)) @ rng.normal(size=(5, 5))
    w = np.ones(120)
    mu, cov, _, _ = state_moments_nb(R, np.ones((120, 1)), w)
    shrunk, delta = ledoit_wolf_nb(R, w, mu[0], cov[0])
    ref, ref_delta = ledoit_wolf(R - R.mean(axis=0), assume_centered=True)
    assert delta == pytest.approx(ref_delta, rel=1e-10)
    np.testing.assert_allclose(shrunk, ref, rtol=1e-10, atol=1e-16)


def test_predictive_mixture_and_scenarios_follow_their_formulas():
    rng = np.random.default_rng(3)
    R = rng.normal(0.0002, 0.01, (400, 3))
    P = _posteriors(rng, 400, 3)
    d = decay_weights_nb(400, 100.0)
    A = soft_transitions_nb(P, d, 1.0)
    np.testing.assert_allclose(A.sum(axis=1), 1.0, atol=1e-15)
    counts = 1.0 + sum(d[s] * np.outer(P[s - 1], P[s]) for s in range(1, 400))
    np.testing.assert_allclose(A, counts / counts.sum(axis=1, keepdims=True), rtol=1e-12)
    pi = predict_nb(P[-1].copy(), A)
    np.testing.assert_allclose(pi, P[-1] @ A, rtol=1e-14)
    mu_k, cov_k, mass, _ = state_moments_nb(R, P, d)
    m, S = mixture_nb(pi, mu_k, cov_k)
    m_ref = pi @ mu_k
    S_ref = sum(pi[k] * (cov_k[k] + np.outer(mu_k[k], mu_k[k])) for k in range(3))
    S_ref = S_ref - np.outer(m_ref, m_ref)
    np.testing.assert_allclose(m, m_ref, rtol=1e-13)
    np.testing.assert_allclose(S, S_ref, rtol=1e-12)
    # the scenario distribution is the same mixture: its moments are the mixture's
    q = scenario_weights_nb(P, d, pi, mass)
    assert q.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(q @ R, m, rtol=1e-10)
    np.testing.assert_allclose(np.cov(R.T, aweights=q, ddof=0), S, rtol=1e-9)


def test_unconditional_is_one_state():
    rng = np.random.default_rng(4)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (301, 3)), axis=0))
    post = _posteriors(rng, 300, 3)
    s = opt.Settings(conditional=False, shrinkage="none", half_life=60.0)
    m = opt.moments(close, post, s)
    R = close[1:] / close[:-1] - 1
    w = decay_weights_nb(300, 60.0)
    np.testing.assert_allclose(m.mu, np.average(R, axis=0, weights=w), atol=1e-15)
    np.testing.assert_allclose(m.cov, np.cov(R.T, aweights=w, ddof=0), rtol=1e-12)
    np.testing.assert_allclose(m.weights, w / w.sum(), rtol=1e-13)


# ------------------------------------------------------------------ the optimiser
def _direct(objective: str, X: np.ndarray, **kw):
    """skfolio called directly on returns with its own empirical prior (ddof = 0)."""
    from skfolio import RiskMeasure
    from skfolio.moments import EmpiricalCovariance
    from skfolio.optimization import MeanRisk, ObjectiveFunction, RiskBudgeting
    from skfolio.prior import EmpiricalPrior

    prior = EmpiricalPrior(covariance_estimator=EmpiricalCovariance(ddof=0))
    kw["solver_params"] = dict(opt.SOLVER_PARAMS)
    if objective == "risk_parity":
        kw.pop("budget", None)
        model = RiskBudgeting(risk_measure=RiskMeasure.VARIANCE, prior_estimator=prior, **kw)
    elif objective == "hierarchical_risk_parity":
        from skfolio.distance import CovarianceDistance
        from skfolio.optimization import HierarchicalRiskParity

        kw.pop("budget", None)
        kw.pop("solver_params")
        # the distance from skfolio's own empirical covariance of the scenarios
        dist = CovarianceDistance(covariance_estimator=EmpiricalCovariance(ddof=0))
        model = HierarchicalRiskParity(
            risk_measure=RiskMeasure.VARIANCE, prior_estimator=prior, distance_estimator=dist, **kw
        )
    elif objective == "min_variance":
        model = MeanRisk(risk_measure=RiskMeasure.VARIANCE, prior_estimator=prior, **kw)
    elif objective == "max_sharpe":
        model = MeanRisk(
            objective_function=ObjectiveFunction.MAXIMIZE_RATIO,
            risk_measure=RiskMeasure.STANDARD_DEVIATION,
            prior_estimator=prior,
            **kw,
        )
    elif objective == "max_utility":
        model = MeanRisk(
            objective_function=ObjectiveFunction.MAXIMIZE_UTILITY,
            risk_measure=RiskMeasure.VARIANCE,
            risk_aversion=3.0,
            prior_estimator=prior,
            **kw,
        )
    else:
        model = MeanRisk(risk_measure=RiskMeasure.CVAR, cvar_beta=0.9, prior_estimator=prior, **kw)
    return np.asarray(model.fit(X).weights_)


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("grouped", [False, True])
def test_fixed_moments_weights_equal_skfolio_direct(objective, grouped):
    if grouped and objective == "hierarchical_risk_parity":
        pytest.skip("groups are refused with hierarchical_risk_parity (config test)")
    rng = np.random.default_rng(5)
    n, m = 500, 4
    X = rng.multivariate_normal([4e-4, 2e-4, 3e-4, 1e-4], np.diag([1.5, 1.0, 2.0, 0.3]) * 1e-4, n)
    close = 100 * np.vstack([np.ones(m), np.cumprod(1 + X, axis=0)])
    syms = ("A", "B", "C", "D")
    groups = {"ab": opt.Group(("A", "B"), 0.0, 0.5)} if grouped else {}
    s = opt.Settings(
        objective=objective,
        assets=syms,
        conditional=False,
        half_life=0.0,
        shrinkage="none",
        max_weight=0.6,
        groups=groups,
        risk_aversion=3.0,
        cvar_beta=0.9,
    )
    r = opt.resolve(s, syms)
    mom = opt.moments(close, np.ones((n, 1)), s)
    np.testing.assert_allclose(mom.returns, X, atol=1e-15)  # the same scenarios
    mine = opt.solve(mom, s, r, None)
    c = opt.scaled(mom).scale  # the problem is solved in units where mean variance = 1
    assert c == pytest.approx(1.0 / np.sqrt(np.trace(mom.cov) / m))
    kw = {"max_weights": 0.6, "budget": 1.0}
    if grouped:
        kw["groups"] = np.array([["ab", "ab", "not_ab", "not_ab"]])
        kw["linear_constraints"] = ["ab <= 0.5"]
    ref = _direct(objective, mom.returns * c, **kw)
    # the same problem to the solver's accuracy: 1e-8 with bounds and budget; an added
    # group row moves Clarabel's path (both answers within ~1e-7 of each other)
    np.testing.assert_allclose(mine, ref, atol=1e-6 if grouped else 1e-8)
    assert mine.sum() == pytest.approx(1.0, abs=1e-8)
    if grouped:
        assert mine[:2].sum() <= 0.5 + 1e-8


def test_two_asset_min_variance_closed_form():
    s1, s2, rho = 0.02, 0.01, 0.3
    c = rho * s1 * s2
    cov = np.array([[s1**2, c], [c, s2**2]])
    mom = opt.Moments(
        mu=np.zeros(2),
        cov=cov,
        returns=np.zeros((10, 2)),
        weights=np.full(10, 0.1),
        pi=np.ones(1),
        state_mu=np.zeros((1, 2)),
        state_cov=cov[None],
    )
    s = opt.Settings(assets=("X", "Y"))
    w = opt.solve(mom, s, opt.resolve(s, ("X", "Y")), None)
    w1 = (s2**2 - c) / (s1**2 + s2**2 - 2 * c)
    np.testing.assert_allclose(w, [w1, 1 - w1], atol=1e-8)
    # budget < 1: the same mix scaled, the rest in cash
    s = opt.Settings(assets=("X", "Y"), budget=0.5)
    w = opt.solve(mom, s, opt.resolve(s, ("X", "Y")), None)
    np.testing.assert_allclose(w, [0.5 * w1, 0.5 * (1 - w1)], atol=1e-8)


@pytest.mark.parametrize("objective", opt.WITH_SHORTS)
def test_shorts_equal_skfolio_direct(objective):
    """Negative lower bounds and a total short limit (skfolio's min_weights and max_short):
    the weights equal skfolio called directly to 1e-8, sum to the budget, and short."""
    rng = np.random.default_rng(5)
    n, syms = 500, ("A", "B", "C")
    cov = np.array([[1.0, 0.9, 0.2], [0.9, 1.0, 0.1], [0.2, 0.1, 0.5]]) * 1e-4
    X = rng.multivariate_normal([4e-4, 1e-4, 2e-4], cov, n)
    close = 100 * np.vstack([np.ones(3), np.cumprod(1 + X, axis=0)])
    s = opt.Settings(
        objective=objective,
        assets=syms,
        conditional=False,
        half_life=0.0,
        shrinkage="none",
        min_weight=-0.5,
        max_short=0.2,
        risk_aversion=3.0,
        cvar_beta=0.9,
    )
    mom = opt.moments(close, np.ones((n, 1)), s)
    mine = opt.solve(mom, s, opt.resolve(s, syms), None)
    c = opt.scaled(mom).scale
    kw = {"min_weights": -0.5, "max_weights": 1.0, "max_short": 0.2, "budget": 1.0}
    ref = _direct(objective, mom.returns * c, **kw)
    np.testing.assert_allclose(mine, ref, atol=1e-8)
    assert mine.sum() == pytest.approx(1.0, abs=1e-8)
    assert -0.2 - 1e-8 <= mine[mine < 0].sum() < -0.05  # it shorts, within max_short


def test_turnover_limit_binds_from_the_previous_targets():
    rng = np.random.default_rng(6)
    X = rng.multivariate_normal(np.zeros(3), np.diag([4.0, 1.0, 0.25]) * 1e-4, 400)
    close = 100 * np.vstack([np.ones(3), np.cumprod(1 + X, axis=0)])
    syms = ("A", "B", "C")
    s = opt.Settings(assets=syms, conditional=False, turnover=0.2)
    r = opt.resolve(s, syms)
    prev = np.array([0.8, 0.1, 0.1])
    w = opt.solve(opt.moments(close, np.ones((400, 1)), s), s, r, prev)
    assert np.abs(w - prev).sum() == pytest.approx(0.2, abs=1e-6)
    free = opt.solve(opt.moments(close, np.ones((400, 1)), s), s, r, None)
    assert np.abs(free - prev).sum() > 0.5


# ------------------------------------------------------------------ config errors
BASE = {"kind": "optimized", "name": "opt", "assets": ["SPX", "RUT", "DAX", "N225", "UST10"]}


def _assemble(extra: dict):
    from engine.assemble import assemble

    extra = dict(extra)
    execution = extra.pop("execution", {})
    cfg = parse_config({"strategies": [{**BASE, **extra}], "execution": execution})
    return assemble(cfg)


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ({"min_weight": 0.3}, "lower bounds sum to 1.5, above the budget 1"),
        ({"max_weight": 0.1}, "upper bounds sum to 0.5, below the budget 1"),
        (
            {"max_weight": 0.2, "groups": {"eq": {"assets": ["SPX", "RUT"], "min": 0.5}}},
            "groups.eq: min 0.5 is above its members' max_weight sum 0.4",
        ),
        ({"max_weight": {"XYZ": 0.5}}, "'XYZ' is not an optimised asset"),
        (
            {"min_weight": {"SPX": -0.2}, "max_short": 0.2},
            "max_short: shorts need execution.allow_short = true",
        ),
        (
            {"min_weight": {"SPX": -0.2}, "max_short": 0.2, "execution": {"allow_short": True}},
            "gross exposure can reach budget + 2 max_short = 1.4, above the execution's "
            "max_gross 1",
        ),
    ],
)
def test_infeasible_constraints_are_one_line_config_errors(extra, words):
    with pytest.raises(ConfigError) as err:
        _assemble(extra)
    msg = str(err.value)
    assert msg.startswith("strategies.opt: ") and words in msg and "\n" not in msg


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ({"cost_bps": 5.0}, "cost_bps"),
        ({"objective": "max_sharpe", "turnover": 0.2}, "turnover"),
        ({"budget": 1.5}, "budget"),
        ({"min_weight": -0.1}, "min_weight"),
        (
            {"objective": "hierarchical_risk_parity", "groups": {"eq": {"assets": ["SPX"]}}},
            "groups: not available with hierarchical_risk_parity",
        ),
        ({"objective": "risk_parity", "min_weight": -0.1, "max_short": 0.1}, "long-only"),
        ({"min_weight": {"SPX": -0.1}}, "max_short: shorts need both"),
        ({"max_short": 0.2}, "max_short: shorts need both"),
    ],
)
def test_bad_optimizer_keys_name_the_key(extra, key):
    with pytest.raises(ConfigError, match=key):
        parse_config({"strategies": [{**BASE, **extra}]})


# ------------------------------------------------------------------ runs
@pytest.fixture(scope="module")
def small_panel() -> BarPanel:
    import data_feeds

    return data_feeds.load_bundled(
        ["SPX", "RUT", "UST10", "CASH"], "2003-01-01", "2008-12-31", panel="modern"
    )


def _prep(panel: BarPanel):
    from engine.core.backtest import prepare
    from engine.core.spec import CostModel, cost_table
    from engine.regimes.config import RuleDetectorConfig

    costs = cost_table(panel.symbols, CostModel(commission_bps=5.0))
    return prepare(panel, RuleDetectorConfig().build(panel), costs)


def _strategy(objective: str, **kw) -> opt.OptimizedStrategy:
    extra = {"cost_bps": 5.0} if objective in opt.WITH_RETURN else {}
    if objective in opt.WITH_TURNOVER:
        extra["turnover"] = 0.6
    s = opt.Settings(
        objective=objective,
        assets=("SPX", "RUT", "UST10"),
        window=252,
        min_history=126,
        half_life=63.0,
        max_weight=0.7,
        **{**extra, **kw},
    )
    return opt.OptimizedStrategy(f"opt_{objective}", s, {"SPX": 0.6, "UST10": 0.4}, "M")


def _noisy(panel: BarPanel, cut: int, seed: int = 0) -> BarPanel:
    rng = np.random.default_rng(seed)
    shock = np.ones_like(panel.close)
    shock[cut:] = np.exp(np.cumsum(rng.normal(0.0, 0.04, shock[cut:].shape), axis=0))
    exog = panel.exog.copy()
    exog[cut:] = rng.normal(0.0, 5.0, exog[cut:].shape)
    return BarPanel(
        panel.index,
        panel.symbols,
        panel.open * shock,
        panel.high * shock,
        panel.low * shock,
        panel.close * shock,
        panel.volume,
        exog,
        panel.exog_names,
        panel.asset_classes,
    )


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_noise_after_cutoff_changes_nothing_before_it(small_panel, objective):
    strat = _strategy(objective)
    cut = 900
    a = strat.bind(_prep(small_panel))
    b = strat.bind(_prep(_noisy(small_panel, cut)))
    assert a.solves > 20
    np.testing.assert_array_equal(a.go[: cut + 1], b.go[: cut + 1])
    np.testing.assert_array_equal(a.table[: cut + 1], b.table[: cut + 1])
    assert not np.array_equal(a.table[cut + 1 :], b.table[cut + 1 :])  # the noise is seen


def test_failed_solve_keeps_previous_targets_logs_and_counts(small_panel, monkeypatch):
    strat = _strategy("min_variance")
    prep = _prep(small_panel)
    good = strat.bind(prep)
    bars = np.flatnonzero(good.go)
    fail_at = int(bars[10])
    real = opt.solve

    def flaky(m, s, r, prev):
        flaky.calls += 1
        if flaky.calls == 5:
            raise RuntimeError("solver exploded")
        return real(m, s, r, prev)

    flaky.calls = 0
    monkeypatch.setattr(opt, "solve", flaky)
    opt._CACHE.clear()
    bad = strat.bind(prep)
    opt._CACHE.clear()
    assert bad.failures == 1 and len(bad.failed_bars) == 1
    f = bad.failed_bars[0]
    assert not bad.go[f]  # held: no new targets at the failed bar
    from engine.core.backtest import run_strategy_raw

    out = run_strategy_raw(prep, bad)
    assert f not in set(out.decision_bars.tolist())
    assert fail_at in set(np.flatnonzero(good.go).tolist())


def test_compiled_equals_streaming_targets_bit_for_bit_on_the_bundled_panel():
    """The whole bundled modern panel (HMM detector), both drivers, bit for bit."""
    from engine.assemble import assemble
    from engine.core.backtest import run_strategy_raw
    from engine.core.streaming import StreamingDriver, replay

    cfg = parse_config(
        {
            "strategies": [
                {**BASE, "objective": "min_cvar", "cost_bps": 5.0, "max_weight": 0.6},
            ]
        }
    )
    run = assemble(cfg)
    prep = run.prepare()
    strat = run.strategies[0]
    compiled = run_strategy_raw(prep, strat)
    drv = StreamingDriver.from_prepared(prep, strat.streaming())
    outs = replay(drv, prep.panel)
    bars = np.array([o.bar for o in outs if o.rebalanced])
    targets = np.array([o.targets for o in outs if o.rebalanced])
    assert len(bars) > 200
    np.testing.assert_array_equal(bars, compiled.decision_bars)
    assert targets.tobytes() == compiled.targets.tobytes()
    eq = np.array([o.equity for o in outs])
    assert eq.tobytes() == compiled.equity.tobytes()
    assert drv.strategy.solves == strat.bind(prep).solves


def test_validate_runs_the_unconditional_baseline_beside(small_panel):
    from engine.validate import ValidationConfig, run_validation

    cfg = parse_config(
        {
            "data": {"source": "bundled:modern", "symbols": ["SPX", "RUT", "UST10", "CASH"]},
            "detector": {"kind": "rule"},
            "strategies": [
                {
                    **BASE,
                    "assets": ["SPX", "RUT", "UST10"],
                    "window": 252,
                    "min_history": 126,
                },
                {"kind": "static", "name": "static_60_40", "weights": {"SPX": 0.6, "UST10": 0.4}},
            ],
        }
    )
    v = ValidationConfig(
        train_years=2.0, test_years=1.0, bootstrap_reps=20, cost_bps=[0.0], cv={"enabled": False}
    )
    res = run_validation(cfg, v, panel=small_panel)
    assert res.candidate == "opt"
    assert "opt_unconditional" in res.oos_returns.columns
    assert "uncond_sharpe_diff" in res.significance
    assert any("opt_unconditional" in line for line in res.verdict_lines)
    assert isinstance(res.oos_returns.index, pd.DatetimeIndex)


def test_validate_shows_failed_solves_per_fold(small_panel, monkeypatch, tmp_path):
    """Two injected solver failures of the candidate (none of its unconditional twin):
    counted in the fold whose test span holds their bar, in the console and the report."""
    from engine.validate import (
        ValidationConfig,
        run_validation,
        verdict_table,
        write_validation_report,
    )

    real = opt.solve
    calls = {"n": 0}

    def flaky(m, s, r, prev):
        if s.conditional:
            calls["n"] += 1
            if calls["n"] in (40, 55):
                raise RuntimeError("solver exploded")
        return real(m, s, r, prev)

    real_at, failed = opt.targets_at, []

    def spy(t, close, post, s, r, tr):
        out = real_at(t, close, post, s, r, tr)
        if out is None:
            failed.append(t)
        return out

    monkeypatch.setattr(opt, "solve", flaky)
    monkeypatch.setattr(opt, "targets_at", spy)
    opt._CACHE.clear()
    cfg = parse_config(
        {
            "data": {"source": "bundled:modern", "symbols": ["SPX", "RUT", "UST10", "CASH"]},
            "detector": {"kind": "rule"},
            "strategies": [
                {**BASE, "assets": ["SPX", "RUT", "UST10"], "window": 252, "min_history": 126},
                {"kind": "static", "name": "static_60_40", "weights": {"SPX": 0.6, "UST10": 0.4}},
            ],
        }
    )
    v = ValidationConfig(
        train_years=2.0, test_years=1.0, bootstrap_reps=20, cost_bps=[0.0], cv={"enabled": False}
    )
    res = run_validation(cfg, v, panel=small_panel)
    opt._CACHE.clear()
    assert len(failed) == 2
    folds = res.folds
    # each failure counted in the fold whose test dates hold its bar's date
    dates = small_panel.index[failed]
    want = [
        int(((dates >= f.test_start) & (dates <= f.test_end)).sum()) for _, f in folds.iterrows()
    ]
    assert sum(want) == 2
    assert folds["failed_solve_count:opt"].tolist() == want
    assert folds["failed_solve_count:opt_unconditional"].sum() == 0
    text = verdict_table(res)
    line = next(x for x in text.splitlines() if x.startswith("Optimizer solves:"))
    assert "opt 58 solves, 2 failed (fold " in line and "targets kept" in line
    assert "opt_unconditional" in line and "0 failed" in line
    for k in folds.index[folds["failed_solve_count:opt"] > 0]:
        assert f"fold {k}: " in line
    html = write_validation_report(res, tmp_path / "r.html").read_text()
    # the folds table's columns, as counts, the strategy names as they are
    assert "<th>Failed solve count:opt</th>" in html
    assert "<th>Failed solve count:opt_unconditional</th>" in html


def test_shorts_run_financed_by_their_proceeds(small_panel):
    """A shorting optimiser in the engine: the short-sale proceeds fund the longs (cash
    stays near 1 - budget = 0 after each rebalance: nothing borrowed, so financing charges
    nothing), the held weights follow the targets' signs, and the shorts pay borrow_bps."""
    from engine.api import run_backtest

    def run(borrow_bps: float):
        cfg = parse_config(
            {
                "data": {
                    "source": "bundled:modern",
                    "symbols": ["SPX", "RUT", "UST10", "CASH"],
                    "start": "2003-01-01",
                    "end": "2008-12-31",
                },
                "detector": {"kind": "rule"},
                "costs": {"commission_bps": 5.0, "borrow_bps": borrow_bps},
                "execution": {
                    "allow_short": True,
                    "allow_leverage": True,
                    "max_gross": 1.6,
                    "financing_rate": 0.05,
                },
                "strategies": [
                    {
                        **BASE,
                        "assets": ["SPX", "RUT", "UST10"],
                        "window": 252,
                        "min_history": 126,
                        "min_weight": {"*": 0.0, "RUT": -0.3},
                        "max_short": 0.3,
                    }
                ],
            }
        )
        return run_backtest(cfg, panel=small_panel, progress=False)

    res = run(100.0)
    r = res.runs["opt"]
    tg = r.targets.to_numpy()
    bars = np.flatnonzero(np.isfinite(tg).all(axis=1))
    short = [t for t in bars if tg[t, 1] < -0.01]
    assert len(short) > 10
    assert (np.abs(tg[bars]).sum(axis=1) <= 1.6 + 1e-9).all()
    w = r.weights.to_numpy()
    cash = (r.cash / r.equity).to_numpy()
    for t in short:
        assert w[t + 1, 1] < 0  # the short is held after its fill
        np.testing.assert_allclose(w[t + 1, :3], tg[t, :3], atol=0.03)
        assert abs(cash[t + 1]) < 0.03  # the proceeds fund the longs: no borrowed cash
    assert res.metrics["opt"]["optimizer_failures"] == 0
    free = run(0.0).runs["opt"].equity.iloc[-1]
    assert r.equity.iloc[-1] < free  # the shorts paid their borrow fee

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from engine.analysis import bootstrap as B


@pytest.fixture(scope="module")
def rets():
    rng = np.random.default_rng(11)
    n = 1500
    common = 0.01 * rng.standard_normal(n)
    static = pd.Series(0.0002 + common + 0.002 * rng.standard_normal(n))
    aware = pd.Series(0.0012 + common + 0.002 * rng.standard_normal(n))
    return static, aware


def test_ci_contains_estimate_and_is_deterministic(rets):
    static, _ = rets
    a = B.bootstrap_ci(static, reps=300, seed=1)
    b = B.bootstrap_ci(static, reps=300, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.index) == ["sharpe", "cagr", "max_drawdown"]
    assert (a["lower"] <= a["estimate"]).all() and (a["estimate"] <= a["upper"]).all()
    assert a.loc["sharpe", "estimate"] == pytest.approx(static.mean() / static.std() * np.sqrt(252))
    # Sharpe CI width roughly 2 * 1.96 * sqrt(252 / n) for iid returns
    width = a.loc["sharpe", "upper"] - a.loc["sharpe", "lower"]
    assert 0.5 * 3.92 * np.sqrt(252 / 1500) < width < 2 * 3.92 * np.sqrt(252 / 1500)


def test_paired_difference_and_pvalue(rets):
    static, aware = rets
    tab, p = B.paired_bootstrap(aware, static, reps=400, seed=2, block_size=5)
    assert tab.loc["sharpe_diff", "estimate"] == pytest.approx(
        tab.loc["sharpe_candidate", "estimate"] - tab.loc["sharpe_benchmark", "estimate"]
    )
    assert tab.loc["sharpe_diff", "lower"] > 0  # shared noise: paired CI is tight
    assert p < 0.01
    _, p_rev = B.paired_bootstrap(static, aware, reps=400, seed=2, block_size=5)
    assert p_rev > 0.9


def test_psr_and_deflated_sharpe(rets):
    _, aware = rets
    r = aware.to_numpy()
    sr = r.mean() / r.std(ddof=1)
    g3, g4 = stats.skew(r), stats.kurtosis(r, fisher=False)
    exp = stats.norm.cdf(sr * np.sqrt(len(r) - 1) / np.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2))
    assert B.probabilistic_sharpe_ratio(r) == pytest.approx(exp)
    one = B.deflated_sharpe_ratio(r, n_trials=1, sharpe_variance=0.25)
    many = B.deflated_sharpe_ratio(r, n_trials=1000, sharpe_variance=0.25)
    assert one["dsr"] == pytest.approx(one["psr"])
    assert many["sr0"] > 0 and many["dsr"] < one["dsr"]
    # expected max of N standard normals ~ 3.25 for N = 1000 (Bailey & LdP approximation)
    assert B.expected_max_sharpe(1000, 1.0) == pytest.approx(3.25, abs=0.05)


def test_spa(rets):
    static, aware = rets
    rng = np.random.default_rng(5)
    noise = static + 0.001 * rng.standard_normal(len(static))
    variants = pd.DataFrame({"aware": aware, "noise": noise})
    pv = B.spa_test(static, variants, reps=300, seed=3)
    assert list(pv.index) == ["lower", "consistent", "upper"]
    assert pv["consistent"] < 0.05
    pv2 = B.spa_test(aware, pd.DataFrame({"static": static}), reps=300, seed=3)
    assert pv2["consistent"] > 0.5


def test_bootstrap_report(result):
    t = B.bootstrap_report(result.equity, "aware", "static", reps=100, seed=0)
    assert "p_sharpe_diff_le_0" in t.index and 0 < t.loc["p_sharpe_diff_le_0", "estimate"] <= 1


def test_paired_bootstrap_sharpe_difference_is_over_the_risk_free_series():
    """With rf the Sharpe rows are those of excess returns (hand check of the estimates);
    CAGR and drawdown stay on total returns; rf = 0 reproduces the plain call."""
    import numpy as np
    import pandas as pd

    from engine.analysis.bootstrap import paired_bootstrap

    idx = pd.bdate_range("2010-01-01", periods=600)
    rng = np.random.default_rng(9)
    a = pd.Series(rng.normal(4e-4, 0.01, 600), index=idx)
    b = pd.Series(rng.normal(3e-4, 0.008, 600), index=idx)
    rf = pd.Series(np.full(600, 1.5e-4), index=idx)
    t_rf, _ = paired_bootstrap(a, b, reps=50, rf=rf)
    t0, _ = paired_bootstrap(a, b, reps=50)
    t00, _ = paired_bootstrap(a, b, reps=50, rf=0.0)
    sh = lambda x: x.mean() / x.std(ddof=1) * np.sqrt(252)  # noqa: E731
    assert t_rf.loc["sharpe_diff", "estimate"] == pytest.approx(sh(a - rf) - sh(b - rf))
    assert t0.loc["sharpe_diff", "estimate"] == pytest.approx(sh(a) - sh(b))
    assert t_rf.loc["cagr_diff", "estimate"] == pytest.approx(t0.loc["cagr_diff", "estimate"])
    pd.testing.assert_frame_equal(t0, t00)


def test_a_max_drawdown_interval_can_miss_its_estimate_and_then_says_so():
    """One slow 400-bar decline: resampled blocks (mean 5 bars) rarely rebuild it, so the
    percentile interval of the max-drawdown difference lies below the estimate; the text
    beside such an interval says it is not a range."""
    rng = np.random.default_rng(3)
    idx = pd.bdate_range("2000-01-03", periods=2000)
    cand = rng.normal(3e-4, 4e-3, idx.size)
    cand[500:900] -= 1.5e-3  # about -45 % over 400 bars
    bench = rng.normal(3e-4, 4e-3, idx.size)
    table, _ = B.paired_bootstrap(
        pd.Series(cand, idx), pd.Series(bench, idx), reps=200, block_size=5
    )
    est, lo, hi = table.loc["max_drawdown_diff", ["estimate", "lower", "upper"]]
    assert est > 0.3 and hi < est  # the candidate's deeper drawdown, out of its interval
    assert B.outside_note(est, lo, hi) == B.OUTSIDE_NOTE
    assert B.outside_note(0.1, 0.0, 0.2) == "" and B.outside_note(0.0, 0.0, 0.0) == ""
    assert B.outside_note(0.5, np.nan, np.nan) == ""  # no interval: nothing to say

"""Break-even cost: interpolation and bisection on constructed cases, and on real backtests."""

from __future__ import annotations

import math

import numpy as np
import pytest

from engine.analysis.costs import (
    break_even_bisect,
    break_even_cost,
    break_even_interp,
    cost_sensitivity,
    oos_at_cost,
    with_commission,
)
from engine.analysis.walkforward import ScheduledDetector, make_folds
from engine.core.backtest import prepare
from engine.core.spec import CostModel, cost_table
from engine.ground import layout as L
from engine.regimes.config import RuleDetectorConfig


def test_interp_known_answers():
    assert break_even_interp([0, 10, 20], [2.0, 1.0, -1.0]) == pytest.approx(15.0)
    assert break_even_interp([20, 0, 10], [-1.0, 2.0, 1.0]) == pytest.approx(15.0)  # unsorted
    assert break_even_interp([0, 10], [-0.1, -0.2]) == 0.0  # no edge at zero cost
    assert math.isinf(break_even_interp([0, 10], [0.3, 0.1]))  # edge never vanishes
    assert break_even_interp([0, 5, 10], [1.0, np.nan, -1.0]) == pytest.approx(5.0)


def test_bisect_linear_edge():
    calls: list[float] = []

    def edge(c: float) -> float:
        calls.append(c)
        return 1.0 - c / 37.0

    assert break_even_bisect(edge, tol=0.01) == pytest.approx(37.0, abs=0.01)  # hi doubled
    assert break_even_bisect(lambda c: -1.0 - c) == 0.0
    assert math.isinf(break_even_bisect(lambda c: 1.0, max_hi=400.0))
    assert len(calls) < 40


@pytest.fixture(scope="module")
def setup():
    import data_feeds
    from strategies.regime_switching import RegimeSwitching
    from strategies.static import StaticAllocation

    panel = data_feeds.load_bundled(
        ["SPX", "UST10", "WTI", "CASH"], "2004-01-01", "2009-12-31", "classic"
    )
    folds = make_folds(panel.n_bars, 504, 252)
    det = ScheduledDetector(RuleDetectorConfig().build(panel), folds)
    prep = prepare(panel, det, cost_table(panel.symbols, CostModel(commission_bps=5.0)))
    table = {
        "calm": {"SPX": 0.7, "UST10": 0.2, "WTI": 0.1},
        "volatile": {"SPX": 0.35, "UST10": 0.5, "WTI": 0.05, "CASH": 0.1},
        "crisis": {"SPX": 0.05, "UST10": 0.6, "CASH": 0.35},
    }
    aware = RegimeSwitching("aware", table, {"SPX": 0.6, "UST10": 0.4}, "M")
    # a benchmark that trades once: buy and hold, so costs hit the candidate much harder
    static = StaticAllocation("hold", {"SPX": 0.6, "UST10": 0.4}, None)
    return prep, folds, aware, static


def test_with_commission_only_changes_commission(setup):
    prep = setup[0]
    p = with_commission(prep, 17.0)
    assert np.all(p.costs[:, L.C_COMMISSION_BPS] == 17.0)
    other = [i for i in range(L.N_COST) if i != L.C_COMMISSION_BPS]
    np.testing.assert_array_equal(p.costs[:, other], prep.costs[:, other])
    assert p.dparams is prep.dparams  # detector fits reused


def test_break_even_on_backtests(setup):
    prep, folds, aware, static = setup
    table = cost_sensitivity(prep, aware, static, folds, [0.0, 10.0, 50.0, 200.0])
    # commissions only lower the candidate's OOS Sharpe edge (it trades more)
    assert np.all(np.diff(table["sharpe_diff"].to_numpy()) < 0)
    be = break_even_cost(prep, aware, static, folds, "sharpe", tol=0.01)
    if 0 < be < math.inf:  # at the break-even the edge is zero (to the bisection tolerance)
        s = oos_at_cost(prep, [aware, static], folds, be)["sharpe"]
        assert abs(s["aware"] - s["hold"]) < 2e-3
        interp = break_even_interp(table.index, table["sharpe_diff"])
        assert abs(interp - be) < 0.25 * be + 1.0  # the grid's linear estimate is close
    else:
        assert (table["sharpe_diff"].iloc[0] <= 0) == (be == 0)


def test_cv_scores_per_split_equals_per_fold_for_a_fit_free_detector(setup):
    from engine.analysis.cv import Candidate, cv_scores
    from engine.core.spec import Smoothing

    prep, folds, aware, _ = setup
    base = prep.detector.inner  # the rule detector: its "fit" ignores the data
    cands = [Candidate("plain", aware, Smoothing()), Candidate("dwell", aware, Smoothing(0, 21))]
    f = folds[-1]
    a = cv_scores(prep, base, cands, f.train_start, f.train_end, 3, 21, 21)
    b = cv_scores(
        prep, base, cands, f.train_start, f.train_end, 3, 21, 21, fixed_params=prep.dparams[-1]
    )
    assert a.shape == (3, 2) and np.isfinite(a.to_numpy()).all()
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy())
    assert not np.allclose(a["plain"], a["dwell"])  # smoothing matters

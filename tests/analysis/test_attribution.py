from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.analysis import attribution as A
from tests.analysis.conftest import make_result, simulate


def test_components_sum_to_return_each_bar(result):
    for name in result.equity.columns:
        per = A.attribute(
            result.equity[name],
            result.weights[name],
            result.prices,
            result.fills[result.fills.strategy == name],
        )
        comps = per.drop(columns=["total"])
        r = result.equity[name].pct_change().iloc[1:]
        np.testing.assert_allclose(comps.sum(axis=1), r, atol=1e-12, rtol=0)
        # equity was built from holdings traded at the close: residual is exactly zero
        assert per["residual"].abs().max() < 1e-12
        assert (per[list(A.COST_COMPONENTS)] <= 0).all().all()
        assert (per[list(A.COST_COMPONENTS)].sum(axis=1) < 0).any()


def test_period_totals_sum_and_carino(result):
    per = A.attribute_result(result)
    for name, pb in per.items():
        e = result.equity[name]
        s = A.link(pb, "sum")
        assert s.drop("total").sum() == pytest.approx(e.pct_change().sum(), abs=1e-10)
        c = A.link(pb, "carino")
        big_r = e.iloc[-1] / e.iloc[0] - 1
        assert c["total"] == pytest.approx(big_r, abs=1e-12)
        assert abs(c.drop("total").sum() - big_r) < 1e-10
    tab = A.attribution_table(result)
    assert set(tab.index) == {"static", "aware"}
    assert "cost_commission" in tab.columns and "SPX" in tab.columns


def test_cost_drag_matches_fills(result):
    f = result.fills[result.fills.strategy == "static"]
    pb = A.attribute(result.equity["static"], result.weights["static"], result.prices, f)
    prev = result.equity["static"].shift(1)
    exp = -(f.groupby("timestamp")["impact"].sum() / prev.reindex(f.timestamp.unique())).dropna()
    np.testing.assert_allclose(pb["cost_impact"].reindex(exp.index), exp, rtol=1e-12)


def test_by_regime_links_within_state(result):
    pb = A.attribute_result(result)["aware"]
    by = A.attribution_by_regime(pb, result.regimes)
    st = result.regimes["state"].shift(1).reindex(pb.index).fillna(-1)
    for k in by.index:
        rk = pb.loc[st == k, "total"]
        assert by.loc[k, "total"] == pytest.approx(np.prod(1 + rk) - 1, abs=1e-12)
        assert abs(by.loc[k].drop("total").sum() - by.loc[k, "total"]) < 1e-10
    # sum-linked regimes add up to the whole period
    bys = A.attribution_by_regime(pb, result.regimes, method="sum")
    np.testing.assert_allclose(bys.sum(), A.link(pb, "sum"), atol=1e-12)


def test_residual_captures_untracked_pnl():
    r = make_result(n=120, seed=2)
    eq = r.equity["static"].copy()
    eq.iloc[50:] += 1000.0  # a cash windfall not explained by holdings
    pb = A.attribute(eq, r.weights["static"], r.prices, r.fills[r.fills.strategy == "static"])
    assert pb["residual"].abs().max() > 1e-5
    np.testing.assert_allclose(pb.drop(columns="total").sum(axis=1), pb["total"], atol=1e-14)


def test_zero_return_bars_carino():
    idx = pd.bdate_range("2020-01-01", periods=4)
    eq = pd.Series([100.0, 100.0, 110.0, 110.0], index=idx)
    w = pd.DataFrame({"A": [1.0, 1.0, 1.0, 1.0]}, index=idx)
    p = pd.DataFrame({"A": [10.0, 10.0, 11.0, 11.0]}, index=idx)
    pb = A.attribute(eq, w, p)
    c = A.link(pb)
    assert c["A"] == pytest.approx(0.1) and c["total"] == pytest.approx(0.1)


@pytest.mark.parametrize("includes", [True, False])
def test_open_fills_execution_component(includes):
    r = make_result(n=200, seed=9)
    rng = np.random.default_rng(0)
    opens = r.prices.shift(1).bfill() * (1 + 0.005 * rng.standard_normal(r.prices.shape))
    targets = np.where(np.arange(200)[:, None] % 10 < 5, [0.7, 0.3, 0.0], [0.2, 0.5, 0.3])
    eq, w, f = simulate(r.prices, targets, "x", every=3, ref=opens, price_includes_costs=includes)
    pb = A.attribute(eq, w, r.prices, f, price_includes_costs=includes)
    assert pb["residual"].abs().max() < 1e-12
    assert pb["execution"].abs().max() > 1e-4
    np.testing.assert_allclose(pb.drop(columns="total").sum(axis=1), pb["total"], atol=1e-14)
    # the wrong convention leaves the price-embedded costs in the residual
    wrong = A.attribute(eq, w, r.prices, f, price_includes_costs=not includes)
    assert wrong["residual"].abs().max() > 1e-6

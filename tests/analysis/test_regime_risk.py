from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.analysis import regime_risk as R
from engine.analysis.metrics import var_cvar_historical


def test_strategy_conditional_uses_filtered_state_lagged(result):
    rr = R.strategy_regime_risk(result.equity, result.regimes)
    r = result.equity["aware"].pct_change().iloc[1:]
    st = result.regimes["state"].shift(1).reindex(r.index)
    for k in (0, 1):
        rk = r[st == k]
        row = rr.loc[("aware", k)]
        assert row["n_bars"] == len(rk)
        assert row["ann_return"] == pytest.approx((1 + rk).prod() ** (252 / len(rk)) - 1)
        assert row["volatility"] == pytest.approx(rk.std() * np.sqrt(252))
        assert row["cvar95"] == pytest.approx(var_cvar_historical(rk, 0.95)[1])
        e = np.cumprod(np.r_[1, 1 + rk.to_numpy()])
        assert row["max_drawdown"] == pytest.approx(np.max(1 - e / np.maximum.accumulate(e)))
    assert set(rr.loc["aware"].index) == {0, 1}  # warm-up -1 excluded
    assert rr.loc["aware", "frac_time"].sum() == pytest.approx(1.0)
    # smoothed state is ignored: changing it changes nothing
    reg2 = result.regimes.assign(smoothed_state=0)
    pd.testing.assert_frame_equal(rr, R.strategy_regime_risk(result.equity, reg2))


def test_high_vol_state_is_riskier(result):
    ar = R.asset_regime_risk(result.prices, result.regimes)
    assert ar.loc[("SPX", 1), "volatility"] > 2 * ar.loc[("SPX", 0), "volatility"]
    assert {"var99_cf", "cvar99_gaussian", "skew", "kurtosis"} <= set(ar.columns)


def test_transitions_and_dwell():
    st = pd.Series([-1, -1, 0, 0, 0, 1, 1, 0, 2, 2, 2, 2])
    tm = R.transition_matrix(st, normalize=False)
    assert tm.loc[0, 0] == 2 and tm.loc[0, 1] == 1 and tm.loc[0, 2] == 1
    assert tm.loc[1, 0] == 1 and tm.loc[1, 1] == 1 and tm.loc[2, 2] == 3
    assert tm.to_numpy().sum() == 9
    tn = R.transition_matrix(st)
    np.testing.assert_allclose(tn.sum(axis=1), 1.0)
    occ = R.regime_occupancy(st)
    assert occ.loc[0, "avg_dwell"] == 2.0 and occ.loc[0, "n_spells"] == 2
    assert occ.loc[2, "avg_dwell"] == 4.0 and occ.loc[1, "max_dwell"] == 2
    assert occ["frac_time"].sum() == pytest.approx(1.0)
    assert occ.loc[0, "frac_time"] == pytest.approx(4 / 10)


def test_report_bundle(result):
    rep = R.regime_risk_report(result)
    assert set(rep) >= {"strategies", "assets", "asset_correlations", "transitions", "occupancy"}
    c = rep["asset_correlations"][1]
    assert c.shape == (3, 3)
    np.testing.assert_allclose(np.diag(c), 1.0)

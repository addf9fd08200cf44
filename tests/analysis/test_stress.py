from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.analysis import stress as S


def _eq(values, start="2020-02-14"):
    return pd.DataFrame({"s": values}, index=pd.bdate_range(start, periods=len(values)))


def test_only_covered_windows_reported(result):
    # fake result spans 2007-01-01 .. ~2009-04: only the GFC is fully covered
    h = S.historical_stress(result.equity)
    assert set(h.index.get_level_values("window")) == {"GFC"}
    assert set(h.index.get_level_values("strategy")) == {"static", "aware"}
    e = result.equity["static"]
    s0 = e[:"2007-10-09"].iloc[-1]
    s1 = e[:"2009-03-09"].iloc[-1]
    assert h.loc[("GFC", "static"), "return"] == pytest.approx(s1 / s0 - 1)


def test_window_recovery_hand_case():
    # 2020-02-14 Fri .. bars: peak 120 before window (COVID window 2020-02-19..2020-03-23)
    vals = [100, 120, 110, 105, 100] + [90] * 20 + [95, 110, 119, 121, 130]
    eq = _eq(vals)
    st = S.window_stats(eq["s"], pd.Timestamp("2020-02-19"), pd.Timestamp("2020-03-23"))
    idx = eq.index
    i0 = idx.searchsorted(pd.Timestamp("2020-02-19"), side="right") - 1
    assert st["start"] == idx[i0]
    j = vals.index(121)
    assert st["recovery_bars"] == j - i0
    assert st["recovery_date"] == idx[j] and st["recovered"]
    win = np.array(vals[i0 : idx.searchsorted(pd.Timestamp("2020-03-23"), side="right")], float)
    assert st["max_drawdown"] == pytest.approx(np.max(1 - win / np.maximum.accumulate(win)))


def test_not_recovered_is_nan_and_no_dip_is_zero():
    eq = _eq([100, 120, 110] + [90] * 30)
    st = S.window_stats(eq["s"], pd.Timestamp("2020-02-19"), pd.Timestamp("2020-03-23"))
    assert np.isnan(st["recovery_bars"]) and not st["recovered"]
    up = _eq(list(np.linspace(100, 200, 40)))
    st2 = S.window_stats(up["s"], pd.Timestamp("2020-02-19"), pd.Timestamp("2020-03-23"))
    assert st2["recovery_bars"] == 0 and st2["max_drawdown"] == 0


def test_hypothetical_shock(result):
    date = result.equity.index[300]
    out = S.hypothetical_shock(
        result.weights,
        result.equity,
        date,
        {"equity": -0.2, "UST10": 0.05},
        {"SPX": "equity", "UST10": "bond", "WTI": "equity"},
    )
    for s in ("static", "aware"):
        w = result.weights[s].loc[date]
        ret = -0.2 * w["SPX"] + 0.05 * w["UST10"] - 0.2 * w["WTI"]
        assert out.loc[s, "return"] == pytest.approx(ret)
        assert out.loc[s, "pnl"] == pytest.approx(ret * result.equity.loc[date, s])
    tab = S.shock_table(result.weights, result.equity, date)
    assert tab.index.nlevels == 2
    with pytest.raises(ValueError, match="before the first bar"):
        S.hypothetical_shock(result.weights, result.equity, "1990-01-01", {"SPX": -0.1})

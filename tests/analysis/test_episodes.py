"""Episode breakdown: known answers on a hand-made equity curve and weights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.analysis.episodes import EPISODES, episode_table


def test_known_answer() -> None:
    idx = pd.bdate_range("2020-01-27", "2020-05-08")
    n = len(idx)
    a = np.full(n, 100.0)
    jan31 = idx.get_loc(pd.Timestamp("2020-01-31"))
    apr30 = idx.get_loc(pd.Timestamp("2020-04-30"))
    a[jan31 + 1 :] = 120.0  # +20 % the next day
    a[jan31 + 10 : apr30 + 1] = 90.0  # 120 -> 90: a 25 % drawdown, ends at 90
    b = np.linspace(100.0, 110.0, n)  # rising: no drawdown
    eq = pd.DataFrame({"a": a, "b": b}, index=idx)
    w = pd.DataFrame(
        {("a", "SPX"): 0.6, ("a", "UST10"): 0.4, ("b", "SPX"): 0.0, ("b", "UST10"): 1.0},
        index=idx,
    )
    w.loc[idx > pd.Timestamp("2020-04-15"), ("a", "SPX")] = 0.1  # de-risked late in April
    w.loc[idx > pd.Timestamp("2020-04-15"), ("a", "UST10")] = 0.9
    w.columns = pd.MultiIndex.from_tuples(w.columns)
    t = episode_table(eq, weights=w, asset_classes={"SPX": "equity", "UST10": "bond"})
    assert list(t.index) == [("Feb-Apr 2020", "a"), ("Feb-Apr 2020", "b")]  # 2022 not covered
    ra = t.loc[("Feb-Apr 2020", "a")]
    assert ra["start"] == pd.Timestamp("2020-01-31") and ra["end"] == pd.Timestamp("2020-04-30")
    assert ra["return"] == pytest.approx(-0.10)
    assert ra["max_drawdown"] == pytest.approx(0.25)
    rb = t.loc[("Feb-Apr 2020", "b")]
    assert rb["return"] == pytest.approx(b[apr30] / b[jan31] - 1) and rb["max_drawdown"] == 0.0
    bars = (idx > pd.Timestamp("2020-01-31")) & (idx <= pd.Timestamp("2020-04-30"))
    late = (idx > pd.Timestamp("2020-04-15")) & bars
    assert ra["mean_w_equity"] == pytest.approx(
        (0.6 * (bars.sum() - late.sum()) + 0.1 * late.sum()) / bars.sum()
    )
    assert ra["end_w_equity"] == pytest.approx(0.1) and ra["end_w_bond"] == pytest.approx(0.9)
    assert rb["mean_w_bond"] == pytest.approx(1.0)


def test_cut_at_the_data_end_and_empty() -> None:
    idx = pd.bdate_range("2021-12-01", "2022-11-08")
    eq = pd.DataFrame({"x": np.linspace(100, 80, len(idx))}, index=idx)
    t = episode_table(eq)
    assert list(t.index) == [("2022", "x")]
    assert t.loc[("2022", "x"), "end"] == pd.Timestamp("2022-11-08")
    start = eq.loc["2021-12-31", "x"]
    assert t.loc[("2022", "x"), "return"] == pytest.approx(80 / start - 1)
    assert episode_table(eq.loc[:"2021-12-15"]).empty
    assert set(EPISODES) == {"Feb-Apr 2020", "2022"}

"""Exogenous files (validation, as-of join with a lag) and user features (History, names)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.features.exog import add_exog, asof_join, read_series
from engine.features.user import inputs_matrix
from engine.ground.bars import BarPanel, DataError
from engine.plugins.features import History, IncrementalFeature, WindowFeature, register
from engine.plugins.names import Names
from strategies.features_example import ewm_momentum_nb


def small_panel(t_len: int = 30) -> BarPanel:
    idx = pd.bdate_range("2020-01-01", periods=t_len)
    close = np.column_stack([np.linspace(100, 130, t_len), np.linspace(50, 40, t_len)])
    return BarPanel(idx, ("A", "B"), close, close, close, close, np.ones_like(close))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "date,VIX\n2020-01-01,1\n2020-01-01,2\n",
            "row 3, field date: timestamp 2020-01-01 00:00:00 duplicated",
        ),
        (
            "date,VIX\n2020-01-02,1\n2020-01-01,2\n",
            "row 3, field date: timestamp 2020-01-01 00:00:00 not after",
        ),
        ("date,VIX\n2020-01-01,1\nnot a date,2\n", "row 3, field date: bad timestamp 'not a date'"),
        (
            "date,VIX\n2020-01-01,1\n2020-01-02,abc\n",
            "row 3, field VIX: not a finite number: 'abc'",
        ),
        ("when,VIX\n2020-01-01,1\n", "no timestamp column"),
    ],
)
def test_bad_exog_files_are_one_line_errors(tmp_path, text, message):
    f = tmp_path / "vix.csv"
    f.write_text(text)
    with pytest.raises(DataError) as err:
        read_series(f)
    assert str(err.value).startswith(f"{f}: ") and message in str(err.value)
    assert "\n" not in str(err.value)


def test_asof_join_respects_publication_lag_and_blank_releases(tmp_path):
    f = tmp_path / "macro.csv"
    f.write_text("date,CPI\n2020-01-31,1.0\n2020-02-29,\n2020-03-31,3.0\n")
    idx = pd.date_range("2020-01-30", "2020-04-20", freq="D")
    x = asof_join(idx, read_series(f), lag="14D")[:, 0]
    s = pd.Series(x, index=idx)
    assert np.isnan(s["2020-02-13"]) and s["2020-02-14"] == 1.0
    assert s["2020-03-20"] == 1.0  # the blank February release: January's value carries on
    assert s["2020-04-13"] == 1.0 and s["2020-04-14"] == 3.0
    with pytest.raises(DataError, match="lag must be >= 0"):
        asof_join(idx, read_series(f), lag="-1D")


def test_add_exog_names_columns_and_rejects_clashes(tmp_path):
    p = small_panel()
    df = pd.DataFrame({"VIX": np.arange(30.0)}, index=p.index)
    q = add_exog(p, df)
    assert q.exog_names == ("VIX",) and q.exog[5, 0] == 5.0
    with pytest.raises(DataError, match="already in the panel"):
        add_exog(q, df)


def test_history_views_end_at_the_current_bar_and_do_not_copy():
    h = History(("A", "B"))
    for t in range(300):  # past the first buffer growth
        h.append(np.array([1.0, 2.0]) + t, np.array([10.0, 20.0]) + t, np.ones(2))
        w = h.window("B", "close", 60)
        assert w[-1] == 20.0 + t and len(w) == min(60, t + 1)
        assert np.shares_memory(w, h.field("close"))
    with pytest.raises(DataError, match="unknown symbol"):
        h.window("C", "close", 5)


def test_window_and_incremental_features_match_direct_computation():
    p = small_panel()
    mean5 = WindowFeature("mean5", lambda w: float(w.mean()), window=5)
    mom = IncrementalFeature("mom", ewm_momentum_nb, params=np.array([0.5]), state_size=4)
    x, names = inputs_matrix(p, [mean5, mom])
    assert names == ("A.mean5", "B.mean5", "A.mom", "B.mom")
    assert np.isnan(x[:4, :2]).all()
    np.testing.assert_allclose(x[10, 0], p.close[6:11, 0].mean())
    r = np.diff(np.log(p.close[:, 1]))
    m = 0.0
    for v in r:
        m += 0.5 * (v - m)
    np.testing.assert_allclose(x[-1, 3], m)


def test_names_resolve_builtin_exog_and_user_features_with_clear_errors():
    n = Names(("SPX", "UST10"), ("calm", "crisis"), ("VIX", "SPX.mom", "corr"))
    assert n.feature("UST10", "rsi") == 1 * 6 + 5
    assert n.feature(None, "VIX") == -1 and n.feature("SPX", "mom") == -2
    assert n.feature(None, "corr") == -3 and n.state("crisis") == 1
    with pytest.raises(DataError, match="unknown symbol 'QQQ'"):
        n.feature("QQQ", "mom")
    with pytest.raises(DataError, match="unknown regime label"):
        n.state("bull")
    with pytest.raises(ValueError, match="built-in"):
        register(WindowFeature("rsi", np.mean, 3))

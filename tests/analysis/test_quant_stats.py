"""The quantstats-like statistics against hand computations and an independent pandas
replica of quantstats' documented definitions (quantstats itself is not installed)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from engine.analysis.quant_stats import (
    drawdown_days,
    eoy_table,
    partial_periods,
    quant_stats,
    trailing_returns,
)


def _equity(returns: list[float], dates: pd.DatetimeIndex) -> pd.Series:
    """Equity 100 at ``dates[0]`` then compounded by ``returns`` on ``dates[1:]``."""
    return pd.Series(100.0 * np.cumprod(1.0 + np.array([0.0, *returns])), index=dates)


def test_hand_computed_streaks_best_worst_win_rates_drawdowns() -> None:
    dates = pd.DatetimeIndex(
        ["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-07", "2021-01-08", "2021-01-11",
         "2021-02-01", "2021-02-02"]
    )  # fmt: skip
    r = [0.10, 0.0, -0.05, -0.02, 0.04, 0.10, -0.01]
    e = _equity(r, dates)
    q = quant_stats(e, 252)
    assert q["best_bar"] == pytest.approx(0.10)
    assert q["worst_bar"] == pytest.approx(-0.05)
    assert q["max_consecutive_wins"] == 2  # +0.04, +0.10
    assert q["max_consecutive_losses"] == 2  # -0.05, -0.02
    assert q["win_rate_bar"] == pytest.approx(3 / 6)  # the flat bar is left out
    jan = 1.10 * 0.95 * 0.98 * 1.04 - 1
    feb = 1.10 * 0.99 - 1
    assert q["best_month"] == pytest.approx(feb)
    assert q["worst_month"] == pytest.approx(jan)
    assert q["win_rate_month"] == pytest.approx(1.0)
    assert q["best_year"] == pytest.approx((1 + jan) * (1 + feb) - 1)
    # peak 110 on 01-06 (flat at the peak), under water 01-07 .. 01-11 (106.5 < 110), back
    # above on 02-01: 5 calendar days; under again on 02-02 (still open): 1 day
    assert list(drawdown_days(e)) == [5.0, 1.0]
    assert q["longest_dd_days"] == 5.0 and q["avg_dd_days"] == 3.0
    mdd = 1 - 0.95 * 0.98
    assert q["recovery_factor"] == pytest.approx((e.iloc[-1] / 100 - 1) / mdd)
    dd = e / e.cummax() - 1
    assert q["ulcer_index"] == pytest.approx(math.sqrt((dd.iloc[1:] ** 2).sum() / (7 - 1)))


def test_trailing_returns_follow_quantstats_windows() -> None:
    """MTD/3M/6M/YTD/1Y as quantstats ``reports.metrics``: compound the returns stamped on
    or after the window start; 3Y annualised over its returns with ppy."""
    idx = pd.bdate_range("2017-06-01", "2021-03-15")
    rng = np.random.default_rng(3)
    r = rng.normal(3e-4, 0.01, len(idx) - 1)
    e = _equity(list(r), idx)
    got = trailing_returns(e, 252)
    rets = e.pct_change().dropna()
    end = rets.index[-1]

    def since(a: pd.Timestamp) -> float:
        return float((1 + rets[rets.index >= a]).prod() - 1)

    assert got["mtd"] == pytest.approx(since(pd.Timestamp("2021-03-01")))
    assert got["ytd"] == pytest.approx(since(pd.Timestamp("2021-01-01")))
    assert got["3m"] == pytest.approx(since(pd.Timestamp("2020-12-15")))
    assert got["6m"] == pytest.approx(since(pd.Timestamp("2020-09-15")))
    assert got["1y"] == pytest.approx(since(pd.Timestamp("2020-03-15")))
    w = rets[rets.index >= end - pd.DateOffset(years=3)]
    assert got["3y_ann"] == pytest.approx(
        (1 + since(pd.Timestamp("2018-03-15"))) ** (252 / len(w)) - 1
    )
    assert math.isnan(got["5y_ann"]) and math.isnan(got["10y_ann"])  # history too short


def test_hourly_bars_win_rate_per_bar_and_month() -> None:
    idx = pd.date_range("2024-01-01 09:00", periods=400, freq="h")
    r = np.where(np.arange(399) % 3 == 0, -0.001, 0.002)
    e = _equity(list(r), idx)
    q = quant_stats(e, 24 * 365)
    assert q["win_rate_bar"] == pytest.approx((r > 0).mean())
    assert q["max_consecutive_wins"] == 2 and q["max_consecutive_losses"] == 1


def test_eoy_table_partial_years_and_difference() -> None:
    idx = pd.bdate_range("2019-03-01", "2021-06-30")
    rng = np.random.default_rng(0)
    s = _equity(list(rng.normal(0, 0.01, len(idx) - 1)), idx)
    b = _equity(list(rng.normal(0, 0.01, len(idx) - 1)), idx)
    t = eoy_table(s, b)
    assert list(t.index) == [2019, 2020, 2021]
    assert list(t["partial"]) == [True, False, True]
    y20 = s["2020"].iloc[-1] / s["2019"].iloc[-1] - 1
    b20 = b["2020"].iloc[-1] / b["2019"].iloc[-1] - 1
    assert t.loc[2020, "strategy"] == pytest.approx(y20)
    assert t.loc[2020, "difference"] == pytest.approx(y20 - b20)
    assert t.loc[2020, "ratio"] == pytest.approx(y20 / b20)
    assert t.loc[2019, "strategy"] == pytest.approx(s["2019"].iloc[-1] / s.iloc[0] - 1)


def test_partial_periods_allow_holidays() -> None:
    whole = pd.bdate_range("2020-01-02", "2020-12-31")  # 1 January is a holiday
    assert partial_periods(whole, "YE") == set()
    cut = pd.bdate_range("2020-01-02", "2020-11-08")
    assert partial_periods(cut, "YE") == {pd.Timestamp("2020-12-31")}
    assert partial_periods(cut, "ME") == {pd.Timestamp("2020-11-30")}

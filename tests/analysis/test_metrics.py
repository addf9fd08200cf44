from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from engine.analysis import metrics as M

EQ = pd.Series([100.0, 110.0, 99.0, 118.8], index=pd.bdate_range("2020-01-01", periods=4))


def test_hand_computed_small_case():
    s = M.summary(EQ)
    assert s["total_return"] == pytest.approx(0.188)
    assert s["cagr"] == pytest.approx(1.188**84 - 1)
    assert s["volatility"] == pytest.approx(np.sqrt(0.07 / 3) * np.sqrt(252))
    assert s["sharpe"] == pytest.approx((1 / 15) / np.sqrt(0.07 / 3) * np.sqrt(252))
    assert s["sortino"] == pytest.approx((1 / 15) / np.sqrt(0.01 / 3) * np.sqrt(252))
    assert s["max_drawdown"] == pytest.approx(0.1)
    assert s["calmar"] == pytest.approx((1.188**84 - 1) / 0.1)
    assert s["var95"] == pytest.approx(0.08)
    assert s["cvar95"] == pytest.approx(0.1)
    assert s["n_trades"] == 0 and s["turnover"] == 0 and s["total_costs"] == 0


def test_against_direct_formulas():
    rng = np.random.default_rng(1)
    r = 0.0004 + 0.01 * rng.standard_t(4, 2000)
    idx = pd.bdate_range("2001-01-01", periods=2001)
    eq = pd.Series(1e6 * np.cumprod(np.r_[1.0, 1 + r]), index=idx)
    s = M.summary(eq)
    assert s["volatility"] == pytest.approx(r.std(ddof=1) * np.sqrt(252))
    assert s["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252))
    dd = np.sqrt(np.mean(np.minimum(r, 0) ** 2))
    assert s["sortino"] == pytest.approx(r.mean() / dd * np.sqrt(252))
    e = eq.to_numpy()
    assert s["max_drawdown"] == pytest.approx(np.max(1 - e / np.maximum.accumulate(e)))
    assert s["cagr"] == pytest.approx((e[-1] / e[0]) ** (252 / 2000) - 1)
    for lv in (0.95, 0.99):
        tag = f"{round(lv * 100)}"
        q = np.quantile(r, 1 - lv)
        assert s[f"var{tag}"] == pytest.approx(-q)
        assert s[f"cvar{tag}"] == pytest.approx(-r[r <= q].mean())
        mu, sd = r.mean(), r.std(ddof=1)
        assert s[f"var{tag}_gaussian"] == pytest.approx(-stats.norm.ppf(1 - lv, mu, sd))
        dist = stats.norm(mu, sd)
        tail = integrate.quad(lambda x, d=dist: x * d.pdf(x), -np.inf, dist.ppf(1 - lv))[0] / (
            1 - lv
        )
        assert s[f"cvar{tag}_gaussian"] == pytest.approx(-tail, rel=1e-6)
    assert s["skew"] == pytest.approx(pd.Series(r).skew())
    assert s["kurtosis"] == pytest.approx(stats.kurtosis(r, bias=False))


def test_cornish_fisher_cvar_is_tail_mean_of_cf_quantile():
    rng = np.random.default_rng(3)
    r = 0.01 * rng.standard_t(5, 3000) - 0.002 * rng.exponential(size=3000)
    s = pd.Series(r)
    mu, sd, sk, ku = s.mean(), s.std(), s.skew(), s.kurt()
    for lv in (0.95, 0.99):
        var, cvar = M.var_cvar_cornish_fisher(r, lv)
        zc = M.cornish_fisher_z(stats.norm.ppf(1 - lv), sk, ku)
        assert var == pytest.approx(-(mu + sd * zc))
        num = integrate.quad(
            lambda p: mu + sd * M.cornish_fisher_z(stats.norm.ppf(p), sk, ku), 0, 1 - lv, limit=200
        )[0] / (1 - lv)
        assert cvar == pytest.approx(-num, rel=1e-6)


def test_cornish_fisher_reduces_to_gaussian_without_higher_moments():
    assert M.cornish_fisher_z(-1.645, 0.0, 0.0) == -1.645


def test_turnover_costs_trades_from_fills(result):
    eq = result.equity["static"]
    f = result.fills[result.fills["strategy"] == "static"]
    s = M.summary(eq, f)
    years = (len(eq) - 1) / 252
    assert s["turnover"] == pytest.approx((f.qty * f.price).sum() / eq.mean() / years / 2)
    costs = f[["commission", "spread", "slippage", "impact"]].to_numpy().sum()
    assert s["total_costs"] == pytest.approx(costs)
    assert s["n_trades"] == len(f)


def test_rf_series_and_scalar_agree():
    r = pd.Series(np.random.default_rng(0).normal(5e-4, 0.01, 500))
    assert M.sharpe(r, 1e-4) == pytest.approx(M.sharpe(r, pd.Series(1e-4, index=r.index)))
    assert M.sharpe(r, 1e-4) == pytest.approx((r - 1e-4).mean() / (r - 1e-4).std() * np.sqrt(252))


def test_summary_table_and_format(result):
    t = M.summary_table(result)
    assert list(t.index) == ["static", "aware"]
    for k in (
        "cagr",
        "volatility",
        "sharpe",
        "sortino",
        "max_drawdown",
        "calmar",
        "cvar95",
        "turnover",
        "total_costs",
        "n_trades",
    ):
        assert k in t.columns
    assert t.loc["aware", "n_trades"] == (result.fills.strategy == "aware").sum()
    assert t.loc["static", "sharpe"] == pytest.approx(M.summary(result.equity["static"])["sharpe"])
    txt = M.format_table(t)
    lines = txt.splitlines()
    assert "cagr" in lines[0] and "static" in txt and "%" in txt
    assert len(lines) == 4
    # equity DataFrame accepted too
    t2 = M.summary_table(result.equity)
    assert t2.loc["static", "n_trades"] == 0


@settings(deadline=None, max_examples=40)
@given(st.lists(st.floats(-0.5, 0.5), min_size=3, max_size=60))
def test_property_invariants(rets):
    eq = pd.Series(100 * np.cumprod(np.r_[1.0, 1 + np.array(rets)]))
    s = M.summary(eq)
    assert 0 <= s["max_drawdown"] < 1
    assert s["total_return"] == pytest.approx(eq.iloc[-1] / 100 - 1)
    if np.isfinite(s["var95"]):
        assert s["cvar95"] >= s["var95"] - 1e-12


# ------------------------------------------------------------ bar frequency and risk-free


def _minute_index(days: int = 5, per_day: int = 390) -> pd.DatetimeIndex:
    """One-minute bars of 09:31..16:00 sessions on business days."""
    out = []
    for d in pd.bdate_range("2024-03-04", periods=days):
        out.append(pd.date_range(d + pd.Timedelta("9h31min"), periods=per_day, freq="min"))
    return out[0].append(out[1:])


def test_minute_bars_are_annualised_with_the_right_periods_per_year():
    """Five days of minute bars losing 3.56%: CAGR and volatility by hand with 390 x 252."""
    from engine.ground.frequency import infer_frequency

    idx = _minute_index()
    f = infer_frequency(idx)
    assert f.name == "minute" and f.periods_per_year == 390 * 252 and f.intraday
    rng = np.random.default_rng(3)
    r = rng.normal(0, 4e-4, len(idx) - 1)
    r += (np.log(1 - 0.0356) - np.log1p(r).sum()) / r.size  # total return -3.56%
    eq = pd.Series(1e6 * np.cumprod(np.r_[1.0, 1 + r]), index=idx)
    s = M.summary(eq)
    ppy = 390 * 252
    assert s["total_return"] == pytest.approx(-0.0356, rel=1e-3)
    g = eq.iloc[-1] / eq.iloc[0]
    assert s["cagr"] == pytest.approx(g ** (ppy / r.size) - 1, rel=1e-9)
    assert s["volatility"] == pytest.approx(np.std(r, ddof=1) * np.sqrt(ppy), rel=1e-9)
    assert s["periods_per_year"] == ppy
    assert s["cagr"] < -0.8  # not the -0.12% of daily annualisation


@pytest.mark.parametrize(
    ("idx", "name", "ppy"),
    [
        (pd.bdate_range("2020-01-01", periods=300), "daily", 252),
        (pd.date_range("2020-01-01", periods=300, freq="D"), "daily", 365),  # crypto
        (pd.date_range("2020-01-03", periods=100, freq="W-FRI"), "weekly", 52),
        (pd.date_range("2000-01-31", periods=60, freq="ME"), "monthly", 12),
        (pd.date_range("2000-03-31", periods=40, freq="QE"), "quarterly", 4),
    ],
)
def test_frequency_inference(idx, name, ppy):
    from engine.ground.frequency import infer_frequency

    f = infer_frequency(idx)
    assert (f.name, f.periods_per_year) == (name, ppy)


def test_hourly_bars_and_time_named_windows():
    from engine.ground.frequency import infer_frequency, window_bars

    days = pd.bdate_range("2024-01-01", periods=30)
    idx = pd.DatetimeIndex(
        [d + pd.Timedelta(hours=h) for d in days for h in (10, 11, 12, 13, 14, 15, 16)]
    )
    f = infer_frequency(idx)
    assert f.name == "hourly" and f.periods_per_year == 7 * 252
    assert window_bars("1y", f) == 7 * 252
    assert window_bars("4h", f) == 4
    daily = infer_frequency(pd.bdate_range("2020-01-01", periods=50))
    assert window_bars("1y", daily) == 252 and window_bars("3m", daily) == 63
    assert window_bars("2w", daily) == 10
    assert "~3.0 months" in daily.describe_bars(63)
    with pytest.raises(ValueError, match="expected a number and a unit"):
        window_bars("3 fortnights", daily)


def test_sharpe_and_sortino_over_the_cash_asset_by_hand():
    """rf = the CASH asset's per-bar return: hand computation, label, rf = 0 kept."""
    from engine.ground.bars import BarPanel

    idx = pd.bdate_range("2020-01-01", periods=400)
    rng = np.random.default_rng(5)
    cash = 100 * np.cumprod(np.r_[1.0, 1 + np.full(399, 0.0002)])
    stock = 100 * np.cumprod(np.r_[1.0, 1 + rng.normal(5e-4, 0.01, 399)])
    close = np.column_stack([stock, cash])
    panel = BarPanel(
        idx,
        ("AAA", "TBILL"),
        close,
        close,
        close,
        close,
        np.zeros_like(close),
        asset_classes=("equity", "cash"),
    )
    rf, label = M.risk_free_returns(panel, "auto")
    assert label == "TBILL"  # found by asset class, not by name
    eq = pd.Series(stock * 10, index=idx)
    r = eq.pct_change().iloc[1:].to_numpy()
    ex = r - 0.0002
    s = M.summary(eq, rf=rf)
    assert s["sharpe"] == pytest.approx(ex.mean() / ex.std(ddof=1) * np.sqrt(252), rel=1e-9)
    dd = np.sqrt(np.mean(np.minimum(ex, 0) ** 2))
    assert s["sortino"] == pytest.approx(ex.mean() / dd * np.sqrt(252), rel=1e-9)
    assert s["sharpe_rf0"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252), rel=1e-9)
    assert s["sharpe"] < s["sharpe_rf0"]

    from types import SimpleNamespace

    result = SimpleNamespace(
        equity=pd.DataFrame({"a": eq}),
        fills=None,
        config={"metrics": {"risk_free": "auto"}},
        panel=panel,
    )
    table = M.summary_table(result)
    assert table.attrs["rf_label"] == "TBILL"
    text = M.format_table(table)
    assert "sharpe (rf = TBILL)" in text and "sharpe (rf = 0)" in text
    # a constant annual rate and "none"
    const, lab = M.risk_free_returns(panel, 0.05)
    assert const == pytest.approx(1.05 ** (1 / 252) - 1) and lab == "0.05/yr"
    assert M.risk_free_returns(panel, "none") == (0.0, "0")
    with pytest.raises(ValueError, match="not a symbol of the data"):
        M.risk_free_returns(panel, "NOPE")


def test_risk_free_from_a_rates_file(tmp_path):
    from engine.ground.bars import BarPanel

    idx = pd.bdate_range("2020-01-01", periods=10)
    close = np.full((10, 1), 100.0)
    panel = BarPanel(idx, ("A",), close, close, close, close, np.zeros_like(close))
    f = tmp_path / "rates.csv"
    f.write_text("timestamp,rate\n2019-12-31,0.02\n2020-01-08,0.04\n")
    rf, label = M.risk_free_returns(panel, f"file:{f}")
    assert label == "rates.csv"
    per = lambda a: (1 + a) ** (1 / 252) - 1  # noqa: E731
    assert rf.loc["2020-01-07"] == pytest.approx(per(0.02))
    assert rf.loc["2020-01-08"] == pytest.approx(per(0.04))
    assert panel.tz is None


def test_console_table_shows_one_sharpe_when_rf_is_zero():
    """At rf = 0 the rf = 0 twins would repeat their columns: one ``sharpe (rf = 0)``; with a
    risk-free series both are shown, each labelled."""
    eq = pd.DataFrame({"a": 100 * np.cumprod(1 + np.linspace(-0.01, 0.012, 300))})
    t = M.summary_table(eq)
    t.attrs["rf_label"] = "0"
    head = M.format_table(t).splitlines()[0]
    assert head.count("sharpe (rf = 0)") == 1 and head.count("sortino (rf = 0)") == 1
    t.attrs["rf_label"] = "CASH"
    head = M.format_table(t).splitlines()[0]
    assert "sharpe (rf = CASH)" in head and "sharpe (rf = 0)" in head

"""Benchmark-relative statistics, drawdown episodes and tearsheet tables vs direct
computations (numpy regressions, pandas resamples, brute-force scans)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import fmt
from engine.analysis.benchmark import benchmark_equity, relative_stats, relative_table
from engine.analysis.drawdowns import drawdown_episodes, worst_drawdowns
from engine.analysis.metrics import cagr, drawdown, max_drawdown, total_costs, turnover
from engine.analysis.regime_risk import regime_occupancy
from engine.analysis.tearsheet import (
    cost_attribution,
    detection_lag,
    dwell_times,
    exposure,
    monthly_returns,
    regime_performance,
    trade_list,
    turnover_series,
    yearly_returns,
)
from tests.analysis.conftest import make_result


def _pair(seed: int = 3, n: int = 800) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    b = 0.0003 + 0.01 * rng.standard_normal(n)
    r = 0.0001 + 0.6 * b + 0.004 * rng.standard_normal(n)
    return r, b


def test_alpha_beta_match_least_squares() -> None:
    r, b = _pair()
    out = relative_stats(r, b, 252)
    slope, intercept = np.polyfit(b, r, 1)  # OLS r = a + beta * b
    assert out["beta"] == pytest.approx(slope, rel=1e-10)
    assert out["alpha"] == pytest.approx(intercept * 252, rel=1e-8)
    assert out["correlation"] == pytest.approx(pd.Series(r).corr(pd.Series(b)), rel=1e-12)


def test_tracking_error_information_ratio_capture() -> None:
    r, b = _pair(5)
    out = relative_stats(r, b, 252)
    d = r - b
    te = np.sqrt(np.sum((d - d.mean()) ** 2) / (d.size - 1)) * np.sqrt(252)
    assert out["tracking_error"] == pytest.approx(te, rel=1e-12)
    assert out["information_ratio"] == pytest.approx(d.mean() * 252 / te, rel=1e-12)
    up = [x for x, y in zip(r, b) if y > 0]
    upb = [y for y in b if y > 0]
    dn = [x for x, y in zip(r, b) if y < 0]
    dnb = [y for y in b if y < 0]
    assert out["up_capture"] == pytest.approx(np.mean(up) / np.mean(upb), rel=1e-12)
    assert out["down_capture"] == pytest.approx(np.mean(dn) / np.mean(dnb), rel=1e-12)


def test_benchmark_against_itself() -> None:
    _, b = _pair(7)
    out = relative_stats(b, b)
    assert out["beta"] == pytest.approx(1.0) and abs(out["alpha"]) < 1e-12
    assert out["up_capture"] == pytest.approx(1.0) and out["down_capture"] == pytest.approx(1.0)
    assert np.isnan(out["information_ratio"])  # zero tracking error


def test_benchmark_symbol_and_strategy(result) -> None:
    name, bench = benchmark_equity(result, "SPX")
    assert name == "SPX (buy & hold)"
    p = result.prices["SPX"]
    assert np.allclose(bench.to_numpy(), p.to_numpy() / p.iloc[0] * result.equity.iloc[0].mean())
    name, bench = benchmark_equity(result, "static")
    assert name == "static" and bench.equals(result.equity["static"])
    with pytest.raises(KeyError, match=r"report\.benchmark: unknown strategy or symbol 'nope'"):
        benchmark_equity(result, "nope")
    tab = relative_table(result.equity, result.equity["static"])
    assert tab.loc["static", "beta"] == pytest.approx(1.0)
    exp = cagr(result.equity["aware"]) - cagr(result.equity["static"])
    assert tab.loc["aware", "excess_return"] == pytest.approx(exp)


def test_default_benchmark_is_the_first_equity_symbol(result) -> None:
    from dataclasses import dataclass, replace

    @dataclass(frozen=True)
    class Panel:
        symbols: tuple[str, ...]
        asset_classes: tuple[str, ...]

    r = replace(result)
    r.panel = Panel(("SPX", "UST10", "WTI"), ("bond", "equity", "commodity"))  # type: ignore[attr-defined]
    assert benchmark_equity(r)[0] == "UST10 (buy & hold)"
    assert benchmark_equity(result)[0] == "SPX (buy & hold)"  # no classes: the first symbol


def test_monthly_and_yearly_returns_match_resample(result) -> None:
    e = result.equity["aware"]
    m = monthly_returns(e)
    last = e.resample("ME").last()
    ref = last.pct_change()
    ref.iloc[0] = last.iloc[0] / e.iloc[0] - 1
    for ts, v in ref.items():
        assert m.loc[ts.year, ts.month] == pytest.approx(v, rel=1e-12)
    assert m.notna().sum().sum() == len(ref)
    y = yearly_returns(result.equity)
    ly = e.resample("YE").last()
    assert y.loc[ly.index[1].year, "aware"] == pytest.approx(ly.iloc[1] / ly.iloc[0] - 1)
    # compounding the months gives the year, and the years the total
    yr = int(ly.index[0].year)
    assert np.prod(1 + m.loc[yr].dropna()) - 1 == pytest.approx(y.loc[yr, "aware"])
    assert np.prod(1 + y["aware"]) == pytest.approx(e.iloc[-1] / e.iloc[0])


def _brute_episodes(e: np.ndarray) -> list[tuple[int, int, int | None, float]]:
    """Contiguous runs of drawdown > 0: (peak, trough, recovery, depth)."""
    dd = drawdown(pd.Series(e)).to_numpy()
    out, i = [], 0
    while i < len(e):
        if dd[i] > 0:
            j = i
            while j < len(e) and dd[j] > 0:
                j += 1
            t = i + int(np.argmin(e[i:j]))  # the lowest value (dd can tie by rounding)
            out.append((i - 1, t, j if j < len(e) else None, float(dd[t])))
            i = j
        else:
            i += 1
    return out


@settings(deadline=None, max_examples=60)
@given(st.lists(st.floats(-0.2, 0.2), min_size=2, max_size=120))
def test_drawdown_episodes_match_brute_force(rets: list[float]) -> None:
    e = 100 * np.cumprod(1 + np.asarray(rets))
    idx = pd.bdate_range("2020-01-01", periods=len(e))
    ep = drawdown_episodes(pd.Series(e, index=idx))
    brute = _brute_episodes(e)
    assert len(ep) == len(brute)
    for row, (p, t, rec, depth) in zip(ep.itertuples(), brute):
        assert row.start == idx[p] and row.trough == idx[t]
        assert (pd.isna(row.recovery) and rec is None) or row.recovery == idx[rec]
        assert row.depth == pytest.approx(depth, abs=1e-12)
    if len(ep):
        assert ep["depth"].max() == pytest.approx(max_drawdown(e), abs=1e-12)


def test_worst_drawdowns_ordered(result) -> None:
    e = result.equity["static"]
    w = worst_drawdowns(e, 5)
    brute = sorted(_brute_episodes(e.to_numpy()), key=lambda x: -x[3])[:5]
    assert list(w.index) == list(range(1, len(w) + 1))
    assert np.allclose(w["depth"], [b[3] for b in brute])
    assert list(w["trough"]) == [e.index[b[1]] for b in brute]
    assert (w["length"] >= w["to_trough"]).all()


def test_exposure_turnover_costs_trades(result) -> None:
    ex = exposure(result.weights, "static")
    w = result.weights["static"]
    assert np.allclose(ex["net"], w.sum(axis=1)) and np.allclose(ex["cash"], 1 - w.sum(axis=1))
    e = result.equity["static"]
    f = result.fills[result.fills["strategy"] == "static"]
    ts = turnover_series(f, e, window=len(e))
    years = (len(e) - 1) / 252
    assert ts.iloc[-1] == pytest.approx(turnover(f, e) * years)
    ca = cost_attribution(result.fills, result.equity)
    assert ca.loc["static", "total_costs"] == pytest.approx(total_costs(f))
    notional = float((f["qty"].abs() * f["price"]).sum())
    assert ca.loc["static", "cost_bps"] == pytest.approx(total_costs(f) / notional * 1e4)
    tl = trade_list(result.fills, "aware", n=7)
    assert len(tl) == 7 and tl["notional"].is_monotonic_decreasing
    fa = result.fills[result.fills["strategy"] == "aware"]
    assert tl["notional"].iloc[0] == pytest.approx((fa["qty"].abs() * fa["price"]).max())


def test_regime_tables(result) -> None:
    perf = regime_performance(result.equity, result.regimes)
    assert set(perf.index.get_level_values("state")) == {0, 1}
    for s in ("static", "aware"):
        assert perf.loc[s, "share_of_time"].sum() == pytest.approx(1.0)
    # hit rate = share of up days among the bars whose previous-close state is k
    r = result.equity["aware"].pct_change().iloc[1:]
    prev = result.regimes["state"].shift(1).reindex(r.index)
    for k in (0, 1):
        assert perf.loc[("aware", k), "hit_rate"] == pytest.approx((r[prev == k] > 0).mean())
    dw = dwell_times(result.regimes)
    occ = regime_occupancy(result.regimes)
    assert np.allclose(dw["mean"], occ["avg_dwell"]) and np.allclose(dw["max"], occ["max_dwell"])


def test_detection_lag_known_answer() -> None:
    idx = pd.bdate_range("2007-06-01", "2009-06-30")
    st_ = np.zeros(len(idx), dtype=int)
    gfc = idx.get_indexer([pd.Timestamp("2007-10-09")])[0]
    st_[gfc + 10 :] = 1
    st_[gfc + 25 :] = 2
    lag = detection_lag(pd.DataFrame({"state": st_}, index=idx), n_states=3)
    row = lag.loc["GFC"]
    assert row["lag_any_bars"] == 10 and row["lag_top_bars"] == 25
    assert row["state_at_start"] == 0


def test_fmt_conventions() -> None:
    assert fmt.value("max_drawdown", 0.25) == "-25.00%"
    assert fmt.value("cvar95", 0.031) == "-3.10%"
    assert fmt.value("cagr", -0.2863) == "-28.63%"
    assert fmt.value("total_costs", 1234567.4) == "1,234,567"
    assert fmt.value("sharpe", 0.51234) == "0.512"
    assert fmt.value("n_trades", 12.0) == "12"
    assert fmt.value("x", pd.Timestamp("2000-03-24")) == "2000-03-24"
    assert fmt.value("cagr", float("nan")) == "n/a"
    assert fmt.value("cagr", -1e-6) == "0.00%" and fmt.value("pnl", -0.2) == "0"  # no "-0"
    assert fmt.pct(-0.0004, 1) == "0.0%" and fmt.pct(-0.004, 1) == "-0.4%"
    assert fmt.value("break_even_bps", float("inf")) == "∞"
    t = fmt.text_table(make_result(n=80).equity.iloc[-2:].T.rename_axis("strategy"))
    assert t.splitlines()[0].startswith("strategy")
    df = pd.DataFrame({"sharpe": [0.5], "sharpe_rf0": [0.6], "cagr": [0.1]}, index=["a"])
    df.attrs["rf_label"] = "CASH"
    head = fmt.text_table(df).splitlines()[0]
    assert "sharpe (rf = CASH)" in head and "sharpe (rf = 0)" in head
    assert fmt.label("sharpe", "CASH") == "Sharpe (rf = CASH)"

"""The one-pass metrics kernel against the per-metric reference functions.

:func:`engine.analysis.metrics.summary` runs :func:`engine.analysis.metrics_nb.summary_nb`;
:func:`engine.analysis.metrics.summary_reference` computes the same keys metric by metric
with numpy / scipy (the definitions documented in ``engine.analysis.metrics``). Every value
must agree to 1e-12 relative (NaN where the reference gives NaN).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.analysis import metrics as M
from engine.analysis.metrics_nb import (
    fill_totals_nb,
    pairwise_sum_nb,
    select_smallest_nb,
    summary_nb,
)
from engine.ground.frequency import infer_frequency

REL = 1e-12


def assert_same(fast: dict[str, float], ref: dict[str, float]) -> None:
    assert list(fast) == list(ref)  # same keys, same order (tables and metrics.json)
    for k, b in ref.items():
        a = fast[k]
        if np.isnan(b):
            assert np.isnan(a), (k, a, b)
        elif np.isinf(b):
            assert a == b, (k, a, b)
        else:
            assert abs(a - b) <= REL * max(abs(a), abs(b)), (k, a, b)


def curve(returns: list[float], start: float = 100.0, daily: bool = True) -> pd.Series:
    e = start * np.cumprod(np.r_[1.0, 1.0 + np.asarray(returns, dtype=float)])
    idx = pd.bdate_range("2001-01-01", periods=e.size) if daily else pd.RangeIndex(e.size)
    return pd.Series(e, index=idx)


# ---------------------------------------------------------------- pairwise summation


@settings(deadline=None, max_examples=200)
@given(
    st.lists(
        st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
        | st.sampled_from([0.0, 1e-300, -1e-16, 1.0]),
        min_size=0,
        max_size=700,
    ),
    st.integers(0, 3),
)
def test_pairwise_sum_is_numpy_sum_bit_for_bit(values, repeat):
    a = np.asarray(values * (1 + 4 * repeat), dtype=np.float64)
    assert pairwise_sum_nb(a, 0, a.size) == np.sum(a)


@pytest.mark.parametrize("n", [127, 128, 129, 1000, 8191, 8192, 8193, 100_003])
def test_pairwise_sum_long_arrays(n):
    rng = np.random.default_rng(n)
    a = rng.standard_normal(n) * 10.0 ** rng.integers(-8, 8, n)
    assert pairwise_sum_nb(a, 0, n) == np.sum(a)
    assert pairwise_sum_nb(a, 5, n - 9) == np.sum(a[5 : n - 4])


@settings(deadline=None, max_examples=200)
@given(
    st.lists(st.integers(-5, 5).map(float) | st.floats(-1.0, 1.0), min_size=1, max_size=400),
    st.data(),
)
def test_select_smallest_leaves_the_k_smallest_in_front(values, data):
    a = np.asarray(values)
    k = data.draw(st.integers(0, a.size - 1))
    b = a.copy()
    select_smallest_nb(b, b.size, k)
    assert np.array_equal(np.sort(b), np.sort(a))  # a permutation
    assert np.array_equal(np.sort(b[: k + 1]), np.sort(a)[: k + 1])


# ---------------------------------------------------------------- kernel vs reference

returns_lists = st.lists(
    st.floats(-0.6, 0.6, allow_nan=False, allow_infinity=False)
    | st.just(0.0)
    | st.sampled_from([0.01, -0.01, 1e-12]),
    min_size=0,
    max_size=300,
)


@settings(deadline=None, max_examples=300)
@given(returns_lists, st.floats(1e-3, 1e7), st.booleans())
def test_kernel_equals_reference_on_random_curves(returns, start, daily):
    eq = curve(returns, start, daily)
    assert_same(M.summary(eq), M.summary_reference(eq))


@settings(deadline=None, max_examples=150)
@given(
    returns_lists,
    st.floats(-1e-3, 1e-3, allow_nan=False),
    st.integers(0, 2**32 - 1),
    st.sampled_from(["aligned", "gaps", "longer"]),
)
def test_kernel_equals_reference_with_risk_free(returns, rf, seed, how):
    eq = curve(returns)
    assert_same(M.summary(eq, rf=rf), M.summary_reference(eq, rf=rf))
    rng = np.random.default_rng(seed)
    idx = eq.index[1:]
    if how == "gaps":  # missing rates count as 0
        idx = idx[rng.random(idx.size) < 0.7]
    elif how == "longer":
        idx = pd.bdate_range("2000-06-01", periods=eq.size + 300)
    rates = pd.Series(rng.normal(1e-4, 5e-5, idx.size), index=idx)
    if rates.size:
        rates.iloc[rng.integers(0, rates.size)] = np.nan
    assert_same(M.summary(eq, rf=rates), M.summary_reference(eq, rf=rates))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize("kind", ["flat", "up", "down", "zigzag"])
def test_short_and_flat_curves(n, kind):
    shapes = {
        "flat": [0.0] * n,
        "up": [0.01] * n,
        "down": [-0.02] * n,
        "zigzag": [0.1, -0.1] * n,
    }
    eq = curve(shapes[kind][: max(n - 1, 0)]) if n else pd.Series([], dtype=float)
    assert_same(M.summary(eq), M.summary_reference(eq))
    rates = pd.Series(2e-4, index=eq.index[1:])
    assert_same(M.summary(eq, rf=rates), M.summary_reference(eq, rf=rates))


def test_nan_zero_and_negative_equity_edges():
    """NaN bars are dropped, zero equity gives non-finite returns that are skipped, as in
    the reference (arrays and Series, with and without a rate Series)."""
    for values in (
        [100.0, np.nan, 101.0, 0.0, 0.0, 5.0, 6.0, 7.0, 1.0],
        [1.0, -1.0, 2.0, -3.0, 4.0, 5.0],
        [np.nan, np.nan, 3.0],
        [np.nan],
    ):
        arr = np.asarray(values)
        assert_same(M.summary(arr), M.summary_reference(arr))
        rates = pd.Series(np.full(arr.size, 1e-3))
        assert_same(M.summary(arr, rf=rates), M.summary_reference(arr, rf=rates))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n", [260, 5_000, 20_000])
def test_long_fat_tailed_curves_with_fills(seed, n):
    rng = np.random.default_rng(seed)
    r = 0.0003 + 0.01 * rng.standard_t(3, n - 1)
    eq = curve(list(r), 1e6)
    k = 50 + seed
    fills = pd.DataFrame(
        {
            "qty": rng.normal(0, 100, k),
            "price": rng.uniform(10, 500, k),
            "commission": rng.uniform(0, 5, k),
            "spread": rng.uniform(0, 1, k),
            "slippage": rng.uniform(0, 1, k),
            "impact": rng.uniform(0, 1, k),
        }
    )
    rates = pd.Series(rng.normal(1e-4, 1e-5, n - 1), index=eq.index[1:])
    for rf in (0.0, 1e-4, rates):
        assert_same(M.summary(eq, fills, rf=rf), M.summary_reference(eq, fills, rf=rf))
    assert_same(M.summary(eq, fills, 12.0), M.summary_reference(eq, fills, 12.0))


def test_symmetric_returns_keep_skew_exact():
    """Skew of a symmetric sample is a sum of cancelling cubes: only the same summation
    order as numpy gives the reference value to 1e-12 (a naive loop does not)."""
    rng = np.random.default_rng(7)
    half = 0.01 * rng.standard_normal(1500)
    r = np.concatenate([half, -half])
    rng.shuffle(r)
    eq = curve(list(r))
    fast, ref = M.summary(eq), M.summary_reference(eq)
    assert abs(ref["skew"]) < 1e-10
    assert_same(fast, ref)


def test_real_backtest_metrics_equal_reference():
    """Bundled data (6 assets, 5,750 days, rf = the CASH asset): the API's metrics equal the
    reference computed from the result tables, and summary_table agrees."""
    from engine.api import run_backtest

    res = run_backtest(
        {
            "detector": {"kind": "none"},
            "strategies": [
                {"kind": "static", "name": "ew", "weights": "equal", "rebalance": "M"},
                {"kind": "static", "name": "q", "weights": "equal", "rebalance": "Q"},
            ],
        },
        progress=False,
    )
    rf, label = M.risk_free_returns(res.panel, "auto")
    assert label == "CASH" and isinstance(rf, pd.Series)
    table = M.summary_table(res)
    for name in ("ew", "q"):
        fills = M.strategy_fills(res.fills, name)
        assert fills is not None and len(fills) > 0
        ref = M.summary_reference(res.equity[name], fills, None, rf)
        assert_same(res.metrics[name], ref)
        assert_same({k: float(v) for k, v in table.loc[name].items()}, ref)
        assert res.metrics[name]["n_trades"] == len(res.runs[name].raw_fills)


# ---------------------------------------------------------------- frequency cache


def test_infer_frequency_is_cached_per_index_object_and_never_stale():
    daily = pd.bdate_range("2020-01-01", periods=300)
    first = infer_frequency(daily)
    assert infer_frequency(daily) is first  # cached
    assert infer_frequency(daily, 12.0).periods_per_year == 12.0
    assert infer_frequency(daily).periods_per_year == 252.0  # the override is not cached
    # many short-lived indexes of alternating frequency: ids get reused, answers must not
    for i in range(100):
        if i % 2:
            idx = pd.date_range("2020-01-01", periods=50 + i, freq="W")
            want = ("weekly", 52.0)
        else:
            idx = pd.date_range("2020-01-01", periods=50 + i, freq="D")
            want = ("daily", 365.0)
        f = infer_frequency(idx)
        assert (f.name, f.periods_per_year) == want
        del idx  # freed at once (refcount): the next index may get the same id


def test_weekday_rule_matches_pandas_day_of_week():
    """The weekend share is computed from raw nanoseconds: same answer as pandas' calendar
    on dates before and after 1970 and on tz-aware bars."""
    from engine.ground.frequency import _daily_calendar_days

    for idx in (
        pd.date_range("1950-01-01", periods=4000, freq="D"),
        pd.bdate_range("1960-01-01", periods=4000),
        pd.date_range("2020-03-01", periods=3000, freq="h", tz="US/Eastern"),
    ):
        local = idx.tz_localize(None) if idx.tz is not None else idx
        ns = local.as_unit("ns").asi8
        weekend = float(np.mean(local.day_of_week >= 5))
        assert _daily_calendar_days(ns) == (365 if weekend > 0.1 else 252)
        dow = (ns // 86_400_000_000_000 + 3) % 7
        assert np.array_equal(dow, np.asarray(local.day_of_week))


def test_reference_raises_nothing_the_kernel_hides():
    """Overflowing CAGR (a huge gain over two daily bars) is inf in both."""
    eq = pd.Series([1.0, 1e300], index=pd.bdate_range("2020-01-01", periods=2))
    with np.errstate(over="ignore"):
        ref = M.summary_reference(eq)
    assert np.isinf(ref["cagr"])
    assert_same(M.summary(eq), ref)


@settings(deadline=None, max_examples=200)
@given(
    st.lists(
        st.integers(-(10**15), 10**15) | st.sampled_from([86_400 * 10**9, 3 * 86_400 * 10**9]),
        min_size=1,
        max_size=200,
    )
)
def test_gap_median_equals_numpy_median(values):
    from engine.ground.frequency import _median

    x = np.asarray(values, dtype=np.int64)
    assert _median(x) == float(np.median(x))


def test_one_compiled_signature_whatever_the_inputs():
    """Writable arrays, pandas' read-only ones, NaN-dropped copies, rate Series: the
    kernels see one array flavour, so numba compiles (and caches) one signature each."""
    s = curve([0.01, -0.02, 0.03, 0.0, 0.01])
    arr = s.to_numpy(copy=True)
    arr[2] = np.nan
    M.summary(s)
    M.summary(arr)
    M.summary(s, rf=pd.Series(1e-4, index=s.index))
    M.summary(s.to_numpy(copy=True), rf=1e-4)
    M.raw_fill_totals(np.ones((3, 8)))
    rec = np.ones((4, 8))
    rec.flags.writeable = False
    M.raw_fill_totals(rec)
    assert len(summary_nb.signatures) == 1
    assert len(fill_totals_nb.signatures) == 1


def test_stored_normal_constants_are_scipys_bit_for_bit():
    """The tabled ``norm.ppf`` / ``norm.pdf`` values (no scipy.stats import in a backtest)
    are scipy's own, bit for bit; other levels go to scipy."""
    from scipy import stats

    from engine.analysis.metric_params import NORMAL_CONSTANTS, normal_constants

    for level, (z, phi) in NORMAL_CONSTANTS.items():
        zs = float(stats.norm.ppf(1.0 - level))
        assert z == zs and phi == float(stats.norm.pdf(zs)), level
    z, phi = normal_constants(0.8)
    assert z == float(stats.norm.ppf(1.0 - 0.8)) and phi == float(stats.norm.pdf(z))

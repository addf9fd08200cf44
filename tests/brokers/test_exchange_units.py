"""Unit properties: synthetic minute bars aggregate to the daily bar; settings; decimals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from brokers.local_exchange.bars import C_, H_, L_, O_, V_, MinuteBars
from brokers.local_exchange.calendar import Calendar
from brokers.local_exchange.matching import decimals
from brokers.local_exchange.settings import ExchangeSettings
from engine.ground.bars import BarPanel

price = st.floats(1.0, 1000.0)


@settings(max_examples=80, deadline=None)
@given(price, price, price, price, st.floats(0, 1e7), st.integers(1, 12))
def test_minute_bars_aggregate_to_the_daily_bar(
    o: float, h: float, lo: float, c: float, v: float, m: int
) -> None:
    idx = pd.DatetimeIndex(["2024-03-04"])
    panel = BarPanel(
        index=idx,
        symbols=("X",),
        open=np.array([[o]]),
        high=np.array([[h]]),
        low=np.array([[lo]]),
        close=np.array([[c]]),
        volume=np.array([[v]]),
    )
    mb = MinuteBars(panel, Calendar.from_index(idx), m)
    s = mb.session(0)[:, :, 0]
    day = mb.daily_row(0)[:, 0]
    assert s[0, O_] == o and s[-1, C_] == c
    assert s[:, H_].max() == day[H_] == max(h, o, c)
    assert s[:, L_].min() == day[L_] == min(lo, o, c)
    assert s[:, V_].sum() == pytest.approx(v)
    assert (s[:, H_] >= np.maximum(s[:, O_], s[:, C_])).all()
    assert (s[:, L_] <= np.minimum(s[:, O_], s[:, C_])).all()
    assert (s[1:, O_] == s[:-1, C_]).all()  # one continuous path
    for k in range(1, m + 1):  # the running daily bar is the aggregate so far
        run = mb.running(0, k)[:, 0]
        assert run[C_] == s[k - 1, C_] and run[H_] == s[:k, H_].max()
    starts = Calendar.from_index(idx).minute_starts(0, m)
    ny = pd.DatetimeIndex(starts).tz_localize("UTC").tz_convert("America/New_York")
    assert ny[-1].strftime("%H:%M") == "15:59" and (m == 1 or ny[0].strftime("%H:%M") == "09:30")


def test_settings_legacy_interval_and_unknown_keys() -> None:
    assert ExchangeSettings(interval_s=0).mode == "stepped"
    s = ExchangeSettings(interval_s=0.25)
    assert (s.mode, s.seconds_per_session) == ("realtime", 0.25)
    with pytest.raises(ValueError, match="extra"):
        ExchangeSettings(hang=True)  # a fault belongs under faults
    assert ExchangeSettings(faults={"hang": True}).faults.hang


def test_decimals_as_sent_in_json() -> None:
    assert decimals(10.0) == 0
    assert decimals(0.123456789) == 9
    assert decimals(0.1234567891) == 10
    assert decimals(1e-10) == 10
    assert decimals(224.60534913643897) > 9


def test_missing_prices_give_no_bars() -> None:
    idx = pd.DatetimeIndex(["2024-03-04", "2024-03-05"])
    nan = np.nan
    panel = BarPanel(
        index=idx,
        symbols=("X", "Y"),
        open=np.array([[1.0, nan], [1.0, 2.0]]),
        high=np.array([[1.0, nan], [1.0, 2.0]]),
        low=np.array([[1.0, nan], [1.0, 2.0]]),
        close=np.array([[1.0, nan], [1.0, 2.0]]),
        volume=np.array([[1.0, 0.0], [1.0, 1.0]]),
    )
    mb = MinuteBars(panel, Calendar.from_index(idx), 2)
    lo, hi = 0, 2**62
    assert (
        len(mb.rows("Y", "day", 1, 2, lo, hi)) == 1 and len(mb.rows("X", "day", 1, 2, lo, hi)) == 2
    )
    assert len(mb.rows("Y", "min", 1, 2, lo, hi)) == 2
    assert [m["S"] for m in mb.stream_messages("b", 0, 0, {"*"})] == ["X"]

"""Every kind of bad input raises DataError with one line naming file, symbol, field, row."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_feeds import from_dataframe, load_csv, load_parquet
from engine.ground.bars import DataError
from tests.data_feeds.conftest import load_error, make_bars


def _write(tmp_path: Path, df: pd.DataFrame, name: str = "spx.csv") -> Path:
    p = tmp_path / name
    df.to_csv(p, index=False, date_format="%Y-%m-%d")
    return p


def test_nan_close_names_file_symbol_row_and_date(tmp_path: Path) -> None:
    df = make_bars(30)
    df.loc[16, "close"] = np.nan  # row 17 (1-based data row)
    p = _write(tmp_path, df)
    ts = df.loc[16, "timestamp"].strftime("%Y-%m-%d")
    assert load_error(p) == f"{p}: symbol spx, data row 17 (line 18, {ts}): close is NaN"


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("close", np.inf, "close is inf"),
        ("open", -np.inf, "open is -inf"),
        ("close", 0.0, "close is not positive (0.0)"),
        ("low", -1.0, "low is not positive (-1.0)"),
        ("volume", -5.0, "volume is negative (-5.0)"),
        ("volume", np.nan, "volume is NaN"),
        ("high", "abc", "high is not a number ('abc')"),
    ],
)
def test_bad_values(tmp_path: Path, field: str, value: object, expected: str) -> None:
    df = make_bars(10).astype({field: object})
    df.loc[4, field] = value
    p = _write(tmp_path, df)
    msg = load_error(p)
    assert msg.startswith(f"{p}: symbol spx, data row 5 (line 6, ")
    assert msg.endswith(expected)


def test_high_below_low(tmp_path: Path) -> None:
    df = make_bars(10)
    df.loc[6, "high"] = df.loc[6, "low"] * 0.9
    msg = load_error(_write(tmp_path, df))
    assert "symbol spx, data row 7 (line 8, " in msg and "high < low" in msg


@pytest.mark.parametrize("field", ["open", "close"])
def test_open_close_outside_range(tmp_path: Path, field: str) -> None:
    df = make_bars(10)
    df.loc[2, field] = df.loc[2, "high"] * 1.01
    msg = load_error(_write(tmp_path, df))
    assert "data row 3 (line 4, " in msg and f"{field} " in msg and "outside [low, high]" in msg


def test_unsorted_and_duplicate_timestamps(tmp_path: Path) -> None:
    df = make_bars(10)
    swapped = df.copy()
    swapped.loc[[3, 4], "timestamp"] = swapped.loc[[4, 3], "timestamp"].to_numpy()
    msg = load_error(_write(tmp_path, swapped))
    assert (
        "symbol spx, data row 5 (line 6, " in msg
        and "timestamps not sorted" in msg
        and "row 4" in msg
    )
    dup = df.copy()
    dup.loc[8, "timestamp"] = dup.loc[7, "timestamp"]
    msg = load_error(_write(tmp_path, dup, "dup.csv"))
    assert (
        "symbol dup, data row 9 (line 10, " in msg and "duplicate timestamp (same as row 8)" in msg
    )


def test_bad_and_missing_timestamp(tmp_path: Path) -> None:
    df = make_bars(5).astype({"timestamp": object})
    df.loc[2, "timestamp"] = "not-a-date"
    msg = load_error(_write(tmp_path, df))
    assert "row 3" in msg and "'not-a-date' is not a date" in msg
    msg = load_error(_write(tmp_path, make_bars(5).drop(columns="timestamp"), "x.csv"))
    assert "x.csv: missing column 'timestamp'" in msg


def test_missing_columns(tmp_path: Path) -> None:
    p = _write(tmp_path, make_bars(5).drop(columns="high"))
    assert load_error(p) == (
        f"{p}: symbol spx: missing column 'high' "
        "(set data.ohlc_from_close = true, or pass ohlc_from_close=True, to derive "
        "open/high/low from close)"
    )
    p = _write(tmp_path, make_bars(5).drop(columns="close"), "b.csv")
    assert load_error(p) == f"{p}: symbol b: missing column 'close'"
    p = _write(tmp_path, make_bars(5)[["timestamp", "volume"]], "c.csv")
    assert load_error(p) == f"{p}: symbol c: missing column 'close'"


def test_ohlc_from_close_and_volume_default(tmp_path: Path) -> None:
    df = make_bars(6)[["timestamp", "close"]].rename(
        columns={"timestamp": "Date", "close": "Close"}
    )
    p = _write(tmp_path, df)
    panel = load_csv(p, ohlc_from_close=True)
    np.testing.assert_array_equal(panel.open, panel.close)
    np.testing.assert_array_equal(panel.high, panel.close)
    assert (panel.volume == 0.0).all()


def test_unknown_symbol_and_empty_range(tmp_path: Path) -> None:
    p = _write(tmp_path, make_bars(5))
    msg = load_error(p, symbols=["SPY"])
    assert "unknown symbol 'SPY'" in msg and "available: spx" in msg
    msg = load_error(p, start="2020-01-01")
    assert msg.startswith(f"{p}: symbol spx: empty date range")


def test_long_file_row_numbers_refer_to_the_whole_file(tmp_path: Path) -> None:
    a = make_bars(5).assign(symbol="AAA")
    b = make_bars(5, seed=1).assign(symbol="BBB")
    long = pd.concat([a, b], ignore_index=True)
    long.loc[7, "low"] = np.nan  # row 8 overall, 3rd row of BBB
    p = _write(tmp_path, long, "long.csv")
    assert load_error(p).startswith(f"{p}: symbol BBB, data row 8 (line 9, ")


def test_wide_file_names_symbol(tmp_path: Path) -> None:
    a = make_bars(5)
    wide = pd.DataFrame({"date": a["timestamp"]})
    for f in ("open", "high", "low", "close"):
        wide[f"SPX_{f}"] = a[f]
    wide.loc[1, "SPX_close"] = -3.0
    p = _write(tmp_path, wide, "wide.csv")
    assert "symbol SPX, data row 2 (line 3, " in load_error(p)


def test_dataframe_and_parquet_sources(tmp_path: Path) -> None:
    df = make_bars(5)
    df.loc[3, "open"] = np.nan
    with pytest.raises(DataError, match=r"^<DataFrame>: symbol X, row 4 \(.*\): open is NaN$"):
        from_dataframe(df, symbol="X")
    with pytest.raises(DataError, match="cannot tell the symbol"):
        from_dataframe(df)
    p = tmp_path / "qqq.parquet"
    df.to_parquet(p)
    with pytest.raises(DataError, match=rf"^{p}: symbol qqq, row 4 \(.*\): open is NaN$"):
        load_parquet(p)


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="file not found"):
        load_csv(tmp_path / "nope.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match=r"empty\.csv: cannot read csv"):
        load_csv(empty)
    header_only = tmp_path / "h.csv"
    header_only.write_text("timestamp,open,high,low,close\n")
    with pytest.raises(DataError, match=r"h\.csv: no data rows"):
        load_csv(header_only)


def test_same_symbol_twice(tmp_path: Path) -> None:
    p1 = _write(tmp_path, make_bars(5), "a.csv")
    d = tmp_path / "other"
    d.mkdir()
    p2 = _write(d, make_bars(5), "a.csv")
    with pytest.raises(DataError, match="symbol a appears more than once"):
        load_csv([p1, p2])


def test_other_separators_get_a_hint(tmp_path: Path) -> None:
    p = tmp_path / "semi.csv"
    p.write_text("timestamp;open;high;low;close\n2020-01-02;1;1;1;1\n")
    with pytest.raises(DataError, match=r"separate columns with ';'; use commas"):
        load_csv(p)

"""Files as users have them (QA with the arch S&P 500 data written out Yahoo-style): the
same bars whatever the date order, and bad cells named as written, not as a NaN open."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_feeds import load_csv
from engine.features.exog import read_series
from engine.ground.bars import DataError
from tests.data_feeds.conftest import load_error, make_bars


def _yahoo(n: int = 40, start: str = "2019-01-01") -> pd.DataFrame:
    """``Date,Open,High,Low,Close,Adj Close,Volume`` with the close adjusted by 0.9."""
    df = make_bars(n, start=start).rename(columns=str.capitalize)
    df = df.rename(columns={"Timestamp": "Date"})
    df.insert(5, "Adj Close", df["Close"] * 0.9)
    return df


@pytest.mark.parametrize("fmt", ["%d/%m/%Y", "%m/%d/%Y", "%d.%m.%Y"])
def test_day_first_and_month_first_files_give_the_iso_bars(tmp_path: Path, fmt: str) -> None:
    """``04/01/2019`` was read month-first and ``13/01/2019`` day-first, element by element:
    a day-first daily file failed with "timestamps not sorted" (previous row 2019-12-01)."""
    df = _yahoo()
    iso, other = tmp_path / "iso" / "SPX.csv", tmp_path / "o" / "SPX.csv"
    iso.parent.mkdir(), other.parent.mkdir()
    df.to_csv(iso, index=False, date_format="%Y-%m-%d")
    df.to_csv(other, index=False, date_format=fmt)
    a, b = load_csv(iso), load_csv(other)
    assert a.index.equals(b.index)
    np.testing.assert_array_equal(a.close, b.close)


def test_monthly_day_first_file_on_the_1st_is_refused_not_misread(tmp_path: Path) -> None:
    """Monthly bars dated on the 1st, day-first (01/02/2019 = 1 February): no field is above
    12, and the file was read silently as 1..12 January of each year (a sorted calendar)."""
    df = _yahoo(24)
    df["Date"] = pd.date_range("2019-01-01", periods=24, freq="MS")
    p = tmp_path / "SPX.csv"
    df.to_csv(p, index=False, date_format="%d/%m/%Y")
    msg = load_error(p)
    assert msg.startswith(f"{p}: symbol SPX, data row 1 (line 2): timestamp '01/01/2019'")
    assert "could be day-first or month-first" in msg and "YYYY-MM-DD" in msg


def test_a_column_mixing_day_first_and_month_first_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "SPX.csv"
    p.write_text("Date,Close\n13/01/2019,1\n14/01/2019,2\n01/15/2019,3\n", encoding="utf-8")
    msg = load_error(p, ohlc_from_close=True)
    assert "data row 3 (line 4)" in msg
    assert "'01/15/2019' is month-first but an earlier one, '13/01/2019', is day-first" in msg


def test_exogenous_file_dates_follow_the_same_rule(tmp_path: Path) -> None:
    p = tmp_path / "cpi.csv"
    p.write_text("date,CPI\n01/01/2019,1.0\n01/02/2019,1.1\n01/03/2019,1.2\n")
    with pytest.raises(
        DataError,
        match=r"cpi\.csv: row 2, field date: timestamp '01/01/2019' "
        "could be day-first or month-first",
    ):
        read_series(p)
    p.write_text("date,CPI\n31/01/2019,1.0\n28/02/2019,1.1\n")
    assert list(read_series(p).index) == [pd.Timestamp("2019-01-31"), pd.Timestamp("2019-02-28")]


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        # Close and Adj Close both 0: the adjustment factor 0/0 made the open NaN
        ({"Close": 0.0, "Adj Close": 0.0}, "close is not positive (0.0)"),
        ({"Close": np.nan, "Adj Close": np.nan}, "close is NaN"),
        ({"Close": np.nan}, "close is NaN"),  # the factor needs the close
        ({"Adj Close": -3.0}, "close is not positive (-3.0)"),
        ({"Open": "1,229.23"}, "open is not a number ('1,229.23')"),  # thousands separator
    ],
)
def test_adjusted_files_name_the_bad_cell(tmp_path: Path, cells: dict, expected: str) -> None:
    df = _yahoo().astype({"Open": object})
    for col, val in cells.items():
        df.loc[9, col] = val
    p = tmp_path / "SPX.csv"
    df.to_csv(p, index=False, date_format="%Y-%m-%d")
    assert load_error(p) == f"{p}: symbol SPX, data row 10 (line 11, 2019-01-14): {expected}"


def test_semicolons_with_decimal_commas_get_the_separator_hint(tmp_path: Path) -> None:
    """``Date;Open;...`` with ``1229,23``: the decimal commas split the rows into more fields
    than the header, pyarrow failed first and the separator hint was never given."""
    p = tmp_path / "SPX.csv"
    _yahoo().to_csv(p, index=False, sep=";", decimal=",", date_format="%Y-%m-%d")
    msg = load_error(p)
    assert msg.startswith(f"{p}: cannot read csv: ")
    assert msg.endswith(
        "(the file seems to separate columns with ';'; use commas and '.' for decimals)"
    )


def test_a_spreadsheets_trailing_empty_columns_are_ignored(tmp_path: Path) -> None:
    """Excel's ``,,`` after every row: two unnamed columns were "duplicate column names"
    (one was ignored like any other column)."""
    df = _yahoo()
    plain, excel = tmp_path / "a" / "SPX.csv", tmp_path / "b" / "SPX.csv"
    plain.parent.mkdir(), excel.parent.mkdir()
    df.to_csv(plain, index=False, date_format="%Y-%m-%d")
    excel.write_text("".join(line + ",,\n" for line in plain.read_text().splitlines()))
    a, b = load_csv(plain), load_csv(excel)
    assert a.symbols == b.symbols and a.index.equals(b.index)
    np.testing.assert_array_equal(a.close, b.close)
    wide = tmp_path / "wide.csv"
    wide.write_text("date,AAA,BBB,,\n2020-01-02,1,2,,\n2020-01-03,1.1,2.1,,\n")
    assert load_csv(wide, ohlc_from_close=True).symbols == ("AAA", "BBB")


def test_a_nameless_first_column_is_named_in_the_error(tmp_path: Path) -> None:
    """``df.to_csv(path)`` of a nameless DatetimeIndex writes ``,Open,High,...``."""
    p = tmp_path / "SPX.csv"
    _yahoo().set_index("Date").rename_axis(None).to_csv(p, date_format="%Y-%m-%d")
    assert load_error(p).endswith("(the first column has no name: call it 'date')")


def test_an_adjusted_close_only_file_is_the_files_symbol(tmp_path: Path) -> None:
    """``Date,Adj Close`` was read as a wide file of one symbol named "Adj Close"."""
    p = tmp_path / "SPX.csv"
    _yahoo()[["Date", "Adj Close"]].to_csv(p, index=False, date_format="%Y-%m-%d")
    panel = load_csv(p, ohlc_from_close=True)
    assert panel.symbols == ("SPX",)
    np.testing.assert_array_equal(panel.close[:, 0], _yahoo()["Adj Close"].to_numpy())


def _yfinance_csv(path: Path, frames: dict[str, pd.DataFrame], fields: list[str]) -> None:
    """A CSV as ``yfinance.download(...).to_csv(path)`` writes it: three header lines."""
    cols = pd.MultiIndex.from_tuples(
        [(f, t) for f in fields for t in frames], names=["Price", "Ticker"]
    )
    first = next(iter(frames.values()))
    vals = np.column_stack([frames[t][f].to_numpy() for f in fields for t in frames])
    pd.DataFrame(vals, index=pd.DatetimeIndex(first["Date"], name="Date"), columns=cols).to_csv(
        path, date_format="%Y-%m-%d"
    )


def test_yfinance_csvs_are_read_by_ticker(tmp_path: Path) -> None:
    """``Price,Close,...`` / ``Ticker,SPY,...`` / ``Date,,,`` was "missing column
    'timestamp'": the layout is the (field, ticker) MultiIndex case, Adj Close included."""
    spy, qqq = _yahoo(), _yahoo().assign(Close=lambda d: d.Close * 2)
    qqq["High"], qqq["Low"], qqq["Open"] = qqq.Close * 1.01, qqq.Close * 0.99, qqq.Close
    one = tmp_path / "one.csv"
    _yfinance_csv(one, {"SPY": spy}, ["Adj Close", "Close", "High", "Low", "Open", "Volume"])
    yahoo = tmp_path / "SPY.csv"
    spy.to_csv(yahoo, index=False, date_format="%Y-%m-%d")
    a, b = load_csv(one), load_csv(yahoo)
    assert a.symbols == ("SPY",) and a.index.equals(b.index)
    np.testing.assert_allclose(a.close, b.close, rtol=1e-12)
    np.testing.assert_allclose(a.open, b.open, rtol=1e-12)  # scaled by Adj Close / Close
    two = tmp_path / "two.csv"  # yfinance's default now: auto-adjusted, no Adj Close
    _yfinance_csv(two, {"SPY": spy, "QQQ": qqq}, ["Close", "High", "Low", "Open", "Volume"])
    p = load_csv(two)
    assert p.symbols == ("SPY", "QQQ")
    np.testing.assert_allclose(p.close[:, 1], qqq.Close.to_numpy(), rtol=1e-12)


def test_wide_adjusted_close_columns_are_the_closes(tmp_path: Path) -> None:
    df = _yahoo()
    p = tmp_path / "w.csv"
    pd.DataFrame({"date": df.Date, "SPX_close": df.Close, "SPX_adj_close": df["Adj Close"]}).to_csv(
        p, index=False, date_format="%Y-%m-%d"
    )
    panel = load_csv(p, ohlc_from_close=True)
    assert panel.symbols == ("SPX",)
    np.testing.assert_allclose(panel.close[:, 0], df["Adj Close"].to_numpy())


def test_yfinance_csv_errors_name_the_files_line(tmp_path: Path) -> None:
    p = tmp_path / "spy.csv"
    _yfinance_csv(p, {"SPY": _yahoo()}, ["Close", "High", "Low", "Open", "Volume"])
    lines = p.read_text().splitlines()
    cells = lines[10].split(",")
    cells[1] = ""  # the Close of data row 8, on the file's line 11
    lines[10] = ",".join(cells)
    p.write_text("\n".join(lines) + "\n")
    assert "symbol SPY, data row 8 (line 11, " in load_error(p)
    # the same path saved again as a plain CSV: its lines are counted from one header line
    df = _yahoo()
    df.loc[7, "Close"] = np.nan
    df.to_csv(p, index=False)
    assert "data row 8 (line 9, " in load_error(p)


def test_a_utf16_file_is_named_as_such(tmp_path: Path) -> None:
    """Excel's "Unicode Text": the error quoted a NUL byte from pyarrow's parse error."""
    p = tmp_path / "SPX.csv"
    _yahoo().to_csv(p, index=False, encoding="utf-16", date_format="%Y-%m-%d")
    msg = load_error(p)
    assert (
        msg == f"{p}: cannot read csv: the file is UTF-16 text; save it as UTF-8 (Excel: CSV UTF-8)"
    )

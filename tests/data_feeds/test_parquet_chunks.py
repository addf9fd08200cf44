"""The chunked Parquet reader gives the whole-file loader's panel, piece by piece, and its
errors (same one-line messages, rows of the file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import data_feeds
from data_feeds.parquet_chunks import ParquetChunks, iter_parquet_chunks
from engine.ground.bars import FIELDS, BarPanel, DataError
from tests.conftest import random_panel

PANEL = random_panel(120, 5, seed=7)


def long_frame(panel: BarPanel) -> pd.DataFrame:
    """Time-major long rows (all symbols of a bar together)."""
    return panel.to_long().sort_values(["timestamp", "symbol"], kind="stable", ignore_index=True)


def wide_frame(panel: BarPanel) -> pd.DataFrame:
    cols = {"timestamp": panel.index}
    for j, s in enumerate(panel.symbols):
        for f in FIELDS:
            cols[f"{s}_{f}"] = getattr(panel, f)[:, j]
    return pd.DataFrame(cols)


def write(df: pd.DataFrame, path: Path, row_group: int = 97) -> Path:
    df.to_parquet(path, row_group_size=row_group, index=False)
    return path


def joined(chunks: list[BarPanel]) -> dict[str, np.ndarray]:
    out = {f: np.concatenate([getattr(c, f) for c in chunks]) for f in FIELDS}
    out["index"] = np.concatenate([c.index.asi8 for c in chunks])
    return out


def assert_same_panel(chunks: list[BarPanel], ref: BarPanel, chunk_bars: int) -> None:
    assert all(0 < c.n_bars <= chunk_bars for c in chunks)
    assert all(c.symbols == ref.symbols for c in chunks)
    got = joined(chunks)
    assert np.array_equal(got["index"], ref.index.asi8)
    for f in FIELDS:
        assert np.array_equal(got[f], getattr(ref, f)), f


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pq")
    return {
        "long": write(long_frame(PANEL), d / "long.parquet"),
        "wide": write(wide_frame(PANEL), d / "wide.parquet", row_group=13),
    }


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    chunk=st.sampled_from([1, 2, 7, 31, 119, 120, 121, 1000]),
    batch=st.integers(1, 700),
    layout=st.sampled_from(["long", "wide"]),
)
def test_chunks_join_to_the_whole_file_panel(files, chunk, batch, layout):
    """Any chunk size (1, a prime, > T) and any batch size (bars split across batches)."""
    ref = data_feeds.load_parquet(files[layout])
    chunks = list(ParquetChunks(files[layout], chunk, batch_rows=batch))
    assert len(chunks) == -(-ref.n_bars // chunk)
    assert_same_panel(chunks, ref, chunk)


def test_max_bars_bounds_the_bars_before_reading(files):
    it = ParquetChunks(files["long"], 50)
    first = next(iter(it))
    assert first.n_bars == 50 and it.max_bars == PANEL.n_bars
    assert ParquetChunks(files["wide"], 50).max_bars == PANEL.n_bars


def test_symbols_and_date_range(files):
    lo, hi = PANEL.index[17], PANEL.index[88]
    ref = data_feeds.load_parquet(files["long"], symbols=["A3", "A1"], start=lo, end=hi)
    chunks = list(iter_parquet_chunks(files["long"], 10, symbols=["A3", "A1"], start=lo, end=hi))
    assert chunks[0].symbols == ("A3", "A1")
    assert_same_panel(chunks, ref, 10)


def test_missing_bars_are_dropped_like_the_whole_file_intersection(tmp_path):
    df = long_frame(PANEL)
    gone = (df["symbol"] == "A2") & df["timestamp"].isin(PANEL.index[[5, 6, 40]])
    path = write(df[~gone], tmp_path / "holes.parquet")
    ref = data_feeds.load_parquet(path)
    assert ref.n_bars == PANEL.n_bars - 3
    assert_same_panel(list(ParquetChunks(path, 9, batch_rows=23)), ref, 9)


def test_bad_value_error_is_the_whole_file_loaders_line(tmp_path):
    df = long_frame(PANEL)
    df.loc[433, "close"] = np.nan
    path = write(df, tmp_path / "bad.parquet")
    with pytest.raises(DataError) as whole:
        data_feeds.load_parquet(path)
    with pytest.raises(DataError) as chunked:
        list(ParquetChunks(path, 8, batch_rows=50))
    assert str(chunked.value) == str(whole.value)
    assert "row 434" in str(chunked.value) and "close is NaN" in str(chunked.value)
    assert "\n" not in str(chunked.value)


def test_high_below_low_names_the_file_row(tmp_path):
    df = long_frame(PANEL)
    df.loc[301, "high"] = df.loc[301, "low"] * 0.5
    path = write(df, tmp_path / "hl.parquet")
    with pytest.raises(DataError) as whole:
        data_feeds.load_parquet(path)
    with pytest.raises(DataError) as chunked:
        list(ParquetChunks(path, 3, batch_rows=64))
    assert str(chunked.value) == str(whole.value)


def test_symbol_missing_from_a_chunk_is_refused(tmp_path):
    df = long_frame(PANEL)
    gone = (df["symbol"] == "A4") & (df["timestamp"] >= PANEL.index[60])
    path = write(df[~gone], tmp_path / "stops.parquet")
    with pytest.raises(DataError, match=r"symbol 'A4' has no rows.*same symbols in every chunk"):
        list(ParquetChunks(path, 20))


def test_symbol_major_file_is_refused_with_the_row(tmp_path):
    path = write(PANEL.to_long(), tmp_path / "by_symbol.parquet")  # A0's bars, then A1's...
    with pytest.raises(DataError, match=r"row 121 .*earlier than row 120.*time order"):
        list(ParquetChunks(path, 20))


def test_duplicate_bar_in_wide_file_is_refused(tmp_path):
    df = wide_frame(PANEL)
    df.loc[50, "timestamp"] = df.loc[49, "timestamp"]
    path = write(df, tmp_path / "dup.parquet")
    with pytest.raises(DataError, match="duplicate timestamp"):
        list(ParquetChunks(path, 7, batch_rows=30))


def test_refusals(tmp_path):
    with pytest.raises(DataError, match="fill='ffill' is not possible"):
        ParquetChunks(tmp_path / "x.parquet", 5, fill="ffill")
    with pytest.raises(DataError, match="file not found"):
        ParquetChunks(tmp_path / "x.parquet", 5)
    with pytest.raises(DataError, match="chunk_bars must be a positive integer"):
        ParquetChunks(tmp_path / "x.parquet", 0)
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read parquet"):
        ParquetChunks(tmp_path / "junk.parquet", 5)
    path = write(long_frame(PANEL), tmp_path / "ok.parquet")
    with pytest.raises(DataError, match="empty date range"):
        list(ParquetChunks(path, 5, start="2100-01-01"))


def test_aware_times_converted_like_the_whole_file(tmp_path):
    df = long_frame(PANEL)
    df["timestamp"] = (df["timestamp"] + pd.Timedelta(hours=21)).dt.tz_localize("UTC")
    path = write(df, tmp_path / "utc.parquet")
    ref = data_feeds.load_parquet(path, timezone="America/New_York")
    chunks = list(ParquetChunks(path, 11, timezone="America/New_York", batch_rows=37))
    assert ref.tz == "America/New_York" and all(c.tz == ref.tz for c in chunks)
    assert_same_panel(chunks, ref, 11)


def test_single_symbol_file_is_named_after_its_stem(tmp_path):
    one = PANEL.select(["A2"])
    df = one.to_long().drop(columns="symbol")
    path = write(df, tmp_path / "spx.parquet")
    ref = data_feeds.load_parquet(path)
    chunks = list(ParquetChunks(path, 25))
    assert chunks[0].symbols == ("spx",) == ref.symbols
    assert_same_panel(chunks, ref, 25)

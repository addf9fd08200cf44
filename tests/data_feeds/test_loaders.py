"""Round trips through CSV / Parquet / DataFrame in every layout, and calendar alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from structlog.testing import capture_logs

from data_feeds import from_dataframe, load_csv, load_parquet
from engine.ground.bars import FIELDS, BarPanel, DataError
from tests.data_feeds.conftest import make_bars


def _frames() -> dict[str, pd.DataFrame]:
    return {"AAA": make_bars(20, seed=1), "BBB": make_bars(20, seed=2, base=50.0)}


def _check(panel: BarPanel, frames: dict[str, pd.DataFrame]) -> None:
    assert panel.symbols == tuple(frames)
    assert panel.index.dtype == "datetime64[ns]"
    for j, (_sym, df) in enumerate(frames.items()):
        pd.testing.assert_index_equal(
            panel.index, pd.DatetimeIndex(df["timestamp"]).as_unit("ns"), check_names=False
        )
        for f in FIELDS:
            np.testing.assert_allclose(getattr(panel, f)[:, j], df[f].to_numpy(), rtol=1e-14)


def _long(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([df.assign(symbol=s) for s, df in frames.items()], ignore_index=True)


def _wide(frames: dict[str, pd.DataFrame]) -> pd.DataFrame:
    first = next(iter(frames.values()))
    out = pd.DataFrame({"Date": first["timestamp"]})
    for s, df in frames.items():
        for f in FIELDS:
            out[f"{s}_{f.upper()}"] = df[f]
    return out


def test_per_symbol_csv_files(tmp_path: Path) -> None:
    frames = _frames()
    paths = []
    for s, df in frames.items():
        paths.append(tmp_path / f"{s}.csv")
        df.to_csv(paths[-1], index=False)
    panel = load_csv(paths, asset_classes={"AAA": "equity"})
    _check(panel, frames)
    assert panel.asset_classes == ("equity", "unknown")
    # gzip works and symbols= picks and orders
    gz = tmp_path / "CCC.csv.gz"
    frames["AAA"].to_csv(gz, index=False)
    p2 = load_csv([*paths, gz], symbols=["CCC", "AAA"])
    assert p2.symbols == ("CCC", "AAA")
    np.testing.assert_array_equal(p2.close[:, 0], p2.close[:, 1])


def test_long_csv_with_uppercase_headers_and_date_column(tmp_path: Path) -> None:
    frames = _frames()
    long = _long(frames).rename(columns=str.upper).rename(columns={"TIMESTAMP": "Date"})
    p = tmp_path / "long.csv"
    long.to_csv(p, index=False)
    _check(load_csv(p), frames)


def test_wide_csv_and_multiindex_parquet(tmp_path: Path) -> None:
    frames = _frames()
    p = tmp_path / "wide.csv"
    _wide(frames).to_csv(p, index=False)
    _check(load_csv(p), frames)
    first = frames["AAA"]
    mi = pd.concat({s: df.set_index("timestamp")[list(FIELDS)] for s, df in frames.items()}, axis=1)
    assert isinstance(mi.columns, pd.MultiIndex)
    q = tmp_path / "wide.parquet"
    mi.to_parquet(q)
    _check(load_parquet(q), frames)
    _check(from_dataframe(mi), frames)  # DatetimeIndex + (symbol, field) columns
    swapped = mi.swaplevel(axis=1)
    _check(from_dataframe(swapped), frames)  # (field, symbol)
    assert len(first) == 20


def test_long_parquet_and_dataframe_roundtrip_via_to_long(tmp_path: Path) -> None:
    frames = _frames()
    panel = from_dataframe(_long(frames))
    _check(panel, frames)
    p = tmp_path / "long.parquet"
    panel.to_long().to_parquet(p)
    again = load_parquet(p)
    _check(again, frames)
    single = from_dataframe(frames["AAA"].set_index("timestamp"), symbol="AAA")
    _check(single, {"AAA": frames["AAA"]})


def test_timezone_aware_timestamps_become_naive_utc() -> None:
    df = make_bars(5)
    df["timestamp"] = df["timestamp"].dt.tz_localize("America/New_York")
    panel = from_dataframe(df, symbol="X")
    assert panel.index.tz is None
    assert panel.index[0] == pd.Timestamp("2008-09-22 04:00")
    assert panel.tz == "UTC"  # kept and shown: the index is UTC wall time


def test_offsets_in_a_csv_are_kept_in_the_exchange_zone(tmp_path: Path) -> None:
    """'09:30-05:00' stays 09:30 with data.timezone (and sessions are that zone's days)."""
    df = make_bars(3)
    times = ["2024-03-08T09:30:00-05:00", "2024-03-11T09:30:00-04:00", "2024-03-12T09:30:00-04:00"]
    df["timestamp"] = times  # across the DST change
    p = tmp_path / "x.csv"
    df.to_csv(p, index=False)
    ny = load_csv(p, timezone="America/New_York")
    assert ny.tz == "America/New_York"
    assert list(ny.index.strftime("%H:%M")) == ["09:30"] * 3
    utc = load_csv(p)
    assert utc.tz == "UTC" and list(utc.index.strftime("%H:%M")) == ["14:30", "13:30", "13:30"]


def test_mixing_aware_and_naive_timestamps_is_one_line(tmp_path: Path) -> None:
    df = make_bars(4)
    df["timestamp"] = ["2024-01-02", "2024-01-03T00:00:00+00:00", "2024-01-04", "2024-01-05"]
    p = tmp_path / "mixed.csv"
    df.to_csv(p, index=False)
    with pytest.raises(DataError, match=r"data row 2 \(line 3\).*has a UTC offset.*mixing"):
        load_csv(p)
    a, b = make_bars(4), make_bars(4)
    a["timestamp"] = a["timestamp"].dt.tz_localize("UTC").astype(str)
    pa_, pb = tmp_path / "aware.csv", tmp_path / "naive.csv"
    a.to_csv(pa_, index=False)
    b.to_csv(pb, index=False)
    with pytest.raises(DataError, match=r"aware\.csv.*time-zone-aware.*naive\.csv.*naive ones"):
        load_csv([pa_, pb])


def test_date_only_mixed_with_timed_bars_explains_itself(tmp_path: Path) -> None:
    a, b = make_bars(5, seed=1), make_bars(5, seed=2)
    b["timestamp"] = b["timestamp"] + pd.Timedelta(hours=21)
    with pytest.raises(DataError, match=r"share dates but no timestamp.*times of day"):
        from_dataframe(_long({"A": a, "B": b}))


def test_exchange_calendar_reports_missing_sessions() -> None:
    """XNYS: a symbol missing two sessions is reported (count and dates), not silent."""
    a = make_bars(21, start="2024-03-01", seed=1)  # business days to 2024-03-29
    b = make_bars(21, start="2024-03-01", seed=2).drop(index=[4, 9]).reset_index(drop=True)
    a = a[a["timestamp"] != "2024-03-29"]  # Good Friday: not a session (B keeps it)
    with capture_logs() as logs:
        panel = from_dataframe(_long({"A": a, "B": b}), calendar="XNYS")
    miss = [e for e in logs if e["event"] == "calendar_missing_sessions"]
    assert [e["symbol"] for e in miss] == ["B"] and miss[0]["missing"] == 2
    assert miss[0]["first"] == "2024-03-07, 2024-03-14"
    extra = [e for e in logs if e["event"] == "calendar_extra_days"]
    assert [e["symbol"] for e in extra] == ["B"] and extra[0]["first"] == "2024-03-29"
    assert panel.tz == "America/New_York"
    with pytest.raises(DataError, match="unknown exchange calendar 'NYSEE'"):
        from_dataframe(_long({"A": a}), calendar="NYSEE")


def test_arrow_reader_matches_pandas_on_interleaved_long_gz(tmp_path: Path) -> None:
    """The pyarrow path gives the same panel as pandas' reader, for rows in any order."""
    frames = {s: make_bars(300, seed=i) for i, s in enumerate(["AAA", "BBB", "CCC"])}
    long = _long(frames).sort_values("timestamp", kind="stable")  # symbols interleaved
    p = tmp_path / "long.csv.gz"
    long.to_csv(p, index=False)
    panel = load_csv(p)
    ref = from_dataframe(pd.read_csv(p))
    assert panel.symbols == ref.symbols
    pd.testing.assert_index_equal(panel.index, ref.index)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(panel, f), getattr(ref, f))


def test_bad_value_after_the_first_block_is_named(tmp_path: Path, monkeypatch) -> None:
    """Types are inferred on the first block; a bad number later still names its row."""
    import data_feeds.loaders as loaders

    monkeypatch.setattr(loaders, "CSV_BLOCK_BYTES", 4096)
    df = make_bars(400)
    df["close"] = df["close"].astype(object)
    df.loc[350, "close"] = "abc"
    p = tmp_path / "late.csv"
    df.to_csv(p, index=False)
    with pytest.raises(DataError, match=r"data row 351 \(line 352, .*close is not a number"):
        load_csv(p)


def test_symbols_default_to_every_symbol_in_the_files(tmp_path: Path) -> None:
    frames = _frames()
    _long(frames).to_csv(tmp_path / "l.csv", index=False)
    assert load_csv(tmp_path / "l.csv").symbols == ("AAA", "BBB")


def _gappy() -> dict[str, pd.DataFrame]:
    a = make_bars(10, seed=1)  # 10 business days
    b = make_bars(10, seed=2).drop(index=[3, 4]).reset_index(drop=True)  # 2 holes
    c = make_bars(12, seed=3, start="2008-09-19").drop(index=[5])  # starts 1 day earlier
    return {"A": a, "B": b, "C": c.reset_index(drop=True)}


def test_intersection_policy_logs_dropped_counts() -> None:
    frames = _gappy()
    with capture_logs() as logs:
        panel = from_dataframe(_long(frames))
    assert panel.n_bars == 8
    warn = [e for e in logs if e["event"] == "calendar_intersection"]
    assert len(warn) == 1 and warn[0]["log_level"] == "warning"
    assert warn[0]["dropped_bars"] == {"A": 2, "B": 0, "C": 3}
    assert warn[0]["first_dropped"]["A"] == "2008-09-25 00:00:00, 2008-09-26 00:00:00"


def test_ffill_policy_fills_flat_bars_and_never_backfills() -> None:
    frames = _gappy()
    with capture_logs() as logs:
        panel = from_dataframe(_long(frames), fill="ffill")
    # span: latest first bar (A, B: 09-22) .. earliest last bar (A, B: 10-03)
    assert panel.index[0] == pd.Timestamp("2008-09-22")
    assert panel.index[-1] == pd.Timestamp("2008-10-03")
    assert panel.n_bars == 10
    warn = [e for e in logs if e["event"] == "calendar_ffill"]
    assert len(warn) == 1
    assert warn[0]["filled_bars"] == {"A": 0, "B": 2, "C": 1}
    assert warn[0]["dropped_bars"] == {"A": 0, "B": 0, "C": 2}
    b = panel.symbols.index("B")
    prev = frames["B"]["close"].iloc[2]
    for row in (3, 4):
        for f in ("open", "high", "low", "close"):
            assert getattr(panel, f)[row, b] == prev
        assert panel.volume[row, b] == 0.0
    assert np.isfinite(panel.close).all()


def test_ffill_seeds_from_bar_before_common_start() -> None:
    a = make_bars(5, seed=1, start="2008-09-22")
    b = make_bars(5, seed=2, start="2008-09-19").drop(index=[1]).reset_index(drop=True)
    panel = from_dataframe(_long({"A": a, "B": b}), fill="ffill")
    # B has no bar on 09-22 (first common day): filled from its 09-19 close, not backfilled
    assert panel.index[0] == pd.Timestamp("2008-09-22")
    assert panel.close[0, 1] == b["close"].iloc[0]


def test_alignment_errors() -> None:
    a = make_bars(5, start="2008-01-01")
    b = make_bars(5, start="2009-01-01")
    with pytest.raises(DataError, match="no timestamp in common"):
        from_dataframe(_long({"A": a, "B": b}))
    with pytest.raises(DataError, match="do not overlap"):
        from_dataframe(_long({"A": a, "B": b}), fill="ffill")
    with pytest.raises(DataError, match="unknown fill policy"):
        from_dataframe(_long({"A": a}), fill="bfill")  # type: ignore[arg-type]


def test_start_end_window() -> None:
    panel = from_dataframe(_long(_frames()), start="2008-09-24", end="2008-09-30")
    assert panel.index[0] == pd.Timestamp("2008-09-24")
    assert panel.index[-1] == pd.Timestamp("2008-09-30")
    assert panel.n_bars == 5

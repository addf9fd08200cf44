"""The fast paths of loading (issue 24: loading at memory speed) give the general paths'
panels bit for bit and their error messages word for word.

A long table grouped by symbol with an Arrow string ``symbol`` column takes the block path
(run boundaries, no hashing, one order check over the whole column, the panel stacked from
the columns' own memory); the same table with an ``object`` or categorical symbol column,
or interleaved, takes the general path (factorize, stable sort, per-symbol checks)."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from data_feeds import from_dataframe, validation
from engine.ground.bars import FIELDS, BarPanel, DataError


def long_table(n_sym: int = 4, n_bars: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2020-01-01", periods=n_bars)
    close = 50.0 * np.exp(np.cumsum(rng.normal(0, 0.01, (n_bars, n_sym)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.003, close.shape))
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    return pd.DataFrame(
        {
            "timestamp": np.tile(idx.to_numpy(), n_sym),
            "symbol": pd.array(np.repeat([f"S{j}" for j in range(n_sym)], n_bars), "str"),
            "open": open_.T.ravel(),
            "high": high.T.ravel(),
            "low": low.T.ravel(),
            "close": close.T.ravel(),
            "volume": rng.integers(0, 1000, close.size).astype(float),
        }
    )


def variants(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The same rows with the symbol column as Arrow strings, objects and categories."""
    out = {"arrow": df}
    for name, dtype in (("object", object), ("category", "category")):
        d = df.copy()
        d["symbol"] = df["symbol"].astype(dtype)
        out[name] = d
    return out


def same_panel(a: BarPanel, b: BarPanel) -> None:
    assert a.symbols == b.symbols
    assert a.index.equals(b.index) and a.index.freq == b.index.freq
    for f in FIELDS:
        x, y = getattr(a, f), getattr(b, f)
        assert x.flags.c_contiguous and x.shape == y.shape
        assert x.tobytes() == y.tobytes(), f


def outcome(df: pd.DataFrame, **kw: object) -> BarPanel | str:
    try:
        return from_dataframe(df, source="t.parquet", **kw)  # type: ignore[arg-type]
    except DataError as exc:
        return str(exc)


def test_symbol_column_types_give_the_same_panel() -> None:
    df = long_table()
    panels = {k: from_dataframe(d) for k, d in variants(df).items()}
    assert df["symbol"].array.__class__.__name__ == "ArrowStringArray"
    for p in panels.values():
        same_panel(panels["object"], p)
    # interleaved rows, a calendar gap, and a symbol in two blocks: general paths
    inter = df.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)
    same_panel(panels["object"], from_dataframe(inter))
    gap = df.drop(index=[3, 60]).reset_index(drop=True)
    for fill in (None, "ffill"):
        ref = from_dataframe(variants(gap)["object"], fill=fill)  # type: ignore[arg-type]
        same_panel(ref, from_dataframe(gap, fill=fill))  # type: ignore[arg-type]
    split = pd.concat([df.iloc[:20], df.iloc[50:100], df.iloc[20:50], df.iloc[100:]])
    split = split.reset_index(drop=True)  # S0 in two blocks, each in time order
    same_panel(panels["object"], from_dataframe(split))


def test_wide_table_gives_the_long_tables_panel() -> None:
    df = long_table()
    wide = df.pivot(index="timestamp", columns="symbol")
    wide.columns = [f"{sym}_{field}" for field, sym in wide.columns]
    same_panel(from_dataframe(df), from_dataframe(wide.reset_index()))


BREAKS = {
    "unsorted": ("timestamp", 57, pd.Timestamp("2019-01-01")),
    "duplicate": ("timestamp", 57, pd.Timestamp("2020-01-01")),
    "nan": ("close", 80, np.nan),
    "inf": ("open", 99, np.inf),
    "negative": ("low", 120, -1.0),
    "zero volume ok, negative not": ("volume", 140, -5.0),
    "high below low": ("high", 33, 1.0),
    "open above high": ("open", 150, 1e6),
    "close below low": ("close", 10, 1e-3),
    "close within tolerance": ("close", 12, None),
}


def broken(df: pd.DataFrame, case: str) -> pd.DataFrame:
    """A copy of ``df`` with the cell of ``BREAKS[case]`` set."""
    col, row, value = BREAKS[case]
    df = df.copy()
    if value is None:  # just above high, inside the 1e-9 relative slack: accepted
        df.loc[row, "close"] = df.loc[row, "high"] * (1 + 1e-10)
    else:
        df[col] = df[col].astype(object) if col == "timestamp" else df[col]
        df.loc[row, col] = value
        if col == "timestamp":
            df[col] = pd.to_datetime(df[col])
    return df


@pytest.mark.parametrize("case", list(BREAKS))
def test_errors_are_the_same_on_every_path(case: str) -> None:
    row = BREAKS[case][1]
    df = broken(long_table(), case)
    results = {k: outcome(d) for k, d in variants(df).items()}
    ref = results["object"]
    for k, r in results.items():
        if isinstance(ref, str):
            assert r == ref, (k, r, ref)
        else:
            assert isinstance(r, BarPanel), (k, r)
            same_panel(ref, r)
    if case != "close within tolerance":
        assert isinstance(ref, str) and f"row {row + 1}" in ref, ref
    # the first of two problems in different symbols is the one named, on every path
    df2 = long_table()
    df2.loc[170, "close"] = np.nan
    df2.loc[20, "volume"] = -1.0
    msgs = {k: outcome(d) for k, d in variants(df2).items()}
    assert len(set(msgs.values())) == 1 and "volume is negative" not in msgs["arrow"]


def test_missing_or_padded_symbols_take_the_general_path() -> None:
    df = long_table()
    df["symbol"] = df["symbol"].astype(object)
    df.loc[7, "symbol"] = None
    assert outcome(df) == "t.parquet: row 8: symbol is missing"
    df = long_table()
    padded = df["symbol"].astype(object)
    padded[125:150] = " S2"  # S2's later rows, padded: still one symbol S2
    df["symbol"] = pd.array(padded, "str")
    ref, got = outcome(variants(df)["object"]), outcome(df)
    assert isinstance(ref, BarPanel) and isinstance(got, BarPanel)
    same_panel(ref, got)
    assert got.symbols == ("S0", "S1", "S2", "S3")


# --- a long table sorted by time (every symbol at every time, same order) and a wide
# table whose bars all pass: one (T, N) array per field, copied once; the general paths
# (per-symbol sort and checks) are the reference, reached by switching the fast path off


def interleaved(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)


def wide_table(df: pd.DataFrame) -> pd.DataFrame:
    wide = df.pivot(index="timestamp", columns="symbol")
    wide.columns = [f"{sym}_{field}" for field, sym in wide.columns]
    return wide.reset_index()


def general(df: pd.DataFrame, **kw: object) -> BarPanel | str:
    """The outcome with both fast paths switched off."""
    with (
        patch.object(validation, "_interleaved_frames", lambda *a, **k: None),
        patch.object(validation, "_wide_valid", lambda *a, **k: None),
    ):
        return outcome(df, **kw)


def same_outcome(a: BarPanel | str, b: BarPanel | str) -> None:
    if isinstance(a, str) or isinstance(b, str):
        assert a == b
    else:
        same_panel(a, b)


def test_time_sorted_and_wide_tables_give_the_long_tables_panel_in_their_own_memory() -> None:
    df = long_table(n_sym=5, n_bars=40)
    ref = from_dataframe(variants(df)["object"])
    tables = {"wide": wide_table(df)}
    for k, d in variants(interleaved(df)).items():
        tables[f"time-sorted, {k}"] = d
    for name, table in tables.items():
        got = from_dataframe(table)
        same_panel(ref, got)
        same_outcome(general(table), got)
        before = {f: getattr(got, f).copy() for f in FIELDS}
        for f in FIELDS:  # never a view of the caller's frame...
            arr = getattr(got, f)
            for col in table.columns:
                if table[col].dtype.kind == "f":
                    assert not np.shares_memory(arr, table[col].to_numpy()), (name, f, col)
        table.iloc[:, -1] = 1.0  # ...so that writing to the frame later changes nothing
        for f in FIELDS:
            assert np.array_equal(getattr(got, f), before[f]), (name, f)


def test_time_sorted_table_errors_name_the_rows_of_the_file() -> None:
    df = interleaved(long_table(n_sym=4, n_bars=50))
    for case, (_, row, _) in BREAKS.items():
        d = broken(df, case)
        got = outcome(d)
        same_outcome(general(d), got)
        if case == "close within tolerance":
            assert isinstance(got, BarPanel)
        else:
            sym = df.loc[row, "symbol"]
            assert isinstance(got, str) and f"row {row + 1}" in got and sym in got, (case, got)
    # a symbol missing at one time, or the symbols in another order at one time: general
    gap = df.drop(index=[9]).reset_index(drop=True)
    same_outcome(general(gap), outcome(gap))
    swapped = df.copy()
    swapped.iloc[[8, 9]] = df.iloc[[9, 8]].to_numpy()
    same_outcome(general(swapped), outcome(swapped))
    assert isinstance(outcome(swapped), BarPanel)


@settings(max_examples=60, deadline=None)
@given(
    n_sym=st.integers(2, 4),
    field=st.sampled_from(FIELDS),
    cell=st.integers(0, 10_000),
    value=st.sampled_from([np.nan, np.inf, -1.0, 0.0, 1e-3, 1e6, None]),
    close_only=st.booleans(),
)
def test_wide_fast_path_decides_as_the_per_symbol_path(
    n_sym: int, field: str, cell: int, value: float | None, close_only: bool
) -> None:
    """Any one cell broken (or none): the same panel or the same one-line error, whether
    the whole table is checked at once or symbol by symbol."""
    wide = wide_table(long_table(n_sym=n_sym, n_bars=30, seed=cell))
    if close_only:
        wide = wide[["timestamp"] + [c for c in wide.columns if c.endswith("_close")]]
    cols = [c for c in wide.columns if c.endswith(f"_{field}")]
    if value is not None and cols:
        wide.loc[cell % len(wide), cols[cell % len(cols)]] = value
    for fill in (None, "ffill"):
        kw = {"fill": fill, "ohlc_from_close": close_only}
        same_outcome(general(wide, **kw), outcome(wide, **kw))

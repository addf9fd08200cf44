"""The fast paths of loading (issue 24: loading at memory speed) give the general paths'
panels bit for bit and their error messages word for word.

A long table grouped by symbol with an Arrow string ``symbol`` column takes the block path
(run boundaries, no hashing, one order check over the whole column, the panel stacked from
the columns' own memory); the same table with an ``object`` or categorical symbol column,
or interleaved, takes the general path (factorize, stable sort, per-symbol checks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from data_feeds import from_dataframe
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


@pytest.mark.parametrize("case", list(BREAKS))
def test_errors_are_the_same_on_every_path(case: str) -> None:
    col, row, value = BREAKS[case]
    df = long_table()
    if value is None:  # just above high, inside the 1e-9 relative slack: accepted
        df.loc[row, "close"] = df.loc[row, "high"] * (1 + 1e-10)
    else:
        df[col] = df[col].astype(object) if col == "timestamp" else df[col]
        df.loc[row, col] = value
        if col == "timestamp":
            df[col] = pd.to_datetime(df[col])
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

"""The compiled loading checks (:mod:`data_feeds.checks_nb`) agree with plain NumPy
statements of the same rules, and a failing check still gives the validator's message."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import example, given, settings
from hypothesis import strategies as st

from data_feeds import from_dataframe
from data_feeds.checks_nb import bars_ok_nb, block_calendar_nb
from data_feeds.validation import RANGE_TOL
from engine.ground.bars import DataError

BAD_VALUES = (np.nan, np.inf, -np.inf, 0.0, -1.0, 1e-300, 1e300)


def reference_ok(
    o: np.ndarray, h: np.ndarray, lo: np.ndarray, c: np.ndarray, v: np.ndarray
) -> bool:
    """The validator's rules, one NumPy expression each."""
    fields = np.stack([o, h, lo, c, v])
    if not np.isfinite(fields).all():
        return False
    if not ((o > 0) & (h > 0) & (lo > 0) & (c > 0)).all() or (v < 0).any():
        return False
    if (h < lo).any():
        return False
    tol = RANGE_TOL
    for x in (o, c):
        if ((x > h * (1 + tol)) | (x < lo * (1 - tol))).any():
            return False
    return True


def bars(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    c = 50 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    o = c * np.exp(rng.normal(0, 0.003, n))
    h = np.maximum(o, c) * 1.001
    lo = np.minimum(o, c) * 0.999
    return [o, h, lo, c, rng.integers(0, 100, n).astype(float)]


@settings(deadline=None, max_examples=300)
@given(
    seed=st.integers(0, 1000),
    field=st.integers(0, 4),
    row=st.integers(0, 39),
    value=st.sampled_from(BAD_VALUES) | st.floats(-1e3, 1e3) | st.none(),
    scale=st.sampled_from([1 - 2e-9, 1 - 1e-10, 1 + 1e-10, 1 + 2e-9]),
)
@example(seed=0, field=3, row=5, value=None, scale=1 + 1e-10)  # close above high, in the slack
@example(seed=0, field=0, row=5, value=None, scale=1 + 2e-9)  # open above high, beyond it
def test_bars_ok_matches_the_rules(
    seed: int, field: int, row: int, value: float | None, scale: float
) -> None:
    cols = bars(40, seed)
    if value is None:  # open or close pushed just past high (or low) by the scale
        target = 0 if field in (0, 1, 4) else 3
        edge = cols[1] if scale > 1 else cols[2]
        cols[target][row] = edge[row] * scale
    else:
        cols[field][row] = value
    o, h, lo, c, v = cols
    assert bars_ok_nb(o, h, lo, c, v, RANGE_TOL) == reference_ok(o, h, lo, c, v)


@settings(deadline=None, max_examples=200)
@given(
    lengths=st.lists(st.integers(1, 6), min_size=1, max_size=5),
    swap=st.booleans(),
    shift=st.booleans(),
    seed=st.integers(0, 100),
)
def test_block_calendar_matches_the_rules(
    lengths: list[int], swap: bool, shift: bool, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    blocks = [np.arange(n, dtype=np.int64) * 10 for n in lengths]
    k = int(rng.integers(len(blocks)))
    if swap and len(blocks[k]) > 1:
        blocks[k][[0, 1]] = blocks[k][[1, 0]]
    if shift:
        blocks[k] = blocks[k] + 1
    t = np.concatenate(blocks)
    bounds = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    increasing = all(bool(np.all(np.diff(b) > 0)) for b in blocks)
    same = all(len(b) == len(blocks[0]) and np.array_equal(b, blocks[0]) for b in blocks)
    assert block_calendar_nb(t, bounds) == (increasing, same)


def test_a_shared_calendar_is_one_index_and_messages_name_the_row() -> None:
    idx = pd.bdate_range("2020-01-01", periods=5)
    cols = bars(10, 1)
    df = pd.DataFrame(
        {
            "timestamp": np.tile(idx.to_numpy(), 2),
            "symbol": np.repeat(["A", "B"], 5),
            **dict(zip(("open", "high", "low", "close", "volume"), cols, strict=True)),
        }
    )
    panel = from_dataframe(df)
    assert panel.symbols == ("A", "B") and list(panel.index) == list(idx)
    np.testing.assert_array_equal(panel.close, cols[3].reshape(2, 5).T)
    low = cols[2].copy()
    low[7] = cols[1][7] * 1.5
    df["low"] = low
    try:
        from_dataframe(df, source="t.parquet")
    except DataError as exc:
        msg = str(exc)
    assert msg == f"t.parquet: symbol B, row 8 (2020-01-03): high < low ({cols[1][7]} < {low[7]})"

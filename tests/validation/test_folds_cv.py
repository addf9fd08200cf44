"""Known-answer fold construction, the fold-scheduled detector, purge/embargo correctness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.analysis.cv import choose, purged_kfold
from engine.analysis.walkforward import (
    Fold,
    ScheduledDetector,
    fold_table,
    make_folds,
    oos_mask,
    oos_returns,
)


def test_expanding_folds_known_answer():
    folds = make_folds(100, 40, 20)
    assert folds == [Fold(0, 0, 40, 40, 60), Fold(1, 0, 60, 60, 80), Fold(2, 0, 80, 80, 100)]


def test_rolling_folds_known_answer():
    folds = make_folds(100, 40, 20, "rolling", 30)
    assert [(f.train_start, f.train_end, f.test_start, f.test_end) for f in folds] == [
        (10, 40, 40, 60),
        (30, 60, 60, 80),
        (50, 80, 80, 100),
    ]
    # default rolling window = the first training span
    assert make_folds(100, 40, 20, "rolling")[1].train_start == 20


def test_partial_last_fold():
    assert make_folds(105, 40, 20)[-1].test_end == 100  # 5-bar tail < min_test_bars: dropped
    last = make_folds(110, 40, 20, min_test_bars=5)[-1]
    assert (last.test_start, last.test_end) == (100, 110)
    assert make_folds(30, 40, 20) == []
    with pytest.raises(ValueError):
        make_folds(100, 40, 20, "sliding")  # type: ignore[arg-type]


class Recorder:
    """A detector that records the rows each fit sees."""

    name = "rec"
    n_states = 2
    labels = ("a", "b")

    def __init__(self, first: int = 5) -> None:
        self.first = first
        self.seen: list[tuple[int, float, float]] = []

    def state_size(self, n_features: int) -> int:
        return 1

    def fit_bars(self, n_bars: int) -> np.ndarray:
        return np.arange(self.first, n_bars, 7, dtype=np.int64)

    def fit(self, features, exog, previous):
        self.seen.append((features.shape[0], features[0, 0], features[-1, 0]))
        return np.array([0.0, 2.0])


@pytest.mark.parametrize("window", ["expanding", "rolling"])
def test_scheduled_detector_sees_training_rows_only(window):
    from engine.regimes.base import fit_schedule

    folds = make_folds(100, 40, 20, window, 30)
    inner = Recorder()
    det = ScheduledDetector(inner, folds)
    feats = np.arange(100.0)[:, None]
    _, bars = fit_schedule(det, feats, np.zeros((100, 0)))
    assert list(bars) == [5, 40, 60, 80]  # warm-up fit at the inner's first fit bar + starts
    # each fit: rows [train_start, test_start) exactly (row value = bar number)
    want = [(5, 0.0, 4.0)] + [(f.n_train, f.train_start, f.test_start - 1.0) for f in folds]
    assert inner.seen == want
    assert list(ScheduledDetector(Recorder(), folds, warmup_fit=False).fit_bars(100)) == [
        40,
        60,
        80,
    ]


def test_oos_returns_and_fold_table():
    idx = pd.bdate_range("2020-01-01", periods=10)
    eq = pd.DataFrame({"a": 100.0 * 1.01 ** np.arange(10)}, index=idx)
    folds = make_folds(10, 4, 3, min_test_bars=1)
    assert oos_mask(folds, 10).tolist() == [False] * 4 + [True] * 6
    r = oos_returns(eq, folds)
    assert list(r.index) == list(idx[4:])
    np.testing.assert_allclose(r["a"].to_numpy(), 0.01)
    ft = fold_table(eq, folds)
    np.testing.assert_allclose(ft["return"].to_numpy(), [1.01**3 - 1, 1.01**3 - 1])
    # stitching: the fold returns compound to the OOS total
    assert np.isclose(np.prod(1 + ft["return"]), eq["a"].iloc[-1] / eq["a"].iloc[3])


def test_purged_kfold_known_answer():
    splits = purged_kfold(0, 12, 3, purge=1, embargo=2)
    assert [v.tolist() for _, v in splits] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    assert [t.tolist() for t, _ in splits] == [
        [6, 7, 8, 9, 10, 11],  # embargo drops 4, 5 after the block
        [0, 1, 2, 10, 11],  # purge drops 3 before, embargo 8, 9 after
        [0, 1, 2, 3, 4, 5, 6],  # purge drops 7
    ]


@settings(deadline=None, max_examples=40)
@given(
    lo=st.integers(0, 50),
    n=st.integers(10, 300),
    k=st.integers(2, 6),
    purge=st.integers(0, 30),
    embargo=st.integers(0, 30),
)
def test_no_training_row_within_purge_or_embargo(lo, n, k, purge, embargo):
    splits = purged_kfold(lo, lo + n, k, purge, embargo)
    allv = np.concatenate([v for _, v in splits])
    assert allv.tolist() == list(range(lo, lo + n))  # blocks tile the window
    for train, valid in splits:
        assert train.min(initial=lo) >= lo and train.max(initial=lo) < lo + n
        assert not np.intersect1d(train, valid).size
        # no training index within `embargo` after, or `purge` before, any validation index
        gap_after = train[:, None] - valid[None, :]
        assert not np.any((gap_after > 0) & (gap_after <= embargo))
        assert not np.any((gap_after < 0) & (-gap_after <= purge))
        # and nothing else is dropped
        expect = [
            i for i in range(lo, lo + n) if i < valid[0] - purge or i >= valid[-1] + 1 + embargo
        ]
        assert train.tolist() == expect


def test_choose_best_mean_nan_worst():
    sc = pd.DataFrame({"a": [0.1, 0.3], "b": [0.5, np.nan], "c": [np.nan, np.nan]})
    assert choose(sc) == "b"

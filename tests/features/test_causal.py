"""Causal features: the row of bar t is the same whatever follows it."""

from __future__ import annotations

import numpy as np

from data_feeds.synthetic import two_state_example
from engine.core.backtest import feature_history
from engine.core.spec import Features


def test_feature_rows_are_prefix_consistent() -> None:
    panel, _ = two_state_example(400, seed=3)
    fp = Features().array()
    full = feature_history(panel, fp)
    part = feature_history(panel.head(250), fp)
    np.testing.assert_array_equal(part, full[:250])
    assert np.all(np.isfinite(full))

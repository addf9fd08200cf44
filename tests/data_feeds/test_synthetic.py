"""Synthetic regime generator: determinism, consistency, per-state statistics."""

from __future__ import annotations

import numpy as np
import pytest

from data_feeds import generate_regime_panel, two_state_example
from data_feeds.synthetic import transition_from_dwell
from engine.ground.bars import FIELDS


def test_deterministic_per_seed() -> None:
    a, sa = two_state_example(500, seed=7)
    b, sb = two_state_example(500, seed=7)
    c, _ = two_state_example(500, seed=8)
    np.testing.assert_array_equal(sa, sb)
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert not np.array_equal(a.close, c.close)
    assert sa.dtype == np.int64 and sa.shape == (500,)


def test_bars_are_consistent() -> None:
    panel, states = two_state_example(2000, seed=1)
    assert (panel.low <= np.minimum(panel.open, panel.close)).all()
    assert (panel.high >= np.maximum(panel.open, panel.close)).all()
    assert (panel.volume > 0).all() and (panel.low > 0).all()
    assert (panel.index.day_of_week < 5).all() and panel.index.is_monotonic_increasing
    assert panel.index[0].strftime("%Y-%m-%d") == "2000-01-03"
    assert panel.symbols == ("EQ", "BD")
    assert set(np.unique(states)) == {0, 1}


def test_empirical_state_vol_and_corr_match_spec() -> None:
    vols = np.array([[0.01, 0.005, 0.02], [0.03, 0.006, 0.05], [0.06, 0.004, 0.01]])
    means = np.zeros((3, 3))
    corr = np.stack([np.eye(3), np.full((3, 3), 0.6) + 0.4 * np.eye(3), np.eye(3)])
    panel, states = generate_regime_panel(
        20_000, means, vols, corr, mean_dwell=[60, 30, 20], seed=3
    )
    r = np.diff(np.log(panel.close), axis=0)
    s = states[1:]
    for k in range(3):
        rk = r[s == k]
        assert len(rk) > 1000
        np.testing.assert_allclose(rk.std(axis=0), vols[k], rtol=0.08)
    c1 = np.corrcoef(r[s == 1].T)
    assert c1[0, 1] == pytest.approx(0.6, abs=0.06)
    # dwell times roughly as asked
    runs = np.diff(np.flatnonzero(np.diff(states) != 0))
    assert 20 < runs.mean() < 60


def test_transition_from_dwell_and_given_matrix() -> None:
    p = transition_from_dwell([100, 50])
    np.testing.assert_allclose(p, [[0.99, 0.01], [0.02, 0.98]])
    sticky = np.array([[1.0, 0.0], [0.0, 1.0]])
    _, states = generate_regime_panel(100, [0.0, 0.0], [0.01, 0.02], transition=sticky, seed=0)
    assert len(set(states.tolist())) == 1
    with pytest.raises(ValueError):
        generate_regime_panel(10, [0.0], [0.01], transition=np.array([[0.5]]))
    with pytest.raises(ValueError):
        generate_regime_panel(10, [[0.0, 0.0]], [[0.01, 0.01]], corr=np.array([[1, 2], [2, 1]]))


def test_gap_frac_zero_means_open_is_previous_close() -> None:
    panel, _ = generate_regime_panel(50, [[0.0]], [[0.01]], gap_frac=0.0, seed=2)
    np.testing.assert_allclose(panel.open[1:], panel.close[:-1], rtol=1e-15)
    assert panel.open[0, 0] == 100.0

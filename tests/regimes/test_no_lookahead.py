"""No look-ahead, for every detector kind: the posterior, raw and smoothed states at bars
<= t are identical whether the run stops at t, continues to the end, or continues with the
bars after t replaced by noise. Runs go through prepare() and the compiled driver."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from data_feeds.synthetic import two_state_example
from engine.core.spec import Smoothing
from engine.ground.bars import BarPanel
from engine.regimes.config import DetectorConfig
from tests.regimes.helpers import run_detector, with_noise_after

N_BARS = 700
SCHED = {"market": "EQ", "min_train": 250, "refit_every": 150, "skip": 21}
CONFIGS: dict[str, dict[str, object]] = {
    "rule": {"kind": "rule", "market": "EQ", "history": 200, "min_history": 100},
    "hmm": {"kind": "hmm", "n_restarts": 1, "n_iter": 30, **SCHED},
    "hmm_rolling_diag": {
        "kind": "hmm",
        "n_restarts": 1,
        "n_iter": 30,
        "covariance": "diag",
        "window": "rolling",
        "window_length": 200,
        "n_states": 2,
        **SCHED,
    },
    "gmm": {"kind": "gmm", "n_init": 1, **SCHED},
    "kmeans": {"kind": "kmeans", "n_init": 2, **SCHED},
    "jump": {"kind": "jump", "n_init": 2, **SCHED},
    "supervised": {"kind": "supervised", "horizon": 10, **SCHED},
    "bocpd": {"kind": "bocpd", "market": "EQ", "min_train": 250, "max_run": 100},
}
ADAPTER: TypeAdapter[object] = TypeAdapter(DetectorConfig)


@functools.lru_cache(maxsize=1)
def _panel() -> BarPanel:
    return two_state_example(N_BARS, 3.0, 60.0, seed=11)[0]


@functools.cache
def _full_run(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _run(name, _panel())


def _run(name: str, panel: BarPanel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cfg = ADAPTER.validate_python(CONFIGS[name])
    det = cfg.build(panel)  # type: ignore[attr-defined]
    return run_detector(panel, det, Smoothing(0.6, 3, 2))


@pytest.mark.parametrize("name", list(CONFIGS))
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_lookahead(name: str, data: st.DataObject) -> None:
    t = data.draw(st.integers(min_value=260, max_value=N_BARS - 2), label="t")
    full = _full_run(name)
    trunc = _run(name, _panel().head(t + 1))
    noisy = _run(name, with_noise_after(_panel(), t, seed=t))
    for other in (trunc, noisy):
        np.testing.assert_array_equal(other[0][: t + 1], full[0][: t + 1])  # posterior
        np.testing.assert_array_equal(other[1][: t + 1], full[1][: t + 1])  # raw state
        np.testing.assert_array_equal(other[2][: t + 1], full[2][: t + 1])  # smoothed
    # and the detector spoke at some point before t (the test is not vacuous)
    assert (full[1][: t + 1] >= 0).any()

"""No look-ahead for plug-ins: a user feature, an exogenous series with a publication
lag, and a scikit-learn detector. Values and states at bars <= t are identical whether
the run stops at t, continues, or continues with everything after t (prices and the
exogenous file's releases) replaced by noise."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_feeds.synthetic import two_state_example
from engine.features.exog import add_exog
from engine.features.user import inputs_matrix
from engine.ground.bars import BarPanel
from engine.regimes.estimator import SklearnDetector
from engine.regimes.inputs import Schedule, resolve_inputs
from strategies.features_example import ewm_momentum, rolling_corr
from tests.regimes.helpers import run_detector, with_noise_after

N_BARS = 600
LAG = "10D"


@functools.lru_cache(maxsize=1)
def _panel() -> BarPanel:
    return two_state_example(N_BARS, 3.0, 60.0, seed=5)[0]


def _release(panel: BarPanel, seed: int | None, t: int | None) -> pd.DataFrame:
    """A monthly 'macro' series released at each month end (noise after bar t)."""
    month_ends = panel.index[panel.index.to_series().dt.is_month_end.to_numpy()]
    if len(month_ends) < 5:
        month_ends = panel.index[::21]
    vals = np.sin(np.arange(len(month_ends)) / 3.0) * 10.0 + 20.0
    if seed is not None and t is not None:
        late = month_ends > panel.index[t]
        vals = vals.copy()
        vals[late] = np.random.default_rng(seed).normal(0, 50, late.sum())
    return pd.DataFrame({"MACRO": vals}, index=month_ends)


def _features(panel: BarPanel) -> np.ndarray:
    syms = panel.symbols
    feats = [rolling_corr(syms[0], syms[1], 30), ewm_momentum(20.0)]
    return inputs_matrix(panel, feats)[0]


def _detector_run(panel: BarPanel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.mixture import GaussianMixture
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    aug = add_exog(panel, _release(panel, None, None), lag=LAG) if panel.n_bars else panel
    return _run_sk(aug, make_pipeline(StandardScaler(), GaussianMixture(2, random_state=0)))


def _run_sk(aug: BarPanel, est: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    market = aug.symbols[0]
    det = SklearnDetector(
        estimator=est,
        inputs=resolve_inputs(aug, market, ["logret", "log_vol_fast", "exog.MACRO"]),
        n_states=2,
        schedule=Schedule(min_train=200, refit_every=150, skip=21),
    )
    return run_detector(aug, det)  # type: ignore[arg-type]


@functools.cache
def _full() -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
    p = _panel()
    exog = add_exog(p, _release(p, None, None), lag=LAG).exog[:, 0]
    return _features(p), _detector_run(p), exog


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(t=st.integers(min_value=210, max_value=N_BARS - 2))
def test_user_features_exog_lag_and_sklearn_detector_are_causal(t: int) -> None:
    p = _panel()
    feats, det, exog = _full()
    trunc = p.head(t + 1)
    noisy = with_noise_after(p, t, seed=t)
    for other in (trunc, noisy):
        np.testing.assert_array_equal(_features(other)[: t + 1], feats[: t + 1])
    # the exogenous release after t is noise: nothing at or before t moves
    noisy_exog = add_exog(p, _release(p, t, t), lag=LAG).exog[:, 0]
    np.testing.assert_array_equal(noisy_exog[: t + 1], exog[: t + 1])
    # the lag is honoured: a value released at bar time s is first seen LAG later
    rel = _release(p, None, None)
    first = rel.index[2]
    seen_at = p.index.searchsorted(first + pd.Timedelta(LAG))
    assert exog[seen_at] == rel["MACRO"].iloc[2] and exog[seen_at - 1] != rel["MACRO"].iloc[2]
    # the scikit-learn detector, on noisy prices and noisy releases after t
    from sklearn.mixture import GaussianMixture
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    est = make_pipeline(StandardScaler(), GaussianMixture(2, random_state=0))
    noisy_aug = add_exog(noisy, _release(p, t, t), lag=LAG)
    for run in (
        _run_sk(add_exog(trunc, _release(trunc, None, None), lag=LAG), est),
        _run_sk(noisy_aug, est),
    ):
        for k in range(3):
            np.testing.assert_array_equal(run[k][: t + 1], det[k][: t + 1])
    assert (det[1][: t + 1] >= 0).any()  # it spoke before t

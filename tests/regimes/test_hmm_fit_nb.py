"""The compiled Baum-Welch (engine.regimes.hmm_fit_nb) against hmmlearn, its reference.

From the same starting parameters both fitters must give the same log-likelihood (1e-6
relative), the same number of EM iterations (same stopping rule), the same parameters and
the same filtered posteriors (1e-9), hence the same states; and the detector must choose
the same model at every fit of a schedule. Cases: the bundled panel (SPX log returns, as
the default detector reads them; with the fast log-volatility for two inputs) and
synthetic 2- and 3-state data, full and diagonal covariances. Tolerances, never bit
equality: log/exp differ across CPUs and the two pass orders differ in rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

import data_feeds
from engine.core.backtest import feature_history
from engine.core.spec import Features
from engine.ground import layout as L
from engine.ground.bars import BarPanel
from engine.regimes.base import fit_schedule
from engine.regimes.config import HMMDetectorConfig
from engine.regimes.hmm import (
    EMFit,
    GaussianHMMDetector,
    _kmeans_plusplus,
    _random_init,
    em_fit,
    gaussian_params,
    gaussian_state_size,
)
from engine.regimes.inputs import Inputs, Schedule
from engine.regimes.online_nb import filter_rows_nb, online_run_nb
from engine.regimes.threads import fit_threads

LL_RTOL = 1e-6
POST_ATOL = 1e-9
PARAM_ATOL = 1e-8


def _standardized(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    x = x.reshape(len(x), -1)
    return np.ascontiguousarray((x - x.mean(axis=0)) / x.std(axis=0))


def _spx_logret() -> np.ndarray:
    panel = data_feeds.load_bundled()
    close = panel.close[:, panel.symbols.index("SPX")]
    return _standardized(np.diff(np.log(close)))


def _markov_gaussian(
    n: int, means: np.ndarray, sds: np.ndarray, corr: float, stay: float, seed: int
) -> np.ndarray:
    """``n`` rows of a K-state Markov chain with Gaussian emissions (D = 2, correlated)."""
    rng = np.random.default_rng(seed)
    k = means.shape[0]
    states = np.empty(n, dtype=np.int64)
    s = 0
    for t in range(n):
        states[t] = s
        if rng.random() > stay:
            s = int(rng.integers(0, k - 1))
            s = s if s < states[t] else s + 1
    chol = np.linalg.cholesky(np.array([[1.0, corr], [corr, 1.0]]))
    eps = rng.standard_normal((n, 2)) @ chol.T
    return _standardized(means[states] + sds[states] * eps)


def _synthetic(k: int) -> np.ndarray:
    if k == 2:
        return _markov_gaussian(
            2000, np.array([[0.5, 0.0], [-1.0, 0.5]]), np.array([[1.0, 1.0], [3.0, 2.0]]),
            0.5, 0.98, seed=1,
        )  # fmt: skip
    return _markov_gaussian(
        2500,
        np.array([[0.6, 0.0], [0.0, 0.3], [-1.5, 1.0]]),
        np.array([[0.7, 1.0], [1.5, 1.2], [3.5, 2.0]]),
        -0.4,
        0.97,
        seed=2,
    )


CASES = {
    "bundled SPX logret": (_spx_logret, 3),
    "synthetic 2-state": (lambda: _synthetic(2), 2),
    "synthetic 3-state": (lambda: _synthetic(3), 3),
}


def _filtered(fit: EMFit, z: np.ndarray, full: bool) -> np.ndarray:
    """The engine's online filter (forward algorithm) over ``z`` with a fit's parameters."""
    n, d = z.shape
    k = fit.start.shape[0]
    inputs = Inputs(tuple(range(d)), (False,) * d)
    params = gaussian_params(
        L.DET_HMM,
        inputs,
        np.zeros(d),
        np.ones(d),
        fit.start,
        fit.trans,
        fit.means,
        fit.covars,
        full=full,
        iid=False,
    )
    return np.asarray(filter_rows_nb(params, z, np.zeros((n, 1)), gaussian_state_size(k, d), k))


def _both(z: np.ndarray, k: int, seed: int, cov: str, n_iter: int = 50) -> tuple[EMFit, EMFit]:
    init = _random_init(z, k, seed)
    fits = [
        em_fit(z, *init, covariance=cov, n_iter=n_iter, tol=1e-2, fitter=f)
        for f in ("numba", "hmmlearn")
    ]
    assert fits[0] is not None and fits[1] is not None
    return fits[0], fits[1]


@pytest.mark.parametrize("cov", ["full", "diag"])
@pytest.mark.parametrize("case", list(CASES))
def test_em_matches_hmmlearn_from_the_same_start(case: str, cov: str) -> None:
    make, k = CASES[case]
    z = make()
    for seed in (0, 1):
        nb_fit, ref = _both(z, k, seed, cov)
        assert nb_fit.n_iter == ref.n_iter  # same stopping rule, same iteration
        assert nb_fit.score == pytest.approx(ref.score, rel=LL_RTOL)
        assert abs(nb_fit.score - ref.score) <= 1e-9 * abs(ref.score)
        np.testing.assert_allclose(nb_fit.start, ref.start, atol=PARAM_ATOL)
        np.testing.assert_allclose(nb_fit.trans, ref.trans, atol=PARAM_ATOL)
        np.testing.assert_allclose(nb_fit.means, ref.means, atol=PARAM_ATOL)
        np.testing.assert_allclose(nb_fit.covars, ref.covars, atol=PARAM_ATOL)
        full = cov == "full"
        p_nb, p_ref = _filtered(nb_fit, z, full), _filtered(ref, z, full)
        np.testing.assert_allclose(p_nb, p_ref, rtol=0.0, atol=POST_ATOL)
        assert np.array_equal(p_nb.argmax(axis=1), p_ref.argmax(axis=1))


@pytest.mark.parametrize("n_iter", [1, 2, 7])
def test_iteration_cap_and_score_of_the_final_parameters(n_iter: int) -> None:
    z = _synthetic(3)
    nb_fit, ref = _both(z, 3, 0, "full", n_iter=n_iter)
    assert nb_fit.n_iter == ref.n_iter == n_iter
    assert nb_fit.score == pytest.approx(ref.score, rel=1e-9)
    np.testing.assert_allclose(nb_fit.means, ref.means, atol=PARAM_ATOL)


def test_a_fit_hmmlearn_rejects_is_rejected() -> None:
    z = _synthetic(2)
    start, trans, means, covars = _random_init(z, 2, 0)
    means = means.copy()
    means[1] = 1e3  # a state nothing is near: no posterior mass, 0/0 means
    covars = covars * 1e-3
    for cov in ("full", "diag"):
        for fitter in ("numba", "hmmlearn"):
            res = em_fit(z, start, trans, means, covars, covariance=cov, fitter=fitter)
            assert res is None, (cov, fitter)
    bad_start = np.array([0.7, 0.7])  # does not sum to one: hmmlearn refuses to start
    for fitter in ("numba", "hmmlearn"):
        assert em_fit(z, bad_start, trans, means, covars, fitter=fitter) is None


def _feature_history() -> tuple[BarPanel, np.ndarray, np.ndarray]:
    panel = data_feeds.load_bundled(end="2009-12-31")
    feats = feature_history(panel, Features().array())
    exog = panel.exog if panel.exog.shape[1] else np.zeros((panel.n_bars, 1))
    return panel, feats, exog


@pytest.mark.parametrize(
    ("features", "cov"), [(("logret",), "full"), (("logret", "log_vol_fast"), "diag")]
)
def test_detector_schedule_chooses_the_same_models(features: tuple[str, ...], cov: str) -> None:
    """The default detector's fits (SPX, bundled panel; warm start + random restarts at
    each refit, best log-likelihood wins) give the same parameters and online states."""
    panel, feats, exog = _feature_history()
    base = HMMDetectorConfig(features=features, covariance=cov, refit_every=252)
    posts, states, rows = [], [], []
    for fitter in ("numba", "hmmlearn"):
        det = base.model_copy(update={"fitter": fitter}).build(panel)
        assert isinstance(det, GaussianHMMDetector) and det.fitter == fitter
        params, bars = fit_schedule(det, feats, exog)
        assert len(bars) >= 4
        post = np.zeros((feats.shape[0], det.n_states))
        dstate = np.zeros(det.state_size(feats.shape[1]))
        states.append(np.asarray(online_run_nb(params, bars, feats, exog, dstate, post)))
        posts.append(post)
        rows.append(params)
    np.testing.assert_allclose(rows[0], rows[1], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(posts[0], posts[1], rtol=0.0, atol=POST_ATOL)
    assert np.array_equal(states[0], states[1])


def test_fitter_option() -> None:
    assert HMMDetectorConfig().fitter == "numba"
    panel = data_feeds.load_bundled(end="2003-12-31")
    det = HMMDetectorConfig(fitter="hmmlearn").build(panel)
    assert isinstance(det, GaussianHMMDetector) and det.fitter == "hmmlearn"
    with pytest.raises(ValueError, match="fitter"):
        GaussianHMMDetector(Inputs((0,), (False,)), schedule=Schedule(), fitter="em")
    with pytest.raises(ValueError, match="fitter"):
        em_fit(np.zeros((10, 1)), *_random_init(np.ones((10, 1)), 2, 0), fitter="em")


def test_fit_threads_limits_and_restores_blas_threads() -> None:
    from threadpoolctl import threadpool_info

    before = {i["filepath"]: i["num_threads"] for i in threadpool_info()}
    with fit_threads(1):
        inside = threadpool_info()
        assert all(i["num_threads"] == 1 for i in inside)
    after = {i["filepath"]: i["num_threads"] for i in threadpool_info()}
    assert {p: after[p] for p in before} == before


def test_kmeans_plusplus_seeding_is_sklearns() -> None:
    from sklearn.cluster import kmeans_plusplus

    rng = np.random.default_rng(3)
    for d in (1, 2, 3, 5):
        for n in (40, 500, 2521):
            z = rng.standard_normal((n, d)) * rng.uniform(0.01, 100.0, d)
            z[: n // 10] += 3.0  # a cluster, and ties in the potential
            for seed, k in ((0, 2), (1, 3), (7, 4), (11, 6), (12345, 8)):
                want = kmeans_plusplus(z, k, random_state=seed)[0]
                assert np.array_equal(_kmeans_plusplus(z, k, seed), want), (d, n, seed, k)
    z = np.repeat(rng.standard_normal((3, 2)), 50, axis=0)  # duplicated points
    for seed in range(20):
        want = kmeans_plusplus(z, 3, random_state=seed)[0]
        assert np.array_equal(_kmeans_plusplus(z, 3, seed), want)

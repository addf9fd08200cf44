"""The numba forward filter equals hmmlearn's filtered posterior with fixed parameters."""

from __future__ import annotations

import numpy as np
import pytest
from hmmlearn.hmm import GaussianHMM

from engine.ground import layout as L
from engine.regimes.hmm import (
    floor_covars,
    gaussian_params,
    gaussian_state_size,
    sanitize_transmat,
    unpack_gaussian,
    window_loglik,
)
from engine.regimes.inputs import Inputs
from engine.regimes.online_nb import filter_rows_nb


def _model(cov: str, k: int, d: int, seed: int) -> GaussianHMM:
    rng = np.random.default_rng(seed)
    m = GaussianHMM(k, covariance_type=cov)
    m.n_features = d
    m.startprob_ = rng.dirichlet(np.ones(k))
    m.transmat_ = sanitize_transmat(rng.dirichlet(np.ones(k) * 2.0, size=k) + 3 * np.eye(k))
    m.means_ = rng.normal(size=(k, d))
    if cov == "full":
        a = rng.normal(size=(k, d, d))
        m.covars_ = a @ a.transpose(0, 2, 1) + 0.3 * np.eye(d)
    else:
        m.covars_ = rng.uniform(0.3, 2.0, size=(k, d))
    return m


@pytest.mark.parametrize(("cov", "k", "d"), [("full", 3, 6), ("diag", 3, 2), ("full", 2, 1)])
def test_forward_filter_matches_hmmlearn(cov: str, k: int, d: int) -> None:
    m = _model(cov, k, d, seed=k * 10 + d)
    x, _ = m.sample(250, random_state=1)
    # an outlier far from every state must not break the scaled filter
    x[100] += 40.0
    inputs = Inputs(tuple(range(d)), (False,) * d)
    covars = np.asarray(m.covars_)  # hmmlearn always returns (K, d, d)
    p = gaussian_params(
        L.DET_HMM,
        inputs,
        np.zeros(d),
        np.ones(d),
        m.startprob_,
        m.transmat_,
        m.means_,
        covars,
        full=cov == "full",
        iid=False,
    )
    post = filter_rows_nb(p, x, np.zeros((x.shape[0], 1)), gaussian_state_size(k, d), k)
    for t in range(x.shape[0]):
        np.testing.assert_allclose(post[t], m.predict_proba(x[: t + 1])[-1], rtol=0, atol=1e-8)
    # the filter's log normalisers sum to hmmlearn's log-likelihood
    ll = window_loglik(p, x, np.zeros((x.shape[0], 0)))
    assert ll * x.shape[0] == pytest.approx(m.score(x), rel=1e-9, abs=1e-6)


def test_standardization_is_applied_online() -> None:
    """Params store the training mean/scale; raw inputs are standardized in the kernel."""
    m = _model("full", 3, 2, seed=5)
    z, _ = m.sample(200, random_state=2)
    mean, scale = np.array([0.01, -3.0]), np.array([0.02, 0.5])
    raw = z * scale + mean
    p = gaussian_params(
        L.DET_HMM,
        Inputs((0, 1), (False, False)),
        mean,
        scale,
        m.startprob_,
        m.transmat_,
        m.means_,
        np.asarray(m.covars_),
        full=True,
        iid=False,
    )
    post = filter_rows_nb(p, raw, np.zeros((200, 1)), gaussian_state_size(3, 2), 3)
    np.testing.assert_allclose(post[-1], m.predict_proba(z)[-1], atol=1e-8)


def test_unpack_roundtrip() -> None:
    m = _model("full", 3, 3, seed=9)
    p = gaussian_params(
        L.DET_HMM,
        Inputs((0, 1, 2), (False,) * 3),
        np.zeros(3),
        np.ones(3),
        m.startprob_,
        m.transmat_,
        m.means_,
        np.asarray(m.covars_),
        full=True,
        iid=False,
    )
    g = unpack_gaussian(p)
    np.testing.assert_allclose(g["covars"], m.covars_, atol=1e-10)
    np.testing.assert_allclose(g["trans"], m.transmat_)


def test_degenerate_transition_rows_and_collapsed_covariances() -> None:
    a = np.array([[0.5, 0.5, 0.0], [np.nan, 0.0, 0.0], [0.0, 0.0, 0.0]])
    s = sanitize_transmat(a)
    assert np.all(np.isfinite(s)) and np.all(s > 0)
    np.testing.assert_allclose(s.sum(axis=1), 1.0)
    np.testing.assert_allclose(s[1], 1.0 / 3, atol=1e-7)
    c = np.stack([np.zeros((2, 2)), np.array([[1.0, 1.0], [1.0, 1.0]])])
    f = floor_covars(c, 1e-3)
    assert np.all(np.linalg.eigvalsh(f) >= 1e-3 - 1e-12)

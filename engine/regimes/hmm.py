"""Gaussian-emission detectors: HMM (compiled Baum-Welch, or hmmlearn), Gaussian mixture
and k-means (scikit-learn).

All three share one online kernel (:func:`engine.regimes.online_nb.gaussian_update_nb`):
the HMM runs the scaled forward filter, the mixture and k-means use the same emission
block with i.i.d. states (prior = mixture weights / uniform). Fits happen on trailing
windows of standardized inputs (statistics from the window only, stored in the
parameters); states are put in ascending-volatility order after every fit, so the
posterior carried in the filter state keeps its meaning across refits.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from engine.ground import layout as L
from engine.regimes.inputs import (
    Inputs,
    Schedule,
    body_offset,
    default_labels,
    header,
    labelled_stats,
    standardize,
    state_order,
    stored_standardization,
    varying_design,
)
from engine.regimes.online_nb import score_rows_nb
from engine.regimes.threads import fit_threads

TRANS_FLOOR = 1e-8


# ---------------------------------------------------------------- parameter packing
def sanitize_transmat(a: np.ndarray) -> np.ndarray:
    """Fix degenerate rows (NaN, all-zero: uniform) and floor every entry (no zeros)."""
    a = np.array(a, dtype=np.float64)
    k = a.shape[0]
    for i in range(k):
        row = a[i]
        if not np.all(np.isfinite(row)) or row.sum() <= 0.0 or np.any(row < 0):
            a[i] = 1.0 / k
    a = a + TRANS_FLOOR
    return a / a.sum(axis=1, keepdims=True)


def floor_covars(covars: np.ndarray, floor: float) -> np.ndarray:
    """Symmetrize and clip the eigenvalues of each ``(d, d)`` covariance at ``floor``."""
    out = np.empty_like(covars)
    for k in range(covars.shape[0]):
        c = 0.5 * (covars[k] + covars[k].T)
        if not np.all(np.isfinite(c)):
            c = np.eye(c.shape[0])
        w, v = np.linalg.eigh(c)
        out[k] = (v * np.maximum(w, floor)) @ v.T
    return out


def gaussian_body(
    start: np.ndarray, trans: np.ndarray, means: np.ndarray, covars: np.ndarray, full: bool
) -> np.ndarray:
    """Body of the gaussian kernel: start, transitions, means, precision factors, consts."""
    k, d = means.shape
    u = np.zeros((k, d, d))
    lc = np.zeros(k)
    for s in range(k):
        if full:
            chol = np.linalg.cholesky(covars[s])
            u[s] = np.linalg.inv(chol)
        else:
            u[s] = np.diag(1.0 / np.sqrt(np.diag(covars[s])))
        lc[s] = -0.5 * d * np.log(2.0 * np.pi) + np.sum(np.log(np.diag(u[s])))
    return np.concatenate([start, trans.ravel(), means.ravel(), u.ravel(), lc])


def gaussian_params(
    kind: int,
    inputs: Inputs,
    mean: np.ndarray,
    scale: np.ndarray,
    start: np.ndarray,
    trans: np.ndarray,
    means: np.ndarray,
    covars: np.ndarray,
    *,
    full: bool,
    iid: bool,
) -> np.ndarray:
    k = means.shape[0]
    h = header(kind, k, inputs, mean, scale)
    h[L.DX_COV_FULL] = 1.0 if full else 0.0
    h[L.DX_A] = 1.0 if iid else 0.0
    return np.concatenate([h, gaussian_body(start, trans, means, covars, full)])


def unpack_gaussian(params: np.ndarray) -> dict[str, np.ndarray]:
    """start, trans, means, covars (standardized space) of a gaussian parameter vector."""
    k = int(params[L.D_N_STATES])
    d = int(params[L.DX_N_IN])
    o = body_offset(d)
    start = params[o : o + k]
    o += k
    trans = params[o : o + k * k].reshape(k, k)
    o += k * k
    means = params[o : o + k * d].reshape(k, d)
    o += k * d
    u = params[o : o + k * d * d].reshape(k, d, d)
    covars = np.empty((k, d, d))
    for s in range(k):
        inv = np.linalg.inv(u[s])
        covars[s] = inv @ inv.T
    return {"start": start.copy(), "trans": trans.copy(), "means": means.copy(), "covars": covars}


def gaussian_state_size(k: int, d: int) -> int:
    return L.DXS_HEADER + 2 * k + d


def window_loglik(params: np.ndarray, features: np.ndarray, exog: np.ndarray) -> float:
    """Per-sample log-likelihood of ``params`` on raw rows, in the *raw* input space (the
    standardization Jacobian is removed, so models with different windows compare)."""
    k = int(params[L.D_N_STATES])
    d = int(params[L.DX_N_IN])
    n = features.shape[0]
    if n == 0:
        return -np.inf
    ex = exog if exog.shape[1] > 0 else np.zeros((n, 1))
    total = float(
        score_rows_nb(
            np.ascontiguousarray(params, dtype=np.float64),
            np.ascontiguousarray(features, dtype=np.float64),
            np.ascontiguousarray(ex, dtype=np.float64),
            gaussian_state_size(k, d),
            k,
        )
    )
    _, scale = stored_standardization(params)
    return total / n - float(np.sum(np.log(scale)))


def reorder(
    perm: np.ndarray, start: np.ndarray, trans: np.ndarray, means: np.ndarray, covars: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return start[perm], trans[np.ix_(perm, perm)], means[perm], covars[perm]


def _diag_var(covars: np.ndarray) -> np.ndarray:
    return np.stack([np.diag(c) for c in covars])


# ---------------------------------------------------------------- the HMM detector
@dataclass(frozen=True)
class GaussianHMMDetector:
    """Gaussian HMM fitted by EM (Baum-Welch) on a trailing window; forward filter online.

    ``fitter="numba"`` (default) runs the compiled Baum-Welch of
    :mod:`engine.regimes.hmm_fit_nb`; ``"hmmlearn"`` runs ``hmmlearn``'s ``GaussianHMM``,
    the reference the compiled one reproduces (same starts, M-step, priors and stopping
    rule; log-likelihoods and posteriors equal to rounding). BLAS/OpenMP threads are held
    at one during a fit (:func:`engine.regimes.threads.fit_threads`).

    Failure handling: the first fit runs ``n_restarts`` EM fits (k-means++ starts, seeds
    ``seed ..``); a refit runs a warm start from the previous model plus ``refit_restarts``
    random ones (seeds salted with the fit bar); best log-likelihood wins; fits that raise
    or give
    non-finite parameters are dropped; covariances are floored (``min_covar`` on the
    eigenvalues, standardized units); degenerate transition rows are replaced by uniform
    rows and every transition is floored at 1e-8. The previous model is kept when the new
    one's per-sample log-likelihood on the current window is worse by more than
    ``keep_margin`` nats, or when every restart failed.
    """

    inputs: Inputs
    n_states: int = 3
    covariance: str = "full"  # or "diag"
    schedule: Schedule = field(default_factory=Schedule)
    n_restarts: int = 3
    refit_restarts: int = 1
    n_iter: int = 100
    tol: float = 1e-2
    min_covar: float = 1e-3
    keep_margin: float = 0.0
    seed: int = 0
    fitter: str = "numba"  # or "hmmlearn" (the reference)
    name: str = "hmm"
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.covariance not in ("full", "diag"):
            raise ValueError(f"hmm covariance must be 'full' or 'diag', got {self.covariance!r}")
        if self.fitter not in ("numba", "hmmlearn"):
            raise ValueError(f"hmm fitter must be 'numba' or 'hmmlearn', got {self.fitter!r}")
        if not self.labels:
            object.__setattr__(self, "labels", default_labels(self.n_states))

    def state_size(self, n_features: int) -> int:
        return gaussian_state_size(self.n_states, self.inputs.d)

    def fit_bars(self, n_bars: int) -> np.ndarray:
        return self.schedule.fit_bars(n_bars)

    def _candidates(
        self, z: np.ndarray, warm: dict[str, np.ndarray] | None, salt: int = 0
    ) -> list[tuple[float, EMFit]]:
        k = self.n_states
        models: list[tuple[float, EMFit]] = []
        inits: list[int | None] = [None] if warm is not None else []
        n_random = self.n_restarts if warm is None else self.refit_restarts
        inits += [self.seed + s + salt for s in range(n_random)]
        for s in inits:
            if s is not None:
                # k-means++ seeding (no Lloyd iterations: cheap, no thread pools)
                start, trans, means, covars = _random_init(z, k, s)
            elif warm is not None:
                start, trans = warm["start"], warm["trans"]
                means, covars = warm["means"], warm["covars"]
            res = em_fit(
                z,
                start,
                trans,
                means,
                covars,
                covariance=self.covariance,
                n_iter=self.n_iter,
                tol=self.tol,
                min_covar=self.min_covar,
                fitter=self.fitter,
                seed=s if s is not None else self.seed,
            )
            if res is not None:
                models.append((res.score, res))
        return models

    def fit(
        self, features: np.ndarray, exog: np.ndarray, previous: np.ndarray | None
    ) -> np.ndarray:
        with fit_threads(1):
            return self._fit(features, exog, previous)

    def _fit(
        self, features: np.ndarray, exog: np.ndarray, previous: np.ndarray | None
    ) -> np.ndarray:
        n = features.shape[0]
        rows = self.schedule.rows(n)
        x = varying_design(self.inputs, self.schedule, features, exog, previous)
        if x is None:
            assert previous is not None
            return previous  # a refit on a window that stood still: the model so far
        z, mean, scale = standardize(x)
        warm = None
        if previous is not None:
            warm = _restandardize(unpack_gaussian(previous), previous, mean, scale)
        cands = self._candidates(z, warm, salt=0 if warm is None else n)
        if not cands:
            if previous is not None:
                return previous
            return _fallback_params(self, z, mean, scale)
        _, best = max(cands, key=lambda c: c[0])
        full = self.covariance == "full"
        trans = sanitize_transmat(best.trans)
        covars = floor_covars(best.covars, self.min_covar)
        means = best.means
        start = best.start
        perm = state_order(means, _diag_var(covars), self.inputs)
        start, trans, means, covars = reorder(perm, start, trans, means, covars)
        params = gaussian_params(
            L.DET_HMM, self.inputs, mean, scale, start, trans, means, covars, full=full, iid=False
        )
        # start the filter from the predicted state of the bar after the window
        last = filtered_last(params, features[rows], exog[rows])
        o = body_offset(self.inputs.d)
        params[o : o + self.n_states] = last @ trans
        if previous is not None and previous.shape == params.shape:
            new_ll = window_loglik(params, features[rows], exog[rows])
            old_ll = window_loglik(previous, features[rows], exog[rows])
            if not np.isfinite(new_ll) or new_ll < old_ll - self.keep_margin:
                return previous
        return params


class EMFit(NamedTuple):
    """One EM run: the log-likelihood of the final parameters and the parameters
    (covariances always ``(K, D, D)``), with the number of EM iterations run."""

    score: float
    start: np.ndarray
    trans: np.ndarray
    means: np.ndarray
    covars: np.ndarray
    n_iter: int


def em_fit(
    z: np.ndarray,
    start: np.ndarray,
    trans: np.ndarray,
    means: np.ndarray,
    covars: np.ndarray,
    *,
    covariance: str = "full",
    n_iter: int = 100,
    tol: float = 1e-2,
    min_covar: float = 1e-3,
    fitter: str = "numba",
    seed: int = 0,
) -> EMFit | None:
    """Baum-Welch (EM) for a Gaussian HMM from the given starting parameters.

    ``fitter="numba"`` runs :func:`engine.regimes.hmm_fit_nb.baum_welch_nb`,
    ``"hmmlearn"`` runs ``hmmlearn.hmm.GaussianHMM.fit`` (``init_params=""``,
    ``params="stmc"``, hmmlearn's default priors): the same algorithm, the same stopping
    rule, results equal to rounding. ``covars`` is ``(K, D, D)`` for both kinds (the
    diagonal kind reads its diagonals). ``None`` when the fit fails (hmmlearn raises, a
    covariance is not positive definite, the log-likelihood or the means are not finite).
    """
    if fitter == "numba":
        res = _em_numba(z, start, trans, means, covars, covariance == "full", n_iter, tol)
    elif fitter == "hmmlearn":
        res = _em_hmmlearn(z, start, trans, means, covars, covariance, n_iter, tol, min_covar, seed)
    else:
        raise ValueError(f"hmm fitter must be 'numba' or 'hmmlearn', got {fitter!r}")
    if res is None or not np.isfinite(res.score) or not np.all(np.isfinite(res.means)):
        return None
    return res


def _sums_to_one(a: np.ndarray) -> bool:
    """hmmlearn's ``_check_sum_1`` (``np.allclose(sums, 1)``, which raises before fitting
    when this is False), without ``allclose``'s overhead."""
    err = np.abs(np.asarray(a).sum(axis=-1) - 1.0)
    return bool(np.all(err <= 1e-8 + 1e-5))


def _em_numba(
    z: np.ndarray,
    start: np.ndarray,
    trans: np.ndarray,
    means: np.ndarray,
    covars: np.ndarray,
    full: bool,
    n_iter: int,
    tol: float,
) -> EMFit | None:
    from engine.regimes.hmm_fit_nb import FIT_OK, baum_welch_nb, default_priors

    if not (_sums_to_one(start) and _sums_to_one(trans)):
        return None
    f64 = np.float64
    status, score, iters, s, a, m, c = baum_welch_nb(
        np.ascontiguousarray(z, dtype=f64),
        np.ascontiguousarray(start, dtype=f64),
        np.ascontiguousarray(trans, dtype=f64),
        np.ascontiguousarray(means, dtype=f64),
        np.ascontiguousarray(covars, dtype=f64),
        bool(full),
        int(n_iter),
        float(tol),
        default_priors(),
    )
    if status != FIT_OK:
        return None
    return EMFit(float(score), s, a, m, c, int(iters))


def _em_hmmlearn(
    z: np.ndarray,
    start: np.ndarray,
    trans: np.ndarray,
    means: np.ndarray,
    covars: np.ndarray,
    covariance: str,
    n_iter: int,
    tol: float,
    min_covar: float,
    seed: int,
) -> EMFit | None:
    from hmmlearn.hmm import GaussianHMM

    logging.getLogger("hmmlearn").setLevel(logging.ERROR)
    m = GaussianHMM(
        n_components=start.shape[0],
        covariance_type=covariance,
        n_iter=n_iter,
        tol=tol,
        min_covar=min_covar,
        random_state=seed,
        init_params="",
        params="stmc",
    )
    m.startprob_, m.transmat_, m.means_ = start, trans, means
    m.covars_ = covars if covariance == "full" else _diag_var(covars)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m.fit(z)
        score = float(m.score(z))
    except (ValueError, np.linalg.LinAlgError, FloatingPointError):
        return None
    return EMFit(
        score,
        np.asarray(m.startprob_),
        np.asarray(m.transmat_),
        np.asarray(m.means_),
        np.asarray(m.covars_),
        len(m.monitor_.history),
    )


def _random_init(
    z: np.ndarray, k: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """EM starting point: k-means++ means, the window covariance, sticky transitions."""
    means = _kmeans_plusplus(z, k, seed)
    d = z.shape[1]
    cov = np.atleast_2d(np.cov(z, rowvar=False)) + 1e-3 * np.eye(d)
    stay = 0.95 if k > 1 else 1.0
    trans = np.full((k, k), (1.0 - stay) / max(k - 1, 1))
    np.fill_diagonal(trans, stay)
    return np.full(k, 1.0 / k), trans, np.asarray(means), np.repeat(cov[None], k, axis=0)


def _kmeans_plusplus(z: np.ndarray, k: int, seed: int) -> np.ndarray:
    """``sklearn.cluster.kmeans_plusplus(z, k, random_state=seed)[0]``, bit for bit (a test
    compares them): scikit-learn's greedy k-means++ seeding (``2 + int(log k)`` local
    trials, unit sample weights, squared distances as ``-2 x.y + |x|^2 + |y|^2`` clipped at
    0) in plain numpy, with the same draws from ``RandomState(seed)``. Written out so a
    backtest does not import scikit-learn (and the scipy.stats it imports, about 1 s)."""
    z = np.ascontiguousarray(z, dtype=np.float64)
    n, d = z.shape
    rs = np.random.RandomState(seed)
    w = np.ones(n)
    z_sq = np.einsum("ij,ij->i", z, z)[None, :]
    centers = np.empty((k, d), dtype=np.float64)
    n_trials = 2 + int(np.log(k))
    first = rs.choice(n, p=w / w.sum())
    centers[0] = z[first]
    closest = _sq_distances(centers[0, np.newaxis], z, z_sq)
    pot = closest @ w
    for c in range(1, k):
        draws = rs.uniform(size=n_trials) * pot
        ids = np.searchsorted(np.cumsum(w * closest), draws)
        np.clip(ids, None, closest.size - 1, out=ids)
        dist = _sq_distances(z[ids], z, z_sq)
        np.minimum(closest, dist, out=dist)
        cand_pot = dist @ w.reshape(-1, 1)
        best = np.argmin(cand_pot)
        pot = cand_pot[best]
        closest = dist[best]
        centers[c] = z[ids[best]]
    return centers


def _sq_distances(x: np.ndarray, y: np.ndarray, y_sq: np.ndarray) -> np.ndarray:
    """scikit-learn's ``_euclidean_distances(x, y, Y_norm_squared=..., squared=True)`` for
    float64 arrays, operation for operation."""
    out = -2 * (x @ y.T)
    out += np.einsum("ij,ij->i", x, x)[:, None]
    out += y_sq
    np.maximum(out, np.asarray(0, dtype=out.dtype), out=out)
    return out


def filtered_last(params: np.ndarray, features: np.ndarray, exog: np.ndarray) -> np.ndarray:
    """Filtered posterior at the last of ``rows`` (forward filter from ``start``)."""
    from engine.regimes.online_nb import filter_rows_nb

    k = int(params[L.D_N_STATES])
    d = int(params[L.DX_N_IN])
    n = features.shape[0]
    ex = exog if exog.shape[1] > 0 else np.zeros((n, 1))
    post = filter_rows_nb(
        np.ascontiguousarray(params),
        np.ascontiguousarray(features, dtype=np.float64),
        np.ascontiguousarray(ex, dtype=np.float64),
        gaussian_state_size(k, d),
        k,
    )
    return np.asarray(post[-1]) if n else np.full(k, 1.0 / k)


def _restandardize(
    g: dict[str, np.ndarray], previous: np.ndarray, mean: np.ndarray, scale: np.ndarray
) -> dict[str, np.ndarray] | None:
    """Express a previous model in the new window's standardized units (for a warm start)."""
    old_mean, old_scale = stored_standardization(previous)
    if old_mean.shape != mean.shape:
        return None
    a = old_scale / scale
    means = (g["means"] * old_scale + old_mean - mean) / scale
    covars = g["covars"] * np.outer(a, a)[None, :, :]
    return {"start": g["start"], "trans": g["trans"], "means": means, "covars": covars}


def _fallback_params(
    det: GaussianHMMDetector, z: np.ndarray, mean: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """Every EM restart failed and there is no previous model: quantile states of |z|."""
    k = det.n_states
    rough = np.abs(z).sum(axis=1)
    edges = np.quantile(rough, np.linspace(0.0, 1.0, k + 1)[1:-1])
    means, var = labelled_stats(z, np.searchsorted(edges, rough), k)
    var = np.where(np.isfinite(var), np.maximum(var, det.min_covar), 1.0)
    covars = np.stack([np.diag(v) for v in var])
    stay = 0.95 if k > 1 else 1.0
    trans = sanitize_transmat(
        np.full((k, k), (1.0 - stay) / max(k - 1, 1))
        + np.eye(k) * (stay - (1.0 - stay) / max(k - 1, 1))
    )
    perm = state_order(means, var, det.inputs)
    start, trans, means, covars = reorder(perm, np.full(k, 1.0 / k), trans, means, covars)
    return gaussian_params(
        L.DET_HMM,
        det.inputs,
        mean,
        scale,
        start,
        trans,
        means,
        covars,
        full=det.covariance == "full",
        iid=False,
    )

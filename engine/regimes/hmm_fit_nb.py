"""Baum-Welch for Gaussian-emission HMMs (njit): hmmlearn's ``GaussianHMM.fit``, compiled.

:func:`baum_welch_nb` runs the EM iterations of ``hmmlearn.hmm.GaussianHMM`` (0.3.x) from
given starting parameters (hmmlearn's ``init_params=""``, ``params="stmc"``), for full or
diagonal covariances, with hmmlearn's priors (Dirichlet on the start and transition
probabilities, normal on the means, inverse Wishart / inverse gamma on the covariances),
its M-step and its stopping rule: iteration ``i`` computes the log-likelihood of the
current parameters (E-step), updates them (M-step), and stops after ``n_iter`` iterations
or as soon as the log-likelihood gained on the previous iteration is below ``tol``
(a decrease stops too). The returned score is the log-likelihood of the final parameters
(hmmlearn's ``score`` after ``fit``).

The forward-backward pass is the scaled one (probabilities normalised at every bar, the
emission densities shifted by their row maximum before ``exp``), which gives hmmlearn's
log-space lattice results to rounding. A fit that hmmlearn would reject (a covariance
that is not positive definite even with ``1e-7`` added to its diagonal, a non-finite
log-likelihood) returns status ``FIT_FAILED``.

Arrays are float64 and C-contiguous; covariances are always passed and returned as
``(K, D, D)`` matrices (the diagonal kind reads and writes only their diagonals).
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

FIT_OK = 0
FIT_FAILED = 1

# priors vector layout (hmmlearn's GaussianHMM arguments)
P_STARTPROB = 0
P_TRANSMAT = 1
P_MEANS = 2
P_MEANS_WEIGHT = 3
P_COVARS = 4
P_COVARS_WEIGHT = 5
N_PRIORS = 6

_LOG_2PI = math.log(2.0 * math.pi)
_TINY = np.finfo(np.float64).tiny
_CHOL_JITTER = 1e-7  # hmmlearn's retry when a covariance's Cholesky factorisation fails


def default_priors() -> np.ndarray:
    """hmmlearn's defaults: startprob/transmat 1, means 0 (weight 0), covars 1e-2 (weight 1)."""
    p = np.zeros(N_PRIORS)
    p[P_STARTPROB] = 1.0
    p[P_TRANSMAT] = 1.0
    p[P_MEANS] = 0.0
    p[P_MEANS_WEIGHT] = 0.0
    p[P_COVARS] = 1e-2
    p[P_COVARS_WEIGHT] = 1.0
    return p


@nb.njit(cache=True, error_model="numpy")
def _cholesky_nb(a: np.ndarray, jitter: float, out: np.ndarray) -> bool:
    """Lower Cholesky factor of ``a + jitter * I`` into ``out``; False if not positive."""
    d = a.shape[0]
    for j in range(d):
        s = a[j, j] + jitter
        for m in range(j):
            s -= out[j, m] * out[j, m]
        if not s > 0.0:
            return False
        ljj = math.sqrt(s)
        out[j, j] = ljj
        for i in range(j + 1, d):
            t = a[i, j]
            for m in range(j):
                t -= out[i, m] * out[j, m]
            out[i, j] = t / ljj
        for i in range(j):
            out[i, j] = 0.0
    return True


@nb.njit(cache=True, error_model="numpy")
def log_emissions_nb(
    x: np.ndarray, means: np.ndarray, covars: np.ndarray, full: bool, out: np.ndarray
) -> bool:
    """``out[t, s] = log N(x[t] | means[s], covars[s])``; False where hmmlearn raises.

    Full: Cholesky (retried with ``1e-7`` on the diagonal, as hmmlearn does) and a forward
    substitution per row; diagonal: variances floored at the smallest positive float."""
    n, d = x.shape
    k = means.shape[0]
    chol = np.zeros((d, d))
    sol = np.empty(d)
    for s in range(k):
        if full:
            if not _cholesky_nb(covars[s], 0.0, chol):
                if not _cholesky_nb(covars[s], _CHOL_JITTER, chol):
                    return False
            logdet = 0.0
            for j in range(d):
                logdet += math.log(chol[j, j])
            const = d * _LOG_2PI + 2.0 * logdet
            for t in range(n):
                q = 0.0
                for i in range(d):
                    v = x[t, i] - means[s, i]
                    for m in range(i):
                        v -= chol[i, m] * sol[m]
                    v /= chol[i, i]
                    sol[i] = v
                    q += v * v
                out[t, s] = -0.5 * (const + q)
        else:
            logdet = 0.0
            for j in range(d):
                logdet += math.log(max(covars[s, j, j], _TINY))
            const = d * _LOG_2PI + logdet
            for t in range(n):
                q = 0.0
                for j in range(d):
                    v = x[t, j] - means[s, j]
                    q += v * v / max(covars[s, j, j], _TINY)
                out[t, s] = -0.5 * (const + q)
    return True


@nb.njit(cache=True, error_model="numpy")
def forward_backward_nb(
    logb: np.ndarray,
    start: np.ndarray,
    trans: np.ndarray,
    gamma: np.ndarray,
    xi_sum: np.ndarray,
    smooth: bool,
) -> float:
    """Scaled forward(-backward) pass; returns the log-likelihood (NaN if it degenerates).

    With ``smooth``, writes the posteriors ``gamma`` (T, K) and the summed expected
    transitions ``xi_sum`` (K, K); else only the forward pass runs."""
    n, k = logb.shape
    b = np.empty((n, k))
    alpha = np.empty((n, k))
    scale = np.empty(n)
    ll = 0.0
    for t in range(n):
        m = -np.inf
        for j in range(k):
            if logb[t, j] > m:
                m = logb[t, j]
        if not math.isfinite(m):
            return np.nan
        c = 0.0
        for j in range(k):
            bj = math.exp(logb[t, j] - m)
            b[t, j] = bj
            if t == 0:
                a = start[j] * bj
            else:
                a = 0.0
                for i in range(k):
                    a += alpha[t - 1, i] * trans[i, j]
                a *= bj
            alpha[t, j] = a
            c += a
        if not (c > 0.0 and math.isfinite(c)):
            return np.nan
        for j in range(k):
            alpha[t, j] /= c
        scale[t] = c
        ll += math.log(c) + m
    if not smooth:
        return ll
    beta = np.empty(k)
    nxt = np.empty(k)
    for j in range(k):
        beta[j] = 1.0
    xi_sum[:, :] = 0.0
    for t in range(n - 1, -1, -1):
        if t < n - 1:
            # beta[t] from beta[t + 1]; xi(t, t + 1) accumulated on the way
            inv = 1.0 / scale[t + 1]
            for j in range(k):
                nxt[j] = b[t + 1, j] * beta[j] * inv
            for i in range(k):
                acc = 0.0
                for j in range(k):
                    w = trans[i, j] * nxt[j]
                    acc += w
                    xi_sum[i, j] += alpha[t, i] * w
                beta[i] = acc
        tot = 0.0
        for j in range(k):
            g = alpha[t, j] * beta[j]
            gamma[t, j] = g
            tot += g
        if tot > 0.0:
            for j in range(k):
                gamma[t, j] /= tot
    return ll


@nb.njit(cache=True, error_model="numpy")
def _mstep_nb(
    x: np.ndarray,
    gamma: np.ndarray,
    xi_sum: np.ndarray,
    full: bool,
    priors: np.ndarray,
    start: np.ndarray,
    trans: np.ndarray,
    means: np.ndarray,
    covars: np.ndarray,
) -> None:
    """hmmlearn's ``GaussianHMM._do_mstep`` (params "stmc"), in place."""
    n, d = x.shape
    k = gamma.shape[1]
    # start and transitions: Dirichlet MAP, forbidden (zero) entries stay zero
    tot = 0.0
    for j in range(k):
        v = max(priors[P_STARTPROB] - 1.0 + gamma[0, j], 0.0)
        if start[j] == 0.0:
            v = 0.0
        start[j] = v
        tot += v
    for j in range(k):
        start[j] /= tot
    if n > 1:
        for i in range(k):
            tot = 0.0
            for j in range(k):
                v = max(priors[P_TRANSMAT] - 1.0 + xi_sum[i, j], 0.0)
                if trans[i, j] == 0.0:
                    v = 0.0
                trans[i, j] = v
                tot += v
            if tot == 0.0:
                tot = 1.0
            for j in range(k):
                trans[i, j] /= tot
    # sufficient statistics of the emissions
    post = np.zeros(k)
    obs = np.zeros((k, d))
    obs2 = np.zeros((k, d, d))
    for t in range(n):
        for s in range(k):
            g = gamma[t, s]
            post[s] += g
            for i in range(d):
                gx = g * x[t, i]
                obs[s, i] += gx
                if full:
                    for j in range(d):
                        obs2[s, i, j] += gx * x[t, j]
                else:
                    obs2[s, i, i] += gx * x[t, i]
    mp = priors[P_MEANS]
    mw = priors[P_MEANS_WEIGHT]
    cp = priors[P_COVARS]
    cw = priors[P_COVARS_WEIGHT]
    for s in range(k):
        for i in range(d):
            means[s, i] = (mw * mp + obs[s, i]) / (mw + post[s])
    for s in range(k):
        if full:
            den = max(cw - d, 0.0) + post[s]
            for i in range(d):
                for j in range(d):
                    mdi = means[s, i] - mp
                    mdj = means[s, j] - mp
                    cn = (
                        mw * mdi * mdj
                        + obs2[s, i, j]
                        - obs[s, i] * means[s, j]
                        - obs[s, j] * means[s, i]
                        + means[s, i] * means[s, j] * post[s]
                    )
                    covars[s, i, j] = (cp + cn) / den
        else:
            den = max(max(cw - 1.0, 0.0) + post[s], 1e-5)
            for i in range(d):
                md = means[s, i] - mp
                cn = (
                    mw * md * md
                    + obs2[s, i, i]
                    - 2.0 * means[s, i] * obs[s, i]
                    + means[s, i] * means[s, i] * post[s]
                )
                covars[s, i, i] = (cp + cn) / den


@nb.njit(cache=True, error_model="numpy")
def baum_welch_nb(
    x: np.ndarray,
    start0: np.ndarray,
    trans0: np.ndarray,
    means0: np.ndarray,
    covars0: np.ndarray,
    full: bool,
    n_iter: int,
    tol: float,
    priors: np.ndarray,
) -> tuple[int, float, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """EM from the given parameters; ``(status, score, iterations, start, trans, means,
    covars)``, ``score`` being the log-likelihood of the returned parameters.

    ``x`` (T, D); ``start0`` (K,); ``trans0`` (K, K); ``means0`` (K, D); ``covars0``
    (K, D, D); ``priors`` see :func:`default_priors`. Inputs are not modified."""
    n, d = x.shape
    k = start0.shape[0]
    start = start0.copy()
    trans = trans0.copy()
    means = means0.copy()
    covars = np.zeros((k, d, d))
    for s in range(k):
        for i in range(d):
            if full:
                for j in range(d):
                    covars[s, i, j] = covars0[s, i, j]
            else:
                covars[s, i, i] = covars0[s, i, i]
    logb = np.empty((n, k))
    gamma = np.empty((n, k))
    xi_sum = np.zeros((k, k))
    prev = np.nan
    done = 0
    for it in range(n_iter):
        if not log_emissions_nb(x, means, covars, full, logb):
            return FIT_FAILED, np.nan, it, start, trans, means, covars
        ll = forward_backward_nb(logb, start, trans, gamma, xi_sum, True)
        if not math.isfinite(ll):
            return FIT_FAILED, np.nan, it, start, trans, means, covars
        _mstep_nb(x, gamma, xi_sum, full, priors, start, trans, means, covars)
        done = it + 1
        if it > 0 and ll - prev < tol:
            break
        prev = ll
    if not log_emissions_nb(x, means, covars, full, logb):
        return FIT_FAILED, np.nan, done, start, trans, means, covars
    score = forward_backward_nb(logb, start, trans, gamma, xi_sum, False)
    if not math.isfinite(score):
        return FIT_FAILED, np.nan, done, start, trans, means, covars
    return FIT_OK, score, done, start, trans, means, covars

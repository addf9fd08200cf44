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


_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split in two (Cody-Waite range reduction)
_LN2_LO = 1.90821492927058770002e-10
_EXP_MIN = -708.0  # below: 0 (exp(-708) ~ 3e-308, the normal range ends there)


@nb.njit(cache=True, error_model="numpy")
def _exp_nonpositive_nb(a: np.ndarray, work: np.ndarray) -> None:
    """``a = exp(a)`` in place for ``a <= 0`` (1-D, contiguous), within 2 ulp of libm.

    ``exp(r) * 2**j`` with ``|r| <= ln2 / 2`` (degree-13 Taylor polynomial) and ``2**j``
    built from its bits in ``work``: no call per element, so the loops vectorise (about
    3x libm's ``exp`` here; the E-step spends a third of its time in it otherwise)."""
    n = a.size
    bits = work.view(np.int64)
    for i in range(n):
        x = a[i]
        small = x < _EXP_MIN
        x = _EXP_MIN if small else x
        j = math.floor(x * _LOG2E + 0.5)
        r = (x - j * _LN2_HI) - j * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        a[i] = 0.0 if small else p
        bits[i] = (np.int64(j) + 1023) << 52
    for i in range(n):
        a[i] *= work[i]


@nb.njit(cache=True, error_model="numpy")
def emission_probs_nb(
    x: np.ndarray,
    means: np.ndarray,
    covars: np.ndarray,
    full: bool,
    b: np.ndarray,
    shift: np.ndarray,
    work: np.ndarray,
) -> bool:
    """Emission densities shifted by their row maximum: ``b[t, s] = exp(log N(x[t] |
    means[s], covars[s]) - shift[t])``, ``shift[t] = max_s log N(...)``. False where
    hmmlearn raises (a covariance not positive definite even with ``1e-7`` added to its
    diagonal) or a row has no finite density.

    Full: Cholesky and a forward substitution per row; diagonal: variances floored at the
    smallest positive float (both as hmmlearn's ``log_multivariate_normal_density``).
    ``work`` is scratch space shaped like ``b``."""
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
                b[t, s] = -0.5 * (const + q)
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
                b[t, s] = -0.5 * (const + q)
    for t in range(n):
        m = b[t, 0]
        for j in range(1, k):
            v = b[t, j]
            if v > m or v != v:  # a NaN wins: caught below, as hmmlearn's NaN would be
                m = v
        if not math.isfinite(m):
            return False
        shift[t] = m
        for j in range(k):
            b[t, j] -= m
    _exp_nonpositive_nb(b.reshape(n * k), work.reshape(n * k))
    return True


_RESCALE = 1e-100  # the forward pass renormalises when a row's mass falls below this


@nb.njit(cache=True, error_model="numpy")
def forward_nb(
    b: np.ndarray,
    shift: np.ndarray,
    start: np.ndarray,
    trans: np.ndarray,
    alpha: np.ndarray,
    inv_scale: np.ndarray,
) -> float:
    """Scaled forward pass over shifted emissions; returns the log-likelihood (NaN if the
    mass of a row is not positive).

    ``alpha[t]`` is proportional to the filtered posterior at ``t``; it is renormalised
    (``inv_scale[t]`` = 1 / its mass, else 1) only when its mass falls below 1e-100 and at
    the last row: every renormalisation is a division on the pass's critical path, and
    scaling is exact up to rounding wherever it happens (the mass never exceeds 1: the
    emissions are at most 1 after the shift)."""
    n, k = b.shape
    logc = 0.0
    for t in range(n):
        c = 0.0
        for j in range(k):
            if t == 0:
                a = start[j]
            else:
                a = 0.0
                for i in range(k):
                    a += alpha[t - 1, i] * trans[i, j]
            a *= b[t, j]
            alpha[t, j] = a
            c += a
        if c >= _RESCALE and t < n - 1:
            inv_scale[t] = 1.0
        else:
            if not c > 0.0:
                return np.nan
            inv = 1.0 / c
            for j in range(k):
                alpha[t, j] *= inv
            inv_scale[t] = inv
            logc += math.log(c)
    ll = logc
    for t in range(n):
        ll += shift[t]
    return ll


@nb.njit(cache=True, error_model="numpy")
def _colsum_nb(a: np.ndarray, ca: int, b: np.ndarray, cb: int, c: np.ndarray, cc: int) -> float:
    """``sum_t a[t, ca] * b[t, cb] * c[t, cc]`` (``cb``/``cc`` < 0: factor 1), four
    partial sums (a reduction, not a chain: independent of the pass's latency)."""
    n = a.shape[0]
    s0 = 0.0
    s1 = 0.0
    s2 = 0.0
    s3 = 0.0
    t = 0
    if cb < 0:
        while t + 4 <= n:
            s0 += a[t, ca]
            s1 += a[t + 1, ca]
            s2 += a[t + 2, ca]
            s3 += a[t + 3, ca]
            t += 4
        while t < n:
            s0 += a[t, ca]
            t += 1
    elif cc < 0:
        while t + 4 <= n:
            s0 += a[t, ca] * b[t, cb]
            s1 += a[t + 1, ca] * b[t + 1, cb]
            s2 += a[t + 2, ca] * b[t + 2, cb]
            s3 += a[t + 3, ca] * b[t + 3, cb]
            t += 4
        while t < n:
            s0 += a[t, ca] * b[t, cb]
            t += 1
    else:
        while t + 4 <= n:
            s0 += a[t, ca] * b[t, cb] * c[t, cc]
            s1 += a[t + 1, ca] * b[t + 1, cb] * c[t + 1, cc]
            s2 += a[t + 2, ca] * b[t + 2, cb] * c[t + 2, cc]
            s3 += a[t + 3, ca] * b[t + 3, cb] * c[t + 3, cc]
            t += 4
        while t < n:
            s0 += a[t, ca] * b[t, cb] * c[t, cc]
            t += 1
    return (s0 + s1) + (s2 + s3)


@nb.njit(cache=True, error_model="numpy")
def backward_stats_nb(
    x: np.ndarray,
    b: np.ndarray,
    trans: np.ndarray,
    alpha: np.ndarray,
    inv_scale: np.ndarray,
    full: bool,
    gamma: np.ndarray,
    xi_sum: np.ndarray,
    post: np.ndarray,
    obs: np.ndarray,
    obs2: np.ndarray,
) -> None:
    """Scaled backward pass after :func:`forward_nb`, then hmmlearn's sufficient
    statistics: ``gamma`` (T, K) the posteriors, ``xi_sum`` (expected transitions),
    ``post`` (sum of posteriors), ``obs`` (posterior-weighted sums of x) and ``obs2`` (of
    x x', or of x**2 on the diagonal for the diagonal kind). Overwrites ``b[1:]`` with
    ``b[t] * beta[t] / scale[t]`` (what the expected transitions need)."""
    n, d = x.shape
    k = b.shape[1]
    beta = np.ones(k)
    for t in range(n - 1, -1, -1):
        if t < n - 1:
            inv = inv_scale[t + 1]
            for j in range(k):
                b[t + 1, j] = b[t + 1, j] * beta[j] * inv
            for i in range(k):
                acc = 0.0
                for j in range(k):
                    acc += trans[i, j] * b[t + 1, j]
                beta[i] = acc
        tot = 0.0
        for j in range(k):
            g = alpha[t, j] * beta[j]
            gamma[t, j] = g
            tot += g
        inv_tot = 1.0 / tot
        for j in range(k):
            gamma[t, j] *= inv_tot
    for s in range(k):
        post[s] = _colsum_nb(gamma, s, x, -1, x, -1)
        for i in range(d):
            obs[s, i] = _colsum_nb(gamma, s, x, i, x, -1)
            for j in range(d):
                if full or j == i:
                    obs2[s, i, j] = _colsum_nb(gamma, s, x, i, x, j)
                else:
                    obs2[s, i, j] = 0.0
    if n > 1:
        for i in range(k):
            for j in range(k):
                xi_sum[i, j] = trans[i, j] * _colsum_nb(alpha[:-1], i, b[1:], j, b, -1)
    else:
        xi_sum[:, :] = 0.0


@nb.njit(cache=True, error_model="numpy")
def _mstep_nb(
    gamma: np.ndarray,
    xi_sum: np.ndarray,
    post: np.ndarray,
    obs: np.ndarray,
    obs2: np.ndarray,
    full: bool,
    priors: np.ndarray,
    start: np.ndarray,
    trans: np.ndarray,
    means: np.ndarray,
    covars: np.ndarray,
) -> None:
    """hmmlearn's ``GaussianHMM._do_mstep`` (params "stmc") from the statistics, in place."""
    k, d = means.shape
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
    for i in range(k):  # (a single row has no transitions: xi_sum stays zero)
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
    b = np.empty((n, k))
    shift = np.empty(n)
    alpha = np.empty((n, k))
    inv_scale = np.empty(n)
    work = np.empty((n, k))
    xi_sum = np.zeros((k, k))
    post = np.zeros(k)
    obs = np.zeros((k, d))
    obs2 = np.zeros((k, d, d))
    prev = np.nan
    done = 0
    for it in range(n_iter):
        if not emission_probs_nb(x, means, covars, full, b, shift, work):
            return FIT_FAILED, np.nan, it, start, trans, means, covars
        ll = forward_nb(b, shift, start, trans, alpha, inv_scale)
        if not math.isfinite(ll):
            return FIT_FAILED, np.nan, it, start, trans, means, covars
        backward_stats_nb(x, b, trans, alpha, inv_scale, full, work, xi_sum, post, obs, obs2)
        _mstep_nb(work, xi_sum, post, obs, obs2, full, priors, start, trans, means, covars)
        done = it + 1
        if it > 0 and ll - prev < tol:
            break
        prev = ll
    if not emission_probs_nb(x, means, covars, full, b, shift, work):
        return FIT_FAILED, np.nan, done, start, trans, means, covars
    score = forward_nb(b, shift, start, trans, alpha, inv_scale)
    if not math.isfinite(score):
        return FIT_FAILED, np.nan, done, start, trans, means, covars
    return FIT_OK, score, done, start, trans, means, covars

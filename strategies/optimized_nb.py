"""Regime-conditional moments for the ``optimized`` strategy (njit kernels).

Everything here is plain loops over plain arrays, so the same inputs give the same bits
wherever they are called from (the ahead-of-loop pass for the compiled driver and the
per-bar callback of the streaming driver / paper trading): no BLAS, no pairwise sums whose
blocking depends on memory layout.

Notation: ``R`` (n, N) simple returns of the trailing window, oldest first; ``P`` (n, K)
the filtered posterior of the bar each return ends on; ``d`` (n,) decay weights
(``0.5 ** (age / half_life)``). State ``k`` weighs observation ``s`` by ``d[s] * P[s, k]``.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True)
def simple_returns_nb(close: np.ndarray) -> np.ndarray:
    """``(n, N)`` simple returns of ``(n + 1, N)`` closes."""
    n = close.shape[0] - 1
    out = np.empty((max(n, 0), close.shape[1]))
    for s in range(n):
        for j in range(close.shape[1]):
            out[s, j] = close[s + 1, j] / close[s, j] - 1.0
    return out


@nb.njit(cache=True)
def decay_weights_nb(n: int, half_life: float) -> np.ndarray:
    """``0.5 ** (age / half_life)`` with age 0 for the newest of ``n`` rows (1 when
    ``half_life <= 0``: equal weights)."""
    d = np.ones(n)
    if half_life > 0.0:
        for s in range(n):
            d[s] = 0.5 ** ((n - 1 - s) / half_life)
    return d


@nb.njit(cache=True)
def state_moments_nb(
    R: np.ndarray, P: np.ndarray, d: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per state ``k``: weighted mean ``mu[k]`` (N,), weighted covariance ``cov[k]``
    (N, N, population form: weights normalised to 1, no bias correction), the weight mass
    ``mass[k] = sum_s d[s] P[s, k]`` and the effective number of observations
    ``ess[k] = mass**2 / sum_s (d[s] P[s, k])**2``.

    Equals ``np.average(R, weights=w, axis=0)`` and ``np.cov(R.T, aweights=w, ddof=0)``
    with ``w = d * P[:, k]`` (a test holds it to that)."""
    n, N = R.shape
    K = P.shape[1]
    mu = np.zeros((K, N))
    cov = np.zeros((K, N, N))
    mass = np.zeros(K)
    ess = np.zeros(K)
    for k in range(K):
        m = 0.0
        m2 = 0.0
        for s in range(n):
            w = d[s] * P[s, k]
            m += w
            m2 += w * w
        mass[k] = m
        if m <= 0.0:
            continue
        ess[k] = m * m / m2
        for s in range(n):
            w = d[s] * P[s, k] / m
            for i in range(N):
                mu[k, i] += w * R[s, i]
        for s in range(n):
            w = d[s] * P[s, k] / m
            for i in range(N):
                xi = R[s, i] - mu[k, i]
                for j in range(i + 1):
                    cov[k, i, j] += w * xi * (R[s, j] - mu[k, j])
        for i in range(N):
            for j in range(i):
                cov[k, j, i] = cov[k, i, j]
    return mu, cov, mass, ess


@nb.njit(cache=True)
def ledoit_wolf_nb(
    R: np.ndarray, w: np.ndarray, mu: np.ndarray, cov: np.ndarray
) -> tuple[np.ndarray, float]:
    """Ledoit–Wolf (2004) shrinkage of the weighted covariance ``cov`` towards
    ``tr(cov)/N * I``; observations weighted by ``w`` (normalised here).

    With equal weights this is :func:`sklearn.covariance.ledoit_wolf` of the centred data:
    ``delta = min(1, b2 / d2)``, ``d2 = ||S - m I||_F^2``, ``b2 = sum_s w_s^2
    ||x_s x_s' - S||_F^2``. Returns the shrunk matrix and the intensity."""
    n, N = R.shape
    total = 0.0
    for s in range(n):
        total += w[s]
    m = 0.0
    for i in range(N):
        m += cov[i, i]
    m /= N
    d2 = 0.0
    for i in range(N):
        for j in range(N):
            e = cov[i, j] - (m if i == j else 0.0)
            d2 += e * e
    b2 = 0.0
    if total > 0.0:
        for s in range(n):
            ws = w[s] / total
            if ws == 0.0:
                continue
            acc = 0.0
            for i in range(N):
                xi = R[s, i] - mu[i]
                for j in range(N):
                    e = xi * (R[s, j] - mu[j]) - cov[i, j]
                    acc += e * e
            b2 += ws * ws * acc
    delta = 1.0 if d2 <= 0.0 else min(1.0, b2 / d2)
    out = np.empty((N, N))
    for i in range(N):
        for j in range(N):
            out[i, j] = (1.0 - delta) * cov[i, j] + (delta * m if i == j else 0.0)
    return out, delta


@nb.njit(cache=True)
def shrink_fixed_nb(cov: np.ndarray, delta: float) -> np.ndarray:
    """``(1 - delta) cov + delta tr(cov)/N I``."""
    N = cov.shape[0]
    m = 0.0
    for i in range(N):
        m += cov[i, i]
    m /= N
    out = np.empty((N, N))
    for i in range(N):
        for j in range(N):
            out[i, j] = (1.0 - delta) * cov[i, j] + (delta * m if i == j else 0.0)
    return out


@nb.njit(cache=True)
def soft_transitions_nb(P: np.ndarray, d: np.ndarray, prior: float) -> np.ndarray:
    """Transition matrix from soft counts of the filtered posteriors:
    ``A[i, j] ∝ prior + sum_s d[s] P[s-1, i] P[s, j]`` (rows sum to 1)."""
    n, K = P.shape
    A = np.full((K, K), prior)
    for s in range(1, n):
        for i in range(K):
            a = d[s] * P[s - 1, i]
            for j in range(K):
                A[i, j] += a * P[s, j]
    for i in range(K):
        row = 0.0
        for j in range(K):
            row += A[i, j]
        for j in range(K):
            A[i, j] = A[i, j] / row if row > 0.0 else 1.0 / K
    return A


@nb.njit(cache=True)
def predict_nb(p: np.ndarray, A: np.ndarray) -> np.ndarray:
    """Next-period state probabilities ``pi = p A``."""
    K = p.shape[0]
    pi = np.zeros(K)
    for i in range(K):
        for j in range(K):
            pi[j] += p[i] * A[i, j]
    return pi


@nb.njit(cache=True)
def mixture_nb(pi: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Moments of the mixture: ``m = sum_k pi_k mu_k`` and
    ``S = sum_k pi_k (cov_k + mu_k mu_k') - m m'``."""
    K, N = mu.shape
    m = np.zeros(N)
    S = np.zeros((N, N))
    for k in range(K):
        for i in range(N):
            m[i] += pi[k] * mu[k, i]
    for k in range(K):
        for i in range(N):
            for j in range(N):
                S[i, j] += pi[k] * (cov[k, i, j] + mu[k, i] * mu[k, j])
    for i in range(N):
        for j in range(N):
            S[i, j] -= m[i] * m[j]
    for i in range(N):  # exact symmetry
        for j in range(i):
            a = 0.5 * (S[i, j] + S[j, i])
            S[i, j] = a
            S[j, i] = a
    return m, S


@nb.njit(cache=True)
def scenario_weights_nb(
    P: np.ndarray, d: np.ndarray, pi: np.ndarray, mass: np.ndarray
) -> np.ndarray:
    """Probability of each trailing return as a scenario of the next period:
    ``q[s] = sum_k pi_k d[s] P[s, k] / mass[k]`` (the mixture of the per-state weighted
    empirical distributions: its mean and covariance are the mixture's)."""
    n, K = P.shape
    q = np.zeros(n)
    for s in range(n):
        for k in range(K):
            if mass[k] > 0.0:
                q[s] += pi[k] * d[s] * P[s, k] / mass[k]
    total = 0.0
    for s in range(n):
        total += q[s]
    for s in range(n):
        q[s] /= total
    return q

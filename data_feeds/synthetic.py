"""Synthetic multi-asset bars driven by a hidden Markov regime (ground truth for detectors).

Model, bar ``t`` in state ``s_t`` (``K`` states, ``N`` assets):

* ``s_0`` is drawn from the stationary distribution of the transition matrix ``P``
  (``P[i, j] = Pr(s_t = j | s_{t-1} = i)``), then ``s_t ~ P[s_{t-1}]``;
* daily **log** close-to-close returns ``r_t ~ Normal(means[s_t], Sigma[s_t])`` with
  ``Sigma[k] = diag(vols[k]) @ corr[k] @ diag(vols[k])``; ``close_t = close_{t-1} * exp(r_t)``,
  starting from ``close_{-1} = 100``;
* ``open_t = close_{t-1} * exp(g_t)``, ``g_t ~ Normal(0, (gap_frac * vols[s_t])**2)``: a small
  overnight gap (``gap_frac=0`` makes open equal the previous close). Close-to-close returns
  do not depend on the gap;
* ``high_t = max(open_t, close_t) * exp(|u|)``, ``low_t = min(open_t, close_t) * exp(-|v|)``,
  ``u, v ~ Normal(0, (0.5 * vols[s_t])**2)``, so ``low <= open, close <= high``;
* ``volume_t = 1e6 * vols[s_t] / mean(vols) * exp(Normal(0, 0.25**2))`` (positive, higher in
  volatile states).

Bars fall on business days (Mon–Fri) from ``start``. Everything comes from
``np.random.default_rng(seed)``, so a seed gives the same panel on every platform.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from engine.ground.bars import BarPanel

__all__ = ["generate_regime_panel", "transition_from_dwell", "two_state_example"]


def transition_from_dwell(mean_dwell: npt.ArrayLike) -> np.ndarray:
    """Transition matrix whose state ``k`` lasts ``mean_dwell[k]`` bars on average.

    ``P[k, k] = 1 - 1/d_k``; the leaving probability is split evenly over the other states.
    """
    d = np.asarray(mean_dwell, dtype=np.float64).ravel()
    k = d.size
    if k == 0 or np.any(d < 1.0):
        raise ValueError(f"mean_dwell must be >= 1 bar for every state, got {d.tolist()}")
    if k == 1:
        return np.ones((1, 1))
    leave = 1.0 / d
    p = np.repeat((leave / (k - 1))[:, None], k, axis=1)
    np.fill_diagonal(p, 1.0 - leave)
    return p


def _stationary(p: np.ndarray) -> np.ndarray:
    k = p.shape[0]
    a = np.vstack([p.T - np.eye(k), np.ones((1, k))])
    b = np.zeros(k + 1)
    b[-1] = 1.0
    pi = np.linalg.lstsq(a, b, rcond=None)[0]
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def generate_regime_panel(
    n_bars: int,
    means: npt.ArrayLike,
    vols: npt.ArrayLike,
    corr: npt.ArrayLike | None = None,
    transition: npt.ArrayLike | None = None,
    *,
    mean_dwell: npt.ArrayLike | None = None,
    seed: int = 0,
    start: str = "2000-01-03",
    symbols: Sequence[str] | None = None,
    gap_frac: float = 0.1,
) -> tuple[BarPanel, np.ndarray]:
    """Simulate ``n_bars`` bars of ``N`` assets under a ``K``-state Markov regime.

    ``means``/``vols``: (K, N) daily log-return mean and volatility (a (K,) array means N=1).
    ``corr``: (K, N, N) per-state correlation, or (N, N) shared, default identity.
    ``transition``: (K, K) row-stochastic matrix; else built from ``mean_dwell`` (K,)
    (default 50 bars per state). Returns ``(panel, states)`` with ``states`` int64 (T,).
    """
    if n_bars < 1:
        raise ValueError(f"n_bars must be positive, got {n_bars}")
    mu = np.asarray(means, dtype=np.float64)
    sig = np.asarray(vols, dtype=np.float64)
    if mu.ndim == 1:
        mu = mu[:, None]
    if sig.ndim == 1:
        sig = sig[:, None]
    if mu.shape != sig.shape or mu.ndim != 2:
        raise ValueError(f"means {mu.shape} and vols {sig.shape} must both be (K, N)")
    k, n = mu.shape
    if np.any(sig < 0) or not np.all(np.isfinite(sig)) or not np.all(np.isfinite(mu)):
        raise ValueError("vols must be finite and non-negative, means finite")
    if corr is None:
        rho = np.broadcast_to(np.eye(n), (k, n, n)).copy()
    else:
        rho = np.asarray(corr, dtype=np.float64)
        if rho.shape == (n, n):
            rho = np.broadcast_to(rho, (k, n, n)).copy()
        if rho.shape != (k, n, n):
            raise ValueError(f"corr must be (K, N, N) = {(k, n, n)} or (N, N), got {rho.shape}")
    if transition is None:
        p = transition_from_dwell(
            np.full(k, 50.0) if mean_dwell is None else np.asarray(mean_dwell, dtype=np.float64)
        )
    else:
        p = np.asarray(transition, dtype=np.float64)
    if p.shape != (k, k):
        raise ValueError(f"transition matrix must be (K, K) = {(k, k)}, got {p.shape}")
    if np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0):
        raise ValueError("transition matrix rows must be non-negative and sum to 1")
    chol = np.empty((k, n, n))
    for s in range(k):
        try:
            chol[s] = np.linalg.cholesky(rho[s] + 1e-12 * np.eye(n))
        except np.linalg.LinAlgError:
            raise ValueError(f"corr[{s}] is not positive definite") from None
    if symbols is None:
        symbols = tuple(f"ASSET{j}" for j in range(n))
    if len(symbols) != n:
        raise ValueError(f"need {n} symbols, got {len(symbols)}")

    rng = np.random.default_rng(seed)
    # regime path
    states = np.empty(n_bars, dtype=np.int64)
    cum = np.cumsum(p, axis=1)
    u = rng.random(n_bars)
    states[0] = min(int(np.searchsorted(np.cumsum(_stationary(p)), u[0], side="right")), k - 1)
    for t in range(1, n_bars):
        states[t] = min(int(np.searchsorted(cum[states[t - 1]], u[t], side="right")), k - 1)
    # returns
    z = rng.standard_normal((n_bars, n))
    corr_z = np.empty_like(z)  # per state, not a (T, N, N) stack: fine for 1,000 assets
    for st in range(k):
        rows = states == st
        corr_z[rows] = z[rows] @ chol[st].T
    vol_t = sig[states]
    r = mu[states] + vol_t * corr_z
    close = 100.0 * np.exp(np.cumsum(r, axis=0))
    prev = np.vstack([np.full((1, n), 100.0), close[:-1]])
    open_ = prev * np.exp(gap_frac * vol_t * rng.standard_normal((n_bars, n)))
    top = np.maximum(open_, close)
    bot = np.minimum(open_, close)
    high = top * np.exp(np.abs(0.5 * vol_t * rng.standard_normal((n_bars, n))))
    low = bot * np.exp(-np.abs(0.5 * vol_t * rng.standard_normal((n_bars, n))))
    scale = vol_t / max(float(sig.mean()), 1e-12)
    volume = 1e6 * np.maximum(scale, 1e-3) * np.exp(0.25 * rng.standard_normal((n_bars, n)))
    try:
        index = pd.bdate_range(start=start, periods=n_bars).as_unit("ns")
    except (pd.errors.OutOfBoundsDatetime, OverflowError):
        raise ValueError(
            f"{n_bars} business days from {start} run past 2262-04-11, the last date a "
            "nanosecond timestamp can hold; use fewer bars or an earlier start"
        ) from None
    panel = BarPanel(
        index=pd.DatetimeIndex(index),
        symbols=tuple(symbols),
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        asset_classes=tuple("synthetic" for _ in range(n)),
    )
    return panel, states


def two_state_example(
    n_bars: int = 2520, vol_ratio: float = 3.0, mean_dwell: float = 100.0, seed: int = 0
) -> tuple[BarPanel, np.ndarray]:
    """A calm/turbulent two-asset example: ``EQ`` (equity-like) and ``BD`` (bond-like).

    State 0 (calm): EQ +0.05 %/day at 0.8 % vol, BD +0.01 % at 0.3 %, correlation +0.1.
    State 1 (turbulent): EQ -0.10 %/day at ``vol_ratio`` x 0.8 %, BD +0.03 % at 0.4 %,
    correlation -0.4. Both states last ``mean_dwell`` bars on average.
    """
    means = np.array([[5e-4, 1e-4], [-1e-3, 3e-4]])
    vols = np.array([[0.008, 0.003], [0.008 * vol_ratio, 0.004]])
    corr = np.array([[[1.0, 0.1], [0.1, 1.0]], [[1.0, -0.4], [-0.4, 1.0]]])
    return generate_regime_panel(
        n_bars,
        means,
        vols,
        corr,
        mean_dwell=[mean_dwell, mean_dwell],
        seed=seed,
        symbols=("EQ", "BD"),
    )

"""Statistical jump model (Nystrup et al. 2020; Shu, Yu & Mulvey 2024).

Fit, on a trailing window of standardized inputs: minimise
``sum_t |z_t - c_{s_t}|^2 + lambda * #{t: s_t != s_(t-1)}`` by coordinate descent,
alternating the optimal state path for fixed centroids (dynamic programming, O(T K)) and
the centroids for a fixed path (means), from several k-means++ starts; best objective wins.
Online (:func:`engine.regimes.online_nb.jump_update_nb`): the same DP run forward over past
bars only; the state is the end of the best penalised path through the current bar.

Implemented here rather than with the ``jumpmodels`` package: the fit is a few lines of
numba, the online filter must live in the step anyway, and it saves a dependency.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numba as nb
import numpy as np

from engine.ground import layout as L
from engine.regimes.inputs import (
    Inputs,
    Schedule,
    body_offset,
    default_labels,
    header,
    labelled_stats,
    state_order,
    training_design,
)
from engine.regimes.threads import fit_threads


@nb.njit(cache=True)
def jump_path_nb(z: np.ndarray, cent: np.ndarray, lam: float) -> tuple[np.ndarray, float]:
    """Optimal state path for fixed centroids (Viterbi with a switching penalty)."""
    t_len, d = z.shape
    k_n = cent.shape[0]
    v = np.empty((t_len, k_n))
    back = np.zeros((t_len, k_n), dtype=np.int64)
    for t in range(t_len):
        best_prev = 0
        if t > 0:
            for j in range(1, k_n):
                if v[t - 1, j] < v[t - 1, best_prev]:
                    best_prev = j
        for k in range(k_n):
            loss = 0.0
            for i in range(d):
                e = z[t, i] - cent[k, i]
                loss += e * e
            if t == 0:
                v[t, k] = loss
            else:
                stay = v[t - 1, k]
                jump = v[t - 1, best_prev] + lam
                if stay <= jump:
                    v[t, k] = loss + stay
                    back[t, k] = k
                else:
                    v[t, k] = loss + jump
                    back[t, k] = best_prev
    path = np.empty(t_len, dtype=np.int64)
    last = 0
    for k in range(1, k_n):
        if v[t_len - 1, k] < v[t_len - 1, last]:
            last = k
    obj = v[t_len - 1, last]
    path[t_len - 1] = last
    for t in range(t_len - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path, obj


def fit_jump(
    z: np.ndarray, k: int, lam: float, n_init: int, seed: int, max_iter: int = 50
) -> tuple[np.ndarray, np.ndarray, float]:
    """Coordinate descent from ``n_init`` k-means++ starts: ``(centroids, path, objective)``.

    The starts are ``sklearn.cluster.kmeans_plusplus(z, k, random_state=seed + i)``'s, bit
    for bit, drawn by :func:`engine.regimes.hmm._kmeans_plusplus` (no scikit-learn import)."""
    from engine.regimes.hmm import _kmeans_plusplus

    best: tuple[np.ndarray, np.ndarray, float] | None = None
    for i in range(n_init):
        cent = np.ascontiguousarray(_kmeans_plusplus(z, k, seed + i))
        path = np.full(z.shape[0], -1)
        obj = np.inf
        for _ in range(max_iter):
            new_path, obj = jump_path_nb(z, cent, lam)
            if np.array_equal(new_path, path):
                break
            path = new_path
            for s in range(k):
                m = path == s
                if m.any():
                    cent[s] = z[m].mean(axis=0)
        if best is None or obj < best[2]:
            best = (cent.copy(), path.copy(), float(obj))
    assert best is not None
    return best


@dataclass(frozen=True)
class JumpModelDetector:
    """Statistical jump model with switching penalty ``penalty`` (standardized units)."""

    inputs: Inputs
    n_states: int = 3
    penalty: float = 20.0
    temperature: float = 0.0  # posterior softness; 0: penalty / 4
    schedule: Schedule = field(default_factory=Schedule)
    n_init: int = 5
    seed: int = 0
    name: str = "jump"
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.labels:
            object.__setattr__(self, "labels", default_labels(self.n_states))

    def state_size(self, n_features: int) -> int:
        return L.DXS_HEADER + self.n_states + self.inputs.d

    def fit_bars(self, n_bars: int) -> np.ndarray:
        return self.schedule.fit_bars(n_bars)

    def fit(
        self, features: np.ndarray, exog: np.ndarray, previous: np.ndarray | None
    ) -> np.ndarray:
        fitted = training_design(self.inputs, self.schedule, features, exog, previous)
        if fitted is None:
            assert previous is not None
            return previous  # a refit on a window that stood still: the model so far
        z, mean, scale = fitted
        k = self.n_states
        with fit_threads(1):
            cent, path, _ = fit_jump(
                np.ascontiguousarray(z), k, self.penalty, self.n_init, self.seed
            )
        means, var = labelled_stats(z, path, k)
        # an empty state keeps its centroid; order it as the most volatile (never seen)
        perm = state_order(np.where(np.isfinite(var), means, cent), var, self.inputs)
        h = header(L.DET_JUMP, k, self.inputs, mean, scale)
        h[L.DX_A] = self.penalty
        h[L.DX_B] = self.temperature if self.temperature > 0 else self.penalty / 4.0
        assert h.shape[0] == body_offset(self.inputs.d)
        return np.concatenate([h, cent[perm].ravel()])

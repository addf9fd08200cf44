"""Clustering detectors (scikit-learn): Gaussian mixture and k-means, fitted on trailing
windows; online, each bar is assigned independently (GMM posterior / nearest centroid),
through the shared gaussian kernel with i.i.d. states."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from engine.ground import layout as L
from engine.regimes.hmm import (
    floor_covars,
    gaussian_params,
    gaussian_state_size,
    reorder,
)
from engine.regimes.inputs import (
    Inputs,
    Schedule,
    default_labels,
    labelled_stats,
    state_order,
    training_design,
)
from engine.regimes.threads import fit_threads


@dataclass(frozen=True)
class GMMDetector:
    """scikit-learn ``GaussianMixture``; online posterior ``w_k N(z; mu_k, S_k)`` normalised."""

    inputs: Inputs
    n_states: int = 3
    covariance: str = "full"  # or "diag"
    schedule: Schedule = field(default_factory=Schedule)
    n_init: int = 3
    min_covar: float = 1e-3
    seed: int = 0
    name: str = "gmm"
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.covariance not in ("full", "diag"):
            raise ValueError(f"gmm covariance must be 'full' or 'diag', got {self.covariance!r}")
        if not self.labels:
            object.__setattr__(self, "labels", default_labels(self.n_states))

    def state_size(self, n_features: int) -> int:
        return gaussian_state_size(self.n_states, self.inputs.d)

    def fit_bars(self, n_bars: int) -> np.ndarray:
        return self.schedule.fit_bars(n_bars)

    def fit(
        self, features: np.ndarray, exog: np.ndarray, previous: np.ndarray | None
    ) -> np.ndarray:
        from sklearn.mixture import GaussianMixture  # before the limit: its pools counted

        fitted = training_design(self.inputs, self.schedule, features, exog, previous)
        if fitted is None:
            assert previous is not None
            return previous  # a refit on a window that stood still: the model so far
        z, mean, scale = fitted
        k = self.n_states
        try:
            with fit_threads(1), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                g = GaussianMixture(
                    k,
                    covariance_type=self.covariance,
                    n_init=self.n_init,
                    reg_covar=self.min_covar,
                    random_state=self.seed,
                ).fit(z)
        except (ValueError, np.linalg.LinAlgError):
            if previous is not None:
                return previous
            raise
        if self.covariance == "full":
            covars = np.asarray(g.covariances_)
        else:
            covars = np.stack([np.diag(v) for v in np.asarray(g.covariances_)])
        covars = floor_covars(covars, self.min_covar)
        means = np.asarray(g.means_)
        weights = np.clip(np.asarray(g.weights_), 1e-8, None)
        weights = weights / weights.sum()
        perm = state_order(means, np.stack([np.diag(c) for c in covars]), self.inputs)
        start, trans, means, covars = reorder(
            perm, weights, np.tile(weights, (k, 1)), means, covars
        )
        return gaussian_params(
            L.DET_GMM,
            self.inputs,
            mean,
            scale,
            start,
            trans,
            means,
            covars,
            full=self.covariance == "full",
            iid=True,
        )


@dataclass(frozen=True)
class KMeansDetector:
    """scikit-learn ``KMeans``; online state = nearest centroid (standardized space).

    The posterior is a soft assignment ``softmax(-|z - c_k|^2 / (2 s^2))`` with ``s^2`` the
    mean within-cluster squared distance per dimension; its argmax is the nearest centroid.
    """

    inputs: Inputs
    n_states: int = 3
    schedule: Schedule = field(default_factory=Schedule)
    n_init: int = 5
    seed: int = 0
    name: str = "kmeans"
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.labels:
            object.__setattr__(self, "labels", default_labels(self.n_states))

    def state_size(self, n_features: int) -> int:
        return gaussian_state_size(self.n_states, self.inputs.d)

    def fit_bars(self, n_bars: int) -> np.ndarray:
        return self.schedule.fit_bars(n_bars)

    def fit(
        self, features: np.ndarray, exog: np.ndarray, previous: np.ndarray | None
    ) -> np.ndarray:
        from sklearn.cluster import KMeans

        fitted = training_design(self.inputs, self.schedule, features, exog, previous)
        if fitted is None:
            assert previous is not None
            return previous  # a refit on a window that stood still: the model so far
        z, mean, scale = fitted
        k, d = self.n_states, self.inputs.d
        with fit_threads(1), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            km = KMeans(k, n_init=self.n_init, random_state=self.seed).fit(z)
        cent = np.asarray(km.cluster_centers_)
        lab = np.asarray(km.labels_)
        _, var = labelled_stats(z, lab, k)
        s2 = max(float(km.inertia_) / max(z.size, 1), 1e-6)
        covars = np.broadcast_to(np.eye(d) * s2, (k, d, d)).copy()
        perm = state_order(cent, var, self.inputs)
        uni = np.full(k, 1.0 / k)
        start, trans, cent, covars = reorder(perm, uni, np.tile(uni, (k, 1)), cent, covars)
        return gaussian_params(
            L.DET_KMEANS, self.inputs, mean, scale, start, trans, cent, covars, full=False, iid=True
        )

"""Detectors from the ecosystem: any scikit-learn-style estimator as a regime detector.

:class:`SklearnDetector` wraps an estimator with ``fit`` and ``predict_proba`` (a
``GaussianMixture``, a ``Pipeline``, or a classifier such as a random forest together
with a *labeler* that builds training labels from the training window only). It is
refitted at the built-in schedule's fit bars on the trailing window before each fit bar;
from that bar on, each bar's posterior is ``predict_proba`` of that bar's inputs, with
states put in ascending-volatility order (:func:`engine.regimes.inputs.state_order`) and
labelled like the built-in kinds.

Both drivers run it through :class:`ExternalPosterior`, a compiled detector of kind
``DET_EXTERNAL`` that reads the posterior from the inputs row: the compiled driver gets
the posteriors of a whole fit segment from one ``predict_proba`` call, the streaming
driver predicts each arriving bar. The two agree bit for bit when the estimator's
per-row output does not depend on the batch (trees, forests, boosting, mixtures);
estimators whose ``predict_proba`` goes through a BLAS matrix product may differ in the
last bits between a batch and a single row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.ground import layout as L
from engine.plugins.detector import EstimatorDetector
from engine.regimes.inputs import (
    ConstantInput,
    Inputs,
    Schedule,
    default_labels,
    design,
    labelled_stats,
    state_order,
    varying_design,
)
from engine.regimes.supervised import forward_vol_labels

Labeler = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
"""``(features, inputs)`` of the training window -> ``(rows, labels)`` in 0..K-1 built
from those rows only."""


def forward_vol_labeler(
    market_col: int, n_states: int, horizon: int = 21, embargo: int = 0
) -> Labeler:
    """Labels = bucket of the market's realised volatility over the next ``horizon`` bars
    (rows whose horizon reaches past the window's end are dropped)."""

    def label(features: np.ndarray, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return forward_vol_labels(features[:, market_col], horizon, n_states, embargo)

    return label


@dataclass
class FittedModel:
    estimator: Any
    classes: np.ndarray  # estimator class index -> state column (before ordering)
    order: np.ndarray  # state i = unordered state order[i]
    fill: np.ndarray  # per-input value used for non-finite inputs (training mean)


@dataclass(frozen=True, eq=False)
class SklearnDetector:
    """A scikit-learn-style estimator refitted on trailing windows (see module doc)."""

    estimator: Any
    inputs: Inputs
    n_states: int = 3
    schedule: Schedule = field(default_factory=Schedule)
    labeler: Labeler | None = None
    market_col: int | None = None  # feature column the labeler reads (lazy features)
    name: str = "sklearn"
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (hasattr(self.estimator, "fit") and hasattr(self.estimator, "predict_proba")):
            raise TypeError(f"detector {self.name!r}: estimator needs fit() and predict_proba()")
        if not self.labels:
            object.__setattr__(self, "labels", default_labels(self.n_states))
        if len(self.labels) != self.n_states:
            raise ValueError(
                f"detector {self.name!r}: {len(self.labels)} labels for {self.n_states} states"
            )

    def fit_bars(self, n_bars: int) -> np.ndarray:
        return self.schedule.fit_bars(n_bars)

    def _x(self, features: np.ndarray, inputs: np.ndarray, fill: np.ndarray) -> np.ndarray:
        x = design(self.inputs, features, inputs)
        return np.where(np.isfinite(x), x, fill)

    def fit_model(self, features: np.ndarray, inputs: np.ndarray) -> FittedModel:
        from sklearn.base import clone

        rows = self.schedule.rows(features.shape[0])
        f, e = features[rows], inputs[rows]
        raw = varying_design(self.inputs, self.schedule, features, inputs, None)
        assert raw is not None  # a constant input raised
        fill = np.nan_to_num(np.nanmean(np.where(np.isfinite(raw), raw, np.nan), axis=0))
        x = np.where(np.isfinite(raw), raw, fill)
        est = clone(self.estimator)
        k = self.n_states
        if self.labeler is not None:
            lab_rows, y = self.labeler(f, e)
            est.fit(x[lab_rows], y)
        else:
            est.fit(x)
        classes = np.asarray(getattr(est, "classes_", np.arange(k)), dtype=np.int64)
        if classes.size > k or (classes.size and (classes.min() < 0 or classes.max() >= k)):
            raise ValueError(
                f"detector {self.name!r}: estimator classes {classes} not in 0..{k - 1}"
            )
        model = FittedModel(est, classes, np.arange(k), fill)
        if self.labeler is None:  # unsupervised: order states by volatility like the others
            hard = np.argmax(self._proba(model, x), axis=1)
            means, var = labelled_stats(x, hard, k)
            model.order = state_order(means, np.where(np.isfinite(var), var, 1e300), self.inputs)
        return model

    def _proba(self, model: FittedModel, x: np.ndarray) -> np.ndarray:
        p = np.asarray(model.estimator.predict_proba(x), dtype=np.float64)
        out = np.zeros((x.shape[0], self.n_states))
        out[:, model.classes] = p
        return out

    def predict(self, model: FittedModel, features: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        x = self._x(np.atleast_2d(features), np.atleast_2d(inputs), model.fill)
        return np.ascontiguousarray(self._proba(model, x)[:, model.order])


@dataclass(eq=False)
class ExternalPosterior:
    """Runs an :class:`EstimatorDetector` in the step: a compiled detector (kind
    ``DET_EXTERNAL``) whose posterior is read from inputs column ``col`` onward."""

    inner: EstimatorDetector
    col: int
    models: list[Any] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def n_states(self) -> int:
        return self.inner.n_states

    @property
    def labels(self) -> tuple[str, ...]:
        return self.inner.labels

    def column_names(self) -> tuple[str, ...]:
        return tuple(f"{self.inner.name}.p{k}" for k in range(self.n_states))

    def state_size(self, n_features: int) -> int:
        return 1

    def fit_bars(self, n_bars: int) -> np.ndarray:
        return self.inner.fit_bars(n_bars)

    def row(self) -> np.ndarray:
        return np.array([L.DET_EXTERNAL, self.n_states, self.col], dtype=np.float64)

    def fit(
        self, features: np.ndarray, exog: np.ndarray, previous: np.ndarray | None
    ) -> np.ndarray:
        """Fit a model on these rows (kept in :attr:`models`); the kernel's row."""
        try:
            model = self.inner.fit_model(features, exog)
        except ConstantInput:
            if not self.models:  # a first fit on an input that never moves: refused
                raise
            model = self.models[-1]  # a refit on a window that stood still: the model so far
        self.models.append(model)
        return self.row()

    def posterior_history(
        self, features: np.ndarray, inputs: np.ndarray, fit_bars: np.ndarray
    ) -> np.ndarray:
        """``(T, K)`` posteriors: NaN before the first fit, then each fit's model over its
        segment (fits at ``fit_bars`` on the rows before them, kept in :attr:`models`)."""
        t_len = features.shape[0]
        post = np.full((t_len, self.n_states), np.nan)
        self.models = []
        for i, b in enumerate(fit_bars):
            self.fit(features[:b], inputs[:b], None)
            hi = int(fit_bars[i + 1]) if i + 1 < len(fit_bars) else t_len
            if hi > b:
                post[b:hi] = self.inner.predict(self.models[-1], features[b:hi], inputs[b:hi])
        return post

"""Supervised detector: a classifier of the *next* period's volatility regime.

At each fit bar ``n`` the training rows are ``s`` in the trailing window with
``s + horizon + embargo < n``: the label of row ``s`` is the bucket of the market's
realised volatility over bars ``s+1 .. s+horizon`` (quantile edges from those labels'
own window), so every label is built from returns strictly before the fit bar, and the
last ``horizon + embargo`` rows (whose outcome is not yet known) are dropped. The classifier
is a multinomial logistic regression (scikit-learn) on standardized inputs; online,
``softmax(W z + b)`` in the step. Classes are in ascending forward-volatility order.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from engine.ground import layout as L
from engine.regimes.inputs import (
    Inputs,
    Schedule,
    default_labels,
    header,
    standardize,
    varying_design,
)

ABSENT_BIAS = -30.0


def forward_vol_labels(
    logret: np.ndarray, horizon: int, k: int, embargo: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """``(rows, labels)``: rows ``s`` with ``s + horizon + embargo < len(logret)`` and the
    quantile bucket (0 = calmest) of the realised volatility over ``s+1 .. s+horizon``."""
    n = logret.shape[0]
    last = n - horizon - embargo  # rows s < last
    if last <= 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    r2 = np.concatenate([[0.0], np.cumsum(logret * logret)])
    rows = np.arange(last)
    fwd = np.sqrt((r2[rows + 1 + horizon] - r2[rows + 1]) / horizon)
    edges = np.quantile(fwd, np.linspace(0.0, 1.0, k + 1)[1:-1]) if k > 1 else np.zeros(0)
    return rows, np.searchsorted(edges, fwd, side="right").astype(np.int64)


@dataclass(frozen=True)
class SupervisedDetector:
    """Logistic regression of the forward-volatility regime (label horizon, embargo)."""

    inputs: Inputs
    market_col: int  # feature column of the market asset's log return (labels)
    n_states: int = 3
    horizon: int = 21
    embargo: int = 0
    c: float = 1.0
    schedule: Schedule = field(default_factory=Schedule)
    name: str = "supervised"
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.labels:
            object.__setattr__(self, "labels", default_labels(self.n_states))

    def state_size(self, n_features: int) -> int:
        return L.DXS_HEADER + self.inputs.d

    def fit_bars(self, n_bars: int) -> np.ndarray:
        return self.schedule.fit_bars(n_bars)

    def fit(
        self, features: np.ndarray, exog: np.ndarray, previous: np.ndarray | None
    ) -> np.ndarray:
        from sklearn.linear_model import LogisticRegression

        n = features.shape[0]
        rows = self.schedule.rows(n)
        k, d = self.n_states, self.inputs.d
        x = varying_design(self.inputs, self.schedule, features, exog, previous)
        if x is None:
            assert previous is not None
            return previous  # a refit on a window that stood still: the model so far
        # labels from returns inside the window only (the window's own rows)
        ret = features[rows, self.market_col]
        lab_rows, y = forward_vol_labels(ret, self.horizon, k, self.embargo)
        z_all, mean, scale = standardize(x[: lab_rows.shape[0]] if lab_rows.size else x)
        z = z_all[: lab_rows.shape[0]]
        w = np.zeros((k, d))
        b = np.full(k, ABSENT_BIAS)
        present = np.unique(y)
        if present.size >= 2:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                clf = LogisticRegression(C=self.c, max_iter=1000).fit(z, y)
            classes = np.asarray(clf.classes_)
            coef = np.asarray(clf.coef_)
            icpt = np.asarray(clf.intercept_)
            if classes.size == 2 and coef.shape[0] == 1:  # binary: one row, class 1 vs 0
                coef = np.vstack([-0.5 * coef[0], 0.5 * coef[0]])
                icpt = np.array([-0.5 * icpt[0], 0.5 * icpt[0]])
            for row, cls in enumerate(classes):
                w[int(cls)] = coef[row]
                b[int(cls)] = icpt[row]
        elif present.size == 1:
            b[int(present[0])] = 0.0
        elif previous is not None:
            return previous
        else:
            b[:] = 0.0
        h = header(L.DET_LOGIT, k, self.inputs, mean, scale)
        return np.concatenate([h, w.ravel(), b])

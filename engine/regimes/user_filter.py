"""A user's own compiled detector: an njit filter step inside the compiled driver.

The user writes ``filter(dparams, dstate, feats, inputs, post) -> int`` (njit): it reads
this bar's built-in feature row and inputs row (exogenous series, user features),
updates its own state ``dstate``, writes the posterior ``post`` and returns the raw state
(-1 while it cannot speak). ``dparams`` is ``[DET_USER, n_states, *body]`` where ``body``
is what the user's ``fit(features, inputs, previous)`` returned at the last fit bar (the
filter reads its own parameters from offset :data:`USER_BODY`).

The filter is passed to the compiled driver as a dispatcher argument, so the driver's
loop is compiled once per process for it (numba cannot cache a specialisation on a
dispatcher argument to disk); ``benchmarks/plugins.py`` measures that compile cost.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.ground import layout as L
from engine.regimes.inputs import Schedule, default_labels

USER_BODY = 2

FitBody = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], np.ndarray]


@dataclass(frozen=True, eq=False)
class UserFilterDetector:
    """A compiled detector from a user's njit ``filter`` and Python ``fit`` (see module)."""

    filter: Any
    fit_body: FitBody
    n_states: int
    dstate_size: int
    schedule: Schedule = field(default_factory=lambda: Schedule(min_train=0, refit_every=0, skip=0))
    name: str = "user_filter"
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.labels:
            object.__setattr__(self, "labels", default_labels(self.n_states))

    def state_size(self, n_features: int) -> int:
        return self.dstate_size

    def fit_bars(self, n_bars: int) -> np.ndarray:
        return self.schedule.fit_bars(n_bars)

    def fit(
        self, features: np.ndarray, exog: np.ndarray, previous: np.ndarray | None
    ) -> np.ndarray:
        prev_body = None if previous is None else previous[USER_BODY:]
        body = np.asarray(self.fit_body(features, exog, prev_body), dtype=np.float64).ravel()
        return np.concatenate([[float(L.DET_USER), float(self.n_states)], body])

"""Detector plug-in protocols (the regimes package implements them, the core runs them).

* :class:`Detector` — compiled: ``fit`` in Python on rows before each fit bar, an online
  filter in numba (a built-in kind, or a user's njit filter with kind ``DET_USER``);
* :class:`EstimatorDetector` — any scikit-learn-style estimator: fitted on trailing
  windows at the fit bars, its ``predict_proba`` gives each bar's posterior;
* :class:`PythonDetector` — updated in Python one bar at a time (streaming driver only).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Detector(Protocol):
    """A regime detector whose online filter runs in the compiled step."""

    @property
    def name(self) -> str: ...

    @property
    def n_states(self) -> int: ...

    @property
    def labels(self) -> tuple[str, ...]: ...

    def state_size(self, n_features: int) -> int:
        """Length of the online filter's state vector."""
        ...

    def fit_bars(self, n_bars: int) -> np.ndarray:
        """Bars (int64, increasing) from which each successive fit is in force."""
        ...

    def fit(
        self, features: np.ndarray, exog: np.ndarray, previous: np.ndarray | None
    ) -> np.ndarray:
        """Parameters fitted on ``features``/``exog`` (rows before the fit bar only)."""
        ...


@runtime_checkable
class PythonDetector(Protocol):
    """A detector updated in Python (streaming driver only): for quick experiments."""

    @property
    def name(self) -> str: ...

    @property
    def n_states(self) -> int: ...

    @property
    def labels(self) -> tuple[str, ...]: ...

    def update(self, features: np.ndarray, exog: np.ndarray) -> np.ndarray:
        """Filtered posterior (n_states,) after this bar; uniform while warming up."""
        ...


@runtime_checkable
class EstimatorDetector(Protocol):
    """A detector whose model is fitted and queried in Python (scikit-learn style).

    Fit ``k`` sees the feature and inputs rows before ``fit_bars()[k]``; from that bar on
    each bar's posterior is ``predict`` of that bar's row: in the compiled driver for the
    whole segment at once, in the streaming driver one bar at a time.
    """

    @property
    def name(self) -> str: ...

    @property
    def n_states(self) -> int: ...

    @property
    def labels(self) -> tuple[str, ...]: ...

    def fit_bars(self, n_bars: int) -> np.ndarray: ...

    def fit_model(self, features: np.ndarray, inputs: np.ndarray) -> Any:
        """A fitted model (states put in order) from rows before the fit bar."""
        ...

    def predict(self, model: Any, features: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        """``(n, n_states)`` posterior rows for ``n`` bars' feature and inputs rows."""
        ...

"""The detector protocol: fitted in Python on trailing data, filtered online in numba.

A *compiled* detector (:class:`Detector`) has two halves:

* ``fit(features, exog, previous)`` runs in Python (hmmlearn, scikit-learn, ...) at each
  fit point on rows strictly before it, and returns a float64 parameter vector whose first
  two slots are ``[kind, n_states]``; ``kind`` selects the online filter in
  :func:`engine.regimes.online_nb.detector_update_nb`;
* the online filter runs inside the step, once per bar, in both drivers.

Fit ``k`` uses feature rows ``[0, fit_bars[k])`` (or a trailing window of them) and is in
force from bar ``fit_bars[k]`` on, so the state at bar ``t`` never depends on bars after
``t``. A *Python* detector (:class:`PythonDetector`) updates in Python, one bar at a time,
and runs in the streaming driver only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

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


FitFn = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], np.ndarray]


def stack_params(rows: list[np.ndarray]) -> np.ndarray:
    """Pad parameter vectors with zeros to a ``(n_fits, P)`` matrix."""
    width = max(len(r) for r in rows)
    out = np.zeros((len(rows), width))
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def fit_schedule(
    detector: Detector, features: np.ndarray, exog: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``detector`` at each of its fit bars on the causal feature history.

    ``features`` is the full ``(T, F)`` feature history produced by the same kernel the
    step uses; fit ``k`` only sees rows ``< fit_bars[k]``. Returns ``(params, fit_bars)``.
    """
    bars = np.asarray(detector.fit_bars(features.shape[0]), dtype=np.int64)
    if bars.size == 0:
        raise ValueError(f"detector {detector.name!r}: history too short for its first fit")
    rows: list[np.ndarray] = []
    previous: np.ndarray | None = None
    for b in bars:
        previous = np.asarray(detector.fit(features[:b], exog[:b], previous), dtype=np.float64)
        rows.append(previous)
    return stack_params(rows), bars

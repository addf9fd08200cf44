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

import numpy as np

from engine.plugins.detector import Detector, EstimatorDetector, PythonDetector

__all__ = [
    "Detector",
    "EstimatorDetector",
    "FitFn",
    "PythonDetector",
    "fit_schedule",
    "stack_params",
]


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

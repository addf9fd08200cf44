"""Example user detectors.

``VolThresholdDetector`` is a *Python* detector (the :class:`PythonDetector` protocol): it
updates in Python, one bar at a time, and runs in the streaming driver (historical replay
or live) with compiled or Python strategies::

    from engine.core.streaming import StreamingDriver, replay
    drv = StreamingDriver(panel.symbols, strategy, VolThresholdDetector(), costs)
    outputs = replay(drv, panel)

A *compiled* detector (both drivers, sweeps, paper trading) follows
:class:`engine.regimes.base.Detector`: fit in Python, filter in numba. The easiest route
is to fit your own model and return parameters for an existing online kernel — e.g. the
Gaussian HMM kernel — as ``engine/regimes/hmm.py`` does.
"""

from __future__ import annotations

import numpy as np

from engine.ground.layout import F_VOL_FAST, N_FEAT_ASSET


class VolThresholdDetector:
    """calm / volatile from the market asset's fast EWMA volatility against a fixed
    annualised threshold, with a soft posterior (logistic in the distance)."""

    def __init__(self, market: int = 0, threshold: float = 0.20, width: float = 0.03) -> None:
        self.name = "vol_threshold"
        self.n_states = 2
        self.labels = ("calm", "volatile")
        self.market = market
        self.threshold = threshold
        self.width = width
        self.bars = 0

    def update(self, features: np.ndarray, exog: np.ndarray) -> np.ndarray:
        """Posterior after this bar; uniform for the first 20 bars (warm-up)."""
        self.bars += 1
        if self.bars <= 20:
            return np.full(2, 0.5)
        vol = features[self.market * N_FEAT_ASSET + F_VOL_FAST] * np.sqrt(252.0)
        p_volatile = 1.0 / (1.0 + np.exp(-(vol - self.threshold) / self.width))
        return np.array([1.0 - p_volatile, p_volatile])

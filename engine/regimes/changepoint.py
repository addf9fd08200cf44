"""Bayesian online changepoint detection (Adams & MacKay 2007) as a 2-state detector.

The first input (default: the market's log return, standardized on the training window)
is modelled as Gaussian with unknown mean and variance between changepoints
(Normal-inverse-gamma prior) and a constant hazard ``1 / expected_run``. The run-length
posterior is truncated at ``max_run`` bins (the last absorbs longer runs). The detector's
posterior is ``[stable, change]`` with ``change = P(run length < window)``: "a change
happened within the last ``window`` bars"; a strategy can use it to de-risk, or a user to
trigger a refit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from engine.ground import layout as L
from engine.regimes.inputs import Inputs, Schedule, header, training_design


@dataclass(frozen=True)
class BOCPDDetector:
    inputs: Inputs
    expected_run: float = 250.0
    max_run: int = 300
    window: int = 5
    prior_kappa: float = 1.0
    prior_alpha: float = 2.0
    prior_beta: float = 1.0
    schedule: Schedule = field(default_factory=lambda: Schedule(252, 0, 0, 21))
    name: str = "bocpd"
    n_states: int = 2
    labels: tuple[str, ...] = ("stable", "change")

    def __post_init__(self) -> None:
        if self.inputs.d < 1:
            raise ValueError("bocpd needs one input")
        if self.max_run < 2 or self.window < 1 or self.expected_run <= 1.0:
            raise ValueError("bocpd: max_run >= 2, window >= 1, expected_run > 1 required")

    def state_size(self, n_features: int) -> int:
        return L.DXS_HEADER + 6 * self.max_run

    def fit_bars(self, n_bars: int) -> np.ndarray:
        return self.schedule.fit_bars(n_bars)

    def fit(
        self, features: np.ndarray, exog: np.ndarray, previous: np.ndarray | None
    ) -> np.ndarray:
        first = Inputs(self.inputs.src[:1], self.inputs.log[:1], self.inputs.names[:1])
        fitted = training_design(first, self.schedule, features, exog, previous)
        if fitted is None:
            assert previous is not None
            return previous  # a refit on a window that stood still: the model so far
        _, mean, scale = fitted
        h = header(L.DET_BOCPD, 2, first, mean, scale)
        h[L.DX_A] = 1.0 / self.expected_run
        h[L.DX_B] = self.max_run
        h[L.DX_C] = self.window
        a = self.prior_alpha + 0.5 * np.arange(self.max_run)
        lg = np.array([math.lgamma(v + 0.5) - math.lgamma(v) for v in a])
        prior = [0.0, self.prior_kappa, self.prior_alpha, self.prior_beta]
        return np.concatenate([h, prior, lg])

"""The baseline detector: trailing-volatility percentile and trend (no fitting)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.ground import layout as L


@dataclass(frozen=True)
class RuleDetector:
    """calm / volatile / crisis from the market asset's EWMA volatility percentile within its
    own trailing history and the sign of its gap to the moving average.

    Causal by construction: the percentile compares today's volatility with the
    ``history`` previous values only.
    """

    market: int = 0
    use_slow_vol: bool = False
    history: int = 756
    min_history: int = 252
    high_pct: float = 0.75
    crisis_pct: float = 0.90
    name: str = "rule"
    n_states: int = 3
    labels: tuple[str, ...] = ("calm", "volatile", "crisis")

    def params(self) -> np.ndarray:
        p = np.zeros(L.N_RULE_PARAMS)
        p[L.D_KIND] = L.DET_RULE
        p[L.D_N_STATES] = self.n_states
        p[L.DR_ASSET] = self.market
        p[L.DR_VOL_FEATURE] = L.F_VOL_SLOW if self.use_slow_vol else L.F_VOL_FAST
        p[L.DR_HIST] = self.history
        p[L.DR_MIN_HIST] = min(self.min_history, self.history)
        p[L.DR_HIGH_PCT] = self.high_pct
        p[L.DR_CRISIS_PCT] = self.crisis_pct
        return p

    def state_size(self, n_features: int) -> int:
        return 1 + self.history

    def fit_bars(self, n_bars: int) -> np.ndarray:
        return np.zeros(1, dtype=np.int64)

    def fit(
        self, features: np.ndarray, exog: np.ndarray, previous: np.ndarray | None
    ) -> np.ndarray:
        return self.params()


@dataclass(frozen=True)
class NoDetector:
    """No regime detection: one state ("all"), known from the first bar. For runs whose
    strategies ignore regimes (static allocations, benchmarks): the step skips the work."""

    name: str = "none"
    n_states: int = 1
    labels: tuple[str, ...] = ("all",)

    def state_size(self, n_features: int) -> int:
        return 1

    def fit_bars(self, n_bars: int) -> np.ndarray:
        return np.zeros(1, dtype=np.int64)

    def fit(
        self, features: np.ndarray, exog: np.ndarray, previous: np.ndarray | None
    ) -> np.ndarray:
        return np.array([float(L.DET_NONE), 1.0])

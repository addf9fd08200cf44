"""Static allocation: fixed weights rebalanced on a calendar and/or when they drift."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from engine.core.policy_nb import N_POLICY_STATE, builtin_policy_nb
from engine.ground import layout as L
from engine.weights import WeightSpec, weight_vector


@dataclass(frozen=True)
class StaticAllocation:
    """Fixed target weights (e.g. 60/40 or ``"equal"``).

    ``rebalance`` is a calendar (D/W/M/Q/Y) or None; ``drift`` rebalances when any held
    weight strays more than this from its target (0 = off). ``inverse_vol`` turns it into a
    naive risk parity: weights proportional to 1/EWMA vol over the assets with a positive
    weight, scaled to the same total.
    """

    name: str
    weights: WeightSpec = field(default_factory=lambda: {"SPX": 0.6, "UST10": 0.4})
    rebalance: str | None = "M"
    drift: float = 0.0
    inverse_vol: bool = False

    @property
    def policy(self) -> Any:
        return builtin_policy_nb

    @property
    def uses_builtin_features(self) -> bool:
        """Only inverse-vol reads the feature row (lazy features skip it otherwise)."""
        return self.inverse_vol

    def check_data(self, panel: Any) -> None:
        """Inverse-vol: refuse an asset with a positive weight whose close never moves (its
        volatility is 0, so 1/vol has no value; the kernel would give it weight 0 and the
        rest of the budget to the others)."""
        if not self.inverse_vol:
            return
        w = weight_vector(self.weights, panel.symbols, f"strategy {self.name!r}")
        for j, sym in enumerate(panel.symbols):
            col = panel.close[:, j]
            col = col[np.isfinite(col)]
            if w[j] > 0.0 and col.size and np.ptp(col) == 0.0:
                raise ValueError(
                    f"inverse_vol: {sym} has zero volatility (close {col[0]:g} on every bar "
                    f"from {panel.index[0].date()} to {panel.index[-1].date()}), so 1/vol is "
                    f'undefined; leave {sym} out of weights or use kind = "static" for it'
                )

    def params(self, symbols: tuple[str, ...], labels: tuple[str, ...]) -> np.ndarray:
        w = weight_vector(self.weights, symbols, f"strategy {self.name!r}")
        p = np.zeros(L.SP_HEADER + len(symbols))
        p[L.SP_KIND] = L.POLICY_INVERSE_VOL if self.inverse_vol else L.POLICY_TABLE
        p[L.SP_ON_SCHEDULE] = 1.0 if self.rebalance else 0.0
        p[L.SP_DRIFT] = self.drift
        p[L.SP_N_STATES] = 0
        p[L.SP_HEADER :] = w
        return p

    def state_size(self) -> int:
        return N_POLICY_STATE


def static_weights(symbols: tuple[str, ...], weights: Mapping[str, float]) -> np.ndarray:
    """Convenience: a mapping in symbol order."""
    return weight_vector(weights, symbols, "weights")

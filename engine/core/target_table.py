"""A compiled strategy whose targets were decided ahead of the loop (one row per bar):
the form of ``kind = "optimized"`` over a prepared run and of the static baselines."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.core.policy_nb import table_policy_nb


@dataclass(frozen=True)
class TargetTable:
    """A compiled strategy whose targets were decided ahead of the loop: rebalance to row
    ``t`` of ``table`` where ``go[t]`` (:func:`~engine.core.policy_nb.table_policy_nb`)."""

    name: str
    go: np.ndarray  # (T,) bool
    table: np.ndarray  # (T, N)
    rebalance: str | None
    uses_builtin_features: bool = False

    @property
    def policy(self) -> Any:
        return table_policy_nb

    def params(self, symbols: tuple[str, ...], labels: tuple[str, ...]) -> np.ndarray:
        T = self.go.shape[0]
        return np.concatenate(([float(T)], self.go.astype(np.float64), self.table.ravel()))

    def state_size(self) -> int:
        return 1

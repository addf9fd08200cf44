"""Regime-switching allocation: a table from the (smoothed) regime to target weights."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.core.policy_nb import N_POLICY_STATE, builtin_policy_nb
from engine.ground import layout as L
from engine.weights import WeightSpec, weight_vector


@dataclass(frozen=True)
class RegimeSwitching:
    """Hold ``table[regime]``; rebalance when the smoothed regime changes and/or on a
    calendar. Until the detector speaks, hold ``warmup``.

    ``table`` keys are regime labels (e.g. ``"calm"``) or state numbers as strings.
    ``blend`` targets the posterior-weighted mix of the rows instead of the argmax row.
    Whipsaw control (probability threshold, minimum dwell, confirmation) is the
    detector's smoothing, shared by every strategy of a run.
    """

    name: str
    table: Mapping[str, WeightSpec]
    warmup: WeightSpec
    rebalance: str | None = None
    on_change: bool = True
    blend: bool = False
    drift: float = 0.0

    @property
    def policy(self) -> Any:
        return builtin_policy_nb

    @property
    def uses_builtin_features(self) -> bool:
        """A regime table never reads the feature row (lazy features skip it)."""
        return False

    def rows(self, symbols: tuple[str, ...], labels: tuple[str, ...]) -> np.ndarray:
        """The ``(K, N)`` weight table in state order."""
        k = len(labels)
        rows: list[np.ndarray | None] = [None] * k
        for key, spec in self.table.items():
            if key in labels:
                s = labels.index(key)
            elif key.isdigit() and int(key) < k:
                s = int(key)
            else:
                raise ValueError(
                    f"strategy {self.name!r}: table key {key!r} is not a regime of the "
                    f"detector ({', '.join(labels)})"
                )
            rows[s] = weight_vector(spec, symbols, f"strategy {self.name!r} table.{key}")
        missing = [labels[s] for s in range(k) if rows[s] is None]
        if missing:
            raise ValueError(f"strategy {self.name!r}: table has no row for {', '.join(missing)}")
        return np.array(rows, dtype=np.float64).reshape(k, len(symbols))

    def params(self, symbols: tuple[str, ...], labels: tuple[str, ...]) -> np.ndarray:
        n = len(symbols)
        rows = self.rows(symbols, labels)
        p = np.zeros(L.SP_HEADER + n + rows.size)
        p[L.SP_KIND] = L.POLICY_TABLE
        p[L.SP_ON_CHANGE] = 1.0 if self.on_change else 0.0
        p[L.SP_ON_SCHEDULE] = 1.0 if self.rebalance else 0.0
        p[L.SP_DRIFT] = self.drift
        p[L.SP_BLEND] = 1.0 if self.blend else 0.0
        p[L.SP_N_STATES] = len(labels)
        p[L.SP_HEADER : L.SP_HEADER + n] = weight_vector(
            self.warmup, symbols, f"strategy {self.name!r} warmup"
        )
        p[L.SP_HEADER + n :] = rows.ravel()
        return p

    def state_size(self) -> int:
        return N_POLICY_STATE

"""The strategy protocols: compiled (njit policy, both drivers) and Python (callbacks,
streaming driver).

Both see the same context (time, prices, features, regime posterior, held weights,
equity) and answer with target weights, fractions of equity per asset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd


@runtime_checkable
class CompiledStrategy(Protocol):
    """A strategy whose policy is an njit function (see :mod:`engine.core.policy_nb`)."""

    @property
    def name(self) -> str: ...

    @property
    def rebalance(self) -> str | None:
        """Calendar of ``ctx.new_period``: D/W/M/Q/Y or None."""
        ...

    @property
    def policy(self) -> Any:
        """The njit policy function."""
        ...

    def params(self, symbols: tuple[str, ...], labels: tuple[str, ...]) -> np.ndarray:
        """The policy's parameter vector for these symbols and regime labels."""
        ...

    def state_size(self) -> int:
        """Length of the policy's own state vector."""
        ...


@dataclass(frozen=True)
class Context:
    """What a Python strategy sees at the close of a bar (nothing from later bars)."""

    bar: int
    timestamp: pd.Timestamp
    symbols: tuple[str, ...]
    close: np.ndarray
    features: np.ndarray
    posterior: np.ndarray
    state: int
    regime: int
    regime_changed: bool
    new_period: bool
    weights: np.ndarray
    equity: float


Targets = np.ndarray | Mapping[str, float] | None


@runtime_checkable
class PythonStrategy(Protocol):
    """A strategy with callbacks, run by the streaming driver (historical or live).

    ``on_regime_change`` is called first on bars where the smoothed regime changed, then
    ``on_bar`` unless ``on_regime_change`` already returned targets. Return target weights
    (array in symbol order, or mapping symbol -> weight; missing symbols get 0) to
    rebalance now, or ``None`` to hold.
    """

    @property
    def name(self) -> str: ...

    @property
    def rebalance(self) -> str | None: ...

    def on_bar(self, ctx: Context) -> Targets: ...

    def on_regime_change(self, ctx: Context) -> Targets: ...


def targets_array(targets: Targets, symbols: tuple[str, ...]) -> np.ndarray | None:
    """Normalise a Python strategy's answer to a float64 array (or None = hold)."""
    if targets is None:
        return None
    if isinstance(targets, Mapping):
        unknown = set(targets) - set(symbols)
        if unknown:
            raise ValueError(f"target weights for unknown symbols: {', '.join(sorted(unknown))}")
        return np.array([float(targets.get(s, 0.0)) for s in symbols])
    arr = np.asarray(targets, dtype=np.float64)
    if arr.shape != (len(symbols),):
        raise ValueError(f"target weights must have shape ({len(symbols)},), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("target weights must be finite")
    return arr

"""The strategy protocols: compiled (njit policy, both drivers) and Python (callbacks,
streaming driver).

Both see the same context (time, prices, features, regime posterior, held weights,
equity) and answer with target weights, fractions of equity per asset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from engine.plugins.features import History
from engine.plugins.names import Names


@runtime_checkable
class CompiledStrategy(Protocol):
    """A strategy whose policy is an njit function (see :mod:`engine.core.policy_nb` and
    the named accessors in :mod:`engine.plugins.context_nb`).

    ``params`` may take a third argument, a :class:`~engine.plugins.names.Names`, to
    resolve assets, features and states by name. Optional attributes: ``features``
    (user features it reads, names or objects) and ``uses_builtin_features`` (False when
    its policy never reads the built-in feature row: those blocks are then skipped).
    """

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
    """What a Python strategy sees at the close of a bar (nothing from later bars).

    Read it by name: ``ctx.feature("SPX", "rsi")``, ``ctx.prob("crisis")``,
    ``ctx.history("SPX", "close", 60)`` (a zero-copy view of the last 60 closes ending at
    this bar), ``ctx.position("SPX")`` (shares), ``ctx.weight("SPX")``, ``ctx.cash``,
    ``ctx.equity``. The arrays are the engine's own buffers: read them, don't keep them
    past the callback (copy what you need).
    """

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
    cash: float = float("nan")
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0))
    inputs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    names: Names | None = None
    hist: History | None = None

    def _names(self) -> Names:
        return self.names if self.names is not None else Names(self.symbols)

    def feature(self, symbol: str | None, name: str) -> float:
        """A built-in feature (``rsi``, ``vol_fast``, ...), a user feature or (``symbol``
        None) an exogenous series / cross-asset feature, at this bar."""
        fid = self._names().feature(symbol, name)
        return float(self.features[fid] if fid >= 0 else self.inputs[-fid - 1])

    def prob(self, label: str) -> float:
        """Filtered probability of the regime ``label`` at this bar."""
        return float(self.posterior[self._names().state(label)])

    def label(self) -> str | None:
        """The smoothed (trading) regime's label, None while warming up."""
        labels = self._names().labels
        return labels[self.regime] if 0 <= self.regime < len(labels) else None

    def history(self, symbol: str, field: str = "close", n: int = 1) -> np.ndarray:
        """The last ``n`` values of ``field`` (open/close/volume) of ``symbol`` ending at
        this bar (fewer at the start): a read-only view, no copy."""
        if self.hist is None:
            raise ValueError("this context carries no history")
        view = self.hist.window(symbol, field, n)
        view.flags.writeable = False
        return view

    def position(self, symbol: str) -> float:
        """Shares of ``symbol`` held at this close."""
        return float(self.positions[self._names().asset(symbol)])

    def weight(self, symbol: str) -> float:
        """Weight of ``symbol`` held at this close (fraction of equity)."""
        return float(self.weights[self._names().asset(symbol)])


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

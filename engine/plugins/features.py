"""User features: named, causal, computed only when something uses them.

A feature is registered by name (:func:`register`) and used by name in detector inputs
(``features = ["SPX.mom_252"]``) and in strategies (``ctx.feature("SPX", "mom_252")`` or
the njit :func:`~engine.plugins.context_nb.feature`). Two kinds:

* :class:`WindowFeature` — a pure function of a causal window of history (the last
  ``window`` bars up to and including bar ``t``), per asset or across assets;
* :class:`IncrementalFeature` — an njit update with its own state vector, fed each bar's
  closes (per asset or across assets).

Both drivers compute user features the same way, bar by bar through a :class:`History`
that ends at the current bar, so values at ``t`` can't depend on later bars and the two
drivers see identical numbers. The built-in features (``logret``, ``vol_fast``, ...) are
:class:`BuiltinFeature` entries of the same registry, computed inside the step's own
kernel, per asset only when an asset's block is used.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from engine.ground.bars import DataError
from engine.plugins.names import BUILTIN_FEATURES

FIELDS = ("open", "close", "volume")


class History:
    """Bars ``0..t`` as views: zero-copy windows that end at the current bar.

    Over a whole panel it wraps the panel's arrays and only moves a cursor; in a live
    stream it appends each bar to buffers that grow by doubling.
    """

    def __init__(
        self,
        symbols: tuple[str, ...],
        input_names: tuple[str, ...] = (),
        arrays: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.symbols = tuple(symbols)
        self.input_names = tuple(input_names)
        self.t = -1
        self._growing = arrays is None
        n, e = len(self.symbols), len(self.input_names)
        if arrays is None:
            arrays = {f: np.zeros((256, n)) for f in FIELDS}
            arrays["inputs"] = np.zeros((256, e))
        self._buf = arrays

    @property
    def n_bars(self) -> int:
        return self.t + 1

    def append(self, bar_open: np.ndarray, close: np.ndarray, volume: np.ndarray) -> None:
        """Move to the next bar (stream mode: store it)."""
        self.t += 1
        if not self._growing:
            return
        cap = self._buf["close"].shape[0]
        if self.t >= cap:
            for k, a in self._buf.items():
                grown = np.zeros((2 * cap, a.shape[1]))
                grown[:cap] = a
                self._buf[k] = grown
        self._buf["open"][self.t] = bar_open
        self._buf["close"][self.t] = close
        self._buf["volume"][self.t] = volume

    def inputs_row(self) -> np.ndarray:
        """This bar's inputs row (exogenous values, then user features), writable."""
        return self._buf["inputs"][self.t]

    def field(self, name: str) -> np.ndarray:
        """``(t + 1, N)`` view of ``open``/``close``/``volume`` (or ``(t + 1, E + U)``
        ``inputs``) up to this bar."""
        if name not in self._buf:
            raise DataError(f"history field {name!r}: one of {', '.join(self._buf)}")
        return self._buf[name][: self.t + 1]

    def window(self, symbol_or_input: str, name: str, n: int) -> np.ndarray:
        """The last ``n`` values (fewer at the start) ending at this bar, a view.

        ``name`` is a price field for a symbol, or ``"inputs"`` with an input column name.
        """
        if n < 1:
            raise DataError(f"history length must be >= 1, got {n}")
        lo = max(0, self.t + 1 - n)
        if name == "inputs":
            try:
                col = self.input_names.index(symbol_or_input)
            except ValueError:
                raise DataError(f"unknown input {symbol_or_input!r}") from None
            return self._buf["inputs"][lo : self.t + 1, col]
        try:
            j = self.symbols.index(symbol_or_input)
        except ValueError:
            raise DataError(f"unknown symbol {symbol_or_input!r}") from None
        if name not in FIELDS:
            raise DataError(f"history field {name!r}: one of {', '.join(FIELDS)}")
        return self._buf[name][lo : self.t + 1, j]


Updater = Callable[[History, np.ndarray], None]
"""Writes one bar's values of a feature (its columns, in order) into ``out``."""


@runtime_checkable
class UserFeature(Protocol):
    """A named feature computed before the step, bar by bar, in both drivers."""

    @property
    def name(self) -> str: ...

    def columns(self, symbols: tuple[str, ...]) -> tuple[str, ...]:
        """Names of its columns in the inputs row (``"SYMBOL.name"`` per asset)."""
        ...

    def start(self, symbols: tuple[str, ...]) -> Updater:
        """A fresh updater (own state) for a run over ``symbols``."""
        ...


def _asset_cols(symbols: tuple[str, ...], assets: tuple[str, ...] | None) -> list[int]:
    if assets is None:
        return list(range(len(symbols)))
    missing = [a for a in assets if a not in symbols]
    if missing:
        raise DataError(f"feature assets not in the run: {', '.join(missing)}")
    return [symbols.index(a) for a in assets]


@dataclass(frozen=True)
class WindowFeature:
    """``fn(window)`` over the last ``window`` values of a price field (NaN until full).

    Per asset (default): ``fn`` gets a 1-D view per asset, one column ``"SYM.name"`` each.
    Across assets (``per_asset=False``): ``fn`` gets a ``(window, len(assets))`` array of
    the listed ``assets`` and gives one column ``name``.
    """

    name: str
    fn: Callable[[np.ndarray], float]
    window: int
    field: str = "close"
    assets: tuple[str, ...] | None = None
    per_asset: bool = True

    def columns(self, symbols: tuple[str, ...]) -> tuple[str, ...]:
        if not self.per_asset:
            return (self.name,)
        return tuple(f"{symbols[j]}.{self.name}" for j in _asset_cols(symbols, self.assets))

    def start(self, symbols: tuple[str, ...]) -> Updater:
        if self.window < 1 or self.field not in FIELDS:
            raise DataError(f"feature {self.name!r}: window >= 1 and field in {FIELDS}")
        cols = _asset_cols(symbols, self.assets)
        w, fn, per_asset = self.window, self.fn, self.per_asset

        def update(hist: History, out: np.ndarray) -> None:
            if hist.n_bars < w:
                out[:] = np.nan
                return
            arr = hist.field(self.field)[hist.n_bars - w :]
            if per_asset:
                for i, j in enumerate(cols):
                    out[i] = fn(arr[:, j])
            else:
                out[0] = fn(arr[:, cols])

        return update


@dataclass(frozen=True)
class IncrementalFeature:
    """An njit ``update(close_row, params, state, out)`` with its own state vector.

    ``close_row`` holds this bar's closes of ``assets`` (all symbols by default); ``out``
    has one slot per asset when ``per_asset`` (columns ``"SYM.name"``), else ``n_out``
    slots (columns ``name`` or ``name0..``).
    """

    name: str
    update: Any
    params: np.ndarray = field(default_factory=lambda: np.zeros(1))
    state_size: int = 1
    per_asset: bool = True
    n_out: int = 1
    assets: tuple[str, ...] | None = None

    def columns(self, symbols: tuple[str, ...]) -> tuple[str, ...]:
        if self.per_asset:
            return tuple(f"{symbols[j]}.{self.name}" for j in _asset_cols(symbols, self.assets))
        if self.n_out == 1:
            return (self.name,)
        return tuple(f"{self.name}{i}" for i in range(self.n_out))

    def start(self, symbols: tuple[str, ...]) -> Updater:
        cols = np.asarray(_asset_cols(symbols, self.assets), dtype=np.int64)
        params = np.ascontiguousarray(self.params, dtype=np.float64)
        state = np.zeros(max(1, self.state_size))
        fn = self.update
        every = cols.shape[0] == len(symbols) and bool((cols == np.arange(len(symbols))).all())

        def update(hist: History, out: np.ndarray) -> None:
            row = hist.field("close")[hist.t]
            fn(row if every else np.ascontiguousarray(row[cols]), params, state, out)

        return update


@dataclass(frozen=True)
class BuiltinFeature:
    """A feature of the step's own kernel (:mod:`engine.features.causal_nb`)."""

    name: str
    slot: int

    def columns(self, symbols: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(f"{s}.{self.name}" for s in symbols)


REGISTRY: dict[str, UserFeature | BuiltinFeature] = {
    n: BuiltinFeature(n, slot) for n, slot in BUILTIN_FEATURES.items()
}


def register(feature: UserFeature) -> UserFeature:
    """Make ``feature`` usable by name (detector inputs, strategies). Returns it."""
    if not isinstance(feature, UserFeature):
        raise TypeError(f"{feature!r} does not follow the UserFeature protocol")
    if feature.name in BUILTIN_FEATURES:
        raise ValueError(f"feature name {feature.name!r} is a built-in feature")
    REGISTRY[feature.name] = feature
    return feature


def lookup(name: str) -> UserFeature | None:
    """The registered user feature ``name`` (None for built-ins and unknown names)."""
    f = REGISTRY.get(name)
    return f if isinstance(f, UserFeature) else None

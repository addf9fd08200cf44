"""Names -> ids for the compiled accessors (resolved once, in Python, never per bar).

Ids follow one convention shared with the detectors' inputs: a built-in feature is its
column of the feature row (``>= 0``); an exogenous series or a user feature is column ``i``
of the inputs row, encoded ``-(i + 1)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.ground import layout as L
from engine.ground.bars import DataError

BUILTIN_FEATURES: dict[str, int] = {
    "logret": L.F_LOGRET,
    "vol_fast": L.F_VOL_FAST,
    "vol_slow": L.F_VOL_SLOW,
    "ma_gap": L.F_MA_GAP,
    "drawdown": L.F_DRAWDOWN,
    "rsi": L.F_RSI,
}

BUILTIN_FEATURE_DOCS: dict[str, str] = {
    "logret": "log return of the close over one bar",
    "vol_fast": "EWMA volatility of log returns, fast half-life (features.hl_fast)",
    "vol_slow": "EWMA volatility of log returns, slow half-life (features.hl_slow)",
    "ma_gap": "close / moving average (features.ma_window) - 1",
    "drawdown": "close / running peak - 1 (<= 0)",
    "rsi": "Wilder RSI in [0, 100] (features.rsi_window)",
}
"""One line per built-in feature (``regime-engine list``)."""


@dataclass(frozen=True)
class Names:
    """The run's symbols, regime labels and inputs-row columns (exogenous, then user)."""

    symbols: tuple[str, ...]
    labels: tuple[str, ...] = ()
    inputs: tuple[str, ...] = ()
    builtin_read: list[str] = field(default_factory=list, init=False, compare=False, repr=False)
    """Built-in features resolved through :meth:`feature` (``"SPX.vol_slow"``): the engine
    computes them for a strategy that says ``uses_builtin_features = False`` only if told,
    so resolving one is checked against that flag (:func:`engine.core.usage.strategy_params`)."""

    def asset(self, symbol: str) -> int:
        try:
            return self.symbols.index(symbol)
        except ValueError:
            raise DataError(
                f"unknown symbol {symbol!r}; the run has {', '.join(self.symbols)}"
            ) from None

    def state(self, label: str) -> int:
        try:
            return self.labels.index(label)
        except ValueError:
            raise DataError(
                f"unknown regime label {label!r}; the detector has {', '.join(self.labels)}"
            ) from None

    def input(self, name: str) -> int:
        """Column of an exogenous series or user feature column in the inputs row."""
        try:
            return self.inputs.index(name)
        except ValueError:
            have = ", ".join(self.inputs) or "none"
            raise DataError(f"unknown input {name!r}; the run has {have}") from None

    def feature(self, symbol: str | None, name: str) -> int:
        """Id of ``name`` for ``symbol``: a built-in feature, a per-asset user feature
        (column ``"SYMBOL.name"``), or (``symbol`` None / ``"exog"``) an exogenous series or
        cross-asset user feature."""
        if name in BUILTIN_FEATURES and symbol not in (None, "exog"):
            col = self.asset(symbol) * L.N_FEAT_ASSET + BUILTIN_FEATURES[name]
            self.builtin_read.append(f"{symbol}.{name}")
            return col
        key = name if symbol in (None, "exog") else f"{symbol}.{name}"
        if key not in self.inputs and symbol not in (None, "exog"):
            self.asset(symbol)  # a clear error for an unknown symbol first
        try:
            return -(self.inputs.index(key) + 1)
        except ValueError:
            known = ", ".join([*BUILTIN_FEATURES, *self.inputs])
            raise DataError(f"unknown feature {key!r}; known: {known}") from None

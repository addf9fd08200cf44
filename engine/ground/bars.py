"""The bar panel: an aligned multi-asset OHLCV history held as float64 arrays.

Every driver, detector fitter and analysis routine reads market data through a
:class:`BarPanel`. It holds the panel once (shape ``(T, N)`` per field, no per-bar
Python objects), so a historical run costs one copy of the data whatever the number
of strategies or parameter sets run over it.

Conventions
-----------
* ``index`` is a strictly increasing, timezone-naive ``DatetimeIndex`` (bar close times),
  wall-clock times in the zone ``tz`` (``None``: as given / unknown), so calendar periods
  (days, weeks, months for rebalancing) are those of that zone: an exchange's sessions.
* ``volume`` of ``0.0`` means "volume unknown" (index levels, yields-derived series):
  the participation cap and the square-root impact term are not applied to such bars.
* ``exog`` holds exogenous, non-tradable series on the same calendar (VIX, yield slope),
  shape ``(T, E)``; it may have zero columns.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume")


class DataError(ValueError):
    """Bad input data. The message is one line naming the file, symbol, field and row."""


@dataclass(frozen=True, eq=False)
class BarPanel:
    """Aligned OHLCV arrays for ``N`` symbols over ``T`` bars (float64, C-contiguous)."""

    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    exog: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    exog_names: tuple[str, ...] = ()
    asset_classes: tuple[str, ...] = ()
    tz: str | None = None
    #: where the bars came from when it matters to a reader (e.g. proxy splices), one line
    #: each; shown in the run header and kept by ``select``/``slice``/``take``
    provenance: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        idx = pd.DatetimeIndex(self.index)
        if idx.tz is not None:
            if self.tz is None:
                object.__setattr__(self, "tz", str(idx.tz))
            idx = idx.tz_convert(self.tz).tz_localize(None)
        object.__setattr__(self, "index", idx.as_unit("ns"))
        object.__setattr__(self, "symbols", tuple(self.symbols))
        t, n = len(self.index), len(self.symbols)
        for name in FIELDS:
            arr = np.ascontiguousarray(getattr(self, name), dtype=np.float64)
            if arr.shape != (t, n):
                raise DataError(f"BarPanel field {name!r} has shape {arr.shape}, expected {(t, n)}")
            object.__setattr__(self, name, arr)
        exog = np.ascontiguousarray(self.exog, dtype=np.float64)
        if exog.size == 0:
            exog = np.zeros((t, 0))
        if exog.shape != (t, len(self.exog_names)):
            raise DataError(
                f"BarPanel exog has shape {exog.shape}, expected {(t, len(self.exog_names))}"
            )
        object.__setattr__(self, "exog", exog)
        if not self.asset_classes:
            object.__setattr__(self, "asset_classes", tuple("unknown" for _ in self.symbols))
        if len(self.asset_classes) != n:
            raise DataError("BarPanel asset_classes must have one entry per symbol")
        if len(set(self.symbols)) != n:
            raise DataError(f"BarPanel has duplicate symbols: {self.symbols}")

    @property
    def n_bars(self) -> int:
        return len(self.index)

    @property
    def n_assets(self) -> int:
        return len(self.symbols)

    @property
    def timestamps_ns(self) -> np.ndarray:
        """Bar times as int64 nanoseconds since the epoch."""
        return np.asarray(self.index.asi8, dtype=np.int64)

    def column(self, symbol: str) -> int:
        """Position of ``symbol``; raises :class:`DataError` naming the symbol if unknown."""
        try:
            return self.symbols.index(symbol)
        except ValueError:
            raise DataError(
                f"unknown symbol {symbol!r}; panel has {', '.join(self.symbols)}"
            ) from None

    def exog_column(self, name: str) -> int:
        try:
            return self.exog_names.index(name)
        except ValueError:
            have = ", ".join(self.exog_names) or "none"
            raise DataError(f"unknown exogenous series {name!r}; panel has {have}") from None

    def select(self, symbols: list[str] | tuple[str, ...]) -> BarPanel:
        """A panel restricted to ``symbols`` (in that order)."""
        cols = [self.column(s) for s in symbols]
        return BarPanel(
            index=self.index,
            symbols=tuple(symbols),
            open=self.open[:, cols],
            high=self.high[:, cols],
            low=self.low[:, cols],
            close=self.close[:, cols],
            volume=self.volume[:, cols],
            exog=self.exog,
            exog_names=self.exog_names,
            asset_classes=tuple(self.asset_classes[c] for c in cols),
            tz=self.tz,
            provenance=self.provenance,
        )

    def slice(self, start: object = None, end: object = None) -> BarPanel:
        """Bars with ``start <= time <= end`` (either bound optional)."""
        mask = np.ones(self.n_bars, dtype=bool)
        if start is not None:
            mask &= self.index >= pd.Timestamp(start)  # type: ignore[arg-type]
        if end is not None:
            mask &= self.index <= pd.Timestamp(end)  # type: ignore[arg-type]
        if not mask.any():
            raise DataError(f"empty date range: no bars between {start} and {end}")
        return self.take(np.flatnonzero(mask))

    def head(self, n: int) -> BarPanel:
        """The first ``n`` bars."""
        return self.take(np.arange(min(n, self.n_bars)))

    def take(self, rows: np.ndarray) -> BarPanel:
        return BarPanel(
            index=self.index[rows],
            symbols=self.symbols,
            open=self.open[rows],
            high=self.high[rows],
            low=self.low[rows],
            close=self.close[rows],
            volume=self.volume[rows],
            exog=self.exog[rows],
            exog_names=self.exog_names,
            asset_classes=self.asset_classes,
            tz=self.tz,
            provenance=self.provenance,
        )

    def field_frame(self, name: str) -> pd.DataFrame:
        """One field as a wide DataFrame (index x symbols)."""
        return pd.DataFrame(getattr(self, name), index=self.index, columns=list(self.symbols))

    def to_long(self) -> pd.DataFrame:
        """Long format: timestamp, symbol, open, high, low, close, volume."""
        frames = []
        for j, sym in enumerate(self.symbols):
            frames.append(
                pd.DataFrame(
                    {
                        "timestamp": self.index,
                        "symbol": sym,
                        **{f: getattr(self, f)[:, j] for f in FIELDS},
                    }
                )
            )
        return pd.concat(frames, ignore_index=True)

    def bar(self, t: int) -> CrossBar:
        """Row ``t`` as one :class:`CrossBar` (views, not copies)."""
        return CrossBar(
            int(self.timestamps_ns[t]), self.open[t], self.close[t], self.volume[t], self.exog[t]
        )


@dataclass(frozen=True)
class CrossBar:
    """One time's bar for every symbol (symbol order fixed) plus exogenous values: what a
    live feed (a venue's bars, the ZeroMQ feed) hands the streaming driver."""

    timestamp_ns: int
    open: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    exog: np.ndarray

"""Shared helpers for the analysis layer: the result protocol and small return utilities.

The analysis layer only needs a *result-like* object exposing pandas tables (see
:class:`ResultLike`); it never imports strategies, brokers or data feeds.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

COST_COLUMNS: tuple[str, ...] = ("commission", "spread", "slippage", "impact")


@runtime_checkable
class ResultLike(Protocol):
    """Anything exposing the backtest result tables.

    Attributes
    ----------
    equity : DataFrame, DatetimeIndex x strategy, portfolio value at each bar close.
    weights : DataFrame, MultiIndex columns (strategy, symbol), held weights at bar close.
    fills : DataFrame with columns timestamp, strategy, symbol, side, qty, price and costs.
    regimes : DataFrame indexed by timestamp with ``state`` (filtered, -1 warm-up) and
        optionally ``smoothed_state`` and ``p0..p{K-1}``.
    prices : DataFrame of close prices (timestamp x symbol).
    """

    @property
    def equity(self) -> pd.DataFrame: ...

    @property
    def weights(self) -> pd.DataFrame: ...

    @property
    def fills(self) -> pd.DataFrame: ...

    @property
    def regimes(self) -> pd.DataFrame: ...

    @property
    def prices(self) -> pd.DataFrame: ...


def simple_returns(equity: pd.Series) -> pd.Series:
    """Simple per-bar returns ``E_t / E_{t-1} - 1`` (first bar dropped)."""
    e = pd.Series(equity, dtype=float)
    return (e / e.shift(1) - 1.0).iloc[1:]


def strategy_fills(fills: pd.DataFrame | None, strategy: str) -> pd.DataFrame | None:
    """Rows of ``fills`` that belong to ``strategy`` (``None`` when no fills table)."""
    if fills is None:
        return None
    if "strategy" not in fills.columns:
        return fills
    return fills.loc[fills["strategy"] == strategy]


def regime_labels(result: Any, states: np.ndarray | list[int]) -> dict[int, str]:
    """Human-readable names for filtered states, from ``result.regime_labels`` if present."""
    labels = getattr(result, "regime_labels", None) or ()
    out: dict[int, str] = {}
    for s in states:
        si = int(s)
        out[si] = f"{si}:{labels[si]}" if 0 <= si < len(labels) else str(si)
    return out


def filtered_state(regimes: pd.DataFrame | pd.Series) -> pd.Series:
    """The filtered (online) state series, as int; never the smoothed one."""
    if isinstance(regimes, pd.DataFrame):
        if "state" not in regimes.columns:
            raise KeyError("regimes table has no 'state' column (filtered online state)")
        s = regimes["state"]
    else:
        s = regimes
    return s.astype(np.int64)

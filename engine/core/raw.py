"""The compiled driver's raw output: O(T) series, decisions and fills (no (T, N) tables).

Per-bar weights, targets and orders are not materialised by the driver: targets and orders
exist only at decision bars, and weights follow exactly from the fills (positions change
only there) and the closes. :meth:`RawRun.weights` and the dense views rebuild them, bit
for bit equal to what the step computes, only when asked for.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from engine.ground import layout as L


class RawRun(NamedTuple):
    """One strategy's raw path through ``T`` bars (``D`` decisions, ``F`` fills)."""

    equity: np.ndarray  # (T,)
    cash: np.ndarray  # (T,)
    decision_bars: np.ndarray  # (D,) int64 bars where the strategy rebalanced
    targets: np.ndarray  # (D, N) target weights at those bars
    orders: np.ndarray  # (D, N) signed share orders placed there
    post: np.ndarray  # (T, K) filtered posterior
    raw: np.ndarray  # (T,) int64 raw detector state
    smoothed: np.ndarray  # (T,) int64 trading state
    costs: np.ndarray  # (T, 4) cost pieces per bar
    fills: np.ndarray  # (F, N_FILL_FIELDS) fill records
    features: np.ndarray  # (T, F) feature rows when recorded, else (1, F)

    @property
    def n_bars(self) -> int:
        return int(self.equity.shape[0])

    def positions(self, n_assets: int, t0: int = 0) -> np.ndarray:
        """``(T, N)`` shares held at each close (cumulated fills; bar ``t0`` = row 0)."""
        delta = np.zeros((self.n_bars, n_assets))
        f = self.fills
        if f.shape[0]:
            rows = f[:, L.R_BAR].astype(np.int64) - t0
            cols = f[:, L.R_ASSET].astype(np.int64)
            delta[rows, cols] = f[:, L.R_QTY]  # one fill per asset and bar
        return np.cumsum(delta, axis=0, out=delta)

    def weights(self, close: np.ndarray, t0: int = 0) -> np.ndarray:
        """``(T, N)`` weights held at each close: ``shares * close / equity`` (0 where
        equity is 0), as the step computes them."""
        pos = self.positions(close.shape[1], t0)
        eq = self.equity[:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            w = pos * close / eq
        return np.where(eq != 0.0, w, 0.0)

    def dense_targets(self, n_assets: int, t0: int = 0) -> np.ndarray:
        """``(T, N)`` targets, NaN rows where the strategy did not rebalance."""
        out = np.full((self.n_bars, n_assets), np.nan)
        out[self.decision_bars - t0] = self.targets
        return out

    def dense_orders(self, n_assets: int, t0: int = 0) -> np.ndarray:
        """``(T, N)`` share orders placed at each close, 0 where none."""
        out = np.zeros((self.n_bars, n_assets))
        out[self.decision_bars - t0] = self.orders
        return out

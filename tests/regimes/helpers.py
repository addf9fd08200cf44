"""Run a detector through prepare() + the compiled driver (cash-only static strategy)."""

from __future__ import annotations

import numpy as np

from engine.core.backtest import prepare, run_strategy_raw
from engine.core.spec import CostModel, Smoothing, cost_table
from engine.ground.bars import BarPanel
from engine.regimes.base import Detector
from strategies.static import StaticAllocation


def run_detector(
    panel: BarPanel, detector: Detector, smoothing: Smoothing | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(posterior (T, K), raw state (T,), smoothed state (T,))`` from the compiled driver."""
    costs = cost_table(panel.symbols, CostModel())
    prep = prepare(panel, detector, costs, smoothing=smoothing)
    strat = StaticAllocation("hold", weights={panel.symbols[0]: 1.0}, rebalance=None)
    out = run_strategy_raw(prep, strat)
    return np.asarray(out[5]), np.asarray(out[6]), np.asarray(out[7])


def with_noise_after(panel: BarPanel, t: int, seed: int) -> BarPanel:
    """``panel`` with every bar after ``t`` replaced by a random walk from bar ``t``."""
    rng = np.random.default_rng(seed)
    n = panel.n_bars - t - 1
    shocks = np.exp(np.cumsum(rng.normal(0.0, 0.05, size=(n, panel.n_assets)), axis=0))

    def swap(a: np.ndarray) -> np.ndarray:
        b = a.copy()
        b[t + 1 :] = a[t] * shocks
        return b

    return BarPanel(
        index=panel.index,
        symbols=panel.symbols,
        open=swap(panel.open),
        high=swap(panel.high),
        low=swap(panel.low),
        close=swap(panel.close),
        volume=panel.volume,
        exog=panel.exog,
        exog_names=panel.exog_names,
    )

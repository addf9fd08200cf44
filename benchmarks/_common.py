"""Shared helpers of the throughput, peer and sweep benchmarks (not timed tests)."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.core.backtest import Prepared, prepare, run_strategy_raw
from engine.core.spec import CostModel, cost_table
from engine.ground.bars import BarPanel
from engine.regimes.rule import NoDetector


def synthetic_panel(n_assets: int, n_bars: int, seed: int = 0) -> BarPanel:
    """A 2-state regime-switching panel of independent assets (float64, business days).

    ``data_feeds.generate_regime_panel`` builds a (T, N, N) Cholesky stack, which does not
    fit in memory at 1,000 assets; with independent assets the same model is a per-state
    scaling, generated here directly.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    means = np.stack([rng.normal(4e-4, 2e-4, n_assets), rng.normal(-6e-4, 3e-4, n_assets)])
    vols = np.stack([rng.uniform(0.006, 0.012, n_assets), rng.uniform(0.015, 0.03, n_assets)])
    stay = np.array([1 - 1 / 120, 1 - 1 / 40])
    states = np.empty(n_bars, dtype=np.int64)
    s = 0
    u = rng.random(n_bars)
    for t in range(n_bars):
        states[t] = s
        if u[t] > stay[s]:
            s = 1 - s
    r = means[states] + vols[states] * rng.standard_normal((n_bars, n_assets))
    close = 100.0 * np.exp(np.cumsum(r, axis=0))
    prev = np.vstack([np.full((1, n_assets), 100.0), close[:-1]])
    gap = np.exp(0.1 * vols[states] * rng.standard_normal((n_bars, n_assets)))
    open_ = prev * gap
    high = np.maximum(open_, close) * 1.002
    low = np.minimum(open_, close) * 0.998
    volume = np.full((n_bars, n_assets), 1e6)
    index = pd.bdate_range("1990-01-01", periods=n_bars)
    return BarPanel(
        index=index,
        symbols=tuple(f"A{i:04d}" for i in range(n_assets)),
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
    )


def prepare_static(panel: BarPanel, commission_bps: float = 5.0) -> Prepared:
    """Features + no detector (static strategies) + a commission-only cost model."""
    costs = cost_table(panel.symbols, CostModel(commission_bps=commission_bps))
    return prepare(panel, NoDetector(), costs)  # static strategies: no regime work


def timed(fn: Callable[[], Any], reps: int = 5) -> tuple[float, float, Any]:
    """``(first call seconds, best of reps seconds, last result)``.

    The previous call's result is released after the clock stops (freeing it is not part
    of the call being timed)."""
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        new = fn()
        best = min(best, time.perf_counter() - t0)
        out = new
    return first, best, out


def run_compiled(prep: Prepared, strategy: Any) -> tuple[Any, ...]:
    return run_strategy_raw(prep, strategy)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MiB; ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def machine() -> str:
    """One line on where the figures come from."""
    import platform

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load avg {load:.1f}"
    )


def table(rows: list[dict[str, Any]], floatfmt: str = ".4g") -> str:
    """A plain-text table of dict rows."""
    cols = list(rows[0])
    cells = [[c for c in cols]] + [
        [format(r[c], floatfmt) if isinstance(r[c], float) else str(r[c]) for c in cols]
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cols))]
    lines = ["  ".join(v.rjust(w) for v, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)

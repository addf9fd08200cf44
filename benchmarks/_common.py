"""Shared helpers of the throughput, peer and sweep benchmarks (not timed tests)."""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from engine.core.backtest import Prepared, prepare, run_strategy_raw
from engine.core.bars import BarPanel
from engine.core.spec import CostModel, cost_table
from engine.regimes.rule import RuleDetector


def synthetic_panel(n_assets: int, n_bars: int, seed: int = 0) -> BarPanel:
    """A 2-state regime-switching panel (independent assets) from data_feeds.synthetic."""
    from data_feeds import generate_regime_panel

    rng = np.random.default_rng(seed)
    means = np.stack([rng.normal(4e-4, 2e-4, n_assets), rng.normal(-6e-4, 3e-4, n_assets)])
    vols = np.stack([rng.uniform(0.006, 0.012, n_assets), rng.uniform(0.015, 0.03, n_assets)])
    panel, _ = generate_regime_panel(
        n_bars, means, vols, mean_dwell=[120, 40], seed=seed,
        symbols=[f"A{i:04d}" for i in range(n_assets)],
    )
    return panel


def prepare_static(panel: BarPanel, commission_bps: float = 5.0) -> Prepared:
    """Features + the default rule detector + a commission-only cost model."""
    costs = cost_table(panel.symbols, CostModel(commission_bps=commission_bps))
    return prepare(panel, RuleDetector(market=0), costs)


def timed(fn: Callable[[], Any], reps: int = 5) -> tuple[float, float, Any]:
    """``(first call seconds, best of reps seconds, last result)``."""
    t0 = time.perf_counter()
    out = fn()
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
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

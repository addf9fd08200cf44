"""Throughput of ``kind = "optimized"`` on the bundled modern panel, per objective, against
the regime-table strategy (prints figures; not a timed test).

    python -m benchmarks.optimized

For each objective: the solves per second of the ahead-of-loop pass (moments + skfolio,
one solve per month start), the wall time of the whole run (regime pass + solves +
compiled driver) and of a second run over the same prepared data (the decisions cached),
beside the regime table's run on the same prepared data (the HMM detector, default
settings, fitted once and shared).
"""

from __future__ import annotations

import time

import numpy as np

from engine.assemble import assemble
from engine.config import parse_config
from engine.core.backtest import run_strategy_raw
from strategies import optimized as opt

OBJECTIVES = opt.OBJECTIVES


def main() -> None:
    cfg = parse_config({})  # the default run: bundled modern panel, HMM, 60/40, regime table
    run = assemble(cfg)
    prep = run.prepare()
    table = run.strategy("regime_aware")[1]
    run_strategy_raw(prep, table)  # compile
    t = time.perf_counter()
    for _ in range(5):
        run_strategy_raw(prep, table)
    t_table = (time.perf_counter() - t) / 5
    panel = prep.panel
    print(
        f"bundled modern panel: {panel.n_bars} bars x {panel.n_assets} assets, "
        f"HMM ({prep.detector.n_states} states), monthly rebalancing"
    )
    print(f"regime table (kind = regime): {t_table * 1e3:.1f} ms per run")
    print(
        f"{'objective':<26}{'solves':>8}{'failed':>8}{'solves/s':>10}{'run (s)':>10}"
        f"{'cached run (ms)':>17}{'x table':>10}"
    )
    assets = ("SPX", "RUT", "DAX", "N225", "UST10")
    warm = opt.Settings(objective="min_variance", assets=assets, min_history=5500)
    opt.OptimizedStrategy("warm", warm).bind(prep)  # imports, kernels, cvxpy: not timed
    for obj in OBJECTIVES:
        extra = {"cost_bps": 5.0} if obj in opt.WITH_RETURN else {}
        s = opt.Settings(objective=obj, assets=assets, max_weight=0.6, **extra)  # type: ignore[arg-type]
        strat = opt.OptimizedStrategy(f"bench_{obj}", s, {"SPX": 0.6, "UST10": 0.4}, "M")
        opt._CACHE.clear()
        t = time.perf_counter()
        out = run_strategy_raw(prep, strat)
        wall = time.perf_counter() - t
        bound = strat.bind(prep)
        t = time.perf_counter()
        run_strategy_raw(prep, strat)
        cached = time.perf_counter() - t
        assert np.isfinite(out.equity).all()
        print(
            f"{obj:<26}{bound.solves:>8}{bound.failures:>8}"
            f"{(bound.solves + bound.failures) / wall:>10.1f}{wall:>10.2f}"
            f"{cached * 1e3:>17.1f}{wall / t_table:>10.0f}"
        )


if __name__ == "__main__":
    main()

"""``regime-engine sweep CONFIG [--scheduler tcp://HOST:PORT] [--out DIR] [--workers N]``."""

from __future__ import annotations

import argparse
from typing import Any

from engine.config_check import load_checked


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run the config's [sweep] locally (all cores) or on a Dask cluster; write the table."""
    from engine.fmt import text_table
    from engine.out_paths import run_folder
    from engine.sweep.executors import DaskExecutor, make_executor
    from engine.sweep.fitcache import FitCache
    from engine.sweep.runner import run_sweep

    cfg = load_checked(args.config)
    out = run_folder(f"{cfg.name}-sweep", args.out)  # writable, before the sweep runs
    workers = args.workers if args.workers is not None else int(cfg.sweep.get("workers", 0) or 0)
    executor = make_executor(args.scheduler, workers)
    cache = FitCache(args.fit_cache) if args.fit_cache else None
    try:
        result = run_sweep(cfg, executor=executor, cache=cache, source=str(args.config))
    finally:
        if isinstance(executor, DaskExecutor):
            executor.close()
    result.save(out)
    t = result.timings
    where = args.scheduler or f"{int(t['workers'])} local worker(s)"
    print(
        f"regime-engine sweep: {int(t['n_combos'])} combinations, {int(t['n_fits'])} detector "
        f"fit(s) ({int(t['fit_cache_hits'])} from cache) on {where}"
    )
    print(
        f"time: fits {t['fits_s']:.2f}s, compile {t['compile_s']:.2f}s, "
        f"runs {t['runs_s']:.2f}s, total {t['total_s']:.2f}s"
    )
    cols = [c for c in result.table.columns if "." in c]
    best = result.table.sort_values("sharpe", ascending=False).head(5)
    show = ["combo", *cols, "cagr", "sharpe", "max_drawdown", "total_costs"]
    top = best[show].set_index("combo")
    top.attrs["rf_label"] = "0"  # the sweep's metrics (metrics_nb) are at rf = 0
    print("top 5 by Sharpe (rf = 0):")
    print(text_table(top, kinds=dict.fromkeys(cols, "text")))
    print(f"results: {out}/ (results.parquet, results.csv, heatmap.png)")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``sweep`` subcommand."""
    p = subparsers.add_parser("sweep", help="run a parameter sweep (grid or random)")
    p.add_argument("config", help="TOML config with a [sweep] section")
    p.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://HOST:PORT")
    p.add_argument("--out", default=None, help="output folder (default: runs/NAME-sweep)")
    p.add_argument("--workers", type=int, default=None, help="local processes (0: all cores)")
    p.add_argument("--fit-cache", default=None, help="folder for the detector fit cache")
    p.set_defaults(handler=cmd_sweep)

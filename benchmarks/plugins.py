"""Plug-in figures: lazy features on the bundled default run, and compile costs.

1. The bundled default run (``run_backtest()``: 4 assets, HMM detector, three
   strategies), through the public API, warm, with lazy features (only the blocks a
   detector or strategy reads) and with every feature block computed (as before: the
   usage functions patched to "everything"), side by side in this process.
2. Compile cost, each in a fresh process: the built-in pipeline with an empty numba cache
   (first run on a fresh machine), the same with the cache warm, and a run with a user
   njit detector (``strategies.vix_detector``) — twice: the first process compiles the
   driver bound to the user's filter (:mod:`engine.core.user_driver`), the second loads it
   from the disk cache (numba can't disk-cache a loop taking a dispatcher argument, so
   the generated driver binds it as a global).

    .venv/bin/python -m benchmarks.plugins [--reps 5] [--skip-compile]
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from unittest import mock

import numpy as np
import structlog

from benchmarks._common import machine, table, timed

FRESH = """
import time, numpy as np
t0 = time.perf_counter()
from engine.api import run_backtest
t1 = time.perf_counter()
run_backtest({CONFIG}, progress=False)
t2 = time.perf_counter()
print(f"{{t1 - t0:.2f}} {{t2 - t1:.2f}}")
"""

USER = """
import time, numpy as np
t0 = time.perf_counter()
import data_feeds
from engine.core.backtest import prepare, run_strategy_raw
from engine.core.spec import CostModel, cost_table
from engine.features.exog import add_exog
from strategies.regime_switching import RegimeSwitching
from strategies.vix_detector import vix_detector
import pandas as pd
panel = data_feeds.load_bundled(["SPX", "UST10"])
r = np.diff(np.log(panel.close[:, 0]), prepend=np.log(panel.close[0, 0]))
vix = 100 * np.sqrt(252 * pd.Series(r * r).ewm(halflife=10).mean().to_numpy())
if "VIX" not in panel.exog_names:  # the bundled panel carries the VIX now
    panel = add_exog(panel, pd.DataFrame({{"VIX": vix}}, index=panel.index), lag="1D")
prep = prepare(panel, vix_detector(panel), cost_table(panel.symbols, CostModel()))
strat = RegimeSwitching("ra", {{"calm": {{"SPX": 0.8, "UST10": 0.2}},
                               "stressed": {{"SPX": 0.2, "UST10": 0.8}}}},
                        {{"SPX": 0.6, "UST10": 0.4}})
t1 = time.perf_counter()
run_strategy_raw(prep, strat)
t2 = time.perf_counter()
run_strategy_raw(prep, strat)
t3 = time.perf_counter()
print(f"{{t1 - t0:.2f}} {{t2 - t1:.2f}} {{t3 - t2:.4f}}")
"""


def lazy_rows(reps: int) -> list[dict[str, object]]:
    from data_feeds import load_bundled
    from engine.api import run_backtest
    from engine.core import backtest

    panel = load_bundled()
    n_bars, n_assets = panel.n_bars, panel.n_assets
    everything = lambda _obj, n: np.ones(n, dtype=np.bool_)  # noqa: E731

    def eager() -> object:
        with (
            mock.patch.object(backtest, "detector_assets", everything),
            mock.patch.object(backtest, "strategy_assets", everything),
        ):
            return run_backtest(None, progress=False)

    _, lazy_s, lazy = timed(lambda: run_backtest(None, progress=False), reps)
    _, eager_s, full = timed(eager, reps)
    same = all(
        np.array_equal(lazy.runs[k].equity.to_numpy(), full.runs[k].equity.to_numpy())  # type: ignore[attr-defined]
        for k in lazy.runs  # type: ignore[attr-defined]
    )
    rows = []
    for name, s in (("all feature blocks (before)", eager_s), ("lazy features (after)", lazy_s)):
        rows.append(
            {
                "bundled default run": name,
                "ms": s * 1e3,
                "bars/s": n_bars / s,
                "asset-bars/s": n_bars * n_assets / s,
                "x before": eager_s / s,
            }
        )
    # the strategy runs alone (detector fitted once): where features cost something
    from engine.api import prepare_run
    from engine.assemble import build_strategy
    from engine.config import load_config

    cfg = load_config(None)
    strats = [build_strategy(s) for s in cfg.strategies]
    prep_lazy = prepare_run(cfg, panel, strats)
    with mock.patch.object(backtest, "detector_assets", everything):
        prep_all = prepare_run(cfg, panel, strats)

    def runs(prep: object) -> None:
        for s in strats:
            backtest.run_strategy_raw(prep, s)  # type: ignore[arg-type]

    _, run_lazy, _ = timed(lambda: runs(prep_lazy), reps * 4)
    with mock.patch.object(backtest, "strategy_assets", everything):
        _, run_all, _ = timed(lambda: runs(prep_all), reps * 4)
    for name, s in (("3 strategy runs, all blocks", run_all), ("3 strategy runs, lazy", run_lazy)):
        rows.append(
            {
                "bundled default run": name,
                "ms": s * 1e3,
                "bars/s": 3 * n_bars / s,
                "asset-bars/s": 3 * n_bars * n_assets / s,
                "x before": run_all / s,
            }
        )
    print(f"identical equity both ways: {same}")
    return rows


def run_fresh(code: str, cache_dir: str) -> list[float]:
    env = dict(
        os.environ,
        NUMBA_CACHE_DIR=cache_dir,
        REGIME_ENGINE_DRIVER_CACHE=os.path.join(cache_dir, "drivers"),
        PYTHONPATH=os.getcwd(),
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return [float(x) for x in out[-3:] if x.replace(".", "").isdigit()] or [float("nan")]


def compile_rows() -> list[dict[str, object]]:
    cfg = repr({"data": {"start": "2005-01-01"}})
    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as cold:
        a = run_fresh(FRESH.format(CONFIG=cfg), cold)
        rows.append({"case": "default run, empty numba cache", "import s": a[0], "run s": a[1]})
        b = run_fresh(FRESH.format(CONFIG=cfg), cold)
        rows.append({"case": "default run, cache warm", "import s": b[0], "run s": b[1]})
        for i in (1, 2):
            u = run_fresh(USER.format(), cold)
            rows.append(
                {
                    "case": f"user njit detector, process {i}",
                    "import s": u[0],
                    "run s": u[1],
                    "warm run s": u[2],
                }
            )
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--skip-compile", action="store_true")
    args = ap.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    print(machine())
    print(table(lazy_rows(args.reps), ".4g"))
    if not args.skip_compile:
        rows = compile_rows()
        for r in rows:
            r.setdefault("warm run s", float("nan"))
        print(table(rows, ".3g"))


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t0:.0f} s)")

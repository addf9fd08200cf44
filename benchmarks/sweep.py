"""Sweep throughput on the bundled panel, and peak memory of a 1,000 x 5,000 backtest.

A: 1,000 strategy/cost settings over one fixed detector;
B: 10 detector settings x 100 strategy/cost settings (``--detector hmm`` for the HMM with
   refits every 63 bars, default the rule detector);
C: peak RSS of one compiled backtest of 1,000 assets x 5,000 bars (``resource.getrusage``).

Compile time is measured apart (one warm-up run before the workers start).

D (``--share``): sweep B with the features and the regime pass shared by every
strategy/cost combination of one (detector fit, features, smoothing) vs computed inside
each combination (``share_passes=False``, the engine before issue 24), in one process,
fits done once beforehand (a shared fit cache, so both sides get the same fits) and shown
apart, best of ``--reps`` alternating; the two results tables compared bit for bit.

    .venv/bin/python -m benchmarks.sweep [--workers 2] [--detector rule|hmm] [--skip-memory]
    .venv/bin/python -m benchmarks.sweep --detector hmm --share --workers 1 --skip-memory

E (``--baseline REV``): sweep B's runs (fits done once beforehand and excluded, compile
excluded, best of ``--reps``) in a child process on this tree and one on ``git archive
REV`` (see :mod:`benchmarks.startup`), one worker each, and the two results tables
compared bit for bit:

    .venv/bin/python -m benchmarks.sweep --detector hmm --baseline 5409b9e --skip-memory

Measured (issue 24, target 5x; load ~2 on 2 cores, --reps 3): 3.05-3.14 s -> 0.44-0.45 s,
6.7-7.2x, tables identical (was 3.08 s -> 0.76 s, 4.1x, before the built-in loop's per-bar
kernels lost their reference counting).
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks._common import machine, peak_rss_mb, table
from engine.config import parse_config
from engine.sweep import LocalExecutor, run_sweep

STRAT_COST = {
    "strategy": {"drift": [0.0, 0.02, 0.05, 0.1, 0.2], "rebalance": ["M", "Q"]},
    "costs": {"commission_bps": [0.0, 2.0, 5.0, 10.0, 20.0], "half_spread_bps": [0.0, 5.0]},
}


def config(detector: str, n_det: int, wide: bool) -> Any:
    sweep: dict[str, Any] = {"strategy_name": "regime_aware", **STRAT_COST}
    raw: dict[str, Any] = {"sweep": sweep}
    if wide:  # 1,000 strategy/cost settings, one detector
        sweep["costs"] = {**sweep["costs"], "slippage_bps": [0.0, 1.0, 2.0, 5.0, 10.0]}
        sweep["execution"] = {"trade_band": [0.0, 0.01]}
    if detector == "hmm":
        raw["detector"] = {"kind": "hmm", "refit_every": 63, "n_restarts": 1, "n_iter": 50}
        raw["strategies"] = [
            {
                "kind": "regime",
                "name": "regime_aware",
                "rebalance": "M",
                "warmup": {"SPX": 0.6, "UST10": 0.4},
                "table": {
                    "0": {"SPX": 0.7, "UST10": 0.3},
                    "1": {"SPX": 0.4, "UST10": 0.6},
                    "2": {"SPX": 0.1, "UST10": 0.6, "CASH": 0.3},
                },
            }
        ]
        if not wide:
            sweep["detector"] = {"seed": list(range(n_det // 2)), "covariance": ["full", "diag"]}
    else:
        raw["detector"] = {"kind": "rule"}
    if detector != "hmm" and not wide:
        sweep["detector"] = {
            "high_pct": [0.6, 0.65, 0.7, 0.75, 0.8],
            "history": [504, 756],
        }
    return parse_config(raw)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--detector", choices=["rule", "hmm"], default="rule")
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--share", action="store_true", help="only D: shared passes vs not")
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument(
        "--vs-hmmlearn",
        action="store_true",
        help="with --share: also the whole sweep as the issue found it (hmmlearn fits, "
        "nothing shared), in the same process",
    )
    ap.add_argument("--baseline", default=None, help="E: git revision to compare runs with")
    args = ap.parse_args(argv)
    if args.baseline:
        compare_trees(args.detector, args.baseline, args.reps)
        return
    ex = LocalExecutor(args.workers)
    if args.share:
        share_comparison(args.detector, ex, args.reps, args.vs_hmmlearn)
        return
    rows = []
    for label, wide in (("A: 1 detector x 1,000", True), ("B: 10 detectors x 100", False)):
        res = run_sweep(config(args.detector, 10, wide), executor=ex)
        t = res.timings
        rows.append(
            {
                "sweep": f"{label} ({args.detector})",
                "combos": int(t["n_combos"]),
                "fits": int(t["n_fits"]),
                "workers": int(t["workers"]),
                "fits s": t["fits_s"],
                "compile s": t["compile_s"],
                "runs s": t["runs_s"],
                "total excl. compile s": t["total_s"] - t["compile_s"],
                "runs/s": t["n_combos"] / t["runs_s"],
            }
        )
    print(f"sweeps on the bundled panel ({machine()})")
    print(table(rows))
    if not args.skip_memory:
        from benchmarks._common import prepare_static, synthetic_panel
        from engine.core.backtest import run_strategy_raw
        from strategies.static import StaticAllocation

        base = peak_rss_mb()
        panel = synthetic_panel(1000, 5000, seed=1)
        after_panel = peak_rss_mb()
        prep = prepare_static(panel)
        after_prep = peak_rss_mb()
        run_strategy_raw(prep, StaticAllocation("ew", "equal", "M"))
        after_run = peak_rss_mb()
        print()
        print("peak RSS, 1,000 assets x 5,000 bars (MiB, resource.getrusage ru_maxrss)")
        print(
            table(
                [
                    {
                        "before": base,
                        "+ panel (OHLCV float64)": after_panel,
                        "+ features/detector": after_prep,
                        "+ compiled run": after_run,
                        "one (T,N) float64 array": 5000 * 1000 * 8 / 2**20,
                    }
                ],
                ".1f",
            )
        )


_TREE_CHILD = """
import hashlib, importlib.util, json, logging, sys, time
logging.disable(logging.WARNING)
spec = importlib.util.spec_from_file_location("_bench_sweep", sys.argv[3])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)  # this file; engine from the tree measured
from engine.sweep import FitCache, SerialExecutor, run_sweep
cfg = mod.config(sys.argv[1], 10, False)
cache = FitCache()
first = run_sweep(cfg, executor=SerialExecutor(), cache=cache)  # fits, compilation
best = float("inf")
for _ in range(int(sys.argv[2])):
    res = run_sweep(cfg, executor=SerialExecutor(), cache=cache)
    t = res.timings
    best = min(best, t["total_s"] - t["fits_s"] - t["compile_s"])
digest = hashlib.sha256(res.table.to_csv(index=False).encode()).hexdigest()[:16]
print(json.dumps({"runs": best, "fits": first.timings["fits_s"], "table": digest}))
"""


def compare_trees(detector: str, baseline: str, reps: int) -> None:
    """E: sweep B's runs in a child on this tree and one on ``baseline`` (see above)."""
    import json
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from benchmarks.startup import extract

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"baseline": extract(baseline, Path(tmp) / "baseline"), "this tree": root}
        out = {}
        for k, tree in trees.items():
            res = subprocess.run(
                [sys.executable, "-c", _TREE_CHILD, detector, str(reps), __file__],
                cwd=tree,
                env={**os.environ, "PYTHONPATH": str(tree)},
                capture_output=True,
                text=True,
                check=True,
            )
            out[k] = json.loads(res.stdout.strip().splitlines()[-1])
    print(
        f"E: 1,000 combinations, 10 {detector} settings, one worker, fits excluded, best of "
        f"{reps} (load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)"
    )
    for k, r in out.items():
        print(
            f"{k:>10} ({baseline if k == 'baseline' else 'HEAD + work tree'}): runs "
            f"{r['runs']:.2f} s (fits {r['fits']:.2f} s, done once)"
        )
    a, b = out["baseline"], out["this tree"]
    print(
        f"   runs {a['runs'] / b['runs']:.1f}x faster; with the fits "
        f"{(a['fits'] + a['runs']) / (b['fits'] + b['runs']):.1f}x; "
        f"tables identical: {a['table'] == b['table']}"
    )


def share_comparison(detector: str, ex: Any, reps: int, vs_hmmlearn: bool = False) -> None:
    """D: sweep B with the per-combination work shared vs not (same process, same fits)."""
    import os
    import time

    from engine.sweep import FitCache

    cfg = config(detector, 10, False)
    cache = FitCache()
    t0 = time.perf_counter()
    first = run_sweep(cfg, executor=ex, cache=cache)  # fits into the cache, compiles
    print(
        f"D: {int(first.timings['n_combos'])} combinations, {int(first.timings['n_fits'])} "
        f"detector fits ({detector}; {first.timings['fits_s']:.2f} s, done once: "
        f"{time.perf_counter() - t0:.1f} s with compilation), {ex.n_workers} worker(s), "
        f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs"
    )
    best: dict[bool, float] = {True: float("inf"), False: float("inf")}
    tables = {}
    for _ in range(reps):
        for share in (False, True):
            res = run_sweep(cfg, executor=ex, cache=cache, share_passes=share)
            t = res.timings
            best[share] = min(best[share], t["total_s"] - t["fits_s"] - t["compile_s"])
            tables[share] = res.table
    same = tables[True].equals(tables[False])
    print(
        f"   runs (+ shared passes), fits excluded: per combination {best[False]:.2f} s, "
        f"shared {best[True]:.2f} s: {best[False] / best[True]:.1f}x; tables identical: {same}"
    )
    fit_s = first.timings["fits_s"]
    print(
        f"   with the fits ({fit_s:.2f} s): {fit_s + best[False]:.2f} s -> "
        f"{fit_s + best[True]:.2f} s ({(fit_s + best[False]) / (fit_s + best[True]):.1f}x)"
    )
    if vs_hmmlearn and detector == "hmm":
        raw = cfg.model_dump(mode="json")
        raw["detector"]["fitter"] = "hmmlearn"
        from engine.config import parse_config as parse

        old = run_sweep(parse(raw), executor=ex, cache=FitCache(), share_passes=False)
        t = old.timings
        old_total = t["total_s"] - t["compile_s"]
        print(
            f"   as the issue found it (hmmlearn fits {t['fits_s']:.2f} s, nothing shared): "
            f"{old_total:.2f} s -> {fit_s + best[True]:.2f} s now "
            f"({old_total / (fit_s + best[True]):.1f}x)"
        )


if __name__ == "__main__":
    main()

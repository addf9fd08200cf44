"""Memory benchmark: peak resident memory of a whole-panel run and of a chunked run,
over T and 10 T bars, and how much of it is *not* the outputs.

    python -m benchmarks.memory                        # 100 assets x 20,000 and x 200,000 bars
    python -m benchmarks.memory --assets 50 --bars 4000 --chunk 1000   # a quick look
    python -m benchmarks.memory --detector hmm-rolling   # HMM refitted on a trailing window

Long, time-major Parquet files (hourly bars, round the clock) are generated in a temporary
folder (never committed). Each case runs in a *child* process, which first warms up
(imports, numba compile) on a small file, then resets its peak-memory counter
(``/proc/self/clear_refs``) and reads ``VmRSS`` (the baseline), runs the backtest through
the public API (:func:`engine.api.run_backtest`, or
:func:`engine.api_chunked.run_backtest_chunked` with ``[data] chunk_bars``), and reports
``VmHWM`` (the peak). ``extra beyond outputs = peak - baseline - output bytes``: what the
run needed besides what it returns. The target is a chunked extra that stays constant
(within a few MB) from T to 10 T bars; the whole-panel extra grows with T.

Children run with glibc's mmap threshold pinned at 64 KiB (``--malloc mmap``, the default):
freed arrays are unmapped at once, so the peak is what was live. With glibc's sliding
threshold (``--malloc default``) heap holes left by freed chunk arrays add tens of MB of
run-to-run noise (the chunked extra then settles after the first few chunks).

Config of every case: an equal-weight portfolio rebalanced monthly and a regime-table one
driven by the ``rule`` detector on the first asset (fixed parameters, so chunkable),
5 bps commission, next-open fills.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PIECE_BARS = 2000  # bars generated and written at a time
ROW_GROUP = 1 << 16


def write_parquet(path: Path, n_assets: int, n_bars: int, seed: int = 0) -> int:
    """A valid long OHLCV file, rows in time order, written piece by piece. Returns bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    syms = pa.array([f"A{j:04d}" for j in range(n_assets)]).dictionary_encode()
    last = np.full(n_assets, 100.0)
    start = pd.Timestamp("2000-01-03")
    writer = None
    try:
        for a in range(0, n_bars, PIECE_BARS):
            m = min(PIECE_BARS, n_bars - a)
            ts = (start + pd.to_timedelta(np.arange(a, a + m), unit="h")).as_unit("ns")
            r = rng.normal(2e-5, 0.004, (m, n_assets))
            close = last * np.exp(np.cumsum(r, axis=0))
            prev = np.vstack([last[None, :], close[:-1]])
            open_ = prev * np.exp(rng.normal(0, 5e-4, (m, n_assets)))
            high = np.maximum(open_, close) * 1.001
            low = np.minimum(open_, close) * 0.999
            last = close[-1]
            table = pa.table(
                {
                    "timestamp": pa.array(np.repeat(ts.to_numpy(), n_assets)),
                    "symbol": pa.DictionaryArray.from_arrays(
                        pa.array(np.tile(np.arange(n_assets, dtype=np.int32), m)),
                        syms.dictionary,
                    ),
                    "open": open_.ravel(),
                    "high": high.ravel(),
                    "low": low.ravel(),
                    "close": close.ravel(),
                    "volume": np.full(m * n_assets, 1e6),
                }
            )
            if writer is None:
                writer = pq.ParquetWriter(str(path), table.schema)
            writer.write_table(table, row_group_size=ROW_GROUP)
    finally:
        if writer is not None:
            writer.close()
    return path.stat().st_size


DETECTORS: dict[str, dict[str, Any]] = {
    "rule": {"kind": "rule", "market": "A0000", "history": 500, "min_history": 100},
    "hmm-rolling": {  # refitted every 2,000 bars on the last 2,000 (hmmlearn)
        "kind": "hmm",
        "market": "A0000",
        "n_states": 2,
        "min_train": 1000,
        "refit_every": 2000,
        "window": "rolling",
        "window_length": 2000,
        "n_restarts": 1,
        "n_iter": 10,
    },
}


def config(path: Path, chunk_bars: int | None, detector: str = "rule") -> dict[str, Any]:
    data: dict[str, Any] = {"source": str(path), "periods_per_year": 24 * 365}
    if chunk_bars:
        data["chunk_bars"] = chunk_bars
    table: dict[str, Any] = {"calm": "equal", "volatile": {"A0001": 1.0}}
    if detector == "rule":
        table["crisis"] = {"A0002": 1.0}
    return {
        "data": data,
        "costs": {"commission_bps": 5.0},
        "detector": DETECTORS[detector],
        "strategies": [
            {"kind": "static", "name": "equal", "weights": "equal", "rebalance": "M"},
            {
                "kind": "regime",
                "name": "regime",
                "rebalance": "M",
                "warmup": "equal",
                "table": table,
            },
        ],
    }


def _status(key: str) -> int:
    """A ``VmRSS``/``VmHWM`` line of /proc/self/status, in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def _frame_bytes(obj: Any) -> int:
    if isinstance(obj, pd.DataFrame):
        return int(obj.memory_usage(index=True, deep=False).sum())
    if isinstance(obj, pd.Series):
        return int(obj.memory_usage(index=True, deep=False))
    return int(getattr(obj, "nbytes", 0))


def output_bytes(result: Any) -> int:
    """Bytes the run returns: per-bar tables, fills, decisions, regimes (not the input
    panel). Tables a result builds only when read (the whole-panel run's ``(T, N)``
    weights, targets and orders) count only if built: reading them here would not."""
    if hasattr(result, "nbytes"):  # ChunkedResult
        return int(result.nbytes)
    total = _frame_bytes(result.regimes)
    for run in result.runs.values():
        for name in ("equity", "cash", "costs", "raw_fills"):
            total += _frame_bytes(getattr(run, name))
        source = getattr(run, "_source", None)
        if source is not None:  # the raw run behind the lazy tables
            raw = source[1]
            total += raw.decision_bars.nbytes + raw.targets.nbytes + raw.orders.nbytes
        for name in ("_weights", "_targets", "_orders", "_fills"):
            total += _frame_bytes(getattr(run, name, None))
    if result.features is not None:
        total += _frame_bytes(result.features)
    return total


def child(
    mode: str, path: Path, warm: Path, chunk_bars: int, detector: str = "rule"
) -> dict[str, Any]:
    """One measured run in this (fresh) process."""
    import gc

    import structlog

    from engine.api import run_backtest
    from engine.api_chunked import run_backtest_chunked

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(40))

    def run(p: Path) -> Any:
        if mode == "chunked":
            return run_backtest_chunked(config(p, chunk_bars, detector))
        return run_backtest(config(p, None, detector), progress=False)

    run(warm)  # imports, numba (cached) kernels, first-call allocations
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    base = _status("VmRSS")
    t0 = time.perf_counter()
    result = run(path)
    seconds = time.perf_counter() - t0
    peak = _status("VmHWM")
    out = output_bytes(result)
    bars = len(result.equity)
    return {"bars": bars, "base": base, "peak": peak, "out": out, "seconds": seconds}


def measure(
    mode: str, path: Path, warm: Path, chunk_bars: int, malloc: str, detector: str
) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.memory", "--child", mode, str(path), str(warm)]
    cmd += ["--chunk", str(chunk_bars), "--detector", detector]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    if malloc == "mmap":  # blocks >= 64 KiB mapped and unmapped at once (no heap holes)
        env["MALLOC_MMAP_THRESHOLD_"] = str(64 << 10)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["?"])[-1]
        raise SystemExit(f"{mode} run on {path.name} failed: {tail}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--assets", type=int, default=100)
    ap.add_argument("--bars", type=int, default=20_000, help="T (the long case has 10 T)")
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--chunk", type=int, default=5_000, help="chunk_bars of the chunked runs")
    ap.add_argument(
        "--malloc",
        choices=["mmap", "default"],
        default="mmap",
        help="mmap: children pin glibc's mmap threshold at 64 KiB, so freed arrays leave at "
        "once and the peak is what was live (default: glibc's sliding threshold, whose heap "
        "holes add tens of MB of noise)",
    )
    ap.add_argument(
        "--detector",
        choices=sorted(DETECTORS),
        default="rule",
        help="rule (fixed parameters) or hmm-rolling (refits on a trailing window)",
    )
    ap.add_argument(
        "--repeat", type=int, default=5, help="chunked runs per size (the median is shown)"
    )
    ap.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "WARM"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        mode, path, warm = args.child
        print(json.dumps(child(mode, Path(path), Path(warm), args.chunk, args.detector)))
        return
    mb = 1 << 20
    with tempfile.TemporaryDirectory(prefix="re-memory-") as tmp:
        d = Path(tmp)
        warm = d / "warm.parquet"
        write_parquet(warm, args.assets, 2 * args.chunk + 7, seed=1)
        sizes = [args.bars, args.bars * args.factor]
        files = {}
        for n in sizes:
            t0 = time.perf_counter()
            files[n] = d / f"bars_{n}.parquet"
            size = write_parquet(files[n], args.assets, n)
            print(
                f"generated {args.assets} assets x {n:,} bars: {size / mb:,.0f} MB Parquet "
                f"({args.assets * n:,} rows, {time.perf_counter() - t0:.1f} s)",
                flush=True,
            )
        print(
            f"\npeak resident memory per run (child process, after warm-up); chunk_bars = "
            f"{args.chunk:,}; detector: {args.detector}; malloc: {args.malloc}; machine shared "
            "with other sessions "
            "(times are indicative)\n"
        )
        head = f"{'run':<28}{'bars':>9}{'baseline':>10}{'peak':>9}{'outputs':>9}{'extra':>9}"
        print(head + f"{'time':>9}")
        print("-" * (len(head) + 9))
        extra: dict[tuple[str, int], float] = {}
        for mode in ("whole", "chunked"):
            for n in sizes:
                reps = [
                    measure(mode, files[n], warm, args.chunk, args.malloc, args.detector)
                    for _ in range(args.repeat if mode == "chunked" else 1)
                ]
                extras = [(x["peak"] - x["base"] - x["out"]) / mb for x in reps]
                r = reps[int(np.argsort(extras)[len(extras) // 2])]  # the median run
                extra[(mode, n)] = float(np.median(extras))
                spread = (
                    f"  (runs: {', '.join(f'{e:.0f}' for e in extras)} MB)" if len(reps) > 1 else ""
                )
                label = "whole panel (run_backtest)" if mode == "whole" else "chunked (chunk_bars)"
                print(
                    f"{label:<28}{r['bars']:>9,}{r['base'] / mb:>9.0f}M{r['peak'] / mb:>8.0f}M"
                    f"{r['out'] / mb:>8.1f}M{extra[(mode, n)]:>8.1f}M{r['seconds']:>8.1f}s{spread}",
                    flush=True,
                )
        print("\nextra memory beyond outputs, T -> 10 T bars (peak - baseline - outputs):")
        for mode in ("whole", "chunked"):
            a, b = extra[(mode, sizes[0])], extra[(mode, sizes[1])]
            print(f"  {mode:<8} {a:8.1f} MB -> {b:8.1f} MB  (+{b - a:.1f} MB, {args.factor}x bars)")


if __name__ == "__main__":
    main()

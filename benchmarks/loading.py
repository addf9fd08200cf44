"""Loading benchmark: a 400-symbol x 6,000-bar long CSV (~233 MB) and ``from_dataframe``.

    python -m benchmarks.loading                 # generate in a temp dir, time both paths
    python -m benchmarks.loading --rows 1000000  # from_dataframe on N rows (default 1M)
    python -m benchmarks.loading --skip-csv --baseline HEAD~2   # vs a revision, one run

``from_dataframe`` is timed on a long table of 100 symbols x ``rows / 100`` bars with
``datetime64`` timestamps, and in the same process the backtest it feeds: the public API
``run_backtest`` on that panel (monthly equal weight, 5 bps, no detector: the workload of
``benchmarks.speed``), best of 3 each; target (issue 24): loading no slower than that
backtest. Not met, and below this machine's memory floor: the panel's five ``(T, N)``
C-ordered float64 fields (40 MB) written from the table's ``(N, T)`` columns cost 12.7-13.1
ms alone (NumPy's copy of the transposed view; a plain contiguous copy of the same bytes
9.3 ms, a two-thread numba copy 10.5 ms, cache-tiled numba transposes 13-24 ms), as much
as the 10-12 ms backtest, before the parse (symbol blocks, timestamps, checks: ~12 ms).
Keeping ``(N, T)`` F-ordered views instead is no option: ``BarPanel`` makes its fields
C-contiguous and every kernel is typed on that layout (a second set of signatures, or
``A`` layout everywhere); nor is a panel viewing the caller's frame (pandas does not track
NumPy views: a later write to the frame would change the panel).

Two more layouts of the same data are timed too: the rows interleaved (sorted by time,
then symbol: reshaped to ``(T, N)`` and copied once) and the wide layout (``SYM_close``
columns: one ``(T, N)`` take per field). With ``--baseline REV``
the same child runs on ``git archive REV`` (see :mod:`benchmarks.startup`), interleaved
with this tree's, and the panels of the two trees are compared bit for bit.

The CSV is generated in a temporary folder (never committed) and loaded in a *child*
process per measurement, so the peak resident memory (``ru_maxrss`` of the child) is that
of the load alone: the figure to compare with the file size (target <= 2x). Prints wall
time, peak memory and the ratio to the file size, plus ``from_dataframe`` on 1M rows.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

N_SYMBOLS = 400
N_BARS = 6000


def long_frame(n_symbols: int, n_bars: int, seed: int = 0) -> pd.DataFrame:
    """A long OHLCV table (timestamp, symbol, open, high, low, close, volume), valid bars."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2000-01-03", periods=n_bars)
    r = rng.normal(2e-4, 0.012, (n_bars, n_symbols))
    close = 50.0 * np.exp(np.cumsum(r, axis=0))
    open_ = close * np.exp(rng.normal(0, 0.003, close.shape))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, close.shape)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, close.shape)))
    vol = rng.integers(1_000, 5_000_000, close.shape).astype(float)
    syms = np.array([f"SYM{j:03d}" for j in range(n_symbols)])
    return pd.DataFrame(
        {
            "timestamp": np.tile(idx.strftime("%Y-%m-%d %H:%M:%S").to_numpy(), n_symbols),
            "symbol": np.repeat(syms, n_bars),
            "open": open_.T.ravel().round(6),
            "high": high.T.ravel().round(6),
            "low": low.T.ravel().round(6),
            "close": close.T.ravel().round(6),
            "volume": vol.T.ravel(),
        }
    )


def write_csv(folder: Path, n_symbols: int = N_SYMBOLS, n_bars: int = N_BARS) -> Path:
    path = folder / f"long_{n_symbols}x{n_bars}.csv"
    long_frame(n_symbols, n_bars).to_csv(path, index=False, float_format="%.8f")
    return path


_CHILD = """
import sys, time
import data_feeds
t1 = time.perf_counter()
p = data_feeds.load_csv(sys.argv[1]) if len(sys.argv) > 1 else None
t2 = time.perf_counter()
print(f"{t2 - t1:.3f} {p.n_bars if p else 0} {p.n_assets if p else 0}")
"""


def _measured(*args: str) -> tuple[list[str], int]:
    """Run the loading child under ``/usr/bin/time -v``: (its stdout words, peak RSS bytes).

    ``/usr/bin/time`` (not ``getrusage`` here) because a forked child inherits the
    parent's peak RSS in ``ru_maxrss`` until it execs.
    """
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    res = subprocess.run(
        ["/usr/bin/time", "-v", sys.executable, "-c", _CHILD, *args],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    line = next(x for x in res.stderr.splitlines() if "Maximum resident set size" in x)
    return res.stdout.split(), int(line.split(":")[-1]) * 1024


def time_csv(path: Path) -> tuple[float, int, int, int]:
    """(load seconds, peak RSS bytes of the loading process, bars, assets)."""
    out, rss = _measured(str(path))
    return float(out[0]), rss, int(out[1]), int(out[2])


def baseline_rss() -> int:
    """Peak RSS of a child that only imports data_feeds (the interpreter + libraries)."""
    return _measured()[1]


def time_from_dataframe(rows: int) -> float:
    return frame_timings(rows)["long"]


def _best(fn: object, reps: int = 3) -> float:
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        best = min(best, time.perf_counter() - t0)
    return best


def frame_timings(rows: int, digest: bool = False) -> dict[str, object]:
    """Seconds of ``from_dataframe`` (long, interleaved, wide layouts) and of the backtest
    the long panel feeds, in this process (best of 3 each); with ``digest``, a hash of the
    long panel's arrays and index (to compare trees)."""
    import hashlib
    import logging

    import data_feeds
    from engine.api import run_backtest

    logging.disable(logging.WARNING)
    n_sym = 100
    df = long_frame(n_sym, rows // n_sym)
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    inter = df.sort_values(["timestamp", "symbol"], kind="stable").reset_index(drop=True)
    wide = df.pivot(index="timestamp", columns="symbol")
    wide.columns = [f"{sym}_{field}" for field, sym in wide.columns]
    wide = wide.reset_index()
    data_feeds.from_dataframe(df.head(1000))  # warm imports
    out: dict[str, object] = {
        "long": _best(lambda: data_feeds.from_dataframe(df)),
        "interleaved": _best(lambda: data_feeds.from_dataframe(inter)),
        "wide": _best(lambda: data_feeds.from_dataframe(wide)),
    }
    cols = [df[f].to_numpy() for f in ("open", "high", "low", "close", "volume")]
    # the floor of any loader: the five fields copied into fresh (T, N) arrays, nothing else
    out["transpose"] = _best(lambda: [np.ascontiguousarray(c.reshape(n_sym, -1).T) for c in cols])
    panel = data_feeds.from_dataframe(df)
    cfg = {
        "detector": {"kind": "none"},
        "costs": {"commission_bps": 5.0},
        "strategies": [{"kind": "static", "name": "ew", "weights": "equal", "rebalance": "M"}],
    }
    run_backtest(cfg, panel=panel, progress=False)  # compile / cache load
    out["backtest"] = _best(lambda: run_backtest(cfg, panel=panel, progress=False))
    if digest:
        h = hashlib.sha256(panel.index.asi8.tobytes() + str(panel.symbols).encode())
        for name in ("open", "high", "low", "close", "volume"):
            h.update(getattr(panel, name).tobytes())
        for other in (inter, wide):
            p2 = data_feeds.from_dataframe(other)
            for name in ("open", "high", "low", "close", "volume"):
                h.update(getattr(p2, name).tobytes())
        out["digest"] = h.hexdigest()[:16]
    return out


MEASURES = ("long", "interleaved", "wide", "backtest", "transpose")

_FRAME_CHILD = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("_bench_loading", sys.argv[2])
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)  # this file; data_feeds and engine from the tree measured
print(json.dumps(mod.frame_timings(int(sys.argv[1]), digest=True)))
"""


def compare_frames(rows: int, baseline: str) -> None:
    """``frame_timings`` in child processes of this tree and of ``baseline`` (interleaved)."""
    import json

    from benchmarks.startup import extract

    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"baseline": extract(baseline, Path(tmp) / "baseline"), "this tree": root}
        runs: dict[str, list[dict[str, object]]] = {k: [] for k in trees}
        for _ in range(2):
            for k, tree in trees.items():
                res = subprocess.run(
                    [sys.executable, "-c", _FRAME_CHILD, str(rows), __file__],
                    cwd=tree,
                    env={**os.environ, "PYTHONPATH": str(tree)},
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs[k].append(json.loads(res.stdout.strip().splitlines()[-1]))
    best = {
        k: {m: min(float(r[m]) for r in rs) for m in MEASURES}  # type: ignore[arg-type]
        for k, rs in runs.items()
    }
    print(f"from_dataframe, 100 symbols x {rows // 100:,} bars (best of 2 children x 3 calls):")
    for k, b in best.items():
        print(
            f"{k:>10}: long {b['long'] * 1e3:7.1f} ms | interleaved {b['interleaved'] * 1e3:7.1f}"
            f" ms | wide {b['wide'] * 1e3:7.1f} ms | the backtest it feeds "
            f"{b['backtest'] * 1e3:6.1f} ms (loading / backtest {b['long'] / b['backtest']:.2f}x;"
            f" the bare transpose of the five fields {b['transpose'] * 1e3:.1f} ms)"
        )
    a, b = best["baseline"], best["this tree"]
    print(
        "speed-up: " + ", ".join(f"{m} {a[m] / b[m]:.1f}x" for m in ("long", "interleaved", "wide"))
    )
    same = runs["baseline"][0]["digest"] == runs["this tree"][0]["digest"]
    print(f"panels bit for bit the same: {same}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--symbols", type=int, default=N_SYMBOLS)
    ap.add_argument("--bars", type=int, default=N_BARS)
    ap.add_argument("--rows", type=int, default=1_000_000, help="from_dataframe rows")
    ap.add_argument("--skip-csv", action="store_true")
    ap.add_argument("--keep", default=None, help="also copy the generated CSV here")
    ap.add_argument("--baseline", default=None, help="git revision to compare with")
    args = ap.parse_args()
    print(f"load average (1 min): {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    if not args.skip_csv:
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            path = write_csv(Path(tmp), args.symbols, args.bars)
            if args.keep:
                import shutil

                shutil.copy(path, args.keep)
            size = path.stat().st_size
            print(
                f"generated {path.name}: {size / 1e6:.0f} MB, {args.symbols * args.bars:,} rows "
                f"({time.perf_counter() - t0:.1f} s)"
            )
            base = baseline_rss()
            secs, rss, bars, assets = time_csv(path)
            print(
                f"load_csv: {secs:.2f} s, peak RSS {rss / 1e6:.0f} MB "
                f"({rss / size:.2f}x the file; {(rss - base) / size:.2f}x above the "
                f"{base / 1e6:.0f} MB of the interpreter + imports), {bars} bars x {assets} assets"
            )
    if args.baseline:
        compare_frames(args.rows, args.baseline)
        return
    t = frame_timings(args.rows)
    print(
        f"from_dataframe: {args.rows:,} rows in {float(t['long']):.3f} s (best of 3); "  # type: ignore[arg-type]
        f"interleaved {float(t['interleaved']):.3f} s, wide {float(t['wide']):.3f} s; "  # type: ignore[arg-type]
        f"the backtest it feeds {float(t['backtest']):.3f} s"  # type: ignore[arg-type]
    )


if __name__ == "__main__":
    main()

"""Loading benchmark: a 400-symbol x 6,000-bar long CSV (~233 MB) and ``from_dataframe``.

    python -m benchmarks.loading                 # generate in a temp dir, time both paths
    python -m benchmarks.loading --rows 1000000  # from_dataframe on N rows (default 1M)

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
    import data_feeds

    n_sym = 100
    df = long_frame(n_sym, rows // n_sym)
    df["timestamp"] = pd.to_datetime(df["timestamp"])
    data_feeds.from_dataframe(df.head(1000))  # warm imports
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        data_feeds.from_dataframe(df)
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--symbols", type=int, default=N_SYMBOLS)
    ap.add_argument("--bars", type=int, default=N_BARS)
    ap.add_argument("--rows", type=int, default=1_000_000, help="from_dataframe rows")
    ap.add_argument("--skip-csv", action="store_true")
    ap.add_argument("--keep", default=None, help="also copy the generated CSV here")
    args = ap.parse_args()
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
    secs = time_from_dataframe(args.rows)
    print(f"from_dataframe: {args.rows:,} rows in {secs:.3f} s (best of 3)")


if __name__ == "__main__":
    main()

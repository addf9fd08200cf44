"""Startup benchmark: ``regime-engine backtest --no-report`` end to end, and its imports.

    python -m benchmarks.startup                       # this tree
    python -m benchmarks.startup --baseline HEAD~3     # and a baseline revision, same run

Each measurement is a child process (``python -m engine.cli backtest --no-report``, the
default config, warm numba cache), best of ``--reps``; the child reports

- its wall time from interpreter start to exit (measured by the parent),
- the seconds spent importing what the command imports before any work
  (``engine.cli``, ``engine.api``, ``engine.config``, ``engine.analysis.metrics``),
- the seconds spent in the detector's scheduled fits (``fit_schedule``, timed from inside),
- the heavy modules present at exit (scipy.stats, scikit-learn, plotly, the report, ...),

and ``python -X importtime -c "import engine.cli, engine.api"``'s total is printed too.
With ``--baseline REV`` the same is measured on ``git archive REV`` extracted to a temporary
folder (one untimed run first compiles its numba cache), interleaved with this tree's runs,
so the ratio is of one machine state. Outputs of the two trees are compared with ``cmp``.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = (
    "scipy.stats",
    "scipy",
    "sklearn",
    "hmmlearn",
    "plotly",
    "engine.report",
    "arch",
    "dask",
    "matplotlib",
)
OUTPUTS = (
    "equity.csv",
    "fills.csv",
    "weights.csv",
    "regimes.csv",
    "prices.csv",
    "metrics.json",
)

_CHILD = """
import json, sys, time
t0 = time.perf_counter()
import engine.cli
import engine.api, engine.config, engine.analysis.metrics, engine.fmt
t_imp = time.perf_counter() - t0
import engine.regimes.base as base
fit_s = [0.0]
orig = base.fit_schedule
def timed(*a, **k):
    t = time.perf_counter()
    try:
        return orig(*a, **k)
    finally:
        fit_s[0] += time.perf_counter() - t
base.fit_schedule = timed
for name, mod in list(sys.modules.items()):
    if name.startswith("engine") and getattr(mod, "fit_schedule", None) is orig:
        mod.fit_schedule = timed
import contextlib, io
with contextlib.redirect_stdout(io.StringIO()):
    rc = engine.cli.main(["backtest", "--no-report", "--out", sys.argv[1]])
heavy = [m for m in json.loads(sys.argv[2]) if m in sys.modules]
print(json.dumps({"rc": rc, "imports": t_imp, "fits": fit_s[0], "heavy": heavy}))
"""


def run_child(tree: Path, out: Path) -> dict[str, object]:
    """One ``backtest --no-report`` child in ``tree``: wall seconds + what it reported."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    t0 = time.perf_counter()
    res = subprocess.run(
        [sys.executable, "-c", _CHILD, str(out), json.dumps(HEAVY)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - t0
    info = json.loads(res.stdout.strip().splitlines()[-1])
    info["wall"] = wall
    return info


def importtime_total(tree: Path, modules: str = "engine.cli, engine.api") -> float:
    """Seconds of ``python -X importtime -c 'import MODULES'`` (sum of the top-level rows)."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    res = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {modules}"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    total = 0
    for line in res.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cum, name = line.split("|")
        if name.startswith(" ") and not name.startswith("  "):  # top level: one space
            total += int(cum)
    return total / 1e6


def extract(rev: str, folder: Path) -> Path:
    """``git archive REV`` into ``folder`` (no worktree registered, nothing else touched)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev],
        capture_output=True,
        check=True,
    ).stdout
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def best(tree: Path, out: Path, reps: int) -> dict[str, object]:
    runs = [run_child(tree, out) for _ in range(reps)]
    return min(runs, key=lambda r: float(r["wall"]))  # type: ignore[arg-type]


def describe(label: str, r: dict[str, object], imp: float) -> str:
    wall, imports, fits = float(r["wall"]), float(r["imports"]), float(r["fits"])  # type: ignore[arg-type]
    return (
        f"{label:>10}: wall {wall:5.2f} s | imports {imports:4.2f} s + fits {fits:4.2f} s = "
        f"{(imports + fits) / wall:4.0%} of wall | importtime(engine.cli, engine.api) "
        f"{imp:4.2f} s | heavy at exit: {', '.join(r['heavy']) or 'none'}"  # type: ignore[arg-type]
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--baseline", default=None, help="git revision to compare with")
    args = ap.parse_args()
    try:
        load = os.getloadavg()[0]
        print(f"load average (1 min) at start: {load:.2f} on {os.cpu_count()} CPUs")
    except OSError:  # pragma: no cover
        pass
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"this tree": ROOT}
        if args.baseline:
            base = extract(args.baseline, Path(tmp) / "baseline")
            print(f"baseline {args.baseline}: compiling its numba cache (untimed run)...")
            run_child(base, Path(tmp) / "warm")
            trees = {"baseline": base, **trees}
        outs = {k: Path(tmp) / f"out{i}" for i, k in enumerate(trees)}
        run_child(ROOT, outs["this tree"])  # warm the file cache
        results = {k: best(tree, outs[k], args.reps) for k, tree in trees.items()}
        imps = {k: min(importtime_total(t) for _ in range(args.reps)) for k, t in trees.items()}
        for k in trees:
            print(describe(k, results[k], imps[k]))
        if args.baseline:
            a, b = results["baseline"], results["this tree"]
            print(
                f"ratio baseline / this tree: wall {float(a['wall']) / float(b['wall']):.2f}x, "  # type: ignore[arg-type]
                f"importtime {imps['baseline'] / imps['this tree']:.2f}x"
            )
            same = [
                f
                for f in OUTPUTS
                if filecmp.cmp(outs["baseline"] / f, outs["this tree"] / f, False)
            ]
            print(f"outputs byte-identical: {len(same)}/{len(OUTPUTS)} ({', '.join(same)})")


if __name__ == "__main__":
    main()

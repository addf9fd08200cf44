"""Report page weight and load time: bytes of ``report.html`` and the time headless
Chromium takes from navigation to the load event and to the last chart drawn.

    python -m benchmarks.report_weight                     # this tree, the default run
    python -m benchmarks.report_weight --baseline 14bddc5  # and a baseline revision
    python -m benchmarks.report_weight --run RUN_DIR       # a saved run folder instead

The default config is run once (``backtest --no-report --out``, into a temporary folder);
each tree then writes the report of that same run folder (``python -m engine.cli report``,
the baseline from ``git archive REV``). Every page is loaded ``--reps`` times, alternating,
each in a fresh headless Chromium (Chrome DevTools protocol over ``websockets``); the median
is printed. "all charts" is the ``performance.mark('report-charts')`` the loader sets after
its last ``Plotly.newPlot`` (a page without it gets the same mark appended after its
scripts), "first chart" its ``'report-first-chart'`` mark (a page without it: the same as all
charts, which it draws in one go).
Bytes are split into the plotly.js library, the chart data (axes + specs) and the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MARK = "<script>performance.mark('report-charts')</script>"


def _py(tree: Path, *args: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=tree, env=env, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip


def _tree_at(rev: str, into: Path) -> Path:
    arc = into / "src.tar"
    subprocess.run(["git", "-C", str(ROOT), "archive", "-o", str(arc), rev], check=True)
    with tarfile.open(arc) as t:
        t.extractall(into / "tree", filter="data")
    return into / "tree"


def weight(page: Path) -> dict[str, int]:
    """Bytes of the page: the plotly.js library, the chart data, the rest."""
    text = page.read_text(encoding="utf-8")
    lib = sum(len(m) for m in re.findall(r"<script[^>]*>(?:[^<]|<(?!/script))*plotly\.js v\d"
                                         r"(?:[^<]|<(?!/script))*</script>", text))  # fmt: skip
    gz = re.search(r'<script id="plotly-gz"[^>]*>[^<]*</script>', text)
    lib += len(gz.group(0)) if gz else 0
    a = text.find("var REPORT_AXES=")
    b = text.find("];\n", text.find("var REPORT_SPECS="))
    data = b - a if a >= 0 and b >= 0 else 0
    total = page.stat().st_size
    return {"total": total, "plotly_js": lib, "chart_data": data, "rest": total - lib - data}


async def _load_once(url: str, profile: Path) -> dict[str, float]:
    import websockets

    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",  # type: ignore[list-item]
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", "--window-size=1400,900",
         "about:blank"],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        port = None
        for ln in proc.stderr:
            m = re.search(r"ws://127\.0\.0\.1:(\d+)/", ln)
            if m:
                port = m.group(1)
                break
        assert port, "chromium did not start its DevTools endpoint"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list") as r:
            target = next(t for t in json.load(r) if t["type"] == "page")
        async with websockets.connect(target["webSocketDebuggerUrl"], max_size=None) as ws:
            n = 0

            async def call(method: str, **params: Any) -> dict[str, Any]:
                nonlocal n
                n += 1
                await ws.send(json.dumps({"id": n, "method": method, "params": params}))
                while True:
                    msg = json.loads(await ws.recv())
                    if msg.get("id") == n:
                        return dict(msg.get("result", {}))

            await call("Page.enable")
            await call("Page.navigate", url=url)
            expr = """new Promise(function(ok){ (function wait(){
              var t = performance.timing, m = performance.getEntriesByName('report-charts');
              var f = performance.getEntriesByName('report-first-chart');
              if (t.loadEventEnd > 0 && m.length)
                ok(JSON.stringify({load: t.loadEventStart - t.navigationStart,
                  charts: m[0].startTime, first: (f.length ? f[0] : m[0]).startTime,
                  errors: +document.documentElement.getAttribute('data-js-errors') || 0}));
              else setTimeout(wait, 20); })(); })"""
            deadline = time.monotonic() + 120
            while True:
                try:
                    res = await call("Runtime.evaluate", expression=expr, awaitPromise=True,
                                     returnByValue=True)  # fmt: skip
                    if "result" in res and "value" in res["result"]:
                        return dict(json.loads(res["result"]["value"]))
                except (KeyError, json.JSONDecodeError):
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(url)
                await asyncio.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def load_times(page: Path, tmp: Path, tag: str, i: int) -> dict[str, float]:
    """One load of ``page`` in a fresh profile (the mark appended when the page lacks it)."""
    text = page.read_text(encoding="utf-8")
    if "report-charts" not in text:
        page = tmp / f"{tag}-marked.html"
        page.write_text(text.replace("</body>", MARK + "</body>"), encoding="utf-8")
    return asyncio.run(_load_once(page.resolve().as_uri(), tmp / f"profile-{tag}-{i}"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--baseline", help="git revision to compare with (same run folder)")
    ap.add_argument("--run", help="a saved run folder (default: the default config, run now)")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args(argv)
    if CHROMIUM is None:
        print("chromium not installed: only the bytes are measured")
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        run = Path(args.run) if args.run else tmp / "run"
        if not args.run:
            _py(ROOT, "backtest", "--no-report", "--out", str(run))
        pages = {"this tree": tmp / "this.html"}
        _py(ROOT, "report", str(run), "--out", str(pages["this tree"]))
        if args.baseline:
            pages[f"baseline {args.baseline}"] = tmp / "base.html"
            _py(_tree_at(args.baseline, tmp), "report", str(run), "--out", str(tmp / "base.html"))
        times: dict[str, list[dict[str, float]]] = {k: [] for k in pages}
        if CHROMIUM is not None:
            for i in range(args.reps):
                for k, p in pages.items():
                    times[k].append(load_times(p, tmp, k.split()[0], i))
        for k, p in pages.items():
            w = weight(p)
            line = (
                f"{k:>22}: {w['total'] / 1e6:.2f} MB (plotly.js {w['plotly_js'] / 1e6:.2f}, "
                f"chart data {w['chart_data'] / 1e6:.2f}, rest {w['rest'] / 1e6:.2f})"
            )
            if times[k]:
                load = statistics.median(t["load"] for t in times[k])
                charts = statistics.median(t["charts"] for t in times[k])
                first = statistics.median(t["first"] for t in times[k])
                errs = max(t["errors"] for t in times[k])
                line += f"; load event {load:.0f} ms, first chart {first:.0f} ms, "
                line += f"all charts {charts:.0f} ms"
                line += f" (median of {len(times[k])}, {errs:.0f} script errors)"
            print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The HTML reports open in headless Chromium: plotly.js loads from the file itself, every
chart renders interactive, no script error, the sections are there; a 1,400 px screenshot
of each is saved (copied to $REPORT_SHOT_DIR when set, to look at)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from engine.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--hide-scrollbars",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=20000",
    "--enable-logging=stderr",
    "--v=0",
]
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (.ci/run installs it)"
)


def _render(html_path: Path, tmp: Path, name: str, headings: list[str]) -> str:
    """Load the page, check it, save a 1,400 px wide screenshot; return the DOM."""
    url = html_path.resolve().as_uri()
    profile = tmp / f"profile-{name}"
    run = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )
    dom = run.stdout
    for heading in headings:
        assert f">{heading}</h2>" in dom, heading
    m = re.search(r'data-plotly="([^"]+)"', dom)
    assert m and m.group(1) != "missing", "window.Plotly absent: plotly.js did not load"
    n_charts = int(re.search(r'data-charts="(\d+)"', dom).group(1))  # type: ignore[union-attr]
    assert n_charts >= 6
    # every chart became a Plotly graph (zoom/hover): one js-plotly-plot node per chart
    assert len(re.findall(r'class="[^"]*\bjs-plotly-plot\b', dom)) == n_charts
    assert 'data-js-errors="0"' in dom
    console = [ln for ln in run.stderr.splitlines() if "CONSOLE" in ln]
    assert not [ln for ln in console if re.search(r"error|uncaught", ln, re.I)], console
    shot = tmp / f"{name}.png"
    subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--window-size=1400,6000",
            f"--screenshot={shot}",
            url,
        ],
        capture_output=True,
        timeout=180,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 100_000
    if os.environ.get("REPORT_SHOT_DIR"):
        shutil.copy(shot, Path(os.environ["REPORT_SHOT_DIR"]) / shot.name)
    return dom


PROBE = """<script>
setTimeout(function(){
  var charts = document.querySelectorAll('.js-plotly-plot');
  Plotly.Fx.hover(charts[0], [{curveNumber: 0, pointNumber: 50}]);
  var hover = charts[0].querySelector('.hoverlayer').textContent;
  Plotly.relayout(charts[0], {'xaxis.range': ['2008-01-01', '2008-06-30']}).then(function(){
    setTimeout(function(){
      var last = null;
      charts.forEach(function(c){ if (c.layout.xaxis.type === 'date') last = c; });
      document.documentElement.setAttribute('data-probe', JSON.stringify(
        {hover: hover, range: last.layout.xaxis.range}));
    }, 200);
  });
}, 100);
</script></body>"""


def _interact(html_path: Path, tmp: Path) -> dict:
    """Hover a point of the equity chart and zoom it; what the page did in return."""
    probe = tmp / "probe.html"
    probe.write_text(html_path.read_text().replace("</body>", PROBE))
    dom = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp / 'profile-probe'}",
            "--dump-dom",
            probe.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout
    m = re.search(r'data-probe="([^"]*)"', dom)
    assert m, "the probe script did not run"
    return json.loads(html.unescape(m.group(1)))


def test_backtest_report_in_headless_chromium(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text("[data]\nstart = '2007-01-01'\nend = '2010-12-31'\n")
    out = tmp_path / "run"
    assert main(["backtest", str(cfg), "--out", str(out)]) == 0
    dom = _render(
        out / "report.html",
        tmp_path,
        "report",
        [
            "Performance summary",
            "Equity curves",
            "Drawdowns",
            "Returns",
            "Exposure, cash and turnover",
            "Weights over time",
            "Regimes",
            "Performance and risk by regime",
            "Attribution and costs",
            "Trades",
            "Stress tests",
            "Bootstrap: is the difference luck?",
        ],
    )
    assert "Relative to the benchmark" in dom
    got = _interact(out / "report.html", tmp_path)
    assert re.search(r"\d,\d{3}", got["hover"])  # hover: equity as money
    assert got["range"] == ["2008-01-01", "2008-06-30"]  # zooming one chart zooms the others


VALIDATE = """
name = "short"
[data]
start = "2006-01-01"
end = "2010-12-31"
[detector]
kind = "rule"
history = 120
min_history = 60
[validation]
train_years = 2.0
test_years = 1.0
bootstrap_reps = 50
cost_bps = [0.0, 10.0]
[validation.cv]
n_splits = 3
"""


def test_validate_report_in_headless_chromium(tmp_path: Path) -> None:
    cfg = tmp_path / "short.toml"
    cfg.write_text(VALIDATE)
    out = tmp_path / "val"
    assert main(["validate", str(cfg), "--out", str(out)]) == 0
    dom = _render(
        out / "report.html",
        tmp_path,
        "validate",
        [
            "How to read this report",
            "Performance summary",
            "Equity curves",
            "Bootstrap: is the edge luck?",
            "Walk-forward folds",
            "Cost sensitivity",
        ],
    )
    assert dom.index("VERDICT:") < dom.index("<h2>")
    assert dom.count("<h2>Bootstrap") == 1

"""The backtest report on a phone (390 px wide, headless Chromium): nothing overflows the
page horizontally and no chart is wider than its box; zooming a time chart's dates
rescales its y-axis to the bars in view (a 2008 zoom is not flat). Screenshots at 1,400
and 390 px are saved (copied to $REPORT_SHOT_DIR when set, to look at)."""

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
from tests.report.test_report_browser import CHROMIUM, FLAGS

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium not installed (.ci/run installs it)"
)

PROBE = """<script>
setTimeout(function(){
  var W = window.innerWidth, doc = document.documentElement, wide = [];
  document.querySelectorAll('body *').forEach(function(e){
    var r = e.getBoundingClientRect();
    if (r.width === 0 || r.right <= W + 1) return;
    for (var p = e.parentElement; p; p = p.parentElement)
      if (p.classList && p.classList.contains('tw')) return;  // scrolls inside its box
    if (e.closest('svg') && e.tagName.toLowerCase() !== 'svg') return;
    wide.push(e.tagName.toLowerCase() + '.' + (e.className.baseVal !== undefined ?
      e.className.baseVal : e.className) + '#' + e.id + ':' + Math.round(r.right));
  });
  var cut = [];
  document.querySelectorAll('.js-plotly-plot').forEach(function(c){
    var svg = c.querySelector('svg.main-svg');
    if (svg && svg.getBoundingClientRect().width > c.clientWidth + 1)
      cut.push(c.id + ':' + Math.round(svg.getBoundingClientRect().width) + '>' + c.clientWidth);
  });
  var eq = document.querySelectorAll('.js-plotly-plot')[0];
  var before = eq._fullLayout.yaxis.range.slice();
  Plotly.relayout(eq, {'xaxis.range': ['2008-09-01', '2009-03-31']}).then(function(){
    setTimeout(function(){
      parent.postMessage(JSON.stringify({
        width: W, scroll: doc.scrollWidth, wide: wide.slice(0, 20), cut: cut,
        before: before, after: eq._fullLayout.yaxis.range.slice()}), '*');
    }, 300);
  });
}, 300);
</script></body>"""


def _phone(page: Path, wrapper: Path, height: int) -> str:
    """A page showing ``page`` in a 390 px wide frame (headless Chromium's window is at
    least 500 px wide); what the framed page posts lands in ``data-probe``."""
    wrapper.write_text(
        "<!DOCTYPE html><html><body style='margin:0'>"
        f"<iframe src='{page.name}' style='width:390px;height:{height}px;border:0'></iframe>"
        "<script>window.addEventListener('message', function(e){"
        "document.documentElement.setAttribute('data-probe', e.data);});</script>"
        "</body></html>"
    )
    return wrapper.resolve().as_uri()


def _chromium(tmp: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM or "chromium", *FLAGS, f"--user-data-dir={tmp / ('profile-' + name)}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("mobile")
    cfg = tmp / "run.toml"
    cfg.write_text("[data]\nstart = '2007-01-01'\nend = '2010-12-31'\n")
    assert main(["backtest", str(cfg), "--out", str(tmp / "run")]) == 0
    return tmp / "run" / "report.html"


@pytest.fixture(scope="module")
def validate_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.report.test_report_browser import VALIDATE

    tmp = tmp_path_factory.mktemp("mobile-validate")
    cfg = tmp / "short.toml"
    cfg.write_text(VALIDATE)
    assert main(["validate", str(cfg), "--out", str(tmp / "val")]) == 0
    return tmp / "val" / "report.html"


def _probe(page: Path, tmp_path: Path) -> dict:
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", PROBE))
    url = _phone(probe, tmp_path / "phone.html", 844)
    dom = _chromium(tmp_path, "probe", "--window-size=500,900", "--dump-dom", url).stdout
    m = re.search(r'data-probe="([^"]*)"', dom)
    assert m, "the probe script did not run"
    got: dict = json.loads(html.unescape(m.group(1)))
    assert got["width"] == 390
    return got


def test_validate_report_fits_a_390px_phone(validate_report: Path, tmp_path: Path) -> None:
    got = _probe(validate_report, tmp_path)
    assert got["scroll"] <= got["width"], got
    assert got["wide"] == [], got["wide"]
    assert got["cut"] == [], got["cut"]


def test_report_fits_a_390px_phone_and_zoom_rescales_y(report: Path, tmp_path: Path) -> None:
    got = _probe(report, tmp_path)
    assert got["scroll"] <= got["width"], got  # no horizontal overflow
    assert got["wide"] == [], got["wide"]  # no element sticks out of the page
    assert got["cut"] == [], got["cut"]  # no chart wider than its box
    # zooming into Sep 2008 - Mar 2009 rescales y to the bars in view
    lo0, hi0 = got["before"]
    lo1, hi1 = got["after"]
    assert (lo1, hi1) != (lo0, hi0)
    assert hi1 - lo1 < 0.9 * (hi0 - lo0), got


@pytest.mark.parametrize("width", [1400, 390])
def test_report_screenshots(report: Path, tmp_path: Path, width: int) -> None:
    shot = tmp_path / f"report-{width}.png"
    url = report.resolve().as_uri()
    if width < 500:
        page = tmp_path / report.name
        page.write_text(report.read_text())
        url = _phone(page, tmp_path / "phone.html", 7000)
    size = f"{max(width, 500)},7000"
    _chromium(tmp_path, f"shot{width}", f"--window-size={size}", f"--screenshot={shot}", url)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    if os.environ.get("REPORT_SHOT_DIR"):
        shutil.copy(shot, Path(os.environ["REPORT_SHOT_DIR"]) / shot.name)

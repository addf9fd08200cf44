"""The HTML report opens in headless Chromium: charts render, sections are present."""

from __future__ import annotations

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
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (.ci/run installs it)")
def test_report_renders_in_headless_chromium(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text("[data]\nstart = '2007-01-01'\nend = '2010-12-31'\n")
    out = tmp_path / "run"
    assert main(["backtest", str(cfg), "--out", str(out)]) == 0
    url = (out / "report.html").resolve().as_uri()
    profile = tmp_path / "profile"
    dom = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    for heading in (
        "Performance summary",
        "Equity curves",
        "Drawdowns",
        "Weights over time",
        "Regimes",
        "Risk by regime",
        "Attribution",
        "Stress tests",
        "Bootstrap",
    ):
        assert f">{heading}" in dom, heading
    imgs = dom.count('src="data:image/png;base64,')
    assert imgs >= 5  # equity, drawdowns, rolling, weights, regimes
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--window-size=1200,2400",
            f"--screenshot={shot}",
            url,
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000

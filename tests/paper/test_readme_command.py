"""`regime-engine paper configs/paper.toml`, as the README writes it, runs and ends with
its summary (starts the local exchange in-process; ~40 s: acceptance)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _busy(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.acceptance
@pytest.mark.timeout(420)  # the run itself is bounded at 300 s
def test_readme_paper_command(tmp_path: Path) -> None:
    if _busy(8765) or _busy(8766) or _busy(5556):
        pytest.skip("the ports of configs/paper.toml are in use")
    r = subprocess.run(
        [sys.executable, "-m", "engine.cli", "paper", str(ROOT / "configs/paper.toml")],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    out = r.stdout.splitlines()
    assert any(x.startswith("warm-up: 599 bars") for x in out)
    assert sum(" LIVE " in x for x in out) >= 20
    assert out[-1].startswith("regime-engine paper: 599 warm-up") and "20 live bars" in out[-1]
    assert (tmp_path / "runs/paper/regime_aware/checkpoint.json").exists()
    assert "Traceback" not in r.stderr

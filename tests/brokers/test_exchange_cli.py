"""``regime-engine paper-exchange``: one line with its URLs, clean exit on SIGTERM/SIGINT."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.brokers.conftest import KEY, SECRET

CONFIG = """
[data]
source = "bundled"
symbols = ["SPX", "UST10"]
start = "2005-01-01"
end = "2005-03-01"

[paper.exchange]
port = 0
ws_port = 0
mode = "stepped"
history_bars = 5
"""


def launch(tmp_path: Path, *extra: str) -> subprocess.Popen[str]:
    cfg = tmp_path / "ex.toml"
    cfg.write_text(CONFIG)
    cli = "from engine.cli import entry; entry()"
    cmd = [sys.executable, "-c", cli, "paper-exchange", str(cfg)]
    return subprocess.Popen(
        [*cmd, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serves_in_the_foreground_and_stops_on_a_signal(tmp_path: Path, sig: int) -> None:
    proc = launch(tmp_path)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        urls = r"REST (http://\S+)\s+market data (ws://\S+)\s+trade updates (ws://\S+)"
        m = re.search(urls, line)
        assert m, line
        h = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
        clock = requests.get(m.group(1) + "/v2/clock", headers=h, timeout=5).json()
        assert clock["is_open"] is False
        step = requests.post(m.group(1) + "/_sim/step", timeout=5).json()
        assert step["bar"] == 5
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped" in out


def test_bad_settings_one_line(tmp_path: Path) -> None:
    proc = launch(tmp_path, "--history-bars", "-1")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [err.strip()] and "paper.exchange.history_bars" in err


def test_port_in_use_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = launch(tmp_path, "--ws-port", str(port))
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert err.strip().splitlines() == [err.strip()] and "cannot listen" in err

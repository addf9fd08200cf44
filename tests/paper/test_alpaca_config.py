"""``regime-engine paper configs/alpaca.toml``, the shipped Alpaca config unchanged, against a
local exchange started here with the same symbols and synthetic history (URL overrides, any
key pair): the data come from the exchange's REST history into the Parquet cache, warm-up,
20 live sessions, summary, exit 0; then ``paper-report`` on its state: the replay's targets
equal paper's, the gap's parts add up to the gap (acceptance: about a minute)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from brokers.local_exchange import build_exchange
from brokers.local_exchange.settings import ExchangeSettings
from engine.config import load_config
from tests.brokers.test_alpaca_history import synthetic_panel

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "alpaca.toml"
HISTORY, LIVE = 800, 20


@pytest.mark.acceptance
@pytest.mark.timeout(600)
def test_paper_on_the_shipped_alpaca_config(tmp_path: Path) -> None:
    cfg = load_config(CONFIG)
    symbols = tuple(cfg.data.symbols or ())
    panel = synthetic_panel(symbols, n=HISTORY + LIVE + 5, first="2019-01-02")
    settings = ExchangeSettings(port=0, ws_port=0, mode="stepped", history_bars=HISTORY)
    with build_exchange(cfg, panel, settings) as ex:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "APCA_API_KEY_ID": "local-paper",
            "APCA_API_SECRET_KEY": "local-paper",
            "APCA_API_DATA_URL": ex.url,
        }
        cmd = [sys.executable, "-m", "engine.cli", "paper", str(CONFIG)]
        cmd += ["--url", ex.url, "--stream-url", ex.ws_url, "--max-bars", str(LIVE)]
        proc = subprocess.Popen(
            cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout or ()), daemon=True)
        reader.start()
        deadline = time.monotonic() + 400
        while not any(x.startswith("warm-up:") for x in lines):
            assert proc.poll() is None, (proc.stderr.read() if proc.stderr else "")[-2000:]
            assert time.monotonic() < deadline
            time.sleep(0.1)
        while proc.poll() is None and time.monotonic() < deadline:
            live = sum(" LIVE " in x for x in lines)
            ex.step()  # one session: overnight, open (queued orders fill), minutes, close
            t = time.monotonic()
            while sum(" LIVE " in x for x in lines) == live and time.monotonic() - t < 15:
                if proc.poll() is not None:
                    break
                time.sleep(0.02)
        rc = proc.wait(timeout=60)
        reader.join(timeout=5)
        err = proc.stderr.read() if proc.stderr else ""
        # how paper tracked the backtest. The cache's cover runs to yesterday by the wall
        # clock while this market is simulated years ago, so the sessions traded since the
        # warm-up would never be fetched: without it the report refetches them (exchange)
        state = tmp_path / "runs/alpaca/regime_aware"
        cached = sorted(p.name for p in (tmp_path / "data/cache/alpaca/iex-all-1Day").iterdir())
        shutil.rmtree(tmp_path / "data/cache")
        report = subprocess.run(
            [sys.executable, "-m", "engine.cli", "paper-report", str(state)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    print(report.stdout[-3000:])
    assert report.returncode == 0, report.stderr[-2000:]
    rep = json.loads((state / "paper-report.json").read_text())
    assert rep["sessions"] == LIVE and rep["fills"] > 0
    assert rep["max_target_diff"] == 0.0 and rep["max_shares_diff"] == 0.0
    assert abs(sum(rep["split"].values()) - rep["gap"]) <= 1e-9 * rep["start_equity"]
    print("\n".join(lines[:3] + lines[-3:]))
    assert rc == 0, err[-2000:]
    assert "Traceback" not in err
    warm = next(x for x in lines if x.startswith("warm-up:"))
    assert "bars" in warm and "without orders" in warm
    assert sum(" LIVE " in x for x in lines) >= LIVE
    assert lines[-1].startswith("regime-engine paper:") and f"{LIVE} live bars" in lines[-1]
    # the data came from the exchange into the cache the next backtest reads offline
    assert cached == sorted(f"{s}.parquet" for s in symbols)
    assert (tmp_path / "runs/alpaca/regime_aware/checkpoint.json").exists()
    assert len(ex.submissions) > 0 and all(code == 200 for _, code in ex.submissions)

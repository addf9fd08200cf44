"""Shared set-up for the paper-loop tests: a small config, a fake Alpaca, a stepper."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from brokers.cli import paper_node
from engine.assemble import load_panel
from engine.config import parse_config
from engine.live.node import Node
from tests.paper.fake_alpaca import FakeAlpaca, from_panel

DATA = {
    "source": "bundled:classic",
    "start": "2003-01-01",
    "end": "2005-08-10",
    "symbols": ["SPX", "UST10", "WTI", "CASH"],
}
STRATEGY = {
    "kind": "regime",
    "name": "regime_aware",
    "rebalance": "M",
    "warmup": {"SPX": 0.6, "UST10": 0.4},
    "table": {
        "calm": {"SPX": 0.7, "UST10": 0.2, "WTI": 0.1},
        "volatile": {"SPX": 0.35, "UST10": 0.5, "CASH": 0.15},
        "crisis": {"SPX": 0.05, "UST10": 0.6, "CASH": 0.35},
    },
}
# a short trailing history so the rule detector switches regimes within the window
DETECTOR = {"kind": "rule", "market": "SPX", "history": 40, "min_history": 20}
BASE: dict[str, Any] = {
    "name": "t",
    "data": DATA,
    "features": {"ma_window": 20},
    "costs": {"commission_bps": 5.0},
    "detector": DETECTOR,
    "strategies": [STRATEGY],
}


@pytest.fixture(scope="session")
def panel():  # type: ignore[no-untyped-def]
    return load_panel(parse_config(BASE))


def paper_section(fake: Any, state_dir: Path, **extra: Any) -> dict[str, Any]:
    return {
        "url": fake.url,
        "stream_url": fake.ws_url,
        "state_dir": str(state_dir),
        "poll_s": 0.02,
        "sell_fill_timeout_s": 5.0,
        "start_timeout_s": 5.0,
        "http_timeout_s": 2.0,
        **extra,
    }


def trader(fake: Any, state_dir: Path, **extra: Any) -> Node:
    return paper_node(parse_config({**BASE, "paper": paper_section(fake, state_dir, **extra)}))


class Stepper:
    """Run a trader in a thread against a stepped fake; step sessions when it is idle."""

    def __init__(self, fake: Any, tr: Node) -> None:
        self.fake, self.tr = fake, tr
        if isinstance(fake, FakeAlpaca):
            self.open, self.close = fake.open_session, fake.close_session
        else:  # the project's local exchange (brokers.local_exchange), stepped
            self.open, self.close = (lambda: fake.step(to="open")), fake.step
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.tr.run()
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def start(self) -> Stepper:
        self.thread.start()
        self.settle(60)
        return self

    def settle(self, timeout: float = 2.0) -> None:
        """Wait for two more polls of the clock (the trader has seen the change)."""
        n0, t0 = self.tr.polls, time.monotonic()
        while self.tr.polls < n0 + 2 and time.monotonic() - t0 < timeout:
            if not self.thread.is_alive() or (self.tr.waiting and time.monotonic() - t0 > 0.2):
                return  # stopped, or waiting for the market to open (sells queued)
            time.sleep(0.005)

    def sessions(self, n: int) -> None:
        for _ in range(n):
            if not self.thread.is_alive():
                return
            self.open()
            self.settle()
            self.close()
            self.settle()

    def join(self, timeout: float = 30) -> None:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the trader did not stop"
        if self.error is not None:
            raise self.error


__all__ = ["BASE", "Stepper", "from_panel", "paper_section", "trader"]

"""Every input served, or refused at start: a series the strategy or detector reads that the
venue does not serve (Alpaca has no yields, VIX or indices) stops the run before warm-up with
one line naming it and the ways to provide it (exit 2), within the start time-out, instead
of a ``bar.gap`` on every session for ever."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.paper.conftest import BASE
from tests.paper.fake_alpaca import FakeAlpaca
from tests.paper.test_checkpoint import run_paper_cli, toml_of


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", "k")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "s")


def without_exog(panel) -> FakeAlpaca:  # type: ignore[no-untyped-def]
    """The independent fake serving the traded symbols only (as Alpaca would)."""
    return FakeAlpaca(
        dates=list(pd.to_datetime(panel.timestamps_ns)),
        symbols=tuple(panel.symbols),
        opens=np.asarray(panel.open),
        closes=np.asarray(panel.close),
        history=320,
    )


def test_unserved_exogenous_series_is_exit_2_one_line_at_start(tmp_path: Path, panel) -> None:  # type: ignore[no-untyped-def]
    assert panel.exog_names  # the detector config reads the yields and the curve slope
    with without_exog(panel) as fake:
        cfg = tmp_path / "c.toml"
        paper = {
            "url": fake.url,
            "stream_url": fake.ws_url,
            "state_dir": str(tmp_path / "s"),
            "start_timeout_s": 10.0,
        }
        cfg.write_text(toml_of({**BASE, "paper": paper}))
        t0 = time.monotonic()
        r = run_paper_cli(cfg, timeout=120)
        took = time.monotonic() - t0
        assert fake.submissions == []
        assert len(fake.bars_queries) == 1  # one check, no history refetched in a loop
    assert r.returncode == 2, r.stderr[-400:]
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, err
    for name in panel.exog_names:
        assert name in err[0]
    assert "not served" in err[0] and "tradable proxy" in err[0]
    assert "bar.gap" not in r.stdout + r.stderr
    assert not (tmp_path / "s/regime_aware/checkpoint.json").exists()  # no warm-up
    assert took < 10.0 + 15.0  # the start time-out, plus the process start


def test_served_inputs_pass_the_check(tmp_path: Path, panel) -> None:  # type: ignore[no-untyped-def]
    from tests.paper.conftest import from_panel, trader

    with from_panel(panel, history=320) as fake:
        tr = trader(fake, tmp_path, max_bars=1)
        tr.resume()
        tr.connect()
        try:
            assert tr.venue is not None
            today = tr.venue.clock.clock().timestamp.date()
            assert tr.venue.bars.unserved(today - pd.Timedelta(days=14), today) == []  # type: ignore[attr-defined]
        finally:
            tr.finish()

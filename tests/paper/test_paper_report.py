"""``regime-engine paper-report`` on a paper run against the project's local exchange
(brokers.local_exchange, stepped, 12 live sessions): the replay's targets equal paper's, each
fill's shortfall against the backtest's fill, the gap's parts adding up to the gap.

The clean run (fractional shares, the exchange pricing fills with the config's own costs)
must track exactly: gap 0, shortfall 0. The faulty run (whole shares, seeded rejects and
partial fills, an exchange with a 2 bps half spread the config does not model) has every
part but timing's cause known: the shortfall of each fill is the 2 bps spread."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from brokers.local_exchange import build_exchange
from brokers.local_exchange.settings import ExchangeSettings, FaultSettings
from engine.cli import main
from engine.config import parse_config
from tests.paper.conftest import BASE, Stepper, trader

LIVE = 12


def paper_run(state: Path, panel: Any, venue_costs: dict[str, float], **settings: Any) -> None:
    venue_cfg = parse_config({**BASE, "costs": venue_costs})
    es = ExchangeSettings(port=0, ws_port=0, mode="stepped", history_bars=320, **settings)
    with build_exchange(venue_cfg, panel, es) as ex:
        st = Stepper(ex, trader(ex, state, max_bars=LIVE)).start()
        st.sessions(LIVE)
        st.join()


def report(state: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    assert main(["paper-report", str(state), *extra]) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "equity gap: paper" in out
    return json.loads((state / "regime_aware/paper-report.json").read_text())  # type: ignore[no-any-return]


def test_a_clean_paper_run_tracks_its_replay_exactly(
    tmp_path: Path, panel: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    paper_run(tmp_path, panel, {"commission_bps": 5.0})
    rep = report(tmp_path, capsys)
    assert rep["sessions"] == LIVE and rep["fills"] > 0
    assert rep["max_target_diff"] == 0.0 and rep["max_shares_diff"] == 0.0
    assert rep["shortfall_bps_max"] == pytest.approx(0.0, abs=1e-9)
    assert abs(rep["gap"]) < 1e-6 * rep["start_equity"]
    assert all(abs(v) < 1e-6 * rep["start_equity"] for v in rep["split"].values())
    # the exchange charged the 5 bps commission without reporting it per fill
    assert rep["unexplained_cash"] < 0
    # --config of another universe, --strategy of none journalled: one line each, exit 2
    # (the other config was a KeyError, "internal error", exit 1)
    root = Path(__file__).resolve().parents[2]
    for extra, needle in (
        (["--config", str(root / "configs" / "default.toml")], "not the paper run's config"),
        (["--strategy", "nope"], "no strategy 'nope' here (journals: regime_aware)"),
    ):
        assert main(["paper-report", str(tmp_path), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], err


def test_paper_report_on_a_faulty_local_exchange(
    tmp_path: Path, panel: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    faults = FaultSettings(reject_rate=0.15, partial_fill_rate=0.15)
    costs = {"commission_bps": 5.0, "half_spread_bps": 2.0}
    paper_run(tmp_path, panel, costs, fractional=False, faults=faults, seed=3)
    html = tmp_path / "tracking.html"
    rep = report(tmp_path, capsys, "--html", str(html))
    folder = tmp_path / "regime_aware"
    lines = [json.loads(x) for x in (folder / "decisions.jsonl").open()]
    live = [x for x in lines if x["phase"] == "live"]
    assert rep["sessions"] == len(live) == LIVE
    # (a) the replay decided what paper decided, every session
    assert rep["max_target_diff"] == 0.0 and rep["max_shares_diff"] == 0.0
    # (b) a shortfall per fill; the first by hand: paid the exchange's 2 bps half spread
    # over the backtest's fill at the next session's open (the config models no spread)
    fills = (folder / "paper-report-fills.csv").read_text().splitlines()
    assert len(fills) - 1 == rep["fills"] > 0
    first = next(f for x in live for f in x.get("fills", ()))
    row = int((panel.timestamps_ns == live[0]["ts"]).nonzero()[0][0]) + 1
    j = panel.symbols.index(first["symbol"])
    ref = float(panel.open[row, j])
    side = 1.0 if first["side"] == "buy" else -1.0
    hand = side * (first["price"] - ref) / ref * 1e4
    assert hand == pytest.approx(2.0, rel=1e-9)
    head = fills[0].split(",")
    cells = fills[1].split(",")
    assert float(cells[head.index("shortfall_bps")]) == pytest.approx(hand, rel=1e-12)
    assert rep["shortfall_bps_mean"] == pytest.approx(2.0, rel=1e-9)
    # (c) the parts add up to the gap; whole shares and the faults show in theirs
    split = rep["split"]
    assert set(split) == {"timing", "price", "cost", "rounding", "rejected"}
    assert abs(math.fsum(split.values()) - rep["gap"]) <= 1e-9 * rep["start_equity"]
    assert split["price"] < 0 and split["rounding"] != 0 and split["rejected"] != 0
    # paper's end equity is the broker's book at the last decision, marked at its closes
    book, prices = live[-1]["book"], live[-1]["prices"]
    broker = book["cash"] + sum(q * prices[s] for s, q in book["positions"].items())
    assert rep["paper_equity"] == pytest.approx(broker, rel=1e-12)
    assert "How paper tracked the backtest" in html.read_text()


def test_a_journal_written_before_tracking_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "regime_aware"
    folder.mkdir()
    old = {"bar": 1, "ts": 1_000, "phase": "live", "targets": None, "desired": {}, "sent": []}
    (folder / "decisions.jsonl").write_text(json.dumps(old) + "\n")
    assert main(["paper-report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "version 1" in err and "decisions.jsonl" in err

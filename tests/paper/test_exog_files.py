"""``[[data.exog]]`` files in paper (engine.live.exog_inputs), against the local exchange:
the value the live step sees at session ``t`` is the backtest's at bar ``t`` (same join,
same ``lag = "1mo"``); a file changed mid-run is read again at the next session; a stale
or malformed file stops trading with one line (file, date or row, bar), the state
checkpointed and no order after it.

Bars (bundled:classic, see conftest): the warm-up ends at bar 319 = 2004-04-08 (the first
decision), live sessions follow: 320 = 2004-04-12, 321 = 04-13, 322 = 04-14, 323 = 04-15."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from brokers.cli import paper_node
from brokers.local_exchange import build_exchange
from brokers.local_exchange.settings import ExchangeSettings
from engine.api import run_backtest
from engine.assemble import load_panel
from engine.config import parse_config
from engine.live.exog_inputs import ExogFile
from engine.live.node import Node
from engine.live.types import InputHalted
from tests.paper.conftest import BASE, Stepper, paper_section
from tests.paper.test_checkpoint import toml_of

HISTORY = 320
BAR = {
    t: pd.Timestamp(d) for t, d in [(319, "2004-04-08"), (320, "2004-04-12"), (323, "2004-04-15")]
}
# the detector reads the file's series: its decisions depend on it
DETECTOR = {
    "kind": "kmeans",
    "market": "SPX",
    "features": ["logret", "log_vol_fast", "exog.MACRO"],
    "n_states": 3,
    "labels": ["calm", "volatile", "crisis"],
    "min_train": 100,
    "refit_every": 40,
    "skip": 21,
}


def macro(last: str, first: str = "2002-10-31") -> pd.Series:
    """A monthly figure dated at each month end, distinct every month."""
    months = pd.date_range(first, last, freq="ME")
    return pd.Series(5.0 + np.sin(np.arange(len(months)) / 1.7) * 3.0, index=months)


def write(path: Path, s: pd.Series) -> Path:
    days = pd.DatetimeIndex(s.index).strftime("%Y-%m-%d")
    df = pd.DataFrame({"date": days, "MACRO": s.to_numpy()})
    df.to_csv(path, index=False)
    return path


def config(file: Path) -> dict[str, Any]:
    data = {**BASE["data"], "exog": [{"path": str(file), "lag": "1mo"}]}
    return {**BASE, "data": data, "detector": DETECTOR}


def exchange(cfg: dict[str, Any]) -> Any:
    settings = ExchangeSettings(port=0, ws_port=0, mode="stepped", history_bars=HISTORY)
    return build_exchange(parse_config(cfg), load_panel(parse_config(cfg)), settings)


def node(cfg: dict[str, Any], ex: Any, state: Path, **extra: Any) -> Node:
    return paper_node(parse_config({**cfg, "paper": paper_section(ex, state, **extra)}))


def watch(tr: Node) -> dict[int, np.ndarray]:
    """The exogenous values of every bar the trader steps, by bar time."""
    seen: dict[int, np.ndarray] = {}
    step = tr.trader.step

    def spy(bar: Any) -> Any:
        seen[bar.timestamp_ns] = np.array(bar.exog, copy=True)
        return step(bar)

    tr.trader.step = spy  # type: ignore[method-assign]
    return seen


def test_paper_sees_the_backtests_values_and_decisions(tmp_path: Path) -> None:
    file = write(tmp_path / "macro.csv", macro("2005-07-31"))
    cfg = config(file)
    bt = run_backtest(parse_config(cfg), progress=False)
    panel = load_panel(parse_config(cfg))
    k = panel.exog_names.index("MACRO")
    assert panel.exog_names[:k] == ("UST10Y_YIELD", "UST3M_YIELD", "SLOPE_10Y_3M")
    n_live = 6
    with exchange(cfg) as ex:
        tr = node(cfg, ex, tmp_path / "s", max_bars=n_live)
        seen = watch(tr)
        st = Stepper(ex, tr).start()
        st.sessions(n_live)
        st.join()
    ts = sorted(seen)
    assert len(ts) == HISTORY + n_live - 1  # bar 319 is the first live decision
    rows = [int(np.searchsorted(panel.timestamps_ns, t)) for t in ts]
    assert rows == list(range(HISTORY + n_live - 1))
    got = np.array([seen[t] for t in ts])
    # every exogenous value (the streamed yields and the file's series) bit for bit
    np.testing.assert_array_equal(got, panel.exog[rows])
    # hand-computed: 2004-04-12 sees the figure dated 2004-02-29 (known 03-29); the one
    # dated 03-31 is known on 04-30
    m = macro("2005-07-31")
    assert got[320, k] == m["2004-02-29"] != m["2004-03-31"]
    assert got[0, k] == m["2002-11-30"]  # 2003-01-02: the November figure, known 12-30
    # the decisions: every target weight as in the backtest (warm-up and live)
    dec = [json.loads(x) for x in (tmp_path / "s/regime_aware/decisions.jsonl").open()]
    syms = list(panel.symbols)
    targets = np.array(
        [[np.nan] * 4 if d["targets"] is None else [d["targets"][s] for s in syms] for d in dec]
    )
    bt_targets = bt.runs["regime_aware"].targets.to_numpy()[: len(dec)]
    np.testing.assert_array_equal(targets, bt_targets)
    # ... and they depend on the file: another series gives other targets
    other = write(tmp_path / "other.csv", -macro("2005-07-31"))
    bt2 = run_backtest(parse_config(config(other)), progress=False)
    assert not np.array_equal(bt2.runs["regime_aware"].targets.to_numpy()[: len(dec)], targets)


def test_file_refreshed_mid_run_is_read_at_the_next_session(tmp_path: Path) -> None:
    """The file ends at 2004-02-29 at start; after bar 321 a row dated 2004-03-15 is
    appended: known one month later, 2004-04-15 = bar 323 sees it, bar 322 does not."""
    full = macro("2004-02-29")
    file = write(tmp_path / "macro.csv", full)
    cfg = config(file)
    with exchange(cfg) as ex:
        tr = node(cfg, ex, tmp_path / "s", max_bars=5)  # bars 319 .. 323
        seen = watch(tr)
        st = Stepper(ex, tr).start()
        st.sessions(2)  # bars 320, 321
        with file.open("a") as fh:
            fh.write("2004-03-15,42.5\n")
        st.sessions(2)  # bars 322, 323
        st.join()
    k = -1  # MACRO: the file's series come after the streamed ones
    by_day = {pd.Timestamp(t): v[k] for t, v in seen.items()}
    assert by_day[pd.Timestamp("2004-04-14")] == full["2004-02-29"]
    assert by_day[BAR[323]] == 42.5


def _submissions_after_stop(ex: Any, st: Stepper, before: list[Any]) -> list[Any]:
    st.thread.join(30)
    assert not st.thread.is_alive()
    return ex.submissions[len(before) :]


def test_stale_file_stops_with_one_line_and_no_order_after(tmp_path: Path) -> None:
    """The file ends at 2004-01-31 (monthly, lag 1mo, grace 7d): the next figure is due
    by 2004-01-31 + 31d (cadence) + 1mo + 7d = 2004-04-09. Bar 319 (04-08) trades; bar
    320 (04-12) stops."""
    file = write(tmp_path / "macro.csv", macro("2004-01-31"))
    cfg = config(file)
    with exchange(cfg) as ex:
        tr = node(cfg, ex, tmp_path / "s", max_bars=3)
        st = Stepper(ex, tr).start()
        before = list(ex.submissions)
        assert before  # the first decision (bar 319) traded
        st.sessions(3)
        after = _submissions_after_stop(ex, st, before)
    assert isinstance(st.error, InputHalted), st.error
    msg = str(st.error)
    assert "\n" not in msg
    assert f"exogenous file {file} is stale: last value of MACRO dated 2004-01-31" in msg
    assert "next one due by 2004-04-09 (cadence 31d, lag 1mo, grace 7d)" in msg
    assert "bar 2004-04-12: no order placed" in msg
    assert after == []
    ck = json.loads((tmp_path / "s/regime_aware/checkpoint.json").read_text())
    assert ck["payload"]["last_ts"] == BAR[319].value  # bar 320 not stepped: redone
    # a restart on the same stale file stops again before any order
    with exchange(cfg) as ex2:
        tr2 = node(cfg, ex2, tmp_path / "s", max_bars=1)
        assert tr2.resume() and tr2.trader.last_ts == BAR[319].value
        ex2.step()  # a session later
        with pytest.raises(InputHalted, match="is stale"):
            tr2.run()
        assert ex2.submissions == []


def test_malformed_file_at_a_refresh_stops_naming_file_and_row(tmp_path: Path) -> None:
    """After bar 320 the file is rewritten with a bad date in its 5th row (CSV row 6):
    the next session stops; the good data read before is not used instead."""
    m = macro("2005-07-31")
    file = write(tmp_path / "macro.csv", m)
    cfg = config(file)
    with exchange(cfg) as ex:
        tr = node(cfg, ex, tmp_path / "s", max_bars=4)
        st = Stepper(ex, tr).start()
        st.sessions(1)  # bar 320
        lines = file.read_text().splitlines()
        lines[5] = "2003-03-3x," + lines[5].split(",")[1]
        file.write_text("\n".join(lines) + "\n")
        before = list(ex.submissions)
        st.sessions(3)
        after = _submissions_after_stop(ex, st, before)
    assert isinstance(st.error, InputHalted), st.error
    msg = str(st.error)
    assert "\n" not in msg
    assert f"exogenous file {file}: row 6, field date: bad timestamp '2003-03-3x'" in msg
    assert "no order placed" in msg
    assert after == []


# ---------------------------------------------------------------- the rule, file by file
def test_stale_rule_boundary_and_cut_off_file(tmp_path: Path) -> None:
    """Due = last release + cadence + lag + grace: on the due day still served, the day
    after stale. A CSV without its last line end was cut off: refused, naming the row,
    and the previous series is dropped."""
    path = write(tmp_path / "m.csv", macro("2004-01-31"))
    f = ExogFile(path, ("MACRO",), ("MACRO",), "1mo")
    assert f.refresh() and not f.refresh()  # unchanged: not read again
    f.check_fresh(pd.Timestamp("2004-04-09").value, "7d")
    with pytest.raises(InputHalted, match="due by 2004-04-09"):
        f.check_fresh(pd.Timestamp("2004-04-10").value, "7d")
    f.check_fresh(pd.Timestamp("2004-04-10").value, "8d")
    with pytest.raises(InputHalted, match="no value of MACRO known at bar 2002-11-29"):
        f.check_fresh(pd.Timestamp("2002-11-29").value, "7d")  # 10-31 known 11-30
    text = path.read_text()
    path.write_text(text[:-4])  # the last row cut in its value
    with pytest.raises(InputHalted, match=r"m\.csv: row 17: cut off \(no line end: truncated"):
        f.refresh()
    assert f.series is None
    path.unlink()
    with pytest.raises(InputHalted, match=r"m\.csv: not found"):
        f.refresh()


def test_cli_exit_3_one_line_on_a_stale_file(tmp_path: Path, capsys: Any) -> None:
    """``paper`` (the CLI's handler) on the in-memory venue: exit 3, one line, checkpoint."""
    import structlog

    from engine.live.cli import cmd_paper
    from engine.live.testing import fake_venue

    structlog.reset_defaults()
    file = write(tmp_path / "macro.csv", macro("2004-01-31"))
    cfg = config(file)
    v = fake_venue(load_panel(parse_config(cfg)), HISTORY)
    path = tmp_path / "c.toml"
    path.write_text(toml_of({**cfg, "paper": {"state_dir": str(tmp_path / "s")}}))
    asked: list[Any] = []

    def open_venue(req: Any) -> Any:
        asked.append(req)
        return v

    rc = cmd_paper(argparse.Namespace(config=str(path)), open_venue)
    # the venue streams the bars' own series; the file's is never asked of it
    assert asked[0].data_symbols == ("UST10Y_YIELD", "UST3M_YIELD", "SLOPE_10Y_3M")
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 3, err
    assert len(err) == 1 and "is stale" in err[0] and "bar 2004-04-12" in err[0], err
    assert (tmp_path / "s/regime_aware/checkpoint.json").exists()
    assert len(v.broker.submissions) > 0  # type: ignore[attr-defined]  # bar 319's only

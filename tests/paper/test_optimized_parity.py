"""kind = "optimized" in the paper loop: the targets the paper trader decides (warm-up and
live bars, against the fake Alpaca) equal the compiled backtest's and the streaming
driver's bit for bit on the bundled panel (the optimiser reads only bars <= t)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from brokers.cli import paper_node
from engine.api import run_backtest
from engine.assemble import assemble
from engine.config import parse_config
from engine.core.streaming import StreamingDriver, replay
from strategies import optimized as opt
from tests.paper.conftest import BASE, Stepper, from_panel, paper_section

OPT: dict[str, Any] = {
    "kind": "optimized",
    "name": "opt",
    "objective": "min_variance",
    "assets": ["SPX", "UST10", "WTI"],
    "window": 126,
    "min_history": 63,
    "half_life": 42.0,
    "max_weight": 0.7,
    "turnover": 0.5,
    "warmup": {"SPX": 0.6, "UST10": 0.4},
}
CFG: dict[str, Any] = {**BASE, "strategies": [OPT]}


def test_paper_targets_equal_compiled_and_streaming(tmp_path: Path, panel) -> None:  # type: ignore[no-untyped-def]
    opt._CACHE.clear()
    bt = run_backtest(parse_config(CFG), panel=panel, progress=False)
    bt_targets = bt.runs["opt"].targets.to_numpy()
    assert bt.metrics["opt"]["optimizer_solves"] >= 20
    assert bt.metrics["opt"]["optimizer_failures"] == 0
    # the streaming driver over the same prepared run
    run = assemble(parse_config(CFG), panel)
    prep = run.prepare()
    strat: Any = run.strategies[0]
    outs = replay(StreamingDriver.from_prepared(prep, strat.streaming()), prep.panel)
    st_targets = np.full_like(bt_targets, np.nan)
    for o in outs:
        if o.rebalanced:
            st_targets[o.bar] = o.targets
    assert st_targets.tobytes() == bt_targets.tobytes()
    # the paper loop: 320 warm-up bars, then 35 live sessions
    n_live = 35
    with from_panel(panel, history=320) as fake:
        cfg = parse_config({**CFG, "paper": paper_section(fake, tmp_path, max_bars=n_live)})
        st = Stepper(fake, paper_node(cfg)).start()
        st.sessions(n_live)
        st.join()
    dec = [json.loads(x) for x in (tmp_path / "opt/decisions.jsonl").open()]
    syms = list(panel.symbols)
    assert [d["bar"] for d in dec] == list(range(len(dec)))
    assert [d["phase"] for d in dec].count("live") == n_live
    got = np.array(
        [
            [np.nan] * len(syms) if d["targets"] is None else [d["targets"][s] for s in syms]
            for d in dec
        ]
    )
    assert got.tobytes() == bt_targets[: len(dec)].tobytes()
    live = got[320:]
    assert np.isfinite(live).any(), "no rebalance in the live window"
    # optimised (not warm-up) targets in the live window: off the warm-up mix
    assert not np.allclose(live[np.isfinite(live[:, 0])][0], [0.6, 0.4, 0.0, 0.0])

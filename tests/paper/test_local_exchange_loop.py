"""The paper loop against the project's own Alpaca-like exchange (brokers.local_exchange),
stepped: warm-up without orders, the latest decision only, whole sessions after."""

from __future__ import annotations

import json
from pathlib import Path

from brokers.local_exchange import build_exchange
from brokers.local_exchange.settings import ExchangeSettings
from engine.config import parse_config
from tests.paper.conftest import BASE, Stepper, trader
from tests.paper.test_loop import ids_for


def test_fresh_start_then_sessions_on_the_local_exchange(tmp_path: Path, panel) -> None:  # type: ignore[no-untyped-def]
    settings = ExchangeSettings(port=0, ws_port=0, mode="stepped", history_bars=320)
    with build_exchange(parse_config(BASE), panel, settings) as ex:
        st = Stepper(ex, trader(ex, tmp_path, max_bars=12)).start()
        ids = [c for c, _ in ex.submissions]
        ts319 = int(panel.timestamps_ns[319])
        assert ids and set(ids) <= ids_for(ts319)
        st.sessions(12)
        st.join()
        ex.step(to="open")  # the last decision's orders fill at the next open
        dec = [json.loads(x) for x in (tmp_path / "regime_aware/decisions.jsonl").open()]
        live = [d for d in dec if d["phase"] == "live"]
        assert [d["phase"] for d in dec].count("warmup") == 319 and len(live) == 12
        allowed = set().union(*(ids_for(d["ts"]) for d in live))
        ids = [c for c, _ in ex.submissions]
        held = ex.broker.positions()
        assert set(ids) <= allowed and len(ids) == len(set(ids))
        assert all(code == 200 for _, code in ex.submissions), ex.submissions
        assert all(q >= 0 for q in held.values())
        for j, (s, want) in enumerate(live[-1]["desired"].items()):
            gap = abs(held.get(s, 0.0) - want)
            price = float(panel.close[ex.bar, j])
            assert gap <= 1e-9 * (1 + want) or gap * price < 1.0, s

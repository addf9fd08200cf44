"""The report page of ``regime-engine paper-report --html``: how paper tracked the backtest
(figures from :mod:`engine.live.paper_report`, definitions in :mod:`engine.live.tracking`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from engine.report.page import Report
from engine.report.tables import table

NOTE = (
    "Replay: the same bars through the same compiled step, from the broker's book at the "
    "first recorded decision, trading fractional shares at the backtest's fill price and "
    "modelled cost. Timing: quantities paper traded at another session than the replay; "
    "price: paper's fill prices against the backtest's; cost: the backtest's modelled costs "
    "minus paper's (commission, fees, cash the fills do not explain); rounding: whole-share "
    "lots and minimum notional; rejected: orders refused, skipped or filled in part. The "
    "parts add up to the gap."
)


def section(rep: Any) -> str:
    """The paper-tracking section: the gap's split, sessions, fills."""
    split = pd.DataFrame(
        {"money": [*rep.split.values(), rep.gap]}, index=[*rep.split.keys(), "total gap"]
    )
    split.index.name = "part"
    eq = pd.DataFrame(
        {"money": [rep.start_equity, rep.paper_equity, rep.replay_equity]},
        index=["start (broker)", "paper at the end", "replay at the end"],
    )
    eq.index.name = "equity"
    sessions = rep.sessions.set_index("date")
    parts = [
        table(eq, "Equity", kind="money"),
        table(split, "Equity gap (paper - replay)", kind="money", note=NOTE),
        table(
            sessions,
            "Sessions",
            kinds={
                "rebalanced": "text",
                "target_diff": "ratio",
                "shares_diff": "ratio",
                "planned": "count",
                "filled": "count",
                "paper_equity": "money",
                "replay_equity": "money",
                "gap": "money",
            },
            cls="scroll",
        ),
    ]
    if len(rep.fills):
        fills = rep.fills.drop(columns=["client_order_id"]).set_index("decided")
        kinds: dict[str, Any] = {c: "price" for c in ("price", "reference", "backtest_price")}
        kinds |= {"model_cost_bps": "bps", "shortfall_bps": "bps", "qty": "ratio"}
        kinds |= {"time": "text", "symbol": "text", "side": "text", "commission": "money"}
        parts.append(
            table(fills, "Fills (shortfall vs the backtest's fill)", kinds=kinds, cls="scroll")
        )
    return "\n".join(parts)


def write_page(rep: Any, path: Path) -> Path:
    """A standalone page with the paper-tracking section."""
    d = rep.to_json()
    page = Report(f"Paper vs backtest: {rep.strategy}")
    page.add("How paper tracked the backtest", section(rep))
    headline = (
        f"{d['sessions']} sessions {d['first']} .. {d['last']}, {d['fills']} fills; "
        f"equity gap {rep.gap:+,.2f}"
    )
    return page.write(path, f"paper-report of {rep.strategy}", headline, None)


__all__ = ["section", "write_page"]

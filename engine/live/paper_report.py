"""``regime-engine paper-report STATE_DIR``: how paper tracked the backtest.

Reads a paper run's journal (``decisions.jsonl``, :mod:`engine.live.journal`; its live lines
of version 2 on), rebuilds the run from the config journalled with it through the composition
root (:func:`engine.assemble.assemble`), replays the same bars through the same streaming
driver (the backtest's compiled step) and trades a replay book from the broker's book at the
first recorded live decision (:mod:`engine.live.tracking` defines every figure). Shows, per
session, the difference of the targets paper journalled and the replay's (expected 0), per
fill the paper price against the backtest's fill price and modelled cost (implementation
shortfall, bps), and the equity gap at the end split into timing, price, cost, rounding and
rejected/partial orders. Writes ``paper-report.json``, ``paper-report-sessions.csv`` and
``paper-report-fills.csv`` into the strategy's state folder; ``--html`` adds a report page.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine import fmt
from engine.config import ConfigError, RunConfig
from engine.live.tracking import PARTS, Fill, Leg, decompose

REPORT_JSON = "paper-report.json"
SESSIONS_CSV = "paper-report-sessions.csv"
FILLS_CSV = "paper-report-fills.csv"
MIN_VERSION = 2  # decision lines with prices, scale, book and orders


@dataclass
class PaperReport:
    """The figures of one paper run against its replay."""

    strategy: str
    sessions: pd.DataFrame  # one row per live decision
    fills: pd.DataFrame  # one row per paper fill inside the window
    split: dict[str, float]  # the gap's parts (engine.live.tracking.PARTS)
    paper_equity: float
    replay_equity: float
    start_equity: float
    unexplained_cash: float
    warnings: list[str] = field(default_factory=list)

    @property
    def gap(self) -> float:
        return self.paper_equity - self.replay_equity

    @property
    def residual(self) -> float:
        """The gap minus the sum of its parts (rounding error only)."""
        return self.gap - math.fsum(self.split.values())

    def to_json(self) -> dict[str, Any]:
        sb = self.fills["shortfall_bps"] if len(self.fills) else pd.Series(dtype=float)
        return {
            "strategy": self.strategy,
            "sessions": len(self.sessions),
            "first": str(self.sessions["date"].iloc[0]),
            "last": str(self.sessions["date"].iloc[-1]),
            "fills": len(self.fills),
            "max_target_diff": float(self.sessions["target_diff"].max()),
            "max_shares_diff": float(self.sessions["shares_diff"].max()),
            "shortfall_bps_mean": float(sb.mean()) if len(sb) else None,
            "shortfall_bps_max": float(sb.abs().max()) if len(sb) else None,
            "start_equity": self.start_equity,
            "paper_equity": self.paper_equity,
            "replay_equity": self.replay_equity,
            "gap": self.gap,
            "split": self.split,
            "residual": self.residual,
            "unexplained_cash": self.unexplained_cash,
            "warnings": self.warnings,
        }


# ------------------------------------------------------------------ the journal
def strategy_dir(path: Path, strategy: str | None = None) -> Path:
    """The folder holding ``decisions.jsonl``: ``path`` itself or one strategy under it."""
    if (path / "decisions.jsonl").is_file():
        return path
    if not path.is_dir():
        raise ConfigError(f"{path}: no such state folder")
    found = sorted(p.parent for p in path.glob("*/decisions.jsonl"))
    if strategy is not None:
        found = [p for p in found if p.name == strategy]
    if len(found) == 1:
        return found[0]
    if not found and strategy is not None and any(path.glob("*/decisions.jsonl")):
        names = ", ".join(sorted(p.parent.name for p in path.glob("*/decisions.jsonl")))
        raise ConfigError(f"{path}: no strategy {strategy!r} here (journals: {names})")
    if not found:
        idle = (path / "checkpoint.json").is_file() or any(path.glob("*/checkpoint.json"))
        why = " (a checkpoint but no live decision yet: nothing traded to compare)" if idle else ""
        raise ConfigError(f"{path}: no decisions.jsonl here or in a strategy folder under it{why}")
    names = ", ".join(p.name for p in found)
    raise ConfigError(f"{path}: several strategies ({names}); pass --strategy NAME")


def read_journal(path: Path) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = []
    with path.open() as f:
        for n, text in enumerate(f, 1):
            try:
                x = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{path}: line {n}: not JSON ({exc.msg})") from None
            if not isinstance(x, dict) or not isinstance(x.get("ts"), int):
                raise ConfigError(f"{path}: line {n}: not a decision line (no integer ts)")
            x["_n"] = n
            lines.append(x)
    return lines


def tracked_window(path: Path, lines: list[dict[str, Any]]) -> list[int]:
    """Indices of the live lines paper-report can read (version 2 on), all of them after
    the first such line; an old journal is a one-line error."""
    live = [i for i, x in enumerate(lines) if x.get("phase") == "live"]
    new = [i for i in live if int(lines[i].get("v", 1)) >= MIN_VERSION]
    if not new:
        what = f"{len(live)} live decisions" if live else "no live decision"
        raise ConfigError(
            f"{path}: {what} recorded for paper-report (journal version 1, written before "
            "paper tracking was journalled): run paper with this version to record sessions"
        )
    window = [i for i in live if i >= new[0]]
    for i in window:
        x = lines[i]
        for key in ("prices", "scale", "book", "orders", "desired"):
            if not isinstance(x.get(key), dict | list | float | int):
                raise ConfigError(f"{path}: line {x['_n']}: live decision without {key!r}")
    return window


def journalled_config(path: Path, lines: list[dict[str, Any]], first: int) -> dict[str, Any]:
    starts = [x["start"] for x in lines[first:] if isinstance(x.get("start"), dict)]
    if not starts:
        raise ConfigError(f"{path}: no journalled config (start); pass --config CONFIG")
    return starts[0]  # type: ignore[no-any-return]


# ------------------------------------------------------------------ the replay
def build(state: Path, config: str | None = None, strategy: str | None = None) -> PaperReport:
    """The report of the paper run journalled in ``state``."""
    from engine.assemble import assemble
    from engine.config import load_config, parse_config
    from engine.core.execution_nb import fill_costs_nb
    from engine.live.trader import Trader

    folder = strategy_dir(state, strategy)
    path = folder / "decisions.jsonl"
    lines = read_journal(path)
    window = tracked_window(path, lines)
    meta = journalled_config(path, lines, window[0])
    cfg: RunConfig = (
        load_config(config)
        if config is not None
        else parse_config(meta["config"], f"{path} (journalled config)", folder=meta["folder"])
    )
    run = assemble(cfg)
    scfg, strat = run.strategy(meta.get("strategy", folder.name))
    trader = Trader(run.streaming_driver(strat), scfg.name)
    symbols, panel = trader.symbols, run.panel
    journalled = sorted(lines[window[-1]].get("prices") or {})
    if sorted(symbols) != journalled:
        raise ConfigError(
            f"{config or path}: the config's strategy {scfg.name!r} trades "
            f"{', '.join(symbols)}, the journal {', '.join(journalled)}: not the paper run's "
            "config (leave out --config to replay the journalled one)"
        )
    row_of = {int(t): i for i, t in enumerate(panel.timestamps_ns)}
    in_window = set(window)
    outs: dict[int, tuple[int, np.ndarray | None, np.ndarray]] = {}
    for i, x in enumerate(lines):
        row = row_of.get(x["ts"])
        if row is None:
            raise ConfigError(
                f"{path}: line {x['_n']}: bar {pd.Timestamp(x['ts']).date()} is not in the "
                f"config's data ({panel.index[0].date()} .. {panel.index[-1].date()}): "
                "refresh the data (a backtest of the config) and run paper-report again"
            )
        out = trader.step(panel.bar(row))
        if i in in_window:
            targets = out.targets.copy() if out.rebalanced else None
            outs[i] = (row, targets, out.positions + out.orders)

    at_close = run.execution.fill_at == "next_close"
    last = lines[window[-1]]
    mark = {s: float(last["prices"][s]) for s in symbols}
    start_book = lines[window[0]]["book"]
    cash_b = float(start_book["cash"])
    pos_b = {s: float(start_book["positions"].get(s, 0.0)) for s in symbols}
    paper_fills: dict[str, list[dict[str, Any]]] = {}
    for x in lines[window[0] :]:
        for f in x.get("fills", ()):
            paper_fills.setdefault(f["client_order_id"], []).append(f)
    piece = np.zeros(4)
    legs: list[Leg] = []
    sessions: list[dict[str, Any]] = []
    fill_rows: list[dict[str, Any]] = []
    cash_p_expected = float(start_book["cash"])
    pos_p = {s: float(start_book["positions"].get(s, 0.0)) for s in symbols}
    used: set[str] = set()
    for k, i in enumerate(window):
        x = lines[i]
        row, targets, shares = outs[i]
        scale = float(x["scale"])
        desired_b = {s: scale * float(shares[j]) for j, s in enumerate(symbols)}
        desired_p = {s: float(x["desired"].get(s, 0.0)) for s in symbols}
        prices = {s: float(x["prices"][s]) for s in symbols}
        book = x["book"]
        eq_p = float(book["cash"]) + math.fsum(
            float(q) * prices.get(s, 0.0) for s, q in book["positions"].items()
        )
        eq_b = cash_b + math.fsum(pos_b[s] * prices[s] for s in symbols)
        sessions.append(
            {
                "date": pd.Timestamp(x["ts"]).date(),
                "rebalanced": targets is not None,
                "target_diff": target_diff(x.get("targets"), targets, symbols),
                "shares_diff": max(abs(desired_p[s] - desired_b[s]) for s in symbols),
                "planned": len(x["orders"]),
                "filled": 0,
                "paper_equity": eq_p,
                "replay_equity": eq_b,
                "gap": eq_p - eq_b,
            }
        )
        if k == len(window) - 1:
            break  # the last decision's orders fill after the end mark
        if row + 1 >= len(panel.timestamps_ns):
            raise ConfigError(
                f"{path}: line {x['_n']}: the config's data ends on the decision's bar; "
                "no next bar to price the backtest's fills"
            )
        ref_row = (panel.close if at_close else panel.open)[row + 1]
        vol_row = panel.volume[row + 1]
        for j, s in enumerate(symbols):
            ref, vol, cost = float(ref_row[j]), float(vol_row[j]), run.costs[j]
            qb = desired_b[s] - pos_b[s]
            pb, cb = ref, 0.0
            if abs(qb) > 1e-12:
                pb = float(fill_costs_nb(qb, ref, vol, cost, piece))
                cb = float(piece[0])
            cash_b -= qb * pb + cb
            pos_b[s] += qb
            mine = [o for o in x["orders"] if o["symbol"] == s]
            fills: list[Fill] = []
            for o in mine:
                used.add(o["client_order_id"])
                for f in paper_fills.get(o["client_order_id"], ()):
                    q = float(f["qty"]) * (1.0 if f["side"] == "buy" else -1.0)
                    ph = float(fill_costs_nb(q, ref, vol, cost, piece))
                    fill = Fill(
                        q, float(f["price"]), float(f.get("commission") or 0.0), ph, float(piece[0])
                    )
                    fills.append(fill)
                    cash_p_expected -= q * fill.price + fill.commission
                    pos_p[s] += q
                    sessions[-1]["filled"] += 1
                    fill_rows.append(
                        {
                            "decided": sessions[-1]["date"],
                            "time": pd.Timestamp(int(f["ts"]), tz="UTC") if f.get("ts") else None,
                            "symbol": s,
                            "side": f["side"],
                            "qty": abs(q),
                            "price": fill.price,
                            "reference": ref,
                            "backtest_price": ph,
                            "model_cost_bps": fill.model_cost_bps(ref),
                            "shortfall_bps": fill.shortfall_bps(ref),
                            "commission": f.get("commission"),
                            "client_order_id": o["client_order_id"],
                        }
                    )
            legs.append(
                Leg(
                    ref=ref,
                    mark=mark[s],
                    qb=qb,
                    pb=pb,
                    cb=cb,
                    qd=desired_p[s] - float(x["book"]["positions"].get(s, 0.0)),
                    qi=math.fsum(float(o["qty"]) for o in mine),
                    fills=tuple(fills),
                )
            )
    end_book = last["book"]
    unexplained = float(end_book["cash"]) - cash_p_expected
    paper_eq = float(end_book["cash"]) + math.fsum(pos_p[s] * mark[s] for s in symbols)
    replay_eq = cash_b + math.fsum(pos_b[s] * mark[s] for s in symbols)
    warnings = []
    held = {s: float(end_book["positions"].get(s, 0.0)) for s in symbols}
    off = {s: held[s] - pos_p[s] for s in symbols if abs(held[s] - pos_p[s]) > 1e-6}
    if off:
        warnings.append(
            "the broker's shares at the end differ from the start plus the journalled fills "
            f"({', '.join(f'{s} {q:+g}' for s, q in off.items())}): fills not journalled"
        )
    after = {o["client_order_id"] for o in last["orders"]}
    late = sum(len(v) for c, v in paper_fills.items() if c in after)
    other = sum(len(v) for c, v in paper_fills.items() if c not in used and c not in after)
    if late:
        warnings.append(f"{late} fills of the last decision's orders (after the end) left out")
    if other:
        warnings.append(f"{other} fills of orders no recorded decision planned left out")
    return PaperReport(
        strategy=scfg.name,
        sessions=pd.DataFrame(sessions),
        fills=pd.DataFrame(fill_rows),
        split=decompose(legs, unexplained),
        paper_equity=paper_eq,
        replay_equity=replay_eq,
        start_equity=sessions[0]["paper_equity"],
        unexplained_cash=unexplained,
        warnings=warnings,
    )


def target_diff(
    journalled: dict[str, float] | None, replay: np.ndarray | None, symbols: tuple[str, ...]
) -> float:
    """Largest target-weight difference (``inf`` when one rebalanced and the other not)."""
    if journalled is None and replay is None:
        return 0.0
    if journalled is None or replay is None:
        return math.inf
    return max(abs(float(journalled.get(s, 0.0)) - float(replay[j])) for j, s in enumerate(symbols))


# ------------------------------------------------------------------ output
def console(rep: PaperReport) -> str:
    """The operator's view: sessions, the fills' shortfall, the gap's split."""
    d = rep.to_json()
    lines = [
        f"paper-report {rep.strategy}: {d['sessions']} sessions {d['first']} .. {d['last']}, "
        f"{d['fills']} fills; max target difference {d['max_target_diff']:.3g} "
        f"(weights), {d['max_shares_diff']:.3g} (shares)",
        rep.sessions.to_string(index=False, float_format=lambda v: fmt.money(v, 4)),
    ]
    if len(rep.fills):
        lines.append(
            f"fills: implementation shortfall mean {d['shortfall_bps_mean']:.2f} bps, "
            f"max |.| {d['shortfall_bps_max']:.2f} bps; backtest's modelled cost mean "
            f"{rep.fills['model_cost_bps'].mean():.2f} bps"
        )
    parts = ", ".join(f"{p} {fmt.money(rep.split[p], 2, signed=True)}" for p in PARTS)
    lines.append(
        f"equity gap: paper {fmt.money(rep.paper_equity, 2)} - replay "
        f"{fmt.money(rep.replay_equity, 2)} = {fmt.money(rep.gap, 2, signed=True)} = {parts} "
        f"(residual {rep.residual:.2e})"
    )
    lines += [f"warning: {w}" for w in rep.warnings]
    return "\n".join(lines)


def write(rep: PaperReport, folder: Path) -> list[Path]:
    """The JSON summary and the two CSV tables in ``folder``."""
    out = [folder / REPORT_JSON, folder / SESSIONS_CSV, folder / FILLS_CSV]
    out[0].write_text(json.dumps(rep.to_json(), indent=2, default=str) + "\n")
    rep.sessions.to_csv(out[1], index=False)
    rep.fills.to_csv(out[2], index=False)
    return out


# ------------------------------------------------------------------ the command
def register(sub: Any) -> None:
    p = sub.add_parser(
        "paper-report",
        help="how paper tracked the backtest: targets, fills' shortfall, the equity gap",
    )
    p.add_argument("state_dir", help="the paper state folder (paper.state_dir or a strategy's)")
    p.add_argument("--config", default=None, help="replay this config (default: journalled)")
    p.add_argument("--strategy", default=None, help="the strategy (state folder of several)")
    p.add_argument("--html", default=None, metavar="PATH", help="also write a report page")
    p.set_defaults(handler=cmd_paper_report)


def cmd_paper_report(args: argparse.Namespace) -> int:
    from engine.out_paths import prepare_out_file

    html = prepare_out_file(args.html, "--html") if args.html else None
    state = Path(args.state_dir)
    rep = build(state, args.config, args.strategy)
    print(console(rep), flush=True)
    written = write(rep, strategy_dir(state, args.strategy))
    if html is not None:
        from engine.report.paper_tracking import write_page

        written.append(write_page(rep, html))
    print("wrote " + ", ".join(map(str, written)), flush=True)
    return 0


__all__ = ["PaperReport", "build", "console", "register", "strategy_dir", "write"]

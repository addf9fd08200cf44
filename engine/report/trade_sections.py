"""Report sections on what the strategies did: return and cost attribution, the largest
trades, historical and hypothetical stress tests."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from engine import fmt
from engine.analysis._common import COST_COLUMNS
from engine.analysis.attribution import attribute_result, attribution_by_regime, link
from engine.analysis.stress import HYPOTHETICAL_SHOCKS, historical_stress, shock_table
from engine.analysis.tearsheet import (
    cost_attribution,
    trade_list,
)
from engine.report.common import (
    RunOnly,
    asset_classes,
    dates_as_text,
)
from engine.report.page import Report
from engine.report.tables import table

ATTRIBUTION_NAMES = {
    "execution": "Execution",
    "cost_commission": "Commission",
    "cost_spread": "Spread",
    "cost_slippage": "Slippage",
    "cost_impact": "Impact",
    "residual": "Residual",
    "total": "Total",
}
"""Display names of the attribution's non-asset columns (asset columns keep their symbol)."""


def _left_out(cols: list[str]) -> str:
    names = [ATTRIBUTION_NAMES.get(c, c).lower() for c in cols]
    return f": {html.escape(', '.join(names))}" if names else ""


def shock_definitions(
    scenarios: dict[str, dict[str, float]], classes: dict[str, str] | None
) -> pd.DataFrame:
    """One row per scenario: its moves in words; a class or symbol the panel does not hold
    is marked ``(not held)``."""
    held_classes = {c.lower() for c in (classes or {}).values()}
    held = set(classes or {})
    rows = {}
    for name, moves in scenarios.items():
        parts = []
        for key, r in moves.items():
            mark = (
                ""
                if classes is None or key.lower() in held_classes or key in held
                else (" (not held)")
            )
            parts.append(f"{key} {r * 100:+.0f}%{mark}")
        rows[name] = {"Definition": ", ".join(parts)}
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "scenario"
    return df


TRADES_SHOWN = 20
"""Trades shown per strategy (the largest by notional)."""


def attribution_section(
    rep: Report,
    result: Any,
    equity: pd.DataFrame,
    regimes: pd.DataFrame | None,
    names: dict[int, str],
) -> None:
    """Carino return attribution (by regime too) and cost attribution."""
    body = ""
    drop = [n for n in getattr(result, "returns_only", ()) if n in equity.columns]
    if drop:
        result = RunOnly(result, drop)
        equity = equity[[c for c in equity.columns if c not in drop]]
    try:
        per = attribute_result(result)
    except (KeyError, ValueError) as exc:  # missing weights/prices: say so, keep the report
        body += f'<p class="note">Return attribution unavailable: {html.escape(str(exc))}</p>'
    else:
        att = pd.DataFrame({k: link(v, "carino") for k, v in per.items()}).T
        att.index.name = "strategy"
        zero = [c for c in att.columns if c != "total" and bool((att[c].abs() < 5e-5).all())]
        att = att.drop(columns=zero).rename(columns=ATTRIBUTION_NAMES)
        body += table(
            att,
            "Return attribution",
            kind="pct",
            labels=False,
            note="Carino-linked contributions to the total compounded return: assets, costs "
            "(negative), execution = filling at the reference (e.g. next-open) price instead "
            "of the close; residual = anything unexplained (about 0). Columns that are zero "
            f"for every strategy are left out{_left_out(zero)}.",
        )
        if regimes is not None:
            grid = ""
            for s, pb in per.items():
                grid += (
                    "<div>"
                    + table(
                        attribution_by_regime(pb, regimes)
                        .drop(columns=zero, errors="ignore")
                        .rename(columns=ATTRIBUTION_NAMES),
                        f"{s}: by regime",
                        kind="pct",
                        labels=False,
                        index_names=names,
                    )
                    + "</div>"
                )
            body += (
                "<details><summary>attribution by regime (compounded within each regime)"
                f'</summary><div class="grid">{grid}</div></details>'
            )
    ca = cost_attribution(getattr(result, "fills", None), equity, rep.periods_per_year)
    kinds_zero = [c for c in COST_COLUMNS if c in ca.columns and bool((ca[c] == 0).all())]
    ca = ca.drop(columns=kinds_zero)
    body += table(
        ca,
        "Cost attribution",
        kinds={"cost_bps": "bps", "cost_drag": "pct"},
        labels=True,
        note="Costs by kind in account currency (kinds zero for every strategy left out"
        f"{_left_out(kinds_zero)}); cost in bps = total costs / traded notional; cost drag = "
        "total costs / mean equity per year.",
    )
    rep.add("Attribution and costs", body)


def trades_section(rep: Report, result: Any, equity: pd.DataFrame) -> None:
    """The largest fills of each strategy by notional."""
    fills = getattr(result, "fills", None)
    if fills is None or len(fills) == 0:
        return
    grid = ""
    for c in equity.columns:
        tl = trade_list(fills, str(c), TRADES_SHOWN)
        if len(tl) == 0:
            continue
        n = int((fills["strategy"] == c).sum()) if "strategy" in fills.columns else len(fills)
        tl.index = pd.RangeIndex(1, len(tl) + 1, name="#")
        tl = tl.rename(columns={"timestamp": "date"})
        grid += (
            "<div>"
            + table(
                tl,
                f"{c}: {len(tl)} largest of {n:,} fills",
                kinds={"qty": "money", "price": "price", "notional": "money", "costs": "money"},
                labels=True,
                cls="scroll",
            )
            + "</div>"
        )
    if grid:
        rep.add(
            "Trades",
            f'<div class="grid">{grid}</div><p class="note">Largest fills by notional; every '
            "fill is in fills.csv of the run folder.</p>",
        )


def stress_section(rep: Report, result: Any, equity: pd.DataFrame, shock_date: Any) -> None:
    """Labelled historical windows and hypothetical shocks to the last holdings."""
    hist = historical_stress(equity)
    if len(hist):
        hist = dates_as_text(hist, ["start", "end", "trough"], "n/a")
        hist = dates_as_text(hist, ["recovery_date"], "not yet")
        hist = hist.drop(columns=["recovered"], errors="ignore")
        hist = hist.rename(columns={"recovery_bars": "start_to_recovery_bars"})
        body = table(
            hist,
            "Historical windows",
            labels=True,
            note="Recovery = the first bar back at the equity peak before the window (as in "
            "the drawdown tables: back at the peak); bars counted from the window's start.",
        )
    else:
        body = '<p class="note">No labelled stress window inside the data.</p>'
    weights = getattr(result, "weights", None)
    if weights is not None and len(weights.columns):
        date = shock_date if shock_date is not None else equity.index[-1]
        have = (
            list(dict.fromkeys(weights.columns.get_level_values(0)))
            if isinstance(weights.columns, pd.MultiIndex)
            else list(equity.columns)
        )
        eq = equity[[c for c in equity.columns if c in have]]
        shocks = shock_table(weights, eq, date, asset_classes=asset_classes(result))
        shocks = dates_as_text(shocks, ["date"], "n/a")
        body += table(
            shocks,
            f"Hypothetical shocks to the holdings of {fmt.date(date)}",
            kinds={"return": "pct", "pnl": "money", "equity": "money"},
            labels=True,
        )
        body += table(
            shock_definitions(HYPOTHETICAL_SHOCKS, asset_classes(result)),
            "Shock definitions",
            labels=False,
            note="Each scenario moves every held symbol of the named asset class (or the named "
            "symbol) by the return shown, at once; symbols it does not name are unchanged.",
        )
    rep.add("Stress tests", body)

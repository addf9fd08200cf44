"""The paired bootstrap in plain words: "Sharpe: A minus B", drawdowns as negative returns,
and a paragraph on how to read it."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from engine import fmt
from engine.report.tables import table


def bootstrap_plain(
    table_: pd.DataFrame, candidate: str, benchmark: str, p: float | None = None
) -> pd.DataFrame:
    """A paired-bootstrap table (rows ``<metric>_candidate/_benchmark/_diff``) with
    plain-language row names ("Sharpe: A minus B"); drawdowns turned into negative returns
    (so "minus" reads the same way for every metric)."""
    rf = table_.attrs.get("rf_label")  # Sharpe of excess returns over this series
    names = {"sharpe": fmt.label("sharpe", rf), "cagr": "CAGR", "max_drawdown": "Max drawdown"}
    rows = {}
    for key in table_.index:
        k = str(key)
        if k == "p_sharpe_diff_le_0":
            continue
        metric, _, tag = k.rpartition("_")
        if tag not in ("candidate", "benchmark", "diff") or metric not in names:
            rows[k] = table_.loc[key]
            continue
        who = {
            "candidate": candidate,
            "benchmark": benchmark,
            "diff": f"{candidate} minus {benchmark}",
        }[tag]
        row = table_.loc[key].astype(float).copy()
        if metric == "max_drawdown":  # losses as negative returns; the interval flips
            row = pd.Series(
                {
                    "estimate": -row["estimate"],
                    "lower": -row["upper"],
                    "upper": -row["lower"],
                    "std": row.get("std", np.nan),
                }
            )
        rows[f"{names[metric]}: {who}"] = row
    out = pd.DataFrame(rows).T
    out.index.name = "quantity"
    if p is not None:
        out.loc[f"p-value: {names['sharpe']} of {candidate} not above {benchmark}'s"] = [
            p,
            np.nan,
            np.nan,
            np.nan,
        ][: out.shape[1]]
    return out


def bootstrap_kinds(df: pd.DataFrame) -> dict[Any, fmt.Kind]:
    """Row kinds for :func:`bootstrap_plain` tables."""
    out: dict[Any, fmt.Kind] = {}
    for k in df.index:
        s = str(k)
        out[k] = (
            "pvalue" if s.startswith("p-value") else "ratio" if s.startswith("Sharpe") else "pct"
        )
    return out


def bootstrap_section(
    boot: pd.DataFrame, candidate: str, benchmark: str, level: float = 0.95, unit: str = "day"
) -> str:
    """The bootstrap table with plain labels and a reading guide (``unit``: one bar in
    words)."""
    p = None
    if "p_sharpe_diff_le_0" in boot.index:
        p = float(boot.loc["p_sharpe_diff_le_0"].to_numpy()[0])
    plain = bootstrap_plain(boot, candidate, benchmark, p)
    plain = plain.rename(columns=lambda c: str(c)[:1].upper() + str(c)[1:])
    return table(
        plain,
        kinds=bootstrap_kinds(plain),
        by_row=True,
        labels=False,
        note=f"Paired stationary bootstrap (blocks of {unit}s resampled together for both "
        f"strategies): estimate and {level:.0%} interval. An interval for "
        f"'{html.escape(candidate)} minus {html.escape(benchmark)}' that excludes 0 is a "
        "difference unlikely to be luck; the p-value is the chance of an edge this large if "
        "the true Sharpe difference were 0 or less (Sharpe over rf = "
        f"{html.escape(str(boot.attrs.get('rf_label', '0')))}).",
    )

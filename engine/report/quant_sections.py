"""The report's quantstats-style section: trailing returns, best/worst periods, win rates,
streaks, drawdown durations, recovery factor and ulcer index of every series; the
end-of-year table and the relative statistics of each strategy against the run's own
benchmark strategy (the first one: 60/40 in the default config)."""

from __future__ import annotations

import html

import pandas as pd

from engine import fmt
from engine.analysis.benchmark import relative_table
from engine.analysis.quant_stats import eoy_table, quant_stats_table
from engine.report.page import Report
from engine.report.tables import table


def stat_labels(unit: str) -> dict[str, tuple[str, fmt.Kind]]:
    """Row key -> (display name, kind); ``unit`` is one bar in words (``"day"``, ``"hour"``)."""
    units = f"{unit}s"
    return {
        "mtd": ("MTD", "pct"),
        "3m": ("3M", "pct"),
        "6m": ("6M", "pct"),
        "ytd": ("YTD", "pct"),
        "1y": ("1Y", "pct"),
        "3y_ann": ("3Y (ann.)", "pct"),
        "5y_ann": ("5Y (ann.)", "pct"),
        "10y_ann": ("10Y (ann.)", "pct"),
        "best_bar": (f"Best {unit}", "pct"),
        "worst_bar": (f"Worst {unit}", "pct"),
        "best_month": ("Best month", "pct"),
        "worst_month": ("Worst month", "pct"),
        "best_year": ("Best year", "pct"),
        "worst_year": ("Worst year", "pct"),
        "win_rate_bar": (f"Win rate ({units})", "pct"),
        "win_rate_month": ("Win rate (months)", "pct"),
        "win_rate_year": ("Win rate (years)", "pct"),
        "max_consecutive_wins": (f"Most winning {units} in a row", "count"),
        "max_consecutive_losses": (f"Most losing {units} in a row", "count"),
        "longest_dd_days": ("Longest drawdown (calendar days)", "count"),
        "avg_dd_days": ("Average drawdown (calendar days)", "count"),
        "recovery_factor": ("Recovery factor", "ratio"),
        "ulcer_index": ("Ulcer index", "ratio"),
    }


def quant_section(
    rep: Report,
    equity: pd.DataFrame,
    bench: tuple[str, pd.Series] | None,
    unit: str,
) -> None:
    """Add the "Returns in detail" section (see the module docstring)."""
    curves = {str(c): equity[c].astype(float) for c in equity.columns}
    if bench is not None and bench[0] not in curves:
        curves[bench[0]] = bench[1].astype(float)
    qs = quant_stats_table(pd.DataFrame(curves), rep.periods_per_year)
    labels = stat_labels(unit)
    qs.index.name = "statistic"
    body = table(
        qs,
        kinds={k: v[1] for k, v in labels.items()},
        by_row=True,
        labels=False,
        index_names={k: v[0] for k, v in labels.items()},
        note=f"Trailing returns to the last bar ({fmt.date(equity.index[-1])}): MTD, 3M, 6M, "
        "YTD and 1Y compounded, 3Y/5Y/10Y annualised (n/a when the history is shorter). "
        "Win rate = winning periods / periods with a non-zero return. Drawdown durations: "
        "calendar days from the first bar under the peak to the last one. Recovery factor = "
        "total return / max drawdown (quantstats uses the sum of returns; we compound). "
        "Ulcer index = root-mean-square drawdown. Best/worst month and year include a "
        "partial first or last one. As quantstats defines them.",
    )
    names = list(map(str, equity.columns))
    if len(names) >= 2:
        base = names[0]
        grid = ""
        for s in names[1:]:
            t = eoy_table(equity[s], equity[base])
            t["partial"] = ["partial" if p else "" for p in t["partial"]]
            t = t.rename(
                columns={
                    "strategy": s,
                    "benchmark": base,
                    "difference": "Difference",
                    "ratio": "Multiplier",
                    "partial": "Partial",
                }
            )
            grid += (
                "<div>"
                + table(
                    t,
                    f"End-of-year returns: {s} vs {base}",
                    kinds={s: "pct", base: "pct", "Difference": "pct", "Multiplier": "ratio"},
                    labels=False,
                )
                + "</div>"
            )
        body += (
            f'<div class="grid">{grid}</div><p class="note">Compounded calendar-year returns; '
            "partial = a first or last year the data cover only in part; multiplier = the "
            "strategy's return / the benchmark's (quantstats' \"Multiplier\").</p>"
        )
    if len(names) >= 2 and (bench is None or bench[0] != names[0]):  # else: in the summary
        base = names[0]
        rel = relative_table(equity[names[1:]], equity[base], rep.periods_per_year)
        body += table(
            rel,
            f"Relative to the run's benchmark strategy: {base}",
            note=f"Per-{html.escape(unit)} returns against {html.escape(base)} (the first "
            "strategy of the run), rf = 0: alpha and beta from the regression, tracking error "
            "= volatility of the difference, information ratio = annualised mean difference "
            "/ tracking error (quantstats does not annualise it).",
        )
    rep.add("Returns in detail", body)

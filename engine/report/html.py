"""One self-contained, interactive HTML tearsheet of a backtest result.

Charts are Plotly figures rendered by plotly.js, embedded once in the file (no network:
no ``<script src>``, no ``<link>``); without JavaScript or without the ``plotly`` package
the tables still read and each chart says why it is missing. Numbers go through
:mod:`engine.fmt` (percent for rates, money for money, losses negative everywhere).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from engine.analysis.metrics import PERIODS_PER_YEAR
from engine.report import plot
from engine.report.page import Report, meta_line
from engine.report.sections import add_tearsheet, cost_chart
from engine.report.tables import table


def write_report(
    result: Any,
    path: str | Path,
    *,
    title: str = "regime-engine backtest report",
    periods_per_year: int = PERIODS_PER_YEAR,
    cost_sensitivity: pd.DataFrame | None = None,
    bootstrap: pd.DataFrame | None = None,
    bootstrap_pair: tuple[str, str] | None = None,
    sweep: pd.DataFrame | None = None,
    extra: Mapping[str, pd.DataFrame] | None = None,
    shock_date: Any = None,
    notes: str | None = None,
    benchmark: str | None = None,
) -> Path:
    """Write a single self-contained interactive HTML tearsheet.

    Parameters
    ----------
    result : result-like
        Exposes ``equity``, ``weights``, ``fills``, ``regimes`` and ``prices`` tables
        (optionally ``regime_labels``, ``panel.asset_classes``, ``config``).
    path : str or Path
        Output file (parent folders are created).
    cost_sensitivity : DataFrame, optional
        Rows = cost settings, columns = metrics/strategies; table + line chart.
    bootstrap : DataFrame, optional
        Paired bootstrap table (:func:`engine.analysis.bootstrap.bootstrap_report`);
        ``bootstrap_pair`` = (candidate, benchmark) names its rows in plain words.
    sweep : DataFrame, optional
        2-D grid (index = one parameter, columns = another, values = a metric): heat-map.
    extra : mapping of str to DataFrame, optional
        Further tables, one section each, titled by key.
    shock_date : timestamp-like, optional
        Date for hypothetical shocks (default: last bar).
    notes : str, optional
        Free text shown under the title (escaped).
    benchmark : str, optional
        Strategy or symbol to compare against (default: config ``[report] benchmark``,
        else the first equity symbol).

    Returns
    -------
    Path
        The written file.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    rep = Report(title, periods_per_year)
    equity, bname = add_tearsheet(
        rep,
        result,
        benchmark=benchmark,
        bootstrap=bootstrap,
        bootstrap_pair=bootstrap_pair,
        shock_date=shock_date,
    )
    if cost_sensitivity is not None and len(cost_sensitivity):
        rep.add("Cost sensitivity", cost_chart(rep, cost_sensitivity) + table(cost_sensitivity))
    if sweep is not None and len(sweep):
        hm = {
            "type": "heatmap",
            "z": [plot.numbers(r) for r in sweep.to_numpy(dtype=float)],
            "x": [str(c) for c in sweep.columns],
            "y": [str(i) for i in sweep.index],
            "colorscale": plot.DIVERGING,
            "texttemplate": "%{z:.3g}",
        }
        lay = {
            "xaxis": {"type": "category", "title": {"text": str(sweep.columns.name or "")}},
            "yaxis": {"type": "category", "title": {"text": str(sweep.index.name or "")}},
            "hovermode": "closest",
        }
        rep.add(
            "Parameter sweep",
            rep.page.chart([hm], lay, height=120 + 28 * len(sweep)) + table(sweep, labels=False),
        )
    for name, df in (extra or {}).items():
        if df is not None and len(df):
            rep.add(str(name), table(df))
    return rep.write(out, meta_line(equity, bname), None, notes)

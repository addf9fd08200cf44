"""The tearsheet sections (summary and benchmark, equity and drawdowns, calendar returns,
distribution, rolling statistics, exposure, weights, regimes, attribution, trades, stress
tests) and :func:`add_tearsheet`, which adds them all to a :class:`Report`."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine import fmt
from engine.analysis._common import simple_returns, strategy_fills
from engine.analysis.baselines import after_warmup
from engine.analysis.benchmark import benchmark_equity, relative_table
from engine.analysis.drawdowns import worst_drawdowns
from engine.analysis.metrics import (
    DEFAULT_COLUMNS,
    drawdown,
    result_risk_free,
    summary_table,
    var_cvar_historical,
)
from engine.analysis.quant_stats import partial_periods
from engine.analysis.tearsheet import (
    exposure,
    monthly_returns,
    period_returns,
    turnover_series,
    yearly_returns,
)
from engine.config import ConfigError
from engine.ground.frequency import infer_frequency
from engine.report import plot
from engine.report.common import (
    WithSeries,
    candidate_name,
    cash_symbols,
    config_benchmark,
    dates_as_text,
    pct_axis,
    series_colors,
    strategy_weights,
)
from engine.report.page import Report
from engine.report.plot import BENCH_COLOR, line, stacked, strategy_color
from engine.report.quant_sections import quant_section
from engine.report.regime_sections import by_regime_section, regime_names, regimes_section
from engine.report.significance import bootstrap_section
from engine.report.tables import table
from engine.report.trade_sections import attribution_section, stress_section, trades_section

TOP_ASSETS = 8
"""Weights charts show the largest holdings by mean |weight|; the rest is one 'other' band."""


def _summary(
    rep: Report,
    result: Any,
    equity: pd.DataFrame,
    bench: tuple[str, pd.Series] | None,
    default_bench: bool = True,
    whole: tuple[Any, tuple[str, pd.Series] | None] | None = None,
) -> None:
    ppy = rep.periods_per_year

    def metrics_of(res: Any, bn: tuple[str, pd.Series] | None) -> pd.DataFrame:
        with_bench = (
            WithSeries(res, bn[0], bn[1])
            if bn is not None and bn[0] not in res.equity.columns
            else res
        )
        m = summary_table(with_bench, periods_per_year=ppy, rf=rep.rf, rf_label=rep.rf_label)
        only = [n for n in getattr(res, "returns_only", ()) if n in m.index]
        trade = [c for c in ("turnover", "total_costs", "n_trades") if c in m.columns]
        if only:
            m.loc[only, trade] = np.nan
        return m

    metrics = metrics_of(result, bench)
    returns_only = [n for n in getattr(result, "returns_only", ()) if n in metrics.index]
    cols = ["total_return", *[c for c in DEFAULT_COLUMNS if c in metrics.columns]]
    if whole is not None:
        start = pd.Timestamp(equity.index[0])
        n_warm = int((whole[0].equity.index < start).sum())
        body = table(
            metrics[cols],
            f"After the detector's warm-up: from {fmt.date(start, daily=False)} (the headline)",
            note=f"The first {n_warm} bars, before the detector's first fit, are left out: "
            "the regime strategy held its fixed warm-up weights there. Drawdowns, calendar "
            "returns, rolling figures, regimes, stress tests and the bootstrap below use "
            "this window too.",
        )
        wm = metrics_of(*whole)
        body += table(wm[cols], "Whole period, warm-up included")
    else:
        body = table(metrics[cols])
    if returns_only:
        body += (
            f'<p class="note">{html.escape(", ".join(returns_only))}: stitched test-year returns '
            "of the parameter set chosen by cross-validation in each fold; its trades are not "
            "recorded, so turnover, costs and fills read n/a.</p>"
        )
    body += (
        '<p class="note">Rates in percent per year unless marked; drawdown, VaR and CVaR are '
        "losses and print negative, as the charts draw them; CVaR 95% is the mean of the worst "
        f"5% of per-{rep.unit} returns; turnover is one-sided per year; costs in account "
        "currency.</p>"
    )
    other = [c for c in metrics.columns if c not in cols]
    body += "<details><summary>all metrics</summary>" + table(metrics[other]) + "</details>"
    if bench is not None:
        rel = relative_table(equity, bench[1], ppy)
        rel = rel.drop(index=bench[0], errors="ignore")
        body += table(
            rel,
            f"Relative to the benchmark: {bench[0]}",
            note=(
                "On total returns (rf = 0). Alpha = annualized intercept and beta = slope of "
                f"the per-{rep.unit} returns regressed on the benchmark's; tracking error = "
                f"volatility of the per-{rep.unit} difference; "
                "information ratio = mean difference / tracking error (annualized); up/down "
                f"capture = mean return on the benchmark's up/down {rep.unit}s over the "
                "benchmark's "
                "(down capture below 100% = smaller losses); excess CAGR = CAGR minus the "
                "benchmark's. "
                + (
                    'Set <code>[report] benchmark = "NAME"</code> to a strategy or symbol to '
                    "change it."
                    if default_bench
                    else "The benchmark is the one the run compares against."
                )
            ),
        )
    rep.add("Performance summary", body)


def _equity(
    rep: Report,
    equity: pd.DataFrame,
    bench: tuple[str, pd.Series] | None,
    states: pd.Series | None,
    names: dict[int, str],
    n_states: int,
    log: bool = True,
    markers: Sequence[tuple[Any, str]] = (),
    worst: tuple[str, pd.Series] | None = None,
) -> None:
    pg = rep.page
    curves = [equity[c] for c in equity.columns] + ([bench[1]] if bench is not None else [])
    troughs = [  # each curve's five deepest points stay in the thinned picture
        int(equity.index.get_indexer(pd.Index([t]))[0])
        for e in curves
        for t in worst_drawdowns(e.reindex(equity.index), 5)["trough"]
    ]
    x, rows = pg.dates(equity.index, keep=troughs)
    traces: list[dict[str, Any]] = []
    for i, c in enumerate(equity.columns):
        e = equity[c].to_numpy(dtype=float)
        col = strategy_color(i)
        traces.append(line(x, e[rows], str(c), col, hover=",.0f", digits=6))
        dd = -drawdown(equity[c]).to_numpy()
        traces.append(
            line(x, dd[rows], f"{c} drawdown", col, yaxis="y2", showlegend=False, group=str(c))
        )
    if bench is not None and bench[0] not in equity.columns:
        b = bench[1].to_numpy(dtype=float)
        traces.append(line(x, b[rows], bench[0], BENCH_COLOR, dash="dot", hover=",.0f", digits=6))
        dd = -drawdown(bench[1]).to_numpy()
        traces.append(
            line(
                x,
                dd[rows],
                f"{bench[0]} drawdown",
                BENCH_COLOR,
                yaxis="y2",
                dash="dot",
                showlegend=False,
                group=bench[0],
            )
        )
    layout: dict[str, Any] = {
        "xaxis": {
            "rangeselector": {
                "buttons": [
                    {"count": 1, "label": "1y", "step": "year", "stepmode": "backward"},
                    {"count": 3, "label": "3y", "step": "year", "stepmode": "backward"},
                    {"count": 5, "label": "5y", "step": "year", "stepmode": "backward"},
                    {"step": "all", "label": "all"},
                ],
                "x": 1,
                "xanchor": "right",
                "y": 1.0,
                "yanchor": "bottom",
            }
        },
        "margin": {"t": 60},
    }
    stacked(layout, [("equity (log)" if log else "equity", 3.0), ("drawdown", 1.2)])
    layout["yaxis"].update({"type": "log" if log else "linear", "tickformat": ",.3~s"})
    layout["yaxis2"].update({"tickformat": ".0%", "hoverformat": ".2%"})
    note = (
        "Drag to zoom (every time chart on the page follows), double-click to reset; hover for "
        "values. Drawdown = equity / running "
        "peak - 1 (negative). "
    )
    shapes: list[dict[str, Any]] = []
    annotations = []
    for when, text in markers:
        d = fmt.date(when)
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": d,
                "x1": d,
                "y0": 0,
                "y1": 1,
                "line": {"color": "#666", "width": 1, "dash": "dot"},
            }
        )
        annotations.append(
            {
                "x": d,
                "xref": "x",
                "y": 1,
                "yref": "paper",
                "text": text,
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "top",
                "font": {"size": 10, "color": "#666"},
            }
        )
    layout["shapes"] = shapes
    layout["annotations"] = annotations
    if worst is not None:
        dd_shapes, dd_notes = worst_drawdown_shapes(worst[1])
        shapes += dd_shapes
        annotations += dd_notes
        note += (
            f"Outlined on the drawdown panel: the five deepest drawdowns of {worst[0]} "
            "(peak to recovery, as in the Drawdowns table). "
        )
    if states is not None:
        layout["shapes"] = plot.regime_shapes(states, n_states) + shapes
        traces += plot.regime_legend(names, n_states, set(int(s) for s in np.unique(states)))
        note += "Background = filtered (online, no look-ahead) regime at each bar"
        note += (
            "; grey = warm-up (state -1: the detector has no fit yet, the strategy holds its "
            "warm-up weights)."
            if (states.to_numpy() < 0).any()
            else "."
        )
    rep.add("Equity curves", pg.chart(traces, layout, height=560) + f'<p class="note">{note}</p>')


def label_levels(
    starts: pd.Series, first: pd.Timestamp, last: pd.Timestamp, width: float = 0.06
) -> dict[Any, int]:
    """A height level (0, 1, 2, ...) per label at ``starts`` so that labels closer than
    ``width`` of the time axis stand one above the other (a phone-wide chart has ~20 px
    per year on a 20-year run: neighbouring drawdowns' labels ran into each other)."""
    gap = (last - first) * width
    ends: list[pd.Timestamp] = []  # per level: where its last label starts
    out = {}
    for key, x in starts.sort_values().items():
        level = next((i for i, e in enumerate(ends) if x - e >= gap), len(ends))
        if level == len(ends):
            ends.append(x)
        ends[level] = x
        out[key] = level
    return out


def worst_drawdown_shapes(
    equity: pd.Series, n: int = 5
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Outlines of the ``n`` deepest drawdowns (peak to recovery, or to the last bar) on the
    drawdown panel (``y2``), each labelled with its rank, and the labels."""
    shapes, notes = [], []
    last = equity.index[-1]
    worst = worst_drawdowns(equity, n)
    levels = label_levels(worst["start"], equity.index[0], last)
    for rank, row in worst.iterrows():
        end = row["recovery"] if pd.notna(row["recovery"]) else last
        x0, x1 = fmt.date(row["start"]), fmt.date(end)
        shapes.append(
            {
                "type": "rect",
                "name": f"drawdown {rank}",
                "xref": "x",
                "yref": "y2 domain",
                "x0": x0,
                "x1": x1,
                "y0": 0,
                "y1": 1,
                "fillcolor": "rgba(60,60,60,0.06)",
                "line": {"color": "#555", "width": 1, "dash": "dot"},
                "layer": "above",
            }
        )
        notes.append(
            {
                "x": x0,
                "xref": "x",
                "y": 0.16 * levels[rank],
                "yref": "y2 domain",
                "text": f"DD{rank}",
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "bottom",
                "font": {"size": 9, "color": "#555"},
            }
        )
    return shapes, notes


def _drawdowns(rep: Report, equity: pd.DataFrame, bench: tuple[str, pd.Series] | None) -> None:
    series = {str(c): equity[c] for c in equity.columns}
    if bench is not None and bench[0] not in series:
        series[bench[0]] = bench[1]
    body = ""
    for name, e in series.items():
        w = worst_drawdowns(e, 5)
        w = dates_as_text(w, ["start", "trough"], "n/a")
        w = dates_as_text(w, ["recovery"], "not yet")
        w = w.rename(columns={"start": "Start (peak)", "to_recover": "trough_to_recovery"})
        body += "<div>" + table(w, name, kinds={"depth": "loss"}, labels=True) + "</div>"
    rep.add(
        "Drawdowns",
        '<p class="note">The five deepest drawdowns of each curve: peak, lowest point, the '
        "recovery (the first bar back at the peak); lengths in bars "
        f"(one bar = one {rep.unit}).</p>"
        f'<div class="grid">{body}</div>',
    )


def _dropdown(
    labels: list[str],
    per: int,
    extra_layout: list[dict[str, Any]] | None = None,
    active: int = 0,
) -> dict[str, Any]:
    """A menu showing one series' ``per`` traces at a time (``active`` shown first)."""
    n = len(labels)
    buttons = []
    for i, lab in enumerate(labels):
        vis = [j // per == i for j in range(n * per)]
        args: list[Any] = [{"visible": vis}]
        if extra_layout is not None:
            args.append(extra_layout[i])
        buttons.append({"label": lab, "method": "update", "args": args})
    return {
        "buttons": buttons,
        "direction": "down",
        "x": 0,
        "xanchor": "left",
        "y": 1.0,
        "yanchor": "bottom",
        "showactive": True,
        "active": active,
    }


def _returns(rep: Report, equity: pd.DataFrame, bench: tuple[str, pd.Series] | None) -> None:
    pg = rep.page
    unit_adj = rep.unit_adj
    curves = {str(c): equity[c].astype(float) for c in equity.columns}
    if bench is not None and bench[0] not in curves:
        curves[bench[0]] = bench[1]
    names = list(curves)
    colors = series_colors(list(map(str, equity.columns)), bench)
    first = names.index(candidate_name(list(map(str, equity.columns))))
    part_m = partial_periods(pd.DatetimeIndex(equity.index), "ME")
    part_y = partial_periods(pd.DatetimeIndex(equity.index), "YE")
    # monthly heat-map, one strategy at a time (the candidate first), titled by its series
    tabs = {n: monthly_returns(e) for n, e in curves.items()}
    n_years = max((len(t) for t in tabs.values()), default=0)
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    every = np.concatenate(
        [t.to_numpy(dtype=float).ravel() for t in tabs.values()] or [np.zeros(0)]
    )
    every = np.abs(every[np.isfinite(every)])
    zmax = max(0.02, float(np.quantile(every, 0.95))) if every.size else 0.05
    traces = []
    for i, (_n, t) in enumerate(tabs.items()):
        yr = yearly_returns(curves[_n].to_frame("y"))["y"].reindex(t.index)
        vals = np.c_[t.to_numpy(dtype=float), yr.to_numpy(dtype=float)]
        # colour: months as they are, the year at its monthly equivalent (/ sqrt 12)
        z = vals.copy()
        z[:, -1] /= np.sqrt(12.0)
        star = np.zeros(vals.shape, dtype=bool)  # partial month / year: marked "*"
        years = list(t.index)
        for p in part_m:
            if p.year in years:
                star[years.index(p.year), p.month - 1] = True
        for p in part_y:
            if p.year in years:
                star[years.index(p.year), -1] = True
        traces.append(
            {
                "type": "heatmap",
                "z": [plot.numbers(r) for r in z],
                "text": [
                    [
                        fmt.pct(v, 1) + ("*" if s else "") if np.isfinite(v) else ""
                        for v, s in zip(r, srow)
                    ]
                    for r, srow in zip(vals, star)
                ],
                "x": [*months, "Year"],
                "y": [str(y) for y in t.index],
                "colorscale": plot.DIVERGING,
                "zmid": 0,
                "zmin": -zmax,
                "zmax": zmax,
                "texttemplate": "%{text}",
                "textfont": {"size": 11},
                "hovertemplate": "%{y} %{x}: %{text}<extra></extra>",
                "showscale": False,
                "xgap": 1,
                "ygap": 1,
                "visible": i == first,
            }
        )
    titles = [{"title.text": f"Monthly returns: {n}"} for n in names]
    layout = {
        "title": {"text": titles[first]["title.text"], "x": 0.5, "y": 0.99, "yanchor": "top"},
        "updatemenus": [_dropdown(names, 1, titles, first)],
        "yaxis": {"autorange": "reversed", "type": "category", "showgrid": False},
        "xaxis": {"showgrid": False, "type": "category"},
        "margin": {"t": 60, "l": 60},
        "hovermode": "closest",
    }
    body = (
        "<h3>Monthly returns (last column: the calendar year)</h3>"
        '<p class="note">Compounded within each month from month-end equity; colour saturates '
        f"at ±{fmt.pct(zmax, 1)} a month (the year column is coloured at its monthly "
        "equivalent, return / √12). Pick the series in the menu; * = a month or year the "
        "data cover only in part (first or last).</p>"
    )
    body += pg.chart(traces, layout, height=110 + 24 * n_years)
    # yearly bars
    yearly = yearly_returns(pd.DataFrame(curves))
    ytr = [
        {
            "type": "bar",
            "x": [_year_label(y, part_y) for y in yearly.index],
            "y": plot.numbers(yearly[n].to_numpy()),
            "name": n,
            "marker": {"color": colors[n]},
            "hovertemplate": "%{y:.2%}",
        }
        for n in names
    ]
    body += "<h3>Calendar-year returns</h3>" + pg.chart(
        ytr,
        {"yaxis": pct_axis(), "barmode": "group", "xaxis": {"type": "category"}},
        height=330,
    )
    if part_y:
        body += '<p class="note">* = a year the data cover only in part.</p>'
    # distribution with VaR / CVaR marks
    htr: list[dict[str, Any]] = []
    stats_rows = {}
    for i, n in enumerate(names):
        r = simple_returns(curves[n]).dropna().to_numpy()
        col = colors[n]
        span = (float(np.quantile(r, 0.001)), float(np.quantile(r, 0.999))) if r.size else (0, 0)
        counts, edges = (
            np.histogram(r, bins=80, range=span) if r.size else (np.zeros(1), np.zeros(2))
        )
        mids = (edges[:-1] + edges[1:]) / 2
        htr.append(
            {
                "type": "bar",
                "x": plot.numbers(mids),
                "y": plot.numbers(counts),
                "name": n,
                "marker": {"color": col},
                "hovertemplate": f"%{{x:.2%}}: %{{y}} {rep.unit}s<extra></extra>",
                "visible": i == first,
                "showlegend": False,
            }
        )
        v95, c95 = var_cvar_historical(r, 0.95)
        v99, c99 = var_cvar_historical(r, 0.99)
        stats_rows[n] = {"var95": v95, "cvar95": c95, "var99": v99, "cvar99": c99}
        for lab, val, dash in (
            ("VaR 95%", v95, "dash"),
            ("CVaR 95%", c95, "solid"),
            ("VaR 99%", v99, "dot"),
            ("CVaR 99%", c99, "dashdot"),
        ):
            htr.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": [-val, -val],
                    "y": [0, 1],
                    "yaxis": "y2",
                    "name": f"{lab} {fmt.pct(-val)}",
                    "line": {"color": "#b42318", "dash": dash, "width": 1.5},
                    "hovertemplate": f"{lab}: %{{x:.2%}}<extra></extra>",
                    "visible": i == first,
                    "legendgroup": lab,
                }
            )
    dist_titles = [{"title.text": f"{unit_adj.capitalize()} returns: {n}"} for n in names]
    hl = {
        "title": {"text": dist_titles[first]["title.text"], "x": 0.5, "y": 0.99, "yanchor": "top"},
        "updatemenus": [_dropdown(names, 5, dist_titles, first)],
        "xaxis": {"tickformat": ".1%", "title": {"text": f"{unit_adj} return"}},
        "yaxis": {"title": {"text": f"{rep.unit}s"}},
        "yaxis2": {"overlaying": "y", "range": [0, 1], "visible": False},
        "bargap": 0.02,
        "hovermode": "closest",
        # the VaR/CVaR legend under the axis: at the top it would meet the series menu
        "legend": {"x": 0, "xanchor": "left", "y": -0.22, "yanchor": "top"},
        "margin": {"t": 70, "b": 90},
    }
    body += f"<h3>Distribution of {unit_adj} returns, with VaR and CVaR</h3>" + pg.chart(
        htr, hl, height=400
    )
    body += table(
        pd.DataFrame.from_dict(stats_rows, orient="index").rename_axis("strategy"),
        note=f"Bars: the middle 99.8% of {rep.unit}s (the 0.1% most extreme on each side are "
        "left out of the picture, not of the figures). Historical VaR = the 5% (1%) quantile "
        f"of {unit_adj} returns; CVaR = the mean of the returns at or below it; both are losses "
        "and print negative.",
    )
    body += "<h3>Return quantiles by horizon</h3>" + _quantile_boxes(rep, curves, colors)
    rep.add("Returns", body)


HORIZONS: tuple[tuple[str, str | None], ...] = (
    ("bar", None),
    ("week", "W-FRI"),
    ("month", "ME"),
    ("quarter", "QE"),
    ("year", "YE"),
)


def _year_label(year: int, partial: set[pd.Timestamp]) -> str:
    """``"2022"``, or ``"2022*"`` when the data cover that year only in part."""
    return f"{year}*" if any(p.year == year for p in partial) else str(year)


def _quantile_boxes(rep: Report, curves: Mapping[str, pd.Series], colors: Mapping[str, str]) -> str:
    """Box per series and horizon: quartiles, whiskers at the 5th and 95th percentiles."""
    traces = []
    for n, e in curves.items():
        stats: dict[str, list[float]] = {k: [] for k in ("q1", "median", "q3", "lo", "hi")}
        labels = []
        for lab, freq in HORIZONS:
            r = (simple_returns(e) if freq is None else period_returns(e, freq)).dropna()
            if len(r) < 3:
                continue
            q = np.quantile(r.to_numpy(), [0.05, 0.25, 0.5, 0.75, 0.95])
            labels.append(rep.unit if freq is None else lab)
            for k, v in zip(("lo", "q1", "median", "q3", "hi"), q):
                stats[k].append(float(v))
        if not labels:
            continue
        traces.append(
            {
                "type": "box",
                "name": n,
                "x": labels,
                "q1": stats["q1"],
                "median": stats["median"],
                "q3": stats["q3"],
                "lowerfence": stats["lo"],
                "upperfence": stats["hi"],
                "marker": {"color": colors.get(n, BENCH_COLOR)},
                "line": {"width": 1.2},
                "hoverinfo": "y",
            }
        )
    if not traces:
        return ""
    layout = {
        "boxmode": "group",
        "yaxis": {"tickformat": ".0%", "hoverformat": ".2%", "title": {"text": "return"}},
        "xaxis": {"type": "category"},
        "hovermode": "closest",
    }
    return rep.page.chart(traces, layout, height=340) + (
        '<p class="note">Boxes: quartiles and the median of the compounded returns over each '
        "calendar horizon; whiskers at the 5th and 95th percentiles.</p>"
    )


def _rolling(rep: Report, equity: pd.DataFrame, bench: tuple[str, pd.Series] | None) -> None:
    ppy = rep.periods_per_year
    pg = rep.page
    x, rows = pg.dates(equity.index)
    r = equity.astype(float).pct_change(fill_method=None)
    rf = rep.rf.reindex(r.index).fillna(0.0) if isinstance(rep.rf, pd.Series) else rep.rf
    m = r.rolling(ppy, min_periods=ppy // 2)
    ex = r.sub(rf, axis=0).where(r.notna()).rolling(ppy, min_periods=ppy // 2)
    vol = m.std() * np.sqrt(ppy)
    sh = ex.mean() / ex.std() * np.sqrt(ppy)
    traces = []
    panels = [(f"Sharpe (1y, rf = {rep.rf_label})", 1.0), ("volatility (1y)", 1.0)]
    rb = None
    if bench is not None:
        rb = bench[1].astype(float).reindex(equity.index).pct_change(fill_method=None)
        panels.append((f"beta to {bench[0].split(' ')[0]} (1y)", 1.0))
    for i, c in enumerate(equity.columns):
        col = strategy_color(i)
        traces.append(line(x, sh[c].to_numpy()[rows], str(c), col, hover=".2f"))
        traces.append(
            line(
                x,
                vol[c].to_numpy()[rows],
                f"{c} vol",
                col,
                yaxis="y2",
                showlegend=False,
                group=str(c),
            )
        )
        if rb is not None:
            cov = r[c].rolling(ppy, min_periods=ppy // 2).cov(rb)
            beta = cov / rb.rolling(ppy, min_periods=ppy // 2).var()
            traces.append(
                line(
                    x,
                    beta.to_numpy()[rows],
                    f"{c} beta",
                    col,
                    yaxis="y3",
                    hover=".2f",
                    showlegend=False,
                    group=str(c),
                )
            )
    if rb is not None and bench is not None and bench[0] not in equity.columns:
        mb = rb.rolling(ppy, min_periods=ppy // 2)
        xb = (rb - rf).where(rb.notna()).rolling(ppy, min_periods=ppy // 2)
        for y, ax, tag, hv in (
            (xb.mean() / xb.std() * np.sqrt(ppy), "y", "", ".2f"),
            (mb.std() * np.sqrt(ppy), "y2", " vol", ".2%"),
        ):
            traces.append(
                line(
                    x,
                    y.to_numpy()[rows],
                    f"{bench[0]}{tag}",
                    BENCH_COLOR,
                    yaxis=ax,
                    dash="dot",
                    hover=hv,
                    showlegend=not tag,
                    group=bench[0],
                )
            )
    layout: dict[str, Any] = {}
    stacked(layout, panels)
    layout["yaxis2"].update({"tickformat": ".0%", "hoverformat": ".2%"})
    rep.add(
        f"Rolling Sharpe (rf = {rep.rf_label}), volatility and beta",
        pg.chart(traces, layout, height=180 * len(panels) + 60)
        + f'<p class="note">Trailing one-year windows of {rep.unit_adj} returns (shown once '
        "half a year is available).</p>",
    )


def _exposure(rep: Report, result: Any, equity: pd.DataFrame) -> None:
    weights = getattr(result, "weights", None)
    if weights is None or len(weights.columns) == 0:
        return
    pg = rep.page
    x, rows = pg.dates(equity.index)
    cash_syms = cash_symbols(result)
    fills = getattr(result, "fills", None)
    traces = []
    have = (
        set(weights.columns.get_level_values(0))
        if isinstance(weights.columns, pd.MultiIndex)
        else set(map(str, equity.columns))
    )
    for i, c in enumerate(equity.columns):
        if str(c) not in have:
            continue
        ex = exposure(weights, str(c), cash_syms).reindex(equity.index)
        col = strategy_color(i)
        traces.append(line(x, ex["gross"].to_numpy()[rows], str(c), col, hover=".1%"))
        traces.append(
            line(
                x,
                ex["cash"].to_numpy()[rows],
                f"{c} cash",
                col,
                yaxis="y2",
                hover=".1%",
                showlegend=False,
                group=str(c),
            )
        )
        f = strategy_fills(fills, str(c))
        tv = turnover_series(f, equity[c], rep.periods_per_year)
        traces.append(
            line(
                x,
                tv.to_numpy()[rows],
                f"{c} turnover",
                col,
                yaxis="y3",
                hover=".1%",
                showlegend=False,
                group=str(c),
            )
        )
    if not traces:
        return
    layout: dict[str, Any] = {}
    stacked(layout, [("gross exposure", 1.0), ("cash", 1.0), ("turnover (1y)", 1.0)])
    for k in ("yaxis", "yaxis2", "yaxis3"):
        layout[k].update({"tickformat": ".0%", "hoverformat": ".1%"})
    cash_txt = f" (cash assets {', '.join(cash_syms)} count as cash)" if cash_syms else ""
    rep.add(
        "Exposure, cash and turnover",
        pg.chart(traces, layout, height=600)
        + '<p class="note">Gross exposure = sum of |weights| of risky holdings; cash = 1 - net '
        f"risky weight{html.escape(cash_txt)}; turnover = one-sided traded notional over the "
        "trailing year / mean equity.</p>",
    )


def _weights(rep: Report, result: Any, equity: pd.DataFrame) -> None:
    weights = getattr(result, "weights", None)
    if weights is None or len(weights.columns) == 0:
        return
    pg = rep.page
    strategies = (
        list(dict.fromkeys(weights.columns.get_level_values(0)))
        if isinstance(weights.columns, pd.MultiIndex)
        else [str(equity.columns[0])]
    )
    body = ""
    prices = getattr(result, "prices", None)
    order_all = [str(c) for c in (prices.columns if prices is not None else [])]
    asset_color = {c: plot.asset_color(i) for i, c in enumerate(order_all)}
    for s in strategies:
        w = strategy_weights(weights, s)
        x, rows = pg.dates(w.index)
        order = w.abs().mean().sort_values(ascending=False)
        chosen = set(order.index[:TOP_ASSETS])
        top = [c for c in w.columns if c in chosen]  # the panel's order, the same in each chart
        rest = [c for c in w.columns if c not in top]
        cols = {str(c): w[c] for c in top}
        if rest:
            cols[f"other ({len(rest)} assets)"] = w[rest].sum(axis=1)
        traces = []
        for j, (n, v) in enumerate(cols.items()):
            col = (
                "#9aa0a6"
                if n.startswith("other (")
                else asset_color.get(n, plot.asset_color(len(asset_color) + j))
            )
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": x,
                    "y": plot.numbers(v.to_numpy()[rows], 4),
                    "name": n,
                    "stackgroup": "w",
                    "line": {"width": 0.5, "color": col},
                    "fillcolor": col,
                    "hovertemplate": "%{y:.1%}",
                }
            )
        layout = {
            "yaxis": {"tickformat": ".0%", "title": {"text": "weight"}},
            "legend": {"orientation": "v", "x": 1.01, "y": 0.9, "yanchor": "top"},
            "margin": {"r": 190, "t": 36},
        }
        body += f"<h3>{html.escape(s)}</h3>" + pg.chart(traces, layout, height=280)
    rep.add(
        "Weights over time",
        body + f'<p class="note">Held weights at each close; the {TOP_ASSETS} largest holdings '
        "by mean |weight| are drawn, the rest is one grey band.</p>",
    )


def add_tearsheet(
    rep: Report,
    result: Any,
    *,
    benchmark: str | None = None,
    bootstrap: pd.DataFrame | None = None,
    bootstrap_pair: tuple[str, str] | None = None,
    shock_date: Any = None,
    log_equity: bool = True,
    markers: Sequence[tuple[Any, str]] = (),
) -> tuple[pd.DataFrame, str | None]:
    """Add the standard tearsheet sections for ``result``; returns (equity, benchmark name).

    ``markers``: (date, label) pairs drawn as dotted vertical lines on the equity chart
    (e.g. walk-forward fold starts)."""
    equity: pd.DataFrame = result.equity.astype(float)
    rep.rf, rep.rf_label = result_risk_free(result)
    rep.unit = infer_frequency(equity.index).unit
    regimes: pd.DataFrame | None = getattr(result, "regimes", None)
    states = None
    names: dict[int, str] = {}
    n_states = 0
    if regimes is not None and len(regimes) and "state" in regimes.columns:
        states = regimes["state"].reindex(equity.index).fillna(-1).astype(int)
        names, n_states = regime_names(result, states)
        regimes = regimes.reindex(equity.index).assign(state=states)
    else:
        regimes = None
    try:
        bench = benchmark_equity(result, benchmark or config_benchmark(result))
    except KeyError as exc:  # a name that is neither a strategy nor a symbol: one line
        raise ConfigError(str(exc.args[0])) from None

    whole: tuple[Any, tuple[str, pd.Series] | None] | None = None
    view = after_warmup(result) if regimes is not None else None
    equity_all, bench_all, states_all, regimes_all = equity, bench, states, regimes
    start = None
    if view is not None:  # the evaluation window: from the detector's first fit
        whole = (result, bench)
        result, start = view, view.start
        equity = equity.loc[equity.index >= start]
        if bench is not None:
            bench = (bench[0], bench[1].loc[bench[1].index >= start])
        if regimes is not None and states is not None:
            regimes, states = regimes.loc[regimes.index >= start], states.loc[states.index >= start]
        markers = [(start, "first fit"), *markers]
    first_section = len(rep.sections)
    _summary(rep, result, equity, bench, benchmark is None, whole)
    cand = candidate_name(list(map(str, equity.columns)))
    _equity(
        rep,
        equity_all,
        bench_all,
        states_all,
        names,
        n_states,
        log_equity,
        markers,
        worst=(cand, equity[cand]),
    )
    _drawdowns(rep, equity, bench)
    _returns(rep, equity, bench)
    quant_section(rep, equity, bench, rep.unit)
    _rolling(rep, equity, bench)
    _exposure(rep, result, equity)
    _weights(rep, result, equity)
    if regimes_all is not None and states_all is not None and regimes is not None:
        regimes_section(rep, result, regimes_all, states_all, names, n_states, start)
        by_regime_section(rep, equity, regimes, names)
    attribution_section(rep, result, equity, regimes, names)
    trades_section(rep, result, equity)
    stress_section(rep, result, equity, shock_date)
    _say_returns_only(rep, first_section, getattr(result, "returns_only", ()))
    if bootstrap is not None and len(bootstrap):
        cand, bm = bootstrap_pair or ("candidate", "benchmark")
        rep.add(
            "Bootstrap: is the difference luck?",
            bootstrap_section(bootstrap, cand, bm, unit=rep.unit),
        )
    return equity, bench[0] if bench else None


HOLDINGS_SECTIONS = ("Exposure, cash and turnover", "Weights over time", "Attribution and costs",
                     "Trades", "Stress tests")  # fmt: skip
"""Sections drawn from holdings and fills: a returns-only series is named there as absent."""


def _say_returns_only(rep: Report, first: int, names: Sequence[str]) -> None:
    """Name the returns-only series (e.g. the CV-selected one) in each holdings section
    from ``first`` on, so every section accounts for every series."""
    if not names:
        return
    who = html.escape(", ".join(names))
    note = (
        f'<p class="note">{who}: returns only (stitched test-year returns of the parameter '
        "sets chosen by cross-validation); no holdings or fills are recorded for it, so it "
        "has no row or line here.</p>"
    )
    for i in range(first, len(rep.sections)):
        sid, title, body = rep.sections[i]
        if title in HOLDINGS_SECTIONS:
            rep.sections[i] = (sid, title, body + note)


def _series_line(col: str, i: int, colors: Mapping[str, str]) -> dict[str, Any]:
    for name, color in colors.items():
        if col.endswith("_" + name) or col == name:
            return {"color": color}
    if col.endswith("_diff"):
        return {"color": BENCH_COLOR, "dash": "dash"}
    return {"color": strategy_color(i)}


def cost_chart(rep: Report, df: pd.DataFrame, colors: Mapping[str, str] | None = None) -> str:
    """A line chart of a cost-sensitivity table (rows = cost settings); a column named
    ``<metric>_<series>`` takes that series' colour from ``colors``."""
    num = df.select_dtypes(include=[np.number])
    if num.shape[0] < 2 or num.shape[1] == 0:
        return ""
    numeric = pd.api.types.is_numeric_dtype(num.index)
    x: Any = plot.numbers(num.index.to_numpy()) if numeric else [str(i) for i in num.index]
    traces = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": x,
            "y": plot.numbers(num[c].to_numpy()),
            "name": str(c),
            "line": _series_line(str(c), i, colors or {}),
        }
        for i, c in enumerate(num.columns)
    ]
    layout = {
        "xaxis": {
            "type": "linear" if numeric else "category",
            "title": {"text": str(num.index.name or "")},
        },
        "hovermode": "x unified",
    }
    return rep.page.chart(traces, layout, height=320)

"""One self-contained HTML report of a backtest result (inline CSS, base64 PNG figures).

The file has no external URL: figures are rendered with matplotlib's Agg backend and
embedded as ``<img src="data:image/png;base64,...">``; the style sheet is inline.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from engine.analysis._common import regime_labels
from engine.analysis.attribution import attribute_result, attribution_by_regime, link
from engine.analysis.metrics import (
    DEFAULT_COLUMNS,
    PERIODS_PER_YEAR,
    drawdown,
    format_frame,
    summary_table,
)
from engine.analysis.regime_risk import regime_occupancy, strategy_regime_risk, transition_matrix
from engine.analysis.stress import historical_stress, shock_table

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;
max-width:1200px;color:#222;padding:0 1em}
h1{border-bottom:2px solid #333}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;font-size:0.85em;margin:0.5em 0}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f3f3f3}tr:nth-child(even) td{background:#fafafa}
img{max-width:100%;height:auto;display:block;margin:0.5em 0}
.meta{color:#666;font-size:0.85em}.note{color:#555;font-size:0.85em}
"""

REGIME_COLORS = ("#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#17becf", "#7f7f7f")
DPI = 80


def _fig_to_img(fig: Figure, alt: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(df: pd.DataFrame, caption: str | None = None, percent: bool = False) -> str:
    if df is None or len(df) == 0:
        return '<p class="note">No data.</p>'
    out = format_frame(df, percent).to_html(border=0, escape=True, na_rep="n/a")
    cap = f"<h3>{html.escape(caption)}</h3>" if caption else ""
    return cap + out


def _shade_regimes(ax: Any, states: pd.Series | None, names: dict[int, str]) -> None:
    if states is None or len(states) == 0:
        return
    x = states.index
    v = states.to_numpy()
    for k in sorted(int(s) for s in np.unique(v[v >= 0])):
        ax.fill_between(
            x,
            0,
            1,
            where=v == k,
            transform=ax.get_xaxis_transform(),
            step="post",
            color=REGIME_COLORS[k % len(REGIME_COLORS)],
            alpha=0.12,
            linewidth=0,
            label=f"regime {names.get(k, k)}",
        )


def _equity_fig(equity: pd.DataFrame, states: pd.Series | None, names: dict[int, str]) -> str:
    fig, ax = plt.subplots(figsize=(11, 4))
    _shade_regimes(ax, states, names)
    for c in equity.columns:
        ax.plot(equity.index, equity[c].to_numpy(dtype=float), lw=1.0, label=str(c))
    ax.set_yscale("log")
    ax.set_ylabel("equity (log)")
    ax.legend(loc="upper left", fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    return _fig_to_img(fig, "equity curves")


def _drawdown_fig(equity: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=(11, 3))
    for c in equity.columns:
        ax.plot(equity.index, -100 * drawdown(equity[c]).to_numpy(), lw=0.9, label=str(c))
    ax.set_ylabel("drawdown (%)")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(alpha=0.3)
    return _fig_to_img(fig, "drawdowns")


def _rolling_fig(equity: pd.DataFrame, ppy: int) -> str:
    r = equity.astype(float).pct_change(fill_method=None)
    m = r.rolling(ppy, min_periods=ppy // 2)
    vol = m.std() * np.sqrt(ppy)
    sh = m.mean() / m.std() * np.sqrt(ppy)
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(11, 5), sharex=True)
    for c in equity.columns:
        a1.plot(sh.index, sh[c].to_numpy(), lw=0.9, label=str(c))
        a2.plot(vol.index, 100 * vol[c].to_numpy(), lw=0.9, label=str(c))
    a1.axhline(0, color="k", lw=0.5)
    a1.set_ylabel("rolling 1y Sharpe")
    a2.set_ylabel("rolling 1y vol (%)")
    a1.legend(loc="upper left", fontsize=8)
    a1.grid(alpha=0.3)
    a2.grid(alpha=0.3)
    return _fig_to_img(fig, "rolling Sharpe and volatility")


def _weights_fig(weights: pd.DataFrame, strategies: list[str]) -> str:
    n = len(strategies)
    fig, axes = plt.subplots(n, 1, figsize=(11, 2.4 * n), sharex=True, squeeze=False)
    for ax, s in zip(axes[:, 0], strategies):
        w = pd.DataFrame(weights[s] if isinstance(weights.columns, pd.MultiIndex) else weights)
        w = w.astype(float).fillna(0.0)
        ax.stackplot(w.index, w.to_numpy().T, labels=[str(c) for c in w.columns], alpha=0.85)
        ax.set_title(str(s), fontsize=9)
        ax.set_ylabel("weight")
        ax.legend(loc="upper left", fontsize=7, ncol=min(6, w.shape[1]))
    return _fig_to_img(fig, "weights over time")


def _posterior_fig(regimes: pd.DataFrame, names: dict[int, str]) -> str | None:
    pcols = [c for c in regimes.columns if str(c).startswith("p") and str(c)[1:].isdigit()]
    if not pcols:
        return None
    pcols.sort(key=lambda c: int(str(c)[1:]))
    p = regimes[pcols].astype(float).fillna(0.0)
    fig, ax = plt.subplots(figsize=(11, 3))
    ks = [int(str(c)[1:]) for c in pcols]
    ax.stackplot(
        p.index,
        p.to_numpy().T,
        labels=[names.get(k, str(k)) for k in ks],
        colors=[REGIME_COLORS[k % len(REGIME_COLORS)] for k in ks],
        alpha=0.8,
    )
    ax.set_ylim(0, 1)
    ax.set_ylabel("filtered posterior")
    ax.legend(loc="upper left", fontsize=8, ncol=len(ks))
    return _fig_to_img(fig, "regime posteriors")


def _heatmap_fig(df: pd.DataFrame, title: str) -> str:
    fig, ax = plt.subplots(figsize=(min(11, 1.5 + 0.7 * df.shape[1]), 1.5 + 0.4 * df.shape[0]))
    vals = df.to_numpy(dtype=float)
    im = ax.imshow(vals, aspect="auto", cmap="RdYlGn")
    ax.set_xticks(range(df.shape[1]), [str(c) for c in df.columns], rotation=45, fontsize=8)
    ax.set_yticks(range(df.shape[0]), [str(i) for i in df.index], fontsize=8)
    ax.set_xlabel(str(df.columns.name or ""))
    ax.set_ylabel(str(df.index.name or ""))
    if vals.size <= 400:
        for (i, j), v in np.ndenumerate(vals):
            if np.isfinite(v):
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7)
    fig.colorbar(im, ax=ax)
    ax.set_title(title, fontsize=9)
    return _fig_to_img(fig, title)


def _cost_fig(df: pd.DataFrame) -> str | None:
    num = df.select_dtypes(include=[np.number])
    if num.shape[0] < 2 or num.shape[1] == 0:
        return None
    fig, ax = plt.subplots(figsize=(8, 3))
    for c in num.columns:
        ax.plot([str(i) for i in num.index], num[c].to_numpy(), marker="o", label=str(c))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_xlabel(str(num.index.name or "cost setting"))
    return _fig_to_img(fig, "cost sensitivity")


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>\n{body}\n</section>"


def _asset_classes(result: Any) -> dict[str, str] | None:
    panel = getattr(result, "panel", None)
    if panel is None:
        return None
    syms = getattr(panel, "symbols", ())
    classes = getattr(panel, "asset_classes", ())
    if len(syms) != len(classes):
        return None
    return {str(s): str(c) for s, c in zip(syms, classes)}


def write_report(
    result: Any,
    path: str | Path,
    *,
    title: str = "regime-engine backtest report",
    periods_per_year: int = PERIODS_PER_YEAR,
    cost_sensitivity: pd.DataFrame | None = None,
    bootstrap: pd.DataFrame | None = None,
    sweep: pd.DataFrame | None = None,
    extra: Mapping[str, pd.DataFrame] | None = None,
    shock_date: Any = None,
    notes: str | None = None,
) -> Path:
    """Write a single self-contained HTML report.

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
        Bootstrap CI table (e.g. :func:`engine.analysis.bootstrap.bootstrap_report`).
    sweep : DataFrame, optional
        2-D grid (index = one parameter, columns = another, values = a metric): heat-map.
    extra : mapping of str to DataFrame, optional
        Further tables, one section each, titled by key.
    shock_date : timestamp-like, optional
        Date for hypothetical shocks (default: last bar).
    notes : str, optional
        Free text shown under the title (escaped).

    Returns
    -------
    Path
        The written file.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    equity: pd.DataFrame = result.equity.astype(float)
    regimes: pd.DataFrame | None = getattr(result, "regimes", None)
    states = None
    names: dict[int, str] = {}
    if regimes is not None and len(regimes) and "state" in regimes.columns:
        states = regimes["state"].reindex(equity.index).fillna(-1).astype(int)
        names = regime_labels(result, np.unique(states.to_numpy()))
    strategies = [str(c) for c in equity.columns]
    parts: list[str] = []

    metrics = summary_table(result, periods_per_year=periods_per_year)
    cols = [c for c in DEFAULT_COLUMNS if c in metrics.columns]
    body = _table(metrics[["total_return", *cols]])
    other = [c for c in metrics.columns if c not in cols and c != "total_return"]
    body += "<details><summary>all metrics</summary>" + _table(metrics[other]) + "</details>"
    parts.append(_section("Performance summary", body))

    parts.append(
        _section(
            "Equity curves",
            _equity_fig(equity, states, names)
            + '<p class="note">Log scale; background shading = filtered (online) regime.</p>',
        )
    )
    parts.append(_section("Drawdowns", _drawdown_fig(equity)))
    parts.append(_section("Rolling Sharpe and volatility", _rolling_fig(equity, periods_per_year)))
    weights = getattr(result, "weights", None)
    if weights is not None and len(weights.columns):
        parts.append(_section("Weights over time", _weights_fig(weights, strategies)))

    if regimes is not None and states is not None:
        body = _posterior_fig(regimes, names) or ""
        occ = regime_occupancy(regimes).rename(index=names)
        tm = transition_matrix(regimes).rename(index=names, columns=names)
        body += _table(occ, "Time in regime and dwell (bars)")
        body += _table(tm, "Transition matrix (row = from)", percent=True)
        parts.append(_section("Regimes", body))

        rr = strategy_regime_risk(equity, regimes, periods_per_year)
        body = (
            '<p class="note">Bar returns grouped by the filtered state at the previous '
            "close; VaR/CVaR are per-bar losses.</p>"
        )
        for s in strategies:
            if s in rr.index.get_level_values(0):
                body += _table(pd.DataFrame(rr.loc[s]).rename(index=names), s)
        parts.append(_section("Risk by regime", body))

    try:
        per = attribute_result(result)
    except (KeyError, ValueError) as exc:  # missing weights/prices: say so, keep the report
        parts.append(
            _section("Attribution", f'<p class="note">unavailable: {html.escape(str(exc))}</p>')
        )
    else:
        att = pd.DataFrame({k: link(v, "carino") for k, v in per.items()}).T
        att.index.name = "strategy"
        body = (
            '<p class="note">Carino-linked contributions to total compounded return; '
            "costs are negative; execution = filling at the reference (e.g. next-open) "
            "price instead of the close; residual = anything unexplained (about 0).</p>"
        )
        body += _table(att, percent=True)
        if regimes is not None and states is not None:
            for s, pb in per.items():
                body += _table(
                    attribution_by_regime(pb, regimes).rename(index=names),
                    f"{s}: by regime (compounded within regime)",
                    percent=True,
                )
        parts.append(_section("Attribution", body))

    hist = historical_stress(equity)
    body = _table(hist) if len(hist) else '<p class="note">No stress window inside the data.</p>'
    if weights is not None and len(weights.columns):
        date = shock_date if shock_date is not None else equity.index[-1]
        shocks = shock_table(weights, equity, date, asset_classes=_asset_classes(result))
        body += _table(shocks, f"Hypothetical shocks to holdings at {pd.Timestamp(date).date()}")
    parts.append(_section("Stress tests", body))

    if cost_sensitivity is not None and len(cost_sensitivity):
        parts.append(
            _section(
                "Cost sensitivity", (_cost_fig(cost_sensitivity) or "") + _table(cost_sensitivity)
            )
        )
    if bootstrap is not None and len(bootstrap):
        parts.append(_section("Bootstrap confidence intervals", _table(bootstrap)))
    if sweep is not None and len(sweep):
        parts.append(_section("Parameter sweep", _heatmap_fig(sweep, "sweep") + _table(sweep)))
    for name, df in (extra or {}).items():
        if df is not None and len(df):
            parts.append(_section(str(name), _table(df)))

    meta = (
        f"{equity.index[0].date()} to {equity.index[-1].date()}, {len(equity)} bars, "
        f"strategies: {', '.join(strategies)}; generated {datetime.now():%Y-%m-%d %H:%M}"
    )
    head = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
        f"</title><style>{CSS}</style></head><body><h1>{html.escape(title)}</h1>"
        f"<p class='meta'>{html.escape(meta)}</p>"
    )
    if notes:
        head += f"<p>{html.escape(notes)}</p>"
    out.write_text(head + "\n".join(parts) + "</body></html>", encoding="utf-8")
    return out

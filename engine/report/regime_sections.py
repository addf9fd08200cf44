"""Report sections on regimes: filtered posteriors with warm-up, time in regime, dwell
times, transitions, detection lag around labelled crises, performance and risk by regime."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from engine.analysis._common import regime_labels
from engine.analysis.regime_risk import regime_occupancy, strategy_regime_risk, transition_matrix
from engine.analysis.tearsheet import (
    detection_lag,
    dwell_times,
    regime_performance,
)
from engine.report import plot
from engine.report.common import (
    dates_as_text,
)
from engine.report.page import Report
from engine.report.plot import regime_color
from engine.report.tables import table


def regime_names(result: Any, states: pd.Series) -> tuple[dict[int, str], int]:
    """State -> display name (``0:calm``; -1 is ``warm-up``) and the number of states."""
    labels = tuple(getattr(result, "regime_labels", None) or ())
    present = np.unique(states.to_numpy())
    names = regime_labels(result, present)
    names[-1] = "warm-up"
    n = max(len(labels), int(present.max()) + 1 if present.size else 0)
    return names, n


def regimes_section(
    rep: Report,
    result: Any,
    regimes: pd.DataFrame,
    states: pd.Series,
    names: dict[int, str],
    n_states: int,
    start: pd.Timestamp | None = None,
) -> None:
    """Posteriors with warm-up, time in regime and dwell, transitions, detection lag
    (counted from ``start``, the end of the detector's warm-up, when given: a crisis
    window that begins in warm-up is left out)."""
    pg = rep.page
    x, rows = pg.dates(states.index)
    pcols = sorted(
        (c for c in regimes.columns if str(c).startswith("p") and str(c)[1:].isdigit()),
        key=lambda c: int(str(c)[1:]),
    )
    warm = (states.to_numpy() < 0).astype(float)
    traces = []
    body = (
        '<p class="note">The <b>filtered</b> regime is what the detector knew at each close '
        "(no look-ahead), the one strategies trade on. <b>Warm-up</b> (state -1) = bars "
        "before the detector's first fit: no regime is known, strategies hold their warm-up "
        "weights, and those bars are left out of every per-regime figure below.</p>"
    )
    if pcols:
        p = regimes[pcols].reindex(states.index).astype(float).to_numpy(copy=True)
        p[warm > 0] = 0.0
        for c in pcols:
            k = int(str(c)[1:])
            col = regime_color(k, n_states)
            j = pcols.index(c)
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": x,
                    "y": plot.numbers(np.nan_to_num(p[rows, j]), 4),
                    "name": names.get(k, str(k)),
                    "stackgroup": "p",
                    "line": {"width": 0.4, "color": col},
                    "fillcolor": col,
                    "hovertemplate": "%{y:.2f}",
                }
            )
        if warm.any():
            traces.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": x,
                    "y": plot.numbers(warm[rows], 2),
                    "name": "warm-up (no regime yet)",
                    "stackgroup": "p",
                    "line": {"width": 0, "color": plot.WARMUP_COLOR},
                    "fillcolor": plot.WARMUP_COLOR,
                    "hoverinfo": "skip",
                }
            )
        body += "<h3>Filtered regime probabilities</h3>" + pg.chart(
            traces,
            {"yaxis": {"range": [0, 1], "title": {"text": "probability"}}},
            height=300,
        )
    occ = regime_occupancy(regimes)
    if len(occ):
        dw = dwell_times(regimes)
        occ = occ.join(dw[["median"]].rename(columns={"median": "median_dwell"}))
        occ = occ.rename(columns={"avg_dwell": "mean_dwell"})
        tm = transition_matrix(regimes)
        tm.columns = [names.get(int(c), str(c)) for c in tm.columns]
        lag = detection_lag(regimes if start is None else regimes.loc[start:], n_states)
        grid = (
            "<div>"
            + table(
                occ,
                "Time in regime and dwell times (bars)",
                index_names=names,
                kinds={"mean_dwell": "count", "median_dwell": "count"},
            )
            + "</div>"
        )
        grid += (
            "<div>"
            + table(
                tm,
                f"Transition matrix (row = from, column = to, probability per {rep.unit})",
                kind="pct",
                index_names=names,
                labels=False,
            )
            + "</div>"
        )
        body += f'<div class="grid">{grid}</div>'
        if len(lag):
            lag = dates_as_text(lag, ["start", "end"], "n/a")
            lag["state_at_start"] = [names.get(int(v), str(v)) for v in lag["state_at_start"]]
            top = names.get(n_states - 1, str(n_states - 1))
            body += table(
                lag,
                "Detection lag around labelled crises",
                kinds={"lag_any_bars": "count", "lag_top_bars": "count", "share_in_top": "pct"},
                labels=True,
                note="Bars from the window's first day (a labelled crisis) to the first bar "
                "the filtered regime left calm, and to the first bar in the most stressed "
                f"state, {html.escape(top)}; share in top state = share of the window's bars "
                f"spent in {html.escape(top)}. 0 = already there on the first day; a window "
                "that opens in warm-up counts from its first day all the same.",
            )
    rep.add("Regimes", body)


def by_regime_section(
    rep: Report,
    equity: pd.DataFrame,
    regimes: pd.DataFrame,
    names: dict[int, str],
) -> None:
    """Performance and risk of each strategy conditional on the filtered regime."""
    perf = regime_performance(equity, regimes, rep.periods_per_year, rf=rep.rf)
    perf.attrs["rf_label"] = rep.rf_label
    if len(perf) == 0:
        return
    body = table(
        perf,
        index_names=names,
        note=f"Per-{rep.unit} returns grouped by the filtered regime at the previous close (the "
        "one the strategy acted on); share of time = of the non-warm-up bars; return "
        "compounded over the regime's bars and annualized like the CAGR, volatility "
        "annualized; max drawdown of the returns compounded within the regime; hit "
        f"rate = share of up {rep.unit}s.",
    )
    rr = strategy_regime_risk(equity, regimes, rep.periods_per_year, rf=rep.rf)
    rr.attrs["rf_label"] = rep.rf_label
    body += (
        f"<details><summary>all risk metrics by regime (VaR/CVaR per {rep.unit}: historical, "
        "Gaussian, Cornish-Fisher)</summary>" + table(rr, index_names=names) + "</details>"
    )
    rep.add("Performance and risk by regime", body)

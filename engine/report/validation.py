"""The ``validate`` report: a verdict at the top, a reading guide per test, every candidate
(the CV-selected series included) in every table and chart, OOS curves rebased to one value
at the first test bar, and one bootstrap section with plain-language labels."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from engine import fmt
from engine.analysis.bootstrap import outside_note
from engine.analysis.walkforward import oos_summary
from engine.ground.frequency import infer_frequency
from engine.report import plot
from engine.report.page import Report, meta_line
from engine.report.plot import strategy_color
from engine.report.sections import add_tearsheet, cost_chart
from engine.report.significance import bootstrap_kinds, bootstrap_plain
from engine.report.tables import table

if TYPE_CHECKING:
    from engine.validation_result import ValidationResult


@dataclass
class OOSView:
    """Result-like tables of the out-of-sample stretch with rebased equity.

    ``equity`` holds every strategy and the CV-selected series, all equal to
    ``start_value`` at the bar before the first test bar and compounded from the stitched
    OOS returns; weights, fills and prices are those of the walk-forward run.
    """

    equity: pd.DataFrame
    weights: pd.DataFrame
    fills: pd.DataFrame
    regimes: pd.DataFrame
    prices: pd.DataFrame
    panel: Any
    regime_labels: tuple[str, ...]
    config: dict[str, Any] = field(default_factory=dict)
    returns_only: tuple[str, ...] = ()


def _headed(
    df: pd.DataFrame, header: Any, caption: str | None = None, note: str | None = None
) -> str:
    """``df`` as a table with display headers (``header(key)``), each column formatted by
    the kind of its key."""
    out = df.rename(columns={c: header(str(c)) for c in df.columns})
    out.attrs = dict(df.attrs)
    kinds = {header(str(c)): fmt.kind_of(c) for c in df.columns}
    return table(out, caption, kinds=kinds, labels=False, note=note)


def _cost_header(key: str, rf: str) -> str:
    """``sharpe_diff_vs_NAME`` -> ``Sharpe diff vs NAME (rf = X)``, ``cagr_NAME`` ->
    ``CAGR NAME`` (strategy names kept as written)."""
    for prefix, shown in (("sharpe_", "Sharpe "), ("cagr_", "CAGR ")):
        if key.startswith(prefix):
            rest = key[len(prefix) :]
            if rest.startswith("diff_vs_"):
                rest = "diff vs " + rest[len("diff_vs_") :]
            return shown + rest + (f" (rf = {rf})" if prefix == "sharpe_" else "")
    return key


def _mc_model_header(key: str) -> str:
    """``SPX_ann_return`` -> ``SPX ann. return``; the chain's columns in words."""
    for suffix, shown in (("_ann_return", " ann. return"), ("_ann_vol", " ann. vol")):
        if key.endswith(suffix):
            return key[: -len(suffix)] + shown
    words = {
        "p_stay": "P(stay)",
        "expected_dwell": "Expected stay (bars)",
        "stationary_prob": "Long-run share",
    }
    return words.get(key, key)


def _mc_quantile_header(key: str) -> str:
    """``q05`` -> ``5th pct``, ``p_positive`` -> ``P(> 0)``, ``mean`` -> ``Mean``."""
    if len(key) == 3 and key[0] == "q" and key[1:].isdigit():
        return f"{int(key[1:])}th pct"
    return {"mean": "Mean", "p_positive": "P(> 0)"}.get(key, key)


def rebased_equity(returns: pd.DataFrame, start: pd.Timestamp, value: float) -> pd.DataFrame:
    """``value`` at ``start`` (the bar before the first return), then compounded returns."""
    eq = value * (1.0 + returns.astype(float).fillna(0.0)).cumprod()
    first = pd.DataFrame([[value] * returns.shape[1]], index=[start], columns=returns.columns)
    out = pd.concat([first, eq])
    out.index.name = "timestamp"
    return out


def oos_view(res: ValidationResult) -> OOSView:
    """The OOS stretch of ``res`` with every curve rebased to the configured initial cash."""
    r = res.oos_result
    cfg = r.config or {}
    value = float(cfg.get("execution", {}).get("initial_cash", 1_000_000.0))
    start = r.equity.index[0]
    rets = res.oos_returns.loc[res.oos_returns.index > start]
    equity = rebased_equity(rets, start, value)
    run_names = set(map(str, r.equity.columns))
    return OOSView(
        equity=equity,
        weights=r.weights,
        fills=r.fills,
        regimes=r.regimes,
        prices=r.prices,
        panel=r.panel,
        regime_labels=tuple(r.regime_labels),
        config=cfg,
        returns_only=tuple(c for c in map(str, equity.columns) if c not in run_names),
    )


def _per_fold(res: ValidationResult, ppy: int) -> pd.DataFrame:
    """Test-span statistics of every series (the CV-selected one too), rows (fold, strategy)."""
    frames = {}
    r = res.oos_returns
    for k, f in res.folds.iterrows():
        span = r.loc[(r.index >= f["test_start"]) & (r.index <= f["test_end"])]
        if len(span) > 1:
            frames[k] = oos_summary(span, ppy, res.rf, res.rf_label)
    if not frames:
        return pd.DataFrame()
    out = pd.concat(frames, names=["fold", "strategy"])
    out.attrs["rf_label"] = res.rf_label
    return out


def _guide(res: ValidationResult) -> str:
    c, b, cv = res.candidate, res.benchmark, f"{res.candidate}_cv"
    unit = infer_frequency(pd.DatetimeIndex(res.oos_returns.index)).unit
    g = res.significance
    lvl = f"{g['level']:.0%}"
    paras = [
        (
            "Out of sample",
            "Every figure comes from test years only: the detector is refitted at each fold "
            "start on the years before it, and nothing after a bar is used at that bar. The "
            "curves below all start at the same value on the first test bar.",
        ),
        (
            f"Sharpe difference (rf = {res.rf_label}), {c} minus {b} (paired bootstrap)",
            f"Tests the edge over the benchmark: resamples blocks of {unit}s for both strategies "
            f"together. If the {lvl} interval excludes 0 the edge is unlikely to be luck; the "
            f"p-value is the chance of an edge this large if the true difference were 0 or "
            f"less. Here: {g['sharpe_diff']:+.3f} [{g['sharpe_diff_lower']:+.3f}, "
            f"{g['sharpe_diff_upper']:+.3f}], p = {g['p_sharpe_diff_le_0']:.3f}.",
        ),
        *[
            (
                f"Baseline {k}: {row['what']}",
                f"Isolates the detector: {html.escape(_base_why(str(k)))} Sharpe (rf = "
                f"{html.escape(res.rf_label)}) difference {c} minus {k}: "
                f"{g[f'sharpe_diff_vs_{k}']:+.3f} [{g[f'sharpe_diff_vs_{k}_lower']:+.3f}, "
                f"{g[f'sharpe_diff_vs_{k}_upper']:+.3f}], "
                f"p = {g[f'p_sharpe_diff_vs_{k}_le_0']:.3f}.",
            )
            for k, row in res.baselines.drop(b, errors="ignore").iterrows()
        ],
        (
            f"{cv}: parameters chosen by cross-validation",
            f"In each fold the parameter set of {c} with the best purged, embargoed CV "
            "Sharpe (rf = 0) on the training years is used on the test year; the stitched "
            "result is "
            f"{cv}. Its difference to {b}: {g['cv_sharpe_diff']:+.3f} "
            f"[{g['cv_sharpe_diff_lower']:+.3f}, {g['cv_sharpe_diff_upper']:+.3f}], "
            f"p = {g['cv_p_sharpe_diff_le_0']:.3f}.",
        ),
        (
            "Deflated Sharpe ratio (rf = 0)",
            f"Tests the <b>absolute</b> Sharpe (rf = 0) of {cv} (is it above 0?), after "
            "allowing for "
            f"{int(g['n_trials'])} candidates tried and for fat tails; it says nothing about "
            f"beating {b}. Read it as a probability: above 0.95 = the Sharpe itself is "
            f"unlikely to be luck. Here: {g['cv_deflated_sharpe']:.3f}.",
        ),
        (
            "Hansen's SPA test",
            f"Tests whether the <b>best</b> of the {int(g['n_trials'])} candidates beats "
            f"{b}, allowing for having picked the best. A p-value below 0.05 = some "
            f"candidate beats the benchmark; a high p-value = no evidence that any does. "
            f"Here: p = {g['spa_p_consistent']:.3f}.",
        ),
        (
            "Break-even commission",
            f"The commission (bps per trade) at which the OOS Sharpe (rf = {res.rf_label}) "
            "edge over the benchmark "
            f"disappears: {html.escape(_bps(res.break_even.get('sharpe', float('nan'))))}.",
        ),
    ]
    return (
        '<div class="guide">'
        + "".join(f"<p><b>{html.escape(t)}.</b> {body}</p>" for t, body in paras)
        + "</div>"
    )


def _base_why(name: str) -> str:
    if name.endswith("_is"):
        return (
            "the benchmark's mix with part of it in cash, scaled once to the strategy's "
            "volatility over the test years themselves (known only afterwards: it keeps "
            "the benchmark's Sharpe, the conservative comparison)."
        )
    if "avg" in name:
        return (
            "the same assets held at the strategy's average weights all along; what the "
            "strategy earns beyond it comes from timing, not from its average mix."
        )
    return (
        "the benchmark's mix with part of it in cash, at the strategy's volatility as known "
        "before each fold; what the strategy earns beyond it is not explained by holding "
        "less risk."
    )


def _bps(x: float) -> str:
    if not np.isfinite(x):
        return "never within the commissions tried" if x == np.inf else "n/a"
    if x <= 0:
        return "none: no edge even at zero cost"
    return f"{x:.1f} bps"


def _in_brackets(note: str) -> str:
    return f" ({note})" if note else ""


def _glance(res: ValidationResult) -> pd.DataFrame:
    g = res.significance
    c, b, cv = res.candidate, res.benchmark, f"{res.candidate}_cv"
    sh = f"Sharpe (rf = {res.rf_label})"
    rows = [
        (
            f"{sh}: {c} minus {b}",
            g["sharpe_diff"],
            g["sharpe_diff_lower"],
            g["sharpe_diff_upper"],
            g["p_sharpe_diff_le_0"],
        ),
        *[
            (
                f"{sh}: {c} minus {k}",
                g[f"sharpe_diff_vs_{k}"],
                g[f"sharpe_diff_vs_{k}_lower"],
                g[f"sharpe_diff_vs_{k}_upper"],
                g[f"p_sharpe_diff_vs_{k}_le_0"],
            )
            for k in res.baselines.index.drop(b, errors="ignore")
        ],
        *(
            [
                (
                    f"Max drawdown: {c} minus {b}"
                    + _in_brackets(
                        outside_note(
                            g["max_drawdown_diff"],
                            g["max_drawdown_diff_lower"],
                            g["max_drawdown_diff_upper"],
                        )
                    ),
                    g["max_drawdown_diff"],
                    g["max_drawdown_diff_lower"],
                    g["max_drawdown_diff_upper"],
                    np.nan,
                )
            ]
            if "max_drawdown_diff" in g
            else []
        ),
        (
            f"{sh}: {cv} minus {b}",
            g["cv_sharpe_diff"],
            g["cv_sharpe_diff_lower"],
            g["cv_sharpe_diff_upper"],
            g["cv_p_sharpe_diff_le_0"],
        ),
        (
            f"Deflated Sharpe (rf = 0) of {cv} (probability Sharpe > 0)",
            g["cv_deflated_sharpe"],
            np.nan,
            np.nan,
            np.nan,
        ),
        (
            f"SPA: best of {int(g['n_trials'])} candidates beats {b}",
            np.nan,
            np.nan,
            np.nan,
            g["spa_p_consistent"],
        ),
    ]
    df = pd.DataFrame(
        [r[1:] for r in rows],
        index=pd.Index([r[0] for r in rows], name="test"),
        columns=["estimate", "lower", "upper", "p-value"],
    )
    return df


def write_validation_report(res: ValidationResult, path: Path) -> Path:
    """Write the validation report (see the module docstring)."""
    ppy = res.periods_per_year
    path.parent.mkdir(parents=True, exist_ok=True)
    rep = Report("regime-engine validation report (out of sample)", ppy)
    view = oos_view(res)
    c, b, cv = res.candidate, res.benchmark, f"{res.candidate}_cv"
    lvl = float(res.significance.get("level", 0.95))
    sh_lab = f"Sharpe (rf = {res.rf_label})"

    rep.add(
        "How to read this report",
        _guide(res)
        + table(
            _glance(res),
            "The tests at a glance",
            kinds={"estimate": "ratio", "lower": "ratio", "upper": "ratio", "p-value": "pvalue"},
            labels=False,
        ),
    )
    starts = [(f["test_start"], f"fold {k}") for k, f in res.folds.iterrows()]
    equity, bname = add_tearsheet(rep, view, benchmark=b, markers=starts)
    colors = {str(n): strategy_color(i) for i, n in enumerate(equity.columns)}
    # one bootstrap section: both pairs and every series' own interval
    body = ""
    pairs = [
        (c, b, res.bootstrap, res.significance["p_sharpe_diff_le_0"]),
        *[
            (c, k, bb, res.significance[f"p_sharpe_diff_vs_{k}_le_0"])
            for k, bb in res.bootstrap_baselines.items()
            if k != b  # the benchmark's pair is the first
        ],
        (cv, b, res.bootstrap_cv, res.significance["cv_p_sharpe_diff_le_0"]),
    ]
    for who, vs, boot, p in pairs:
        plain = bootstrap_plain(boot, who, vs, p)
        plain = plain.loc[[i for i in plain.index if "minus" in str(i) or "p-value" in str(i)]]
        body += table(
            plain,
            f"{who} minus {vs}",
            kinds=bootstrap_kinds(plain),
            by_row=True,
            labels=False,
        )
    ci = res.ci.copy()
    rows: dict[tuple[str, str], pd.Series] = {}
    for key, row in ci.iterrows():
        s, metric = key if isinstance(key, tuple) else ("", key)
        r = row.astype(float)
        if metric == "max_drawdown":
            r = pd.Series(
                {
                    "estimate": -r["estimate"],
                    "lower": -r["upper"],
                    "upper": -r["lower"],
                    "std": r["std"],
                }
            )
        name = {"sharpe": sh_lab, "cagr": "CAGR", "max_drawdown": "Max drawdown"}.get(
            str(metric), str(metric)
        )
        rows[(str(s), name)] = r
    cit = pd.DataFrame(rows).T
    cit.index.names = ["strategy", "metric"]
    kinds: dict[Any, fmt.Kind] = {k: ("ratio" if k[1] == sh_lab else "pct") for k in cit.index}
    body += table(cit, "Each series on its own", kinds=kinds, by_row=True, labels=False)
    body += (
        f'<p class="note">Paired stationary bootstrap, {int(res.significance["bootstrap_reps"])}'
        f" resamples, {lvl:.0%} intervals. Drawdowns are losses (negative), so 'minus' reads "
        "the same way for every row: positive = better than the benchmark.</p>"
    )
    rep.add("Bootstrap: is the edge luck?", body)
    if len(res.baselines):
        rep.add(
            "Baselines: timing or de-risking?",
            table(
                res.baselines,
                labels=False,
                note="Static mixes run on the same bars, costs and rebalancing calendar, and "
                "the benchmark. The average-weight mix uses the test years' own mean weights "
                "(which favours it); the volatility-matched mix's scale is chosen at each "
                "fold from earlier bars only (out of sample; the folds table lists it). "
                f"Every Sharpe on this page is over rf = {html.escape(res.rf_label)}.",
            ),
        )

    folds = res.folds.copy()
    for col in ("train_start", "train_end", "test_start", "test_end"):
        folds[col] = [fmt.date(v) for v in folds[col]]
    pf = _per_fold(res, ppy)
    body = table(folds, kinds={"n_train": "count", "n_test": "count"}, labels=True)
    if len(pf):
        sh = pf["sharpe"].unstack("strategy")
        traces = [
            {
                "type": "bar",
                "x": [f"fold {k}<br>{str(res.folds.loc[k, 'test_start'])[:4]}" for k in sh.index],
                "y": plot.numbers(sh[s].to_numpy()),
                "name": str(s),
                "marker": {"color": colors.get(str(s), "#999")},
                "hovertemplate": "%{y:.2f}",
            }
            for s in sh.columns
        ]
        body += f"<h3>{html.escape(sh_lab)} of each test year</h3>" + rep.page.chart(
            traces, {"barmode": "group", "xaxis": {"type": "category"}}, height=320
        )
        body += (
            "<details><summary>every fold's figures (every series)</summary>"
            + table(pf)
            + "</details>"
        )
    rep.add("Walk-forward folds", body)
    if len(res.cv_choices):
        body = table(res.cv_choices, labels=True)
        if len(res.candidate_returns):
            cs = oos_summary(res.candidate_returns, ppy, res.rf, res.rf_label)
            cs.index = [f"{c}[{n}]" for n in cs.index]
            cs.index.name = "parameter set"
            body += table(
                cs,
                "Every parameter set tried, out of sample (the universe of the SPA test and "
                "the deflated Sharpe, rf = 0)",
                note=f"Each set run on every test year; {html.escape(cv)} switches between "
                "them fold by fold as the CV on the training years chose.",
            )
        rep.add("CV choices (chosen on training years, scored on the test year)", body)
    if len(res.costs):
        be = pd.DataFrame({"break_even_bps": pd.Series(res.break_even)}).rename_axis("edge in")
        sharpe_cols = res.costs[[k for k in res.costs.columns if str(k).startswith("sharpe")]]
        rep.add(
            "Cost sensitivity",
            cost_chart(rep, sharpe_cols, colors)
            + _headed(
                res.costs,
                partial(_cost_header, rf=str(res.costs.attrs.get("rf_label"))),
                note="diff = the candidate's minus the benchmark's (or the named baseline's).",
            )
            + table(
                be,
                "Break-even commission",
                kind="bps",
                labels=False,
                note=f"Commission at which the OOS edge of {html.escape(c)} over "
                f"{html.escape(b)} vanishes (∞ = never within the range searched). "
                f"{html.escape(cv)} is not rerun at other costs: its parameter sets were "
                "chosen at the configured cost, and it records returns only.",
            ),
        )
    if len(res.mc_quantiles):
        rep.add(
            "Monte Carlo of regime paths",
            _headed(res.mc_model, _mc_model_header, "Fitted return HMM")
            + _headed(res.mc_quantiles, _mc_quantile_header, "Outcome quantiles"),
        )
    raw = pd.DataFrame({"value": pd.Series(res.significance)}).rename_axis("key")
    rep.add(
        "All significance numbers",
        "<details><summary>raw values (as in verdict.json)</summary>"
        + table(raw, kind="text", labels=False)
        + "</details>",
    )
    lines = res.verdict_lines or [res.verdict]
    meta = meta_line(equity.iloc[1:], bname)  # the test bars: not the rebase bar before them
    return rep.write(path, meta, ["VERDICT: " + lines[0], *lines[1:]], None)

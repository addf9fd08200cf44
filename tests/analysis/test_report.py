from __future__ import annotations

import json
import re
import time

import numpy as np
import pandas as pd
import pytest

from engine.analysis.baselines import evaluation_start
from engine.analysis.metrics import max_drawdown
from engine.report.html import write_report
from engine.report.plot import unpacked_js
from engine.report.sections import TOP_ASSETS
from engine.report.significance import bootstrap_plain
from engine.report.validation import rebased_equity
from tests.analysis.conftest import FakeResult, make_result

HEADINGS = [
    "Performance summary",
    "Equity curves",
    "Drawdowns",
    "Returns",
    "Rolling Sharpe (rf = 0), volatility and beta",
    "Exposure, cash and turnover",
    "Weights over time",
    "Regimes",
    "Performance and risk by regime",
    "Attribution and costs",
    "Trades",
    "Stress tests",
]


def specs(text: str) -> list[dict]:
    """The chart specs of a report page, parsed as JSON."""
    m = re.search(r"var REPORT_SPECS=(\[.*?\]);\n", text, re.S)
    assert m, "no chart specs"
    return json.loads(m.group(1))


def axes(text: str) -> dict[str, list[str]]:
    m = re.search(r"var REPORT_AXES=(\{.*?\});\n", text, re.S)
    assert m
    return json.loads(m.group(1))


def check_self_contained(text: str) -> None:
    """No network: no external script/link/src/href; plotly.js embedded exactly once."""
    assert "<link" not in text
    assert not re.search(r"<script[^>]*\bsrc=", text)
    page = re.sub(r"<script[^>]*>.*?</script>", "", text, flags=re.S)  # markup, not the JS
    for attr in re.findall(r'<[^>]+\s(?:src|href)\s*=\s*["\']([^"\']*)', page):
        assert attr.startswith(("#", "data:")), attr
    assert text.count("var REPORT_SPECS=") == 1
    lib = unpacked_js(text)  # gzip + base64 in the page: the library's banner, once
    assert lib is not None and len(re.findall(r"plotly\.js v\d", lib)) == 1
    assert text.count('id="plotly-gz"') == 1 and "plotly.js v" not in text
    for tbl in re.findall(r"<thead>(.*?)</thead>", text, re.S):
        assert tbl.count("<tr") == 1  # one header row (no stray pandas index-name row)
    ours = page + text[text.index("var REPORT_AXES=") :]
    assert "00:00:00" not in ours  # daily dates print without a time


def _heading_ok(text: str, h: str) -> bool:
    return f"<h2>{h}</h2>" in text


def test_report_sections_and_charts(result, tmp_path):
    p = write_report(result, tmp_path / "sub" / "report.html")
    text = p.read_text()
    for h in HEADINGS:
        assert _heading_ok(text, h), h
    for opt in ("Cost sensitivity", "Parameter sweep"):
        assert not _heading_ok(text, opt)
    check_self_contained(text)
    assert "GFC" in text and "calm" in text
    sp = specs(text)
    ax = axes(text)
    # equity + drawdown chart: every strategy, the default benchmark (the first symbol,
    # no asset classes here), drawdowns drawn negative like the table prints them
    eq = next(
        s for s in sp if s["layout"].get("yaxis2", {}).get("title", {}).get("text") == "drawdown"
    )
    names = {t["name"] for t in eq["data"] if t.get("yaxis") == "y"}
    assert {"static", "aware", "SPX (buy & hold)"} <= names
    dd = [t for t in eq["data"] if t.get("yaxis") == "y2"]
    assert dd and all(v is None or v <= 0 for t in dd for v in t["y"])
    assert re.search(r"<td class=neg>-\d+\.\d\d%</td>", text)  # max drawdown cell, negative
    x = ax[eq["data"][0]["x"][1:]]
    assert x[0] == "2007-01-01" and len(x) == len(result.equity)
    # warm-up: its own grey band labelled as such; posteriors are 0 there, not 1/K each
    post = next(s for s in sp if any(t.get("stackgroup") == "p" for t in s["data"]))
    warm = next(t for t in post["data"] if t["name"].startswith("warm-up"))
    n_warm = int((result.regimes["state"] < 0).sum())
    assert warm["y"][:n_warm] == [1] * n_warm and warm["y"][n_warm] == 0
    for t in post["data"]:
        if t is not warm:
            assert t["y"][:n_warm] == [0] * n_warm
    assert "state -1" in text and "Relative to the benchmark" in text
    from tests.validation.test_cli import assert_sharpes_name_their_rf

    assert_sharpes_name_their_rf(text)  # one rf per page, named on every Sharpe
    # the headline leaves the warm-up out and shows the whole period beside it
    assert "After the detector&#x27;s warm-up" in text or "After the detector's warm-up" in text
    assert "Whole period, warm-up included" in text


def test_monthly_heatmap_matches_resample(result, tmp_path):
    text = write_report(result, tmp_path / "r.html").read_text()
    hm = next(s for s in specs(text) if s["data"][0]["type"] == "heatmap")
    z = hm["data"][0]["z"]  # first strategy: "static"; rows = years, 12 months + year
    e = result.equity["static"]
    e = e.loc[evaluation_start(result.regimes) :]  # the evaluation window: after warm-up
    last = e.resample("ME").last()
    ref = last / last.shift(1).fillna(e.iloc[0]) - 1
    years = hm["data"][0]["y"]
    for ts, v in ref.items():  # 5 significant digits in the page
        assert z[years.index(str(ts.year))][ts.month - 1] == pytest.approx(v, rel=1e-4)


def test_benchmark_from_config_and_option(result, tmp_path):
    r = FakeResult(**{**result.__dict__, "config": {"report": {"benchmark": "static"}}})
    text = write_report(r, tmp_path / "a.html").read_text()
    assert "Relative to the benchmark: static" in text
    r = FakeResult(**{**result.__dict__, "config": {"detector": {"market": "WTI"}}})
    text = write_report(r, tmp_path / "m.html").read_text()  # the detector's market symbol
    assert "Relative to the benchmark: WTI (buy &amp; hold)" in text
    text = write_report(result, tmp_path / "b.html", benchmark="UST10").read_text()
    assert "Relative to the benchmark: UST10 (buy &amp; hold)" in text
    from engine.config import ConfigError

    with pytest.raises(ConfigError, match=r"^report\.benchmark: unknown strategy or symbol 'X'"):
        write_report(result, tmp_path / "c.html", benchmark="X")


def test_optional_sections(result, tmp_path):
    cost = pd.DataFrame(
        {"static": [0.8, 0.7, 0.5], "aware": [1.0, 0.8, 0.4]},
        index=pd.Index([0.5, 1.0, 2.0], name="cost multiplier"),
    )
    boot = pd.DataFrame(
        {"estimate": [0.3, 0.1], "lower": [0.1, 0.05], "upper": [0.5, 0.2], "std": [0.1, 0.04]},
        index=["sharpe_diff", "max_drawdown_diff"],
    )
    boot.loc["p_sharpe_diff_le_0"] = [0.04, np.nan, np.nan, np.nan]
    sweep = pd.DataFrame(
        np.arange(6.0).reshape(2, 3),
        index=pd.Index([1, 2], name="a"),
        columns=pd.Index([5, 10, 20], name="b"),
    )
    p = write_report(
        result,
        tmp_path / "r.html",
        cost_sensitivity=cost,
        bootstrap=boot,
        bootstrap_pair=("aware", "static"),
        sweep=sweep,
        extra={"Walk-forward folds": boot},
    )
    text = p.read_text()
    for h in (
        "Cost sensitivity",
        "Bootstrap: is the difference luck?",
        "Parameter sweep",
        "Walk-forward folds",
    ):
        assert _heading_ok(text, h), h
    assert "Sharpe: aware minus static" in text
    assert "p-value: Sharpe of aware not above static&#x27;s" in text
    check_self_contained(text)


def test_bootstrap_plain_flips_drawdowns():
    t = pd.DataFrame(
        {"estimate": [0.10, 0.5], "lower": [0.02, 0.1], "upper": [0.2, 0.9], "std": [0.05, 0.2]},
        index=["max_drawdown_diff", "sharpe_candidate"],
    )
    out = bootstrap_plain(t, "A", "B", 0.2)
    row = out.loc["Max drawdown: A minus B"]
    # drawdown 10 points deeper for A = -10% as a return difference; the interval flips
    assert (row["estimate"], row["lower"], row["upper"]) == (-0.10, -0.2, -0.02)
    assert out.loc["Sharpe: A", "estimate"] == 0.5
    assert out.iloc[-1]["estimate"] == 0.2
    t.attrs["rf_label"] = "CASH"  # Sharpe of excess returns: the row says over what
    assert "Sharpe (rf = CASH): A" in bootstrap_plain(t, "A", "B").index


def test_rebased_equity_starts_together():
    idx = pd.bdate_range("2010-01-01", periods=4)
    r = pd.DataFrame({"a": [0.1, -0.1, 0.0], "b": [0.0, 0.2, np.nan]}, index=idx[1:])
    e = rebased_equity(r, idx[0], 100.0)
    assert list(e.iloc[0]) == [100.0, 100.0]
    assert e["a"].iloc[-1] == pytest.approx(100 * 1.1 * 0.9)
    assert e["b"].iloc[-1] == pytest.approx(120.0)


def test_report_fast_on_5000_bars(tmp_path):
    r = make_result(n=5000, seed=1, start="1995-01-02")
    eq = r.equity.assign(third=r.equity["static"] * 0.5 + r.equity["aware"] * 0.5)
    w = pd.concat(
        {"static": r.weights["static"], "aware": r.weights["aware"], "third": r.weights["aware"]},
        axis=1,
    )
    big = FakeResult(eq, w, r.fills, r.regimes, r.prices)
    t0 = time.perf_counter()
    p = write_report(big, tmp_path / "big.html")
    assert time.perf_counter() - t0 < 10.0
    text = p.read_text()
    assert "at most 2600 points" in text  # long series are thinned for display, and say so
    assert p.stat().st_size < 8e6
    # thinning keeps the troughs: the chart's deepest drawdown is the table's
    eq = next(s for s in specs(text) if "yaxis2" in s["layout"])
    dd = {t["name"][: -len(" drawdown")]: t["y"] for t in eq["data"] if t.get("yaxis") == "y2"}
    assert len(dd["third"]) < 5000
    for name in ("static", "aware", "third"):
        assert min(v for v in dd[name] if v is not None) == pytest.approx(
            -max_drawdown(big.equity[name]), rel=1e-5
        )


def test_many_assets_do_not_swamp(tmp_path):
    r = make_result(n=300, seed=2)
    rng = np.random.default_rng(0)
    syms = [f"S{i:03d}" for i in range(400)]
    w = pd.DataFrame(rng.dirichlet(np.ones(400), size=300), index=r.equity.index, columns=syms)
    weights = pd.concat({"static": w, "aware": w}, axis=1)
    prices = pd.DataFrame(
        100 * np.cumprod(1 + 0.01 * rng.standard_normal((300, 400)), axis=0),
        index=r.equity.index,
        columns=syms,
    )
    big = FakeResult(r.equity, weights, r.fills.iloc[:0], r.regimes, prices)
    text = write_report(big, tmp_path / "many.html").read_text()
    wcharts = [s for s in specs(text) if any(t.get("stackgroup") == "w" for t in s["data"])]
    assert len(wcharts) == 2
    for s in wcharts:
        assert len(s["data"]) == TOP_ASSETS + 1
        assert s["data"][-1]["name"] == f"other ({400 - TOP_ASSETS} assets)"
        assert s["layout"]["legend"]["x"] > 1  # legend outside the plot area


def test_degenerate_inputs(tmp_path):
    r = make_result(n=60, seed=4, start="2021-01-04")
    regimes = pd.DataFrame({"state": -1, "smoothed_state": -1}, index=r.equity.index)
    empty = pd.DataFrame(
        {
            c: pd.Series(dtype=object)
            for c in [
                "timestamp",
                "strategy",
                "symbol",
                "side",
                "qty",
                "price",
                "commission",
                "spread",
                "slippage",
                "impact",
            ]
        }
    )
    bare = FakeResult(r.equity, r.weights, empty, regimes, r.prices, regime_labels=())
    text = write_report(bare, tmp_path / "bare.html").read_text()
    assert _heading_ok(text, "Performance summary") and _heading_ok(text, "Stress tests")
    check_self_contained(text)


def test_analysis_layer_imports_stay_downward():
    import ast
    from pathlib import Path

    from tests.source_ast import parse_file

    root = Path(__file__).resolve().parents[2] / "engine"
    for f in [*(root / "analysis").glob("*.py"), *(root / "report").glob("*.py")]:
        for node in ast.walk(parse_file(f)):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for n in names:
                assert n.split(".")[0] not in {"strategies", "brokers", "data_feeds"}, (f, n)


def test_without_plotly_the_tables_remain(result, tmp_path, monkeypatch):
    from engine.report import plot

    monkeypatch.setattr(plot, "plotly_js", lambda: None)
    text = write_report(result, tmp_path / "noplotly.html").read_text()
    assert "plotly.js v" not in text and "the <code>plotly</code> package is not installed" in text
    assert "plotly.js did not load" in text  # what each chart then says in the browser
    assert _heading_ok(text, "Performance summary") and "<table>" in text


def test_var_marks_sit_at_the_historical_quantiles(result, tmp_path):
    text = write_report(result, tmp_path / "r.html").read_text()
    h = next(
        s
        for s in specs(text)
        if any(str(t.get("name", "")).startswith("VaR 95%") for t in s["data"])
    )
    e = result.equity["static"].loc[evaluation_start(result.regimes) :]  # after warm-up
    r = e.pct_change().dropna().to_numpy()
    marks = {t["name"].split(" -")[0]: t["x"][0] for t in h["data"][1:5]}  # first series
    assert marks["VaR 95%"] == pytest.approx(np.quantile(r, 0.05), rel=1e-9)  # a loss: negative
    assert marks["CVaR 95%"] == pytest.approx(np.mean(r[r <= np.quantile(r, 0.05)]), rel=1e-9)
    assert marks["VaR 99%"] == pytest.approx(np.quantile(r, 0.01), rel=1e-9)
    bars = h["data"][0]
    lo, hi = np.quantile(r, [0.001, 0.999])
    assert sum(bars["y"]) == int(((r >= lo) & (r <= hi)).sum())  # the middle 99.8% of days

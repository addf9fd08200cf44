"""What issue 22 found in the report, checked on the rendered page: regime shading colours
and opacity, titled one-series charts, partial periods, one meaning of "recovery", shock
definitions, no all-zero attribution columns, human headers."""

from __future__ import annotations

import html
import json
import re

import pandas as pd
import pytest

from engine.report.html import write_report
from engine.report.plot import REGIME_ALPHA, STRATEGY_COLORS, regime_color
from engine.report.trade_sections import shock_definitions
from tests.analysis.conftest import make_result


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    res = make_result(n=700)  # 2007-01-01 .. 2009-09: the GFC window inside, 2009 partial
    return write_report(res, tmp_path_factory.mktemp("r") / "r.html").read_text()


def _specs(page: str) -> list[dict]:
    m = re.search(r"var REPORT_SPECS=(\[.*?\]);\n", page, re.S)
    assert m
    return list(json.loads(m.group(1)))


def _tables(page: str) -> dict[str, tuple[list[str], list[list[str]]]]:
    """Caption -> (headers, rows of cells) of every captioned table."""
    out = {}
    pat = (
        r"<h3>([^<]*)</h3><div class=\"tw[^\"]*\"><table><thead><tr>(.*?)</tr></thead>"
        r"<tbody>(.*?)</tbody>"
    )
    for m in re.finditer(pat, page, re.S):
        heads = [html.unescape(h) for h in re.findall(r"<th[^>]*>([^<]*)</th>", m.group(2))]
        rows = [
            [html.unescape(c) for c in re.findall(r"<td[^>]*>([^<]*)</td>", r)]
            for r in re.findall(r"<tr>(.*?)</tr>", m.group(3))
        ]
        out[html.unescape(m.group(1))] = (heads, rows)
    return out


def test_regime_shading_visible_and_not_a_strategy_colour(page: str) -> None:
    for n in range(1, 6):
        for k in range(n):
            assert regime_color(k, n) not in STRATEGY_COLORS
    assert 0.18 <= REGIME_ALPHA <= 0.25
    eq = _specs(page)[0]
    fills = [  # the regime shading: full-height rectangles
        s["fillcolor"]
        for s in eq["layout"]["shapes"]
        if s["type"] == "rect" and s["yref"] == "paper"
    ]
    assert fills
    for f in fills:
        alpha = float(re.fullmatch(r"rgba\(\d+,\d+,\d+,([\d.]+)\)", f).group(1))  # type: ignore[union-attr]
        assert 0.18 <= alpha <= 0.25


def test_one_series_charts_are_titled_and_start_on_the_candidate(page: str) -> None:
    specs = _specs(page)
    hm = next(s for s in specs if s["data"][0]["type"] == "heatmap")
    names = [t["visible"] for t in hm["data"]]
    assert names == [False, True, False]  # static, aware (the candidate), SPX
    assert hm["layout"]["title"]["text"] == "Monthly returns: aware"
    menu = hm["layout"]["updatemenus"][0]
    assert menu["active"] == 1
    assert [b["args"][1]["title.text"] for b in menu["buttons"]] == [
        "Monthly returns: static",
        "Monthly returns: aware",
        "Monthly returns: SPX (buy & hold)",
    ]
    dist = next(
        s for s in specs if s["layout"].get("title", {}).get("text", "").startswith("Daily")
    )
    assert dist["layout"]["title"]["text"] == "Daily returns: aware"


def test_partial_years_and_months_marked(page: str) -> None:
    hm = next(s for s in _specs(page) if s["data"][0]["type"] == "heatmap")
    t = hm["data"][1]
    y = t["y"].index("2009")
    assert t["text"][y][12].endswith("*")  # 2009: data end in September
    assert t["text"][y][8].endswith("*")  # ... on 2009-09-..: September partial
    assert not t["text"][y][7].endswith("*")
    bars = next(s for s in _specs(page) if s["data"][0]["type"] == "bar")
    assert bars["data"][0]["x"][-1] == "2009*" and "2008" in bars["data"][0]["x"]


def test_recovery_has_one_meaning_and_headers_are_human(page: str) -> None:
    tabs = _tables(page)
    heads = {h for hs, _ in tabs.values() for h in hs}
    dd = tabs["static"][0]
    assert "Recovered on" in dd and "To recovery" in dd
    heads_dd, rows_dd = tabs["static"]
    for col in ("Length", "To trough", "To recovery"):  # counts print as integers
        j = heads_dd.index(col)
        assert all(re.fullmatch(r"[\d,]+|n/a", r[j]) for r in rows_dd), col
    hist = tabs["Historical windows"][0]
    assert "Recovered on" in hist and "Start to recovery (bars)" in hist
    assert not [h for h in heads if h.lower() == "recovery" or h == "Recovery (bars)"]
    names = {"static", "aware", "SPX (buy & hold)", "#", ""}
    bad = [h for h in heads if h not in names and not h.startswith(("0:", "1:")) and (
        "_" in h or h[:1].islower())]  # fmt: skip
    assert not bad, bad


def test_attribution_drops_all_zero_columns(page: str) -> None:
    heads, rows = _tables(page)["Return attribution"]
    for j, h in enumerate(heads[1:], start=1):
        assert any(r[j] not in ("0.00%", "-0.00%") for r in rows), h
    assert "Total" in heads and "cost_commission" not in heads


def test_shock_definitions_name_unheld_classes(page: str) -> None:
    assert "<h3>Shock definitions</h3>" in page
    d = shock_definitions(
        {"stagflation": {"equity": -0.15, "bond": -0.10, "commodity": 0.20}},
        {"SPX": "equity", "UST10": "bond"},
    )
    assert d.loc["stagflation", "Definition"] == "equity -15%, bond -10%, commodity +20% (not held)"


def test_worst_five_drawdowns_outlined_on_the_equity_chart(page: str) -> None:
    from engine import fmt
    from engine.analysis.baselines import evaluation_start
    from engine.analysis.drawdowns import worst_drawdowns

    res = make_result(n=700)
    e = res.equity["aware"].loc[evaluation_start(res.regimes) :]
    ref = worst_drawdowns(e, 5)
    eq = _specs(page)[0]
    got = [s for s in eq["layout"]["shapes"] if str(s.get("name", "")).startswith("drawdown")]
    assert [(s["x0"], s["x1"]) for s in got] == [
        (
            fmt.date(r["start"]),
            fmt.date(r["recovery"] if r["recovery"] == r["recovery"] else e.index[-1]),
        )
        for _, r in ref.iterrows()
    ]
    assert all(s["yref"] == "y2 domain" for s in got)
    labels = [a["text"] for a in eq["layout"]["annotations"]]
    assert [f"DD{k}" for k in range(1, 6)] == [t for t in labels if t.startswith("DD")]


def test_drawdown_labels_close_in_time_stand_one_above_the_other() -> None:
    """Labels nearer than 6 % of the axis take the lowest free level; far ones stay at 0."""
    from engine.report.sections import label_levels

    t = pd.Timestamp
    starts = pd.Series(
        [t("2008-01-01"), t("2008-03-01"), t("2008-05-01"), t("2015-01-01"), t("2009-04-01")],
        index=[1, 2, 3, 4, 5],
    )
    got = label_levels(starts, t("2000-01-01"), t("2020-01-01"))  # 6 % = 438 days
    assert got == {1: 0, 2: 1, 3: 2, 4: 0, 5: 0}

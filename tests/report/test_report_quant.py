"""The report's quantstats-style section and its frequency-aware labels (an hourly run
never says "daily" or "days")."""

from __future__ import annotations

import html
import re

import numpy as np
import pandas as pd

from engine import fmt
from engine.analysis.baselines import evaluation_start
from engine.report.html import write_report
from tests.analysis.conftest import FakeResult, make_result


def _visible_text(page: str) -> str:
    """The page's markup without scripts (plotly.js and the chart specs) and tags."""
    no_js = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", no_js))


def _row(page: str, label: str) -> list[str]:
    """The cells of the first table row headed ``label``."""
    m = re.search(rf'<td class="ix">{re.escape(label)}</td>(.*?)</tr>', page)
    assert m, label
    return [html.unescape(c) for c in re.findall(r"<td[^>]*>([^<]*)</td>", m.group(1))]


def test_quant_section_numbers_and_eoy_table(tmp_path):
    res = make_result(n=700)
    text = write_report(res, tmp_path / "r.html").read_text()
    assert "<h2>Returns in detail</h2>" in text
    e = res.equity.loc[evaluation_start(res.regimes) :]  # the evaluation window
    r = e.pct_change().dropna()
    best = _row(text, "Best day")
    assert best == [fmt.pct(r["static"].max()), fmt.pct(r["aware"].max()), best[2]]
    wins = _row(text, "Win rate (days)")
    assert wins[1] == fmt.pct((r["aware"] > 0).sum() / (r["aware"] != 0).sum())
    assert "End-of-year returns: aware vs static" in text
    year = e.index[-1].year  # the data end mid-year: the last year is partial
    last = _row(text, str(year))
    assert last[-1] == "partial"
    assert last[0] == fmt.pct(e["aware"].iloc[-1] / e["aware"][str(year - 1)].iloc[-1] - 1)
    rel = text[text.index("benchmark strategy: static") :]
    cells = _row(rel, "aware")  # Excess CAGR, Alpha, Beta, Correlation, Tracking error, IR
    ra, rs = r["aware"].to_numpy(), r["static"].to_numpy()
    beta = np.cov(ra, rs, ddof=1)[0, 1] / np.var(rs, ddof=1)
    assert cells[2] == fmt.ratio(beta, 3)
    assert cells[3] == fmt.ratio(np.corrcoef(ra, rs)[0, 1], 3)
    assert cells[4] == fmt.pct(np.std(ra - rs, ddof=1) * np.sqrt(252))


def _hourly(res: FakeResult) -> FakeResult:
    idx = pd.date_range("2024-01-01 00:00", periods=len(res.equity), freq="h")
    new = dict(zip(res.equity.index, idx))
    fills = res.fills.assign(timestamp=res.fills["timestamp"].map(new))

    def re_ix(df: pd.DataFrame) -> pd.DataFrame:
        return df.set_axis(idx, axis=0)

    return FakeResult(
        re_ix(res.equity),
        re_ix(res.weights),
        fills,
        re_ix(res.regimes),
        re_ix(res.prices),
    )


def test_hourly_run_never_says_daily(tmp_path):
    res = _hourly(make_result(n=900))
    boot = pd.DataFrame(  # a bootstrap table, for its section's note
        {"estimate": [0.3], "lower": [0.1], "upper": [0.5], "std": [0.1]}, index=["sharpe_diff"]
    )
    page = write_report(
        res,
        tmp_path / "h.html",
        periods_per_year=24 * 365,
        bootstrap=boot,
        bootstrap_pair=("aware", "static"),
    ).read_text()
    text = _visible_text(page)
    assert "Distribution of hourly returns" in text and "blocks of hours" in text
    assert "Best hour" in text and "Win rate (hours)" in text
    assert "VaR 95% (1 hour)" in text and "(1d)" not in text
    assert not re.search(r"\bdaily\b", text, re.I), re.findall(r".{60}daily.{20}", text)
    bad = [m for m in re.finditer(r"\bdays?\b", text) if "calendar day" not in
           text[m.start() - 9 : m.end() + 1]]  # fmt: skip
    assert not bad, [text[m.start() - 60 : m.end() + 20] for m in bad]
    specs = page[page.index("var REPORT_SPECS=") :]
    assert "daily return" not in specs and " days<" not in specs

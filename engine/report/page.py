"""The report page: style, sections, table of contents, the verdict box, and the scripts
(plotly.js embedded once, the chart specs, the loader)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from engine import fmt
from engine.analysis.metrics import PERIODS_PER_YEAR
from engine.report import plot
from engine.report.plot import Page

CSS = """
*{box-sizing:border-box}
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0 auto;
max-width:1680px;color:#1d2329;padding:0 28px 40px;font-size:14px;line-height:1.45}
h1{font-size:24px;margin:22px 0 4px}h2{font-size:19px;margin:34px 0 8px;padding-bottom:4px;
border-bottom:2px solid #1d2329}h3{font-size:15px;margin:16px 0 6px;color:#333}
nav{font-size:13px;margin:8px 0 0;line-height:1.9;display:flex;flex-wrap:wrap}
nav a{color:#1f5fa8;text-decoration:none;margin-right:14px;white-space:nowrap}
.tw{overflow-x:auto;max-width:100%;margin:4px 0 8px}
.tw.scroll{max-height:420px;overflow-y:auto}
table{border-collapse:collapse;font-size:13px;font-variant-numeric:tabular-nums}
th,td{padding:4px 10px;text-align:right;white-space:nowrap;border-bottom:1px solid #e6e8eb}
th{background:#f4f6f8;font-weight:600;position:sticky;top:0;border-bottom:2px solid #cfd4da}
th.ix,td.ix{text-align:left;font-weight:600;color:#333}
tbody tr:hover td{background:#f0f6ff}td.neg{color:#b42318}
.chart{width:100%;margin:6px 0 10px}
.meta{color:#5b6570;font-size:13px}.note{color:#5b6570;font-size:13px;max-width:1100px}
.verdict{background:#fff7e6;border-left:5px solid #e69500;padding:10px 14px;margin:12px 0;
font-size:15px}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(520px,100%),1fr));
gap:6px 28px}.grid>*{min-width:0}
.verdict,p,.note,.meta{overflow-wrap:anywhere}
@media (max-width:640px){body{padding:0 10px 30px}h1{font-size:20px}nav a{white-space:normal}}
.guide p{max-width:1100px;margin:6px 0}
details summary{cursor:pointer;color:#1f5fa8;margin:6px 0}
"""


@dataclass
class Report:
    """Sections and charts of one report page."""

    title: str
    periods_per_year: int = PERIODS_PER_YEAR
    page: Page = field(default_factory=Page)
    sections: list[tuple[str, str, str]] = field(default_factory=list)
    rf: Any = 0.0  # per-bar risk-free returns (float or Series) of every Sharpe on the page
    rf_label: str = "0"
    unit: str = "day"  # one bar in words (engine.ground.frequency.Frequency.unit)

    @property
    def unit_adj(self) -> str:
        """The bar frequency as an adjective: ``"daily"``, ``"hourly"``, ... ``"per-bar"``."""
        adj = {"day": "daily", "hour": "hourly", "week": "weekly", "month": "monthly"}
        return adj.get(self.unit, f"per-{self.unit}")

    def add(self, title: str, body: str) -> None:
        """Append a section (its anchor is derived from the title)."""
        sid = (
            "s"
            + str(len(self.sections))
            + "-"
            + "".join(ch if ch.isalnum() else "-" for ch in title.lower())
        )
        self.sections.append((sid, title, body))

    def write(
        self,
        path: Path,
        meta: str,
        headline: str | list[str] | None,
        notes: str | None,
    ) -> Path:
        """Write the page: title, meta line, verdict box, table of contents, sections."""
        js = plot.plotly_js()
        nav = " ".join(f'<a href="#{sid}">{html.escape(t)}</a>' for sid, t, _ in self.sections)
        parts = [
            "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width,initial-scale=1'>",
            f"<title>{html.escape(self.title)}</title><style>{CSS}</style>{plot.ERROR_HOOK}",
            "</head><body>",
            f"<h1>{html.escape(self.title)}</h1><p class='meta'>{html.escape(meta)}</p>",
        ]
        if headline:
            lines = [headline] if isinstance(headline, str) else headline
            parts.append(
                "<div class='verdict'>" + "<br>".join(html.escape(x) for x in lines) + "</div>"
            )
        if notes:
            parts.append(f"<p>{html.escape(notes)}</p>")
        if js is None:
            parts.append(
                "<p class='verdict'>Charts are missing: the <code>plotly</code> package is not "
                "installed (pip install plotly); every table below is complete.</p>"
            )
        parts.append(f"<nav>{nav}</nav>")
        for sid, t, body in self.sections:
            if self.unit != "day":  # the one-bar VaR/CVaR headers of engine.fmt.LABELS
                body = body.replace(" (1d)<", f" (1 {self.unit})<")
            parts.append(f"<section id='{sid}'><h2>{html.escape(t)}</h2>\n{body}\n</section>")
        if self.page.thinned:
            parts.append(
                f"<p class='note'>Charts show at most {plot.MAX_POINTS} points a series "
                "(every k-th bar and the last); all tables and statistics use every bar.</p>"
            )
        parts.append(self.page.script(js))
        parts.append("</body></html>")
        path.write_text("".join(parts), encoding="utf-8")
        return path


def meta_line(equity: pd.DataFrame, bench: str | None) -> str:
    """Period, bars, strategies, benchmark and the generation time."""
    b = f"; benchmark: {bench}" if bench else ""
    return (
        f"{fmt.date(equity.index[0])} to {fmt.date(equity.index[-1])}, {len(equity):,} bars; "
        f"strategies: {', '.join(map(str, equity.columns))}{b}; "
        f"generated {datetime.now():%Y-%m-%d %H:%M}"
    )

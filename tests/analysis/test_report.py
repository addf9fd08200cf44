from __future__ import annotations

import base64
import re
import time

import numpy as np
import pandas as pd

from engine.report.html import write_report
from tests.analysis.conftest import FakeResult, make_result

HEADINGS = [
    "Performance summary",
    "Equity curves",
    "Drawdowns",
    "Rolling Sharpe and volatility",
    "Weights over time",
    "Regimes",
    "Risk by regime",
    "Attribution",
    "Stress tests",
]


def _check_self_contained(text: str) -> None:
    imgs = re.findall(r'<img[^>]*src="data:image/png;base64,([^"]*)"', text)
    assert imgs and all(len(b) > 100 for b in imgs)
    assert base64.b64decode(imgs[0])[:8] == b"\x89PNG\r\n\x1a\n"
    for attr in re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', text):
        assert not attr.startswith(("http", "//")), attr
    assert "http://" not in text and "https://" not in text
    assert "<link" not in text and "<script" not in text


def test_report_sections_and_images(result, tmp_path):
    p = write_report(result, tmp_path / "sub" / "report.html")
    text = p.read_text()
    for h in HEADINGS:
        assert f"<h2>{h}</h2>" in text
    for opt in ("Cost sensitivity", "Bootstrap confidence intervals", "Parameter sweep"):
        assert f"<h2>{opt}</h2>" not in text
    _check_self_contained(text)
    assert "GFC" in text and "calm" in text


def test_optional_sections(result, tmp_path):
    cost = pd.DataFrame(
        {"static": [0.8, 0.7, 0.5], "aware": [1.0, 0.8, 0.4]},
        index=pd.Index([0.5, 1.0, 2.0], name="cost multiplier"),
    )
    boot = pd.DataFrame(
        {"estimate": [0.3], "lower": [0.1], "upper": [0.5], "std": [0.1]}, index=["sharpe_diff"]
    )
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
        sweep=sweep,
        extra={"Walk-forward folds": boot},
    )
    text = p.read_text()
    for h in (
        "Cost sensitivity",
        "Bootstrap confidence intervals",
        "Parameter sweep",
        "Walk-forward folds",
    ):
        assert f"<h2>{h}</h2>" in text
    _check_self_contained(text)


def test_report_fast_on_5000_bars(tmp_path):
    r = make_result(n=5000, seed=1, start="1995-01-02")
    eq = r.equity.assign(third=r.equity["static"] * 0.5 + r.equity["aware"] * 0.5)
    w = pd.concat(
        {"static": r.weights["static"], "aware": r.weights["aware"], "third": r.weights["aware"]},
        axis=1,
    )
    big = FakeResult(eq, w, r.fills, r.regimes, r.prices)
    t0 = time.perf_counter()
    write_report(big, tmp_path / "big.html")
    assert time.perf_counter() - t0 < 5.0


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
    assert "<h2>Performance summary</h2>" in text and "<h2>Stress tests</h2>" in text
    _check_self_contained(text)


def test_analysis_layer_imports_stay_downward():
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "engine"
    for f in [*(root / "analysis").glob("*.py"), *(root / "report").glob("*.py")]:
        for node in ast.walk(ast.parse(f.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for n in names:
                assert n.split(".")[0] not in {"strategies", "brokers", "data_feeds"}, (f, n)

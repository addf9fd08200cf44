"""`regime-engine validate` smoke test on a short bundled slice, and its config errors."""

from __future__ import annotations

import json

from engine.cli import main

SHORT = """
name = "short"
[data]
start = "2006-01-01"
end = "2010-12-31"
[detector]  # the rule detector: fast, and speaks on the short simulated paths too
kind = "rule"
history = 120
min_history = 60
[validation]
train_years = 2.0
test_years = 1.0
bootstrap_reps = 50
cost_bps = [0.0, 10.0, 50.0]
[validation.cv]
n_splits = 3
[validation.montecarlo]
n_paths = 2
years = 1.0
warmup_years = 0.5
"""


def test_validate_smoke(tmp_path, capsys):
    cfg = tmp_path / "short.toml"
    cfg.write_text(SHORT)
    out = tmp_path / "out"
    assert main(["validate", str(cfg), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "VERDICT: BOTTOM LINE (Sharpe over rf = CASH): regime_aware vs static_60_40" in text
    assert "static_vol_matched" in text and "static_avg_weights" in text
    assert "Break-even commission" in text
    v = json.loads((out / "verdict.json").read_text())
    assert v["n_folds"] == 3 and v["candidate"] == "regime_aware"
    assert v["oos_start"] >= "2008-01-01"  # two training years before the first test bar
    assert set(v["oos"]) == {
        "static_60_40",
        "equal_weight",
        "regime_aware",
        "static_avg_weights",
        "static_vol_matched",
        "static_vol_matched_is",
        "regime_aware_cv",
    }
    assert v["rf"] == "CASH" and set(v["baselines"]) == {
        "static_avg_weights",
        "static_vol_matched",
        "static_vol_matched_is",
        "static_60_40",
    }
    sig = v["significance"]
    assert sig["sharpe_diff_lower"] <= sig["sharpe_diff"] <= sig["sharpe_diff_upper"]
    assert 0.0 < sig["p_sharpe_diff_le_0"] <= 1.0
    # a max-drawdown interval that misses its estimate says so (console and report)
    dd = [sig[f"max_drawdown_diff{k}"] for k in ("", "_lower", "_upper")]
    missed = not dd[1] <= dd[0] <= dd[2]
    assert text.count("outside its interval") == 2 * missed
    assert ("outside its interval" in (out / "report.html").read_text()) == missed
    for name in ("oos_returns", "cost_sensitivity", "cv_choices", "montecarlo_quantiles"):
        assert (out / f"{name}.csv").stat().st_size > 0
    html = (out / "report.html").read_text()
    assert "Cost sensitivity" in html and "Walk-forward folds" in html
    assert html.index("VERDICT: BOTTOM LINE") < html.index("<h2>")
    assert "Baselines: timing or de-risking?" in html
    assert html.count("<h2>Bootstrap") == 1 and "regime_aware minus static_60_40" in html
    # every series (the CV-selected one too) in the summary and on the rebased equity chart
    from tests.analysis.test_report import axes, check_self_contained, specs

    check_self_contained(html)
    summary = html[html.index("<h2>Performance summary</h2>") :].split("</table>")[0]
    for name in v["oos"]:
        assert f">{name}</td>" in summary, name
    eq = specs(html)[0]
    curves = [t for t in eq["data"] if t.get("yaxis") == "y" and t["y"][0] is not None]
    assert {t["name"] for t in curves} == set(v["oos"])
    assert {t["y"][0] for t in curves} == {1_000_000}  # one value at the first test bar
    assert axes(html)[curves[0]["x"][1:]][1] == v["oos_start"]
    # the parameter sets behind the SPA test and the deflated Sharpe are listed too
    for c in ("as_configured", "dwell_5", "dwell_21", "confirm_3"):
        assert f">regime_aware[{c}]</td>" in html
    assert (out / "candidate_oos_returns.csv").stat().st_size > 0
    assert_sharpes_name_their_rf(html)
    # the header counts the test bars, not the rebase bar before them; fold 0 is labelled
    n_axis = len(axes(html)[curves[0]["x"][1:]])
    assert f", {n_axis - 1:,} bars;" in html
    assert "fold 0" in [a["text"] for a in eq["layout"]["annotations"]]
    assert html.count("<h3>Relative to the") == 1  # the benchmark is the first strategy
    assert ">Estimate</th>" in html and ">estimate</th>" not in html
    # cost and Monte Carlo tables: headers in words, strategy names kept as written
    for head in ("Sharpe static_60_40 (rf = CASH)", "Sharpe diff (rf = CASH)", "CAGR regime_aware"):
        assert f">{head}</th>" in html, head
    for head in ("P(stay)", "5th pct", "Long-run share"):
        assert f">{head}</th>" in html, head
    for key in ("sharpe_static_60_40", "cagr_diff", "p_stay", "expected_dwell", "q05"):
        assert f">{key}</th>" not in html, key
    # the CV-selected series is accounted for in every section about the strategies
    import re

    charts = {sp["id"]: json.dumps(sp) for sp in specs(html)}
    not_per_series = (  # about the detector, the baselines' definitions, raw numbers
        "Regimes",
        "Monte Carlo of regime paths",
        "Baselines: timing or de-risking?",
        "All significance numbers",
    )
    for title, body in re.findall(
        r"<section id='[^']*'><h2>([^<]*)</h2>(.*?)</section>", html, re.S
    ):
        shown = body + "".join(charts.get(i, "") for i in re.findall(r'id="(chart\d+)"', body))
        assert title in not_per_series or "regime_aware_cv" in shown, title


def assert_sharpes_name_their_rf(html: str) -> None:
    """Every visible text piece (table cells and headers, notes, chart labels) that says
    "Sharpe" names its risk-free rate."""
    import re

    page = re.sub(r"<script.*?</script>", "", html, flags=re.S)
    pieces = re.split(r"<[^>]+>", page)
    bad = [p for p in pieces if re.search(r"\bSharpe\b", p) and "rf =" not in p]
    assert not bad, bad[:5]


def test_validate_bad_key(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[validation]\ntrain_yeers = 3\n")
    assert main(["validate", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "validation.train_yeers: unknown key" in capsys.readouterr().err


def test_validate_bad_value_and_strategy(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[validation.cv]\nn_splits = 1\n")
    assert main(["validate", str(cfg)]) == 2
    assert "validation.cv.n_splits" in capsys.readouterr().err
    cfg.write_text('[validation]\nbenchmark = "nope"\n')
    assert main(["validate", str(cfg)]) == 2
    assert "validation.benchmark: unknown strategy 'nope'" in capsys.readouterr().err

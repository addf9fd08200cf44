"""The baselines through `backtest` (engine.api.run_backtest / the CLI): on synthetic panels
with a known regime signal the detector beats its volatility-matched baseline after the
warm-up, without one it does not; the yearly k is chosen from earlier bars (by hand)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from engine.analysis.baselines import AVG_MIX, VOL_MIX, evaluation_start
from engine.api import run_backtest
from engine.cli import main
from tests.validation.test_detector_signal import _config, _panel


def _row(res, name: str) -> dict[str, float]:
    return res.baselines.table.loc[("regime_aware", name)].to_dict()


@pytest.fixture(scope="module")
def signal():
    return run_backtest(_config(), panel=_panel(True, 3), baseline_reps=200)


def test_backtest_detector_beats_its_vol_matched_baseline_when_there_is_a_signal(signal):
    b = signal.baselines
    assert b.rf_label == "CASH"
    assert list(b.table.index.get_level_values(1)) == [AVG_MIX, VOL_MIX, "static_60_40"]
    vol = _row(signal, VOL_MIX)
    assert vol["sharpe_diff_lower"] > 0.3 and vol["sharpe_diff"] > 1.0, vol
    assert _row(signal, AVG_MIX)["sharpe_diff_lower"] > 0.0
    assert "regime_aware: the detector ADDS value beyond de-risking" in b.verdicts["regime_aware"]
    # the figures go into the strategy's metrics (metrics.json)
    m = signal.metrics["regime_aware"]
    assert m[f"sharpe_diff_vs_{VOL_MIX}"] == pytest.approx(vol["sharpe_diff"])
    assert m[f"p_sharpe_diff_vs_{VOL_MIX}_le_0"] == pytest.approx(vol["p_sharpe_diff_le_0"])


def test_backtest_detector_does_not_beat_it_without_a_signal():
    res = run_backtest(_config(), panel=_panel(False, 3), baseline_reps=200)
    vol = _row(res, VOL_MIX)
    assert vol["sharpe_diff_lower"] < 0.0, vol
    assert (
        "the detector does NOT add value beyond de-risking"
        in res.baselines.verdicts["regime_aware"]
    )


def test_backtest_vol_matched_k_by_hand(signal):
    """Yearly segments from the first fit; each k = the candidate's realised volatility over
    the post-warm-up bars before the segment (all earlier bars for the first) over 60/40's
    on the same bars (daily rebalancing, no costs; cash moves: the closed form)."""
    res = signal
    e = res.equity
    r = (e / e.shift(1) - 1.0).to_numpy()
    cash = res.panel.close[:, res.panel.column("CASH")]
    c = np.concatenate([[0.0], cash[1:] / cash[:-1] - 1.0])
    e0 = int(e.index.get_loc(evaluation_start(res.regimes)))
    cols = list(e.columns)
    ks = []
    for s in range(e0, len(e), 252):
        rows = slice(e0 + 1, s) if s - e0 - 1 >= 63 else slice(1, s)
        target = np.std(r[rows, cols.index("regime_aware")], ddof=1)
        x = r[rows, cols.index("static_60_40")] - c[rows]
        # solve var(k x + c) = target^2 for k >= 0
        vx, cx, vc = np.var(x, ddof=1), np.cov(x, c[rows], ddof=1)[0, 1], np.var(c[rows], ddof=1)
        ks.append((-cx + np.sqrt(cx * cx - vx * (vc - target**2))) / vx)
    k_mean = np.average(ks, weights=np.diff(np.append(np.arange(e0, len(e), 252), len(e))))
    assert _row(res, VOL_MIX)["scale"] == pytest.approx(k_mean, rel=1e-9)
    assert ks[0] == pytest.approx(1.0) and ks[-1] < 0.5  # warm-up 60/40, then the safer mix


def test_backtest_cli_prints_the_baselines_and_writes_them(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["backtest", "--no-report", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "baselines after the detector's warm-up" in text
    assert "regime_aware - static_vol_matched" in text and "point estimates" in text
    m = json.loads((out / "metrics.json").read_text())["regime_aware"]
    assert {f"sharpe_diff_vs_{n}" for n in (AVG_MIX, VOL_MIX, "static_60_40")} <= set(m)
    assert (out / "baselines.csv").read_text().count("regime_aware,") == 3
    # `report RUN_DIR` reads them back: the same table, verdicts, rf and evaluation start
    from engine.report.saved_run import load_run

    saved = load_run(out).baselines
    assert saved is not None and len(saved.table) == 3
    assert f"rf = {saved.rf_label}" in text
    assert set(saved.verdicts) == {"regime_aware"}
    assert f"VERDICT: {saved.verdicts['regime_aware']}" in text
    assert saved.start == saved.start.normalize() and str(saved.start.date()) in text
    assert main(["report", str(out)]) == 0
    html = (out / "report.html").read_text()
    assert "Does the detector add value beyond de-risking?" in html
    assert "regime_aware - static_vol_matched" in html

"""The static baselines of `validate` (known answers) and the warm-up window (hand-computed)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from engine.analysis.baselines import (
    after_warmup,
    average_weights,
    evaluation_start,
    scale_for_volatility,
    scaled_mix,
    training_scales,
)
from engine.analysis.metrics import summary_table
from engine.api import run_backtest
from engine.config import RunConfig
from engine.ground.bars import BarPanel
from engine.validate import AVG_MIX, VOL_MIX, VOL_MIX_IS, ValidationConfig, run_validation


def test_scaled_mix_hand_computed():
    w, k = scaled_mix({"SPX": 0.6, "UST10": 0.4}, 0.5, "CASH")
    assert k == 0.5 and w == pytest.approx({"SPX": 0.3, "UST10": 0.2, "CASH": 0.5})
    # the benchmark's own cash weight is part of the residual, not scaled
    w, _ = scaled_mix({"SPX": 0.5, "CASH": 0.5}, 0.4, "CASH")
    assert w == pytest.approx({"SPX": 0.2, "CASH": 0.8})
    # no borrowing: the scale is capped at full investment (gross 1) ...
    w, k = scaled_mix({"SPX": 0.6, "UST10": 0.4}, 1.7, "CASH")
    assert k == 1.0 and w == pytest.approx({"SPX": 0.6, "UST10": 0.4})
    # ... or at max_gross with leverage allowed; no cash asset leaves the rest uninvested
    w, k = scaled_mix({"SPX": 0.6, "UST10": 0.4}, 1.7, None, max_gross=1.5)
    assert k == 1.5 and w == pytest.approx({"SPX": 0.9, "UST10": 0.6})
    assert scaled_mix({"SPX": 0.6}, 0.5, None)[0] == pytest.approx({"SPX": 0.3})


def test_average_weights():
    idx = pd.bdate_range("2020-01-01", periods=4)
    w = pd.DataFrame({"A": [1.0, 0.5, 0.0, 0.5], "B": [0.0, 0.5, 0.0, 0.0]}, index=idx)
    assert average_weights(w) == pytest.approx({"A": 0.5, "B": 0.125})
    assert average_weights(w, idx[2:]) == pytest.approx({"A": 0.25})  # B never held


def _panel(n: int = 1500, seed: int = 0) -> BarPanel:
    """Two risky assets and a cash asset whose price never moves (rf = 0 exactly)."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2001-01-01", periods=n)
    r = rng.normal([0.0004, 0.0001], [0.012, 0.005], (n, 2))
    close = np.column_stack([100.0 * np.exp(np.cumsum(r, axis=0)), np.full(n, 100.0)])
    return BarPanel(
        idx,
        ("SPX", "UST10", "CASH"),
        close,
        close,
        close,
        close,
        np.full_like(close, 1e9),
        asset_classes=("equity", "bond", "cash"),
    )


def _config() -> RunConfig:
    same = {"SPX": 0.3, "UST10": 0.2, "CASH": 0.5}  # one mix in every state: no timing
    return RunConfig.model_validate(
        {
            "name": "baselines",
            "costs": {"commission_bps": 0.0},
            "detector": {"kind": "rule", "market": "SPX", "history": 120, "min_history": 60},
            "strategies": [
                {
                    "kind": "static",
                    "name": "static_60_40",
                    "weights": {"SPX": 0.6, "UST10": 0.4},
                    "rebalance": "D",
                },
                {
                    "kind": "regime",
                    "name": "regime_aware",
                    "rebalance": "D",
                    "warmup": same,
                    "table": {"calm": same, "volatile": same, "crisis": same},
                },
            ],
        }
    )


@pytest.fixture(scope="module")
def no_timing():
    v = ValidationConfig.model_validate(
        {
            "train_years": 2.0,
            "test_years": 1.0,
            "bootstrap_reps": 50,
            "cost_bps": [0.0],
            "cv": {"enabled": False},
        }
    )
    return run_validation(_config(), v, panel=_panel(), mc_paths=0)


def test_average_weight_mix_matches_a_strategy_without_timing(no_timing):
    res = no_timing
    r = res.oos_returns
    # the strategy holds one mix whatever the regime: its average-weight mix is that mix
    # (up to the drift of held weights between daily rebalances), and the two return
    # series agree bar by bar: the Sharpe difference is 0 up to that drift
    np.testing.assert_allclose(r[AVG_MIX], r["regime_aware"], atol=1e-5)
    assert abs(res.significance[f"sharpe_diff_vs_{AVG_MIX}"]) < 2e-3
    assert "SPX 0.300, UST10 0.200, CASH 0.500" == res.baselines.loc[AVG_MIX, "weights"]
    assert "NOT" in res.verdict_lines[0] or "nothing" in res.verdict_lines[0]


def test_vol_matched_mix_hand_computed(no_timing):
    res = no_timing
    r = res.oos_returns
    # daily rebalancing, no costs and a cash asset that never moves: the scaled mix earns
    # k times 60/40, and the candidate is 60/40 at half size: k = 0.5 in every fold (up to
    # the drift of held weights between rebalances), chosen on earlier bars only
    k_oos = float(r["regime_aware"].std(ddof=1) / r["static_60_40"].std(ddof=1))
    assert k_oos == pytest.approx(0.5, abs=1e-5)
    np.testing.assert_allclose(res.folds["vol_matched_scale"], 0.5, rtol=1e-3)
    assert res.baselines.loc[VOL_MIX, "scale"] == pytest.approx(k_oos, rel=1e-3)
    assert np.corrcoef(r[VOL_MIX], r["static_60_40"])[0, 1] > 0.9999
    np.testing.assert_allclose(r[VOL_MIX], k_oos * r["static_60_40"], atol=1e-4)
    assert res.summary.loc[VOL_MIX, "volatility"] == pytest.approx(
        res.summary.loc["regime_aware", "volatility"], rel=1e-3
    )
    assert res.rf_label == "CASH"
    # (c) the benchmark is the third row of the baselines' table, with its bootstrap
    assert list(res.baselines.index) == [AVG_MIX, VOL_MIX, VOL_MIX_IS, "static_60_40"]
    # the in-sample variant: one k from the OOS bars themselves (0.5: half-size 60/40)
    assert res.baselines.loc[VOL_MIX_IS, "scale"] == pytest.approx(0.5, rel=1e-3)
    assert res.significance["sharpe_diff_vs_static_60_40"] == res.significance["sharpe_diff"]
    # the cost table carries both baselines, at the page's rf
    assert {f"sharpe_diff_vs_{AVG_MIX}", f"sharpe_diff_vs_{VOL_MIX}"} <= set(res.costs.columns)
    assert res.costs.attrs["rf_label"] == "CASH"


def test_post_warmup_statistics_start_at_the_first_fit():
    """A strategy identical to 60/40 in warm-up: the headline starts at the first fit bar
    (equity base) and its first return is the next bar's."""
    idx = pd.bdate_range("2020-01-01", periods=8)
    eq = pd.DataFrame(
        {
            "static_60_40": [100.0, 101.0, 99.0, 100.0, 102.0, 101.0, 103.0, 104.0],
            "regime_aware": [100.0, 101.0, 99.0, 100.0, 101.0, 101.5, 101.0, 102.0],
        },
        index=idx,
    )
    state = np.array([-1, -1, -1, 0, 0, 1, 1, 0])  # first fit at bar 3
    res = SimpleNamespace(
        equity=eq,
        regimes=pd.DataFrame({"state": state}, index=idx),
        fills=pd.DataFrame(columns=["timestamp", "strategy", "symbol", "qty", "price"]),
        weights=eq * 0.0,
        prices=eq,
    )
    assert evaluation_start(res.regimes) == idx[3]
    view = after_warmup(res)
    assert view is not None and view.start == idx[3]
    post = summary_table(view.equity, view.fills, 252, 0.0)
    e = eq["regime_aware"].to_numpy()
    r = e[4:] / e[3:-1] - 1.0  # bars 4..7 over bar 3's close
    assert post.loc["regime_aware", "total_return"] == pytest.approx(e[-1] / e[3] - 1.0)
    sharpe = r.mean() / r.std(ddof=1) * np.sqrt(252)
    assert post.loc["regime_aware", "sharpe"] == pytest.approx(sharpe)
    dd = 1.0 - e[3:] / np.maximum.accumulate(e[3:])
    assert post.loc["regime_aware", "max_drawdown"] == pytest.approx(dd.max())
    assert after_warmup(SimpleNamespace(equity=eq.iloc[3:], regimes=res.regimes.iloc[3:])) is None


def test_vol_matched_scale_is_chosen_on_earlier_bars_only(no_timing):
    """Each fold's k by hand: the candidate's realised volatility over the OOS bars before
    the fold (over all earlier bars for the first fold) over 60/40's on the same bars."""
    res = no_timing
    # the candidate holds one mix in every state, so its walk-forward run is its backtest
    bt = run_backtest(_config(), panel=_panel())
    r = bt.equity / bt.equity.shift(1) - 1.0
    starts = [bt.equity.index.get_loc(t) for t in res.folds["test_start"]]
    s0, hand = starts[0], []
    for s in starts:
        rows = slice(s0 + 1, s) if s - s0 - 1 >= 63 else slice(1, s)
        a, b = r["regime_aware"].iloc[rows], r["static_60_40"].iloc[rows]
        hand.append(a.std(ddof=1) / b.std(ddof=1))  # cash never moves: k = the vol ratio
    assert len(hand) >= 3
    np.testing.assert_allclose(res.folds["vol_matched_scale"], hand, rtol=1e-9)


def test_scale_for_volatility_and_training_scales_hand_computed():
    rng = np.random.default_rng(1)
    mix, cash = rng.normal(3e-4, 0.01, 300), rng.normal(1e-4, 1e-4, 300)
    target = 0.004
    k = scale_for_volatility(target, mix, cash)
    assert np.std(k * (mix - cash) + cash, ddof=1) == pytest.approx(target, rel=1e-12)
    assert scale_for_volatility(0.004, mix, None) == pytest.approx(0.004 / mix.std(ddof=1))
    assert scale_for_volatility(0.01, np.zeros(5), None) == 1.0  # nothing to scale
    # segments at bars 100 and 200, evaluation from bar 50: the first segment has 49 < 63
    # realised bars, so its target reads rows 1..99; the second reads rows 51..199
    strat = 0.5 * mix
    strat[51:200] = 0.25 * mix[51:200]
    ks = training_scales(strat, mix, None, [100, 200], 50)
    assert ks[0] == pytest.approx(strat[1:100].std(ddof=1) / mix[1:100].std(ddof=1))
    assert ks[1] == pytest.approx(0.25)
    # no look-ahead: returns from a segment's first bar on do not move its k
    later = strat.copy()
    later[100:] *= 7.0
    assert training_scales(later, mix, None, [100], 50)[0] == ks[0]


def test_scheduled_mix_changes_its_mix_at_the_segment_starts():
    from engine.analysis.baselines import ScheduledMix
    from engine.core.policy_nb import schedule_targets_nb
    from engine.ground import layout as L

    m = ScheduledMix("x", (0, 4), ({"SPX": 1.0}, {"SPX": 0.25, "CASH": 0.75}), None)
    p = m.params(("SPX", "UST10", "CASH"), ())
    assert p[L.SP_KIND] == L.POLICY_SCHEDULE and p[L.SP_N_STATES] == 2
    target = np.zeros(3)
    for t, want in (
        (0, [1.0, 0, 0]),
        (3, [1.0, 0, 0]),
        (4, [0.25, 0, 0.75]),
        (99, [0.25, 0, 0.75]),
    ):
        schedule_targets_nb(t, p, target)
        np.testing.assert_allclose(target, want)


def test_cv_disabled_selects_nothing_and_deflates_for_one_trial(no_timing):
    """With ``validation.cv`` disabled no candidate is chosen among the presets: the ``_cv``
    series is the first candidate in every fold, and the deflated Sharpe counts one trial
    (it counted the 4 presets that no selection ever compared)."""
    assert no_timing.significance["n_trials"] == 1.0
    assert set(no_timing.cv_choices["chosen"]) == {"as_configured"}
    assert no_timing.cv_scores.empty

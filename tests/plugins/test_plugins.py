"""Plug-ins in both drivers: named context, user features, exogenous files, estimator and
user-filter detectors. Each example runs through the compiled driver and through the
streaming driver the way paper trading drives it (``from_prepared(refit_online=True)``,
exogenous values passed per bar) and must give identical targets, fills and equity."""

from __future__ import annotations

import numba as nb
import numpy as np
import pandas as pd
import pytest

from engine.core.backtest import prepare, run_strategy_raw
from engine.core.spec import CostModel, cost_table
from engine.core.streaming import StreamingDriver, outputs_to_run, replay
from engine.features.exog import add_exog
from engine.ground.bars import BarPanel
from engine.plugins.context_nb import cash, equity, feature, history, position, prob, weight
from engine.regimes.config import HMMDetectorConfig, NoDetectorConfig
from engine.regimes.inputs import Schedule
from strategies.features_example import CorrelationTilt, ewm_momentum, rolling_corr
from strategies.momentum import CompiledTrend, PythonTrend
from strategies.regime_switching import RegimeSwitching
from strategies.sklearn_detector import random_forest_detector
from strategies.vix_detector import vix_detector

TABLE = {
    "calm": {"SPX": 0.8, "UST10": 0.2},
    "stressed": {"SPX": 0.2, "UST10": 0.8},
}


def _costs(panel: BarPanel) -> np.ndarray:
    return cost_table(panel.symbols, CostModel(commission_bps=1.0, slippage_bps=2.0))


def _streamed(prep, strategy):
    drv = StreamingDriver.from_prepared(prep, strategy, refit_online=True)
    return outputs_to_run(strategy.name, prep.panel, replay(drv, prep.panel))[1]


def assert_same_run(a: tuple, b: tuple) -> None:
    """Identical equity, cash, decisions (bars, targets, orders), posterior, states, costs
    and fills."""
    for i in range(10):
        np.testing.assert_array_equal(np.asarray(a[i]), np.asarray(b[i]), err_msg=f"output {i}")


@pytest.fixture(scope="module")
def panel(bundled) -> BarPanel:
    return bundled.select(["SPX", "UST10"]).slice("2004-01-01", "2011-12-31")


def vix_file(panel: BarPanel, path) -> pd.DataFrame:
    """A VIX-like daily series (annualised trailing vol of SPX, in points), dated at
    each bar, written to CSV with a blank release and returned."""
    r = np.diff(np.log(panel.close[:, 0]), prepend=np.log(panel.close[0, 0]))
    vix = 100.0 * np.sqrt(252.0 * pd.Series(r * r).ewm(halflife=10).mean().to_numpy())
    df = pd.DataFrame({"date": panel.index.strftime("%Y-%m-%d"), "VIX": vix})
    df.loc[5, "VIX"] = np.nan
    df.to_csv(path, index=False)
    return df


def test_history_strategy_python_equals_compiled_in_both_drivers(panel):
    prep = prepare(panel, NoDetectorConfig().build(panel), _costs(panel))
    compiled = run_strategy_raw(prep, CompiledTrend("trend"))
    assert_same_run(compiled, _streamed(prep, CompiledTrend("trend")))
    python = _streamed(prep, PythonTrend("trend"))
    assert_same_run(compiled, python)
    # the rule did trade both ways (the test is not vacuous)
    spx = compiled.weights(panel.close)[:, 0]
    assert spx.max() > 0.9 and spx[300:].min() < 0.1


def test_named_context_reads_what_slot_arithmetic_reads(panel):
    seen: list[tuple[float, float, float, bool, float, float]] = []

    class Probe:
        name, rebalance = "probe", "M"

        def on_regime_change(self, ctx):
            return None

        def on_bar(self, ctx):
            h = ctx.history("SPX", "close", 60)
            seen.append(
                (
                    ctx.feature("SPX", "rsi"),
                    ctx.features[5],  # F_RSI of asset 0, the old way
                    h[-1],
                    not h.flags.writeable,
                    ctx.position("SPX") * ctx.close[0] + ctx.position("UST10") * ctx.close[1],
                    ctx.equity - ctx.cash,
                )
            )
            assert h.shape[0] == min(60, ctx.bar + 1)
            assert ctx.prob("calm") == ctx.posterior[0]
            return {"SPX": 0.5, "UST10": 0.5} if ctx.bar == 0 else None

    det = HMMDetectorConfig(market="SPX", n_restarts=1, min_train=300).build(panel)
    prep = prepare(panel, det, _costs(panel))
    drv = StreamingDriver.from_prepared(prep, Probe())
    replay(drv, panel)
    arr = np.array(seen)
    np.testing.assert_array_equal(arr[:, 0], arr[:, 1])
    np.testing.assert_array_equal(arr[:, 2], panel.close[:, 0])  # window ends at t
    assert arr[:, 3].all()
    np.testing.assert_allclose(arr[:, 4], arr[:, 5], rtol=1e-12)


def test_user_features_in_detector_and_strategy_both_drivers(panel):
    corr = rolling_corr("SPX", "UST10", 63)
    mom = ewm_momentum(63.0)
    cfg = HMMDetectorConfig(
        market="SPX",
        features=("logret", "SPX.ewm_mom", corr.name),
        n_states=2,
        n_restarts=1,
        min_train=400,
        refit_every=250,
    )
    from engine.features.user import with_inputs

    aug = with_inputs(panel, [corr, mom])
    det = cfg.build(aug)
    assert min(det.inputs.src) < 0  # the user features are detector inputs
    prep = prepare(panel, det, _costs(panel), user_features=[corr, mom])
    two = {"calm": TABLE["calm"], "volatile": TABLE["stressed"]}
    for strat in (CorrelationTilt("tilt"), RegimeSwitching("ra", two, {"SPX": 0.6, "UST10": 0.4})):
        compiled = run_strategy_raw(prep, strat)
        assert_same_run(compiled, _streamed(prep, strat))
    c = prep.panel.exog[:, prep.panel.exog_names.index(corr.name)]
    assert np.isnan(c[:63]).all() and np.isfinite(c[64:]).all()
    r = np.diff(np.log(panel.close[100 - 63 : 101]), axis=0)
    np.testing.assert_allclose(c[100], np.corrcoef(r[:, 0], r[:, 1])[0, 1], rtol=1e-10)


def test_exogenous_file_vix_detector_compiled_filter_both_drivers(panel, tmp_path):
    vix_file(panel, tmp_path / "vix.csv")
    aug = add_exog(panel, tmp_path / "vix.csv", columns=["VIX"], lag="1D")
    x = aug.exog[:, aug.exog_column("VIX")]
    assert np.isnan(x[0])  # released at the bar's date, known one day later
    det = vix_detector(aug, schedule=Schedule(min_train=252, refit_every=252, skip=0))
    prep = prepare(aug, det, _costs(aug))
    strat = RegimeSwitching("ra", TABLE, {"SPX": 0.6, "UST10": 0.4})
    compiled = run_strategy_raw(prep, strat)
    assert_same_run(compiled, _streamed(prep, strat))
    assert (compiled[7] == 1).any() and (compiled[7] == 0).any()


def test_sklearn_random_forest_detector_both_drivers(panel):
    det = random_forest_detector(
        panel, n_states=2, n_estimators=10, schedule=Schedule(min_train=504, refit_every=504)
    )
    prep = prepare(panel, det, _costs(panel))
    assert prep.detector.labels == ("calm", "volatile")
    strat = RegimeSwitching(
        "ra", {"calm": TABLE["calm"], "volatile": TABLE["stressed"]}, {"SPX": 0.6, "UST10": 0.4}
    )
    compiled = run_strategy_raw(prep, strat)
    assert_same_run(compiled, _streamed(prep, strat))
    raw = compiled[6]
    assert (raw[:504] == -1).all() and (raw[504:] >= 0).all()
    # states in ascending volatility: the "volatile" bars have higher realised vol
    r = np.diff(np.log(panel.close[:, 0]), prepend=np.nan)
    vol = pd.Series(r).rolling(21).std().shift(-21).to_numpy()
    ok = (raw >= 0) & np.isfinite(vol)
    assert np.nanmean(vol[ok & (raw == 1)]) > np.nanmean(vol[ok & (raw == 0)])


@nb.njit(cache=True)
def _probe_policy_nb(t, ctx, sparams, sstate, target):  # type: ignore[no-untyped-def]
    """Equal weight once; records the named accessors' values of the last bar."""
    eq, bd = int(sparams[0]), int(sparams[1])
    sstate[1] = prob(ctx, int(sparams[2]))
    sstate[2] = position(ctx, eq)
    sstate[3] = weight(ctx, bd)
    sstate[4] = cash(ctx)
    sstate[5] = equity(ctx)
    sstate[6] = feature(ctx, int(sparams[3]))
    sstate[7] = history(ctx, eq, 5).sum()
    target[:] = 0.5
    go = sstate[0] == 0.0
    sstate[0] = 1.0
    return go


class CompiledProbe:
    name, rebalance, uses_builtin_features = "probe", None, True
    policy = _probe_policy_nb

    def params(self, symbols, labels, names):  # type: ignore[no-untyped-def]
        return np.array(
            [
                names.asset("SPX"),
                names.asset("UST10"),
                names.state("volatile"),
                names.feature("SPX", "vol_slow"),
            ]
        )

    def state_size(self) -> int:
        return 8


def test_njit_named_accessors_read_the_bar(panel):
    det = HMMDetectorConfig(market="SPX", n_states=2, n_restarts=1, min_train=300).build(panel)
    prep = prepare(panel, det, _costs(panel))
    raw = run_strategy_raw(prep, CompiledProbe())
    drv = StreamingDriver.from_prepared(prep, CompiledProbe())
    outs = replay(drv, panel)
    s, port, last = drv.state.sstate, drv.state.port, outs[-1]
    assert s[1] == last.posterior[1] and s[1] == raw[5][-1, 1]
    assert s[2] == port[4] and s[4] == last.cash and s[5] == last.equity
    assert s[3] == last.weights[1]
    assert s[6] == prep.features[-1, 2]  # SPX vol_slow, the feature row's slot 2
    assert s[7] == panel.close[-5:, 0].sum()  # history ends at the last bar


class PythonCorrelationTilt:
    """The compiled CorrelationTilt as callbacks, reading the user feature by name."""

    name, rebalance = "tilt", "M"

    def __init__(self) -> None:
        self.features = CorrelationTilt("x").features
        self.started = False

    def on_regime_change(self, ctx):  # type: ignore[no-untyped-def]
        return None

    def on_bar(self, ctx):  # type: ignore[no-untyped-def]
        if self.started and not ctx.new_period:
            return None
        self.started = True
        w = 0.8 if ctx.feature(None, "corr_spx_ust10") > 0.0 else 0.6
        return {"SPX": w, "UST10": 1.0 - w}


def test_python_strategy_reads_user_feature_by_name(panel):
    feats = CorrelationTilt("tilt").features
    prep = prepare(panel, NoDetectorConfig().build(panel), _costs(panel), user_features=feats)
    compiled = run_strategy_raw(prep, CorrelationTilt("tilt"))
    assert_same_run(compiled, _streamed(prep, PythonCorrelationTilt()))
    assert len(set(np.round(compiled.targets[:, 0], 6))) == 2


def test_config_custom_detector_and_strategy_through_the_api():
    """TOML-level plug-ins: a custom detector factory and a custom strategy; the API run
    equals the streaming driver's replay (the paper-trading path)."""
    from engine.api import prepare_run, run_backtest
    from engine.assemble import build_strategy, load_panel
    from engine.config import parse_config

    raw = {
        "data": {"symbols": ["SPX", "UST10"], "start": "2004-01-01", "end": "2009-12-31"},
        "detector": {
            "kind": "custom",
            "target": "strategies.sklearn_detector:random_forest_detector",
            "params": {"n_states": 2, "n_estimators": 10},
        },
        "strategies": [
            {
                "kind": "custom",
                "name": "trend",
                "target": "strategies.momentum:CompiledTrend",
                "params": {"lookback": 126},
            },
            {
                "kind": "regime",
                "name": "ra",
                "table": {"calm": {"SPX": 0.8, "UST10": 0.2}, "volatile": {"UST10": 1.0}},
                "warmup": {"SPX": 0.6, "UST10": 0.4},
            },
        ],
    }
    result = run_backtest(raw, progress=False)
    assert set(result.regimes.label.unique()) >= {"calm", "volatile"}
    cfg = parse_config(raw)
    prep = prepare_run(cfg, load_panel(cfg))
    for scfg in cfg.strategies:
        streamed = _streamed(prep, build_strategy(scfg))
        run = result.runs[scfg.name]
        np.testing.assert_array_equal(streamed[0], run.equity.to_numpy())
        dense = streamed.dense_targets(prep.panel.n_assets)
        np.testing.assert_array_equal(np.isnan(dense), run.targets.isna().to_numpy())

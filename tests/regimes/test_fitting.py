"""Label ordering, refit failure handling, supervised embargo, config parsing."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import TypeAdapter, ValidationError

from data_feeds.synthetic import generate_regime_panel
from engine.core.backtest import feature_history
from engine.core.spec import Features
from engine.ground import layout as L
from engine.regimes.config import DetectorConfig, HMMDetectorConfig
from engine.regimes.hmm import EMFit, GaussianHMMDetector, unpack_gaussian
from engine.regimes.inputs import ConstantInput, Inputs, Schedule, resolve_inputs
from engine.regimes.supervised import SupervisedDetector, forward_vol_labels

ADAPTER: TypeAdapter[object] = TypeAdapter(DetectorConfig)


def _three_state(n: int = 1500, seed: int = 4):  # type: ignore[no-untyped-def]
    panel, truth = generate_regime_panel(
        n,
        [[6e-4, 1e-4], [0.0, 1e-4], [-1.5e-3, 3e-4]],
        [[0.006, 0.003], [0.015, 0.004], [0.035, 0.006]],
        mean_dwell=[120.0] * 3,
        seed=seed,
        symbols=("EQ", "BD"),
    )
    return panel, truth, feature_history(panel, Features().array())


def test_hmm_states_in_ascending_volatility_after_every_refit() -> None:
    panel, _, feats = _three_state()
    det = HMMDetectorConfig(
        market="EQ",
        min_train=400,
        refit_every=300,
        n_restarts=2,
        n_iter=50,
        features=("logret", "log_vol_fast"),
    ).build(panel)
    assert det.labels == ("calm", "volatile", "crisis")
    prev = None
    for b in det.fit_bars(feats.shape[0]):
        prev = det.fit(feats[:b], panel.exog[:b], prev)
        g = unpack_gaussian(prev)
        vol_mean = g["means"][:, 1]  # second input: log_vol_fast
        assert np.all(np.diff(vol_mean) > 0), vol_mean
        assert int(prev[L.D_KIND]) == L.DET_HMM
        np.testing.assert_allclose(g["trans"].sum(axis=1), 1.0)
        np.testing.assert_allclose(g["start"].sum(), 1.0)


@pytest.mark.parametrize("kind", ["gmm", "kmeans", "jump"])
def test_clustering_states_ordered_by_volatility(kind: str) -> None:
    panel, _truth, feats = _three_state()
    det = ADAPTER.validate_python(  # type: ignore[attr-defined]
        {"kind": kind, "market": "EQ", "min_train": 400, "refit_every": 0}
    ).build(panel)
    p = det.fit(feats[:1200], panel.exog[:1200], None)
    d = int(p[L.DX_N_IN])
    o = L.DX_INPUTS + L.DX_IN_STRIDE * d
    if kind == "jump":
        cent = p[o : o + 3 * d].reshape(3, d)
    else:
        cent = unpack_gaussian(p)["means"]
    assert np.all(np.diff(cent[:, 1]) > 0)


def test_keep_previous_model_when_refit_is_worse(monkeypatch: pytest.MonkeyPatch) -> None:
    from hmmlearn.hmm import GaussianHMM

    panel, _, feats = _three_state()
    inputs = resolve_inputs(panel, "EQ", ["logret", "log_vol_fast"])
    det = GaussianHMMDetector(inputs, schedule=Schedule(400, 300), n_restarts=3)
    prev = det.fit(feats[:1000], panel.exog[:1000], None)

    def poor(self, z, warm, salt=0):  # type: ignore[no-untyped-def]
        m = GaussianHMM(3, "full", n_iter=1, random_state=5, init_params="stmc").fit(z[::7])
        fit = EMFit(m.score(z), m.startprob_, m.transmat_, m.means_, m.covars_, 1)
        return [(fit.score, fit)]

    def failing(self, z, warm, salt=0):  # type: ignore[no-untyped-def]
        return []

    monkeypatch.setattr(GaussianHMMDetector, "_candidates", poor)
    assert det.fit(feats[:1010], panel.exog[:1010], prev) is prev  # worse: keep previous
    lenient = GaussianHMMDetector(inputs, schedule=Schedule(400, 300), keep_margin=1e9)
    assert lenient.fit(feats[:1010], panel.exog[:1010], prev) is not prev
    monkeypatch.setattr(GaussianHMMDetector, "_candidates", failing)
    assert det.fit(feats[:1010], panel.exog[:1010], prev) is prev  # every restart failed
    first = det.fit(feats[:1010], panel.exog[:1010], None)  # no previous: fallback model
    assert np.all(np.isfinite(first)) and int(first[L.D_KIND]) == L.DET_HMM


def test_constant_inputs_are_refused_at_the_first_fit_and_keep_the_model_at_a_refit() -> None:
    """Issue 23: a first fit on inputs that never move would give a uniform posterior (the
    last state on every bar); it is a clear error naming the input and the window. A refit
    on a window that stood still keeps the model so far."""
    feats = np.zeros((600, L.N_FEAT_ASSET))
    feats[:, L.F_VOL_FAST] = 0.01
    det = GaussianHMMDetector(
        Inputs((L.F_LOGRET, L.F_VOL_FAST), (False, True), ("logret", "log_vol_fast"))
    )
    with pytest.raises(ConstantInput, match=r"input 'logret' is constant .*bars 21 to 599"):
        det.fit(feats, np.zeros((600, 0)), None)
    rng = np.random.default_rng(0)
    moving = feats.copy()
    moving[:, L.F_LOGRET] = rng.normal(0, 0.01, 600)
    moving[:, L.F_VOL_FAST] = np.abs(rng.normal(0.01, 0.002, 600))
    first = det.fit(moving, np.zeros((600, 0)), None)
    assert np.all(np.isfinite(first))
    np.testing.assert_array_equal(det.fit(feats, np.zeros((600, 0)), first), first)


def test_supervised_labels_stop_a_horizon_before_the_fit_bar() -> None:
    r = np.random.default_rng(0).normal(0, 0.01, 300)
    rows, y = forward_vol_labels(r, horizon=10, k=3, embargo=5)
    assert rows.max() + 10 + 5 < 300
    assert set(np.unique(y)) == {0, 1, 2}
    # rows whose forward outcome is not known at the fit bar are not trained on: their
    # inputs can be anything (their returns do serve as earlier rows' outcomes)
    panel, _, feats = _three_state(800)
    inputs = resolve_inputs(panel, "EQ", ["logret", "log_vol_fast"])
    det = SupervisedDetector(inputs, market_col=L.F_LOGRET, horizon=21, schedule=Schedule(300))
    a = det.fit(feats[:700], panel.exog[:700], None)
    tampered = feats[:700].copy()
    tampered[-21:, L.F_VOL_FAST] *= 50.0
    b = det.fit(tampered, panel.exog[:700], None)
    np.testing.assert_array_equal(a, b)


def test_config_parses_every_kind_and_rejects_unknown_keys() -> None:
    panel, _, _ = _three_state(300)
    for kind in ("rule", "hmm", "gmm", "kmeans", "jump", "supervised", "bocpd"):
        cfg = ADAPTER.validate_python({"kind": kind, "market": "EQ"})
        det = cfg.build(panel)  # type: ignore[attr-defined]
        assert len(det.labels) == det.n_states
    with pytest.raises(ValidationError, match="n_statez"):
        ADAPTER.validate_python({"kind": "hmm", "n_statez": 3})
    with pytest.raises(ValueError, match="unknown feature"):
        HMMDetectorConfig(market="EQ", features=("log_volfast",)).build(panel)
    with pytest.raises(ValueError, match="exogenous"):
        HMMDetectorConfig(market="EQ", features=("exog.VIX",)).build(panel)

"""The GRU detector end to end: no look-ahead (same property test as the other detectors),
determinism, stable state order, and the missing-torch error."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_feeds.synthetic import two_state_example
from engine.core.spec import Smoothing
from engine.ground.bars import BarPanel, DataError
from engine.regimes import deep
from engine.regimes.config import GRUDetectorConfig
from tests.regimes.helpers import with_noise_after

N_BARS = 700
FAST = {
    "market": "EQ",
    "n_states": 2,
    "min_train": 250,
    "refit_every": 150,
    "skip": 21,
    "epochs": 15,
    "refit_epochs": 5,
    "batch": 8,
    "seq_len": 48,
    "burn_in": 16,
    "replay": 32,
}


@functools.lru_cache(maxsize=1)
def _panel() -> BarPanel:
    return two_state_example(N_BARS, 3.0, 60.0, seed=11)[0]


def _run(panel: BarPanel, **over: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pytest.importorskip("torch")
    from tests.regimes.helpers import run_detector

    det = GRUDetectorConfig(**{**FAST, **over}).build(panel)  # type: ignore[arg-type]
    return run_detector(panel, det, Smoothing(0.6, 3, 2))


@functools.cache
def _full() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _run(_panel())


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_no_lookahead(data: st.DataObject) -> None:
    t = data.draw(st.integers(min_value=260, max_value=N_BARS - 2), label="t")
    full = _full()
    trunc = _run(_panel().head(t + 1))
    noisy = _run(with_noise_after(_panel(), t, seed=t))
    for other in (trunc, noisy):
        for a, b in zip(other, full):
            np.testing.assert_array_equal(a[: t + 1], b[: t + 1])


def test_detects_the_volatile_state() -> None:
    """Deterministic (seeded) and useful: the filtered state tracks the true regime."""
    panel, truth = two_state_example(N_BARS, 3.0, 60.0, seed=11)
    trained = {"label_source": "hmm"}
    post, raw, _ = _run(panel, **trained)
    again = _run(panel, **trained)
    np.testing.assert_array_equal(again[0], post)
    m = raw >= 0
    assert m.sum() > 300
    recall = [float((raw[m][truth[m] == s] == s).mean()) for s in (0, 1)]
    assert min(recall) > 0.6, recall  # state 1 = the high-volatility regime (vol order)


def test_forward_vol_labels_fit() -> None:  # the default labels: a short, valid fit
    post, raw, _ = _run(_panel(), label_source="forward_vol", horizon=10)
    assert np.allclose(post.sum(axis=1), 1.0)
    assert (raw >= 0).any()


def test_missing_torch_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(deep, "torch_available", lambda: False)
    with pytest.raises(DataError, match=r'pip install -e "\.\[deep\]"'):
        GRUDetectorConfig(**FAST).build(_panel())  # type: ignore[arg-type]


def test_missing_torch_through_the_cli(monkeypatch: pytest.MonkeyPatch, tmp_path, capsys) -> None:
    from engine.cli import main

    monkeypatch.setattr(deep, "torch_available", lambda: False)
    cfg = tmp_path / "gru.toml"
    cfg.write_text('[detector]\nkind = "gru"\n')
    assert main(["backtest", str(cfg), "--out", str(tmp_path / "run"), "--no-report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "needs PyTorch" in err[0] and ".[deep]" in err[0], err

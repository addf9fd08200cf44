"""The modern panel's exogenous series work as detector inputs by name."""

from __future__ import annotations

import numpy as np
import pytest

from data_feeds import load_bundled
from engine.ground.bars import DataError
from engine.regimes.config import HMMDetectorConfig
from engine.regimes.inputs import resolve_inputs
from tests.regimes.helpers import run_detector


def test_vix_input_resolves_and_flags_march_2020() -> None:
    panel = load_bundled(["SPX", "UST10"], start="2015-01-01")
    inputs = resolve_inputs(panel, "SPX", ["exog.VIX", "exog.log_VIX", "exog.SLOPE_10Y_2Y"])
    assert inputs.src == (-1, -1, -(panel.exog_column("SLOPE_10Y_2Y") + 1))
    assert inputs.log == (False, True, False)
    cfg = HMMDetectorConfig(features=("exog.log_VIX",), n_states=2, min_train=504, refit_every=0)
    post, raw, _ = run_detector(panel, cfg.build(panel))  # one fit on 2015-16, then online
    march = (panel.index >= "2020-03-09") & (panel.index <= "2020-03-31")
    calm = (panel.index >= "2017-03-01") & (panel.index <= "2017-12-31")  # VIX 9-16
    assert (raw[march] == 1).all() and post[march, 1].mean() > 0.95
    assert np.mean(raw[calm] == 0) > 0.95


def test_unknown_exog_name_is_one_line() -> None:
    panel = load_bundled(["SPX"], start="2020-01-01")
    with pytest.raises(DataError, match="unknown exogenous series 'VIX9D'; panel has VIX, "):
        resolve_inputs(panel, "SPX", ["exog.VIX9D"])

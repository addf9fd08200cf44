"""On the bundled real panel, the default HMM puts the 2008-09 crash in its crisis state."""

from __future__ import annotations

import numpy as np
import pytest

from engine.regimes.config import HMMDetectorConfig
from tests.regimes.helpers import run_detector


def test_default_hmm_calls_2008_09_a_crisis() -> None:
    try:
        from data_feeds import load_bundled
    except ImportError:  # pragma: no cover - the bundled dataset ships with data_feeds
        pytest.skip("data_feeds.load_bundled is not available: no bundled real data")
    panel = load_bundled()
    det = HMMDetectorConfig().build(panel)  # market SPX, [logret, log_vol_fast], K = 3
    assert det.labels[-1] == "crisis"
    post, raw, _ = run_detector(panel, det)
    window = (panel.index >= "2008-09-01") & (panel.index <= "2009-03-31")
    crisis = det.n_states - 1
    assert np.mean(raw[window] == crisis) >= 0.75
    assert post[window, crisis].mean() >= 0.75
    # and calm years are mostly not crisis
    calm = (panel.index >= "2004-01-01") & (panel.index <= "2006-12-31")
    assert np.mean(raw[calm] == crisis) <= 0.1

"""A user's Python detector plugs into the streaming driver with a built-in strategy."""

from __future__ import annotations

import numpy as np

from engine.core.spec import CostModel, cost_table
from engine.core.streaming import StreamingDriver, outputs_to_run, replay
from engine.regimes.base import PythonDetector
from strategies.example_detector import VolThresholdDetector
from strategies.regime_switching import RegimeSwitching


def test_python_detector_drives_a_regime_strategy(bundled):
    panel = bundled.slice("2007-01-01", "2009-12-31")
    det = VolThresholdDetector(market=0)
    assert isinstance(det, PythonDetector)
    strat = RegimeSwitching(
        "ra",
        table={"calm": {"SPX": 0.8, "UST10": 0.2}, "volatile": {"SPX": 0.2, "UST10": 0.8}},
        warmup={"SPX": 0.6, "UST10": 0.4},
    )
    costs = cost_table(panel.symbols, CostModel())
    drv = StreamingDriver(panel.symbols, strat, det, costs, exog_names=panel.exog_names)
    outs = replay(drv, panel)
    run, raw = outputs_to_run("ra", panel, outs)
    regime = raw[7]
    assert (regime[:20] == -1).all()  # warm-up: the detector hasn't spoken
    in_crisis = panel.index.to_series().between("2008-10-01", "2008-12-31").to_numpy()
    assert (regime[in_crisis] == 1).mean() > 0.9  # late 2008: volatile
    spx = run.weights["SPX"].to_numpy()
    assert spx[in_crisis].max() < 0.35 and spx[:200].max() > 0.5  # and it de-risked
    assert np.allclose(raw[5].sum(axis=1), 1.0)

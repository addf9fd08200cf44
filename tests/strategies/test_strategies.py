"""User strategies: the compiled and Python forms of the example agree; protocols hold."""

from __future__ import annotations

import numpy as np
import pytest

from engine.core.backtest import prepare, run_strategy_raw
from engine.core.spec import CostModel, cost_table
from engine.core.streaming import StreamingDriver, outputs_to_run, replay
from engine.plugins.strategy import CompiledStrategy, PythonStrategy
from engine.regimes.rule import RuleDetector
from strategies.example import CompiledTilt, PythonTilt
from strategies.regime_switching import RegimeSwitching


def test_python_and_compiled_example_agree(bundled):
    panel = bundled.head(1200)
    prep = prepare(
        panel,
        RuleDetector(history=300, min_history=100),
        cost_table(panel.symbols, CostModel(commission_bps=5)),
    )
    comp = CompiledTilt("tilt")
    py = PythonTilt("tilt")
    assert isinstance(comp, CompiledStrategy) and isinstance(py, PythonStrategy)
    a = run_strategy_raw(prep, comp)
    _, b = outputs_to_run("tilt", panel, replay(StreamingDriver.from_prepared(prep, py), panel))
    # same decisions and the same arithmetic in the same kernels: identical
    assert np.array_equal(a[4], b[4])
    assert np.array_equal(a[0], b[0])
    # and the compiled form runs in the streaming driver too
    _, c = outputs_to_run("tilt", panel, replay(StreamingDriver.from_prepared(prep, comp), panel))
    assert np.array_equal(a[0], c[0])


def test_regime_table_rejects_unknown_labels_and_symbols():
    bad = RegimeSwitching(
        "r", table={"calm": {"SPX": 1.0}, "bogus": {"SPX": 1.0}}, warmup={"SPX": 1.0}
    )
    with pytest.raises(ValueError, match="'bogus' is not a regime"):
        bad.params(("SPX",), ("calm", "volatile"))
    missing = RegimeSwitching("r", table={"calm": {"SPX": 1.0}}, warmup={"SPX": 1.0})
    with pytest.raises(ValueError, match="no row for volatile"):
        missing.params(("SPX",), ("calm", "volatile"))
    unknown = RegimeSwitching("r", table={"calm": {"XYZ": 1.0}}, warmup={"SPX": 1.0})
    with pytest.raises(ValueError, match="unknown symbol 'XYZ'"):
        unknown.params(("SPX",), ("calm",))


def test_regime_table_rows_in_state_order_and_finite():
    """Labels or state numbers as keys; rows in state order, symbols in data order; a
    later key for the same state wins (table order); non-finite weights are refused."""
    strat = RegimeSwitching(
        "r",
        table={"1": {"B": 0.25}, "calm": {"A": 0.5, "B": 0.5}, "crisis": {"B": 1.0}},
        warmup="equal",
    )
    rows = strat.rows(("A", "B"), ("calm", "volatile", "crisis"))
    assert rows.dtype == np.float64
    assert np.array_equal(rows, [[0.5, 0.5], [0.0, 0.25], [0.0, 1.0]])
    twice = RegimeSwitching("r", table={"calm": {"A": 1.0}, "0": {"B": 1.0}}, warmup="equal")
    assert np.array_equal(twice.rows(("A", "B"), ("calm",)), [[0.0, 1.0]])
    nan = RegimeSwitching("r", table={"calm": {"A": float("nan")}}, warmup="equal")
    with pytest.raises(ValueError, match=r"table\.calm: weights must be finite"):
        nan.rows(("A",), ("calm",))

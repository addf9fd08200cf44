"""The API's shortcuts give what the general paths give (issue 14: per-call overhead)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.analysis.metrics import summary_reference, summary_table
from engine.api import compute_metrics, run_backtest
from engine.assemble import costs_for
from engine.config import ConfigError, parse_config
from engine.core.spec import cost_table
from tests.conftest import random_panel


@pytest.mark.parametrize(
    "costs",
    [
        {},
        {"commission_bps": 5.0, "half_spread_bps": 1.5, "lot_size": 1.0},
        {"commission_bps": 5.0, "symbols": {"A1": {"commission_bps": 9.0}}},
    ],
)
def test_cost_table_shortcut_equals_cost_table(costs):
    cfg = parse_config({"costs": costs})
    syms = ("A0", "A1", "A2")
    want = cost_table(syms, cfg.costs.default(), cfg.costs.per_symbol())
    got = costs_for(cfg, syms)
    assert got.dtype == want.dtype and got.flags["C_CONTIGUOUS"]
    assert np.array_equal(got, want)


def test_cost_errors_are_unchanged():
    panel = random_panel(300, 3)
    cfg = {
        "detector": {"kind": "none"},
        "costs": {"symbols": {"ZZZ": {"commission_bps": 1.0}}},
        "strategies": [{"kind": "static", "name": "ew", "weights": "equal"}],
    }
    with pytest.raises(ConfigError, match=r"^costs: cost overrides for unknown symbols: ZZZ$"):
        run_backtest(cfg, panel=panel, progress=False)


def test_metrics_from_run_arrays_equal_the_tables():
    """compute_metrics (kernel, raw fill records) == summary_table (kernel, fills table) ==
    the per-metric reference on the result's tables, for a config with a constant rf."""
    panel = random_panel(900, 4, seed=3)
    res = run_backtest(
        {
            "detector": {"kind": "none"},
            "costs": {"commission_bps": 5.0, "half_spread_bps": 2.0, "slippage_bps": 1.0},
            "metrics": {"risk_free": 0.03},
            "strategies": [
                {"kind": "static", "name": "ew", "weights": "equal", "rebalance": "M"},
                {"kind": "static", "name": "w", "weights": "equal", "rebalance": "W"},
            ],
        },
        panel=panel,
        progress=False,
    )
    table = summary_table(res)
    again = compute_metrics(res)
    for name in ("ew", "w"):
        fills = res.fills[res.fills["strategy"] == name]
        ref = summary_reference(res.equity[name], fills, None, (1.03) ** (1 / 252) - 1)
        for k, v in ref.items():
            assert res.metrics[name][k] == pytest.approx(v, rel=1e-12, nan_ok=True), k
            assert table.loc[name, k] == pytest.approx(v, rel=1e-12, nan_ok=True), k
            assert again[name][k] == res.metrics[name][k] or np.isnan(v), k
        assert res.metrics[name]["total_costs"] > 0 and res.metrics[name]["turnover"] > 0

"""Sweeps in batches (one compiled call per shared regime pass) and the built-in loop's
drift check without a context give what the generic loop gives, bit for bit.

The reference is the generic compiled driver (:func:`engine.core.step_nb.run_nb`) with
the built-in policy behind a user-policy wrapper: it builds the policy's context on every
bar and calls the policy, as the built-in loop did before the drift shortcut, one
combination at a time through Python, metrics by :func:`metrics_nb`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numba as nb
import numpy as np
import pytest

from engine.assemble import assemble, load_panel
from engine.config import parse_config
from engine.core.policy_nb import builtin_policy_nb
from engine.core.raw import RawRun
from engine.plugins.context_nb import BarContext
from engine.sweep import FitCache, SerialExecutor, run_sweep
from engine.sweep.config import build_plan
from engine.sweep.metrics_nb import METRIC_NAMES, metrics_nb
from engine.sweep.runner import build_data, fit_all
from engine.sweep.tasks import run_batch, run_chunk, run_one


@nb.njit
def generic_policy(
    t: int, ctx: BarContext, sparams: np.ndarray, sstate: np.ndarray, target: np.ndarray
) -> bool:
    """The built-in policy as a user policy: the generic loop, a context every bar."""
    return builtin_policy_nb(t, ctx, sparams, sstate, target)


TABLE = {
    "calm": {"SPX": 0.7, "UST10": 0.3},
    "volatile": {"SPX": 0.4, "UST10": 0.6},
    "crisis": {"SPX": 0.1, "UST10": 0.6, "CASH": 0.3},
}
WARM = {"SPX": 0.6, "UST10": 0.4}
STRATEGIES: dict[str, Any] = {
    "table": {"kind": "regime", "name": "s", "warmup": WARM, "table": TABLE},
    "blend": {"kind": "regime", "name": "s", "warmup": WARM, "table": TABLE, "blend": True},
    "inverse_vol": {"kind": "inverse_vol", "name": "s", "weights": {"SPX": 0.5, "UST10": 0.5}},
}  # fmt: skip


@pytest.mark.parametrize("kind", list(STRATEGIES))
def test_batched_sweep_equals_the_generic_loop(kind: str) -> None:
    raw: dict[str, Any] = {
        "data": {"end": "2008-12-31"},
        "detector": {"kind": "rule"},
        "strategies": [STRATEGIES[kind]],
        "sweep": {
            "strategy_name": "s",
            "detector": {"smoothing.min_dwell": [0, 5]},
            "strategy": {"drift": [0.0, 0.01, 0.05, 0.2], "rebalance": ["M", "Q"]},
            "costs": {"commission_bps": [1.0, 10.0]},
            "execution": {"trade_band": [0.0, 0.02]},
        },
    }
    cfg = parse_config(raw)
    panel = load_panel(cfg)
    table = run_sweep(cfg, panel=panel, executor=SerialExecutor()).table
    plan = build_plan(cfg)
    base = assemble(cfg, panel, [])
    fits, fit_idx, _ = fit_all(plan, base, SerialExecutor(), FitCache())
    data = build_data(plan, base, fits, fit_idx, share=True)
    generic = replace(
        build_data(plan, base, fits, fit_idx, share=False),
        policies=[generic_policy] * len(data.policies),
    )
    ref = np.empty((plan.n_combos, len(METRIC_NAMES)))
    for i in range(plan.n_combos):
        a, b = run_one(data, i), run_one(generic, i)  # built-in loop vs generic loop
        for field, x, y in zip(RawRun._fields, a, b, strict=True):
            if field != "features":  # not recorded in sweeps: one uninitialised row
                x, y = np.asarray(x), np.asarray(y)
                assert x.shape == y.shape and np.array_equal(x, y, equal_nan=True), (i, field)
        metrics_nb(b[0], b[9], generic.periods_per_year, ref[i])
    rows = np.arange(plan.n_combos)
    got = table[list(METRIC_NAMES)].to_numpy(dtype=float)
    assert got.tobytes() == ref.tobytes()
    assert run_chunk(data, rows).tobytes() == ref.tobytes()
    one_pass = rows[data.combos[:, 6] == data.combos[0, 6]]
    assert 1 < len(one_pass) < plan.n_combos
    assert run_batch(data, one_pass).tobytes() == ref[one_pass].tobytes()
    assert table["n_trades"].min() > 0 and table["n_trades"].nunique() > 1  # runs that trade

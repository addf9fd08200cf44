"""A user njit detector's compiled driver is disk-cached across processes
(:mod:`engine.core.user_driver`): the second process loads it from numba's cache (no
compilation: the dispatcher's cache statistics), and both give ``run_nb``'s bits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from engine.core.user_driver import bound_driver, importable

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys
import numpy as np
import data_feeds
from engine.core.backtest import prepare, run_strategy_raw
from engine.core.spec import CostModel, cost_table
from strategies.regime_switching import RegimeSwitching
from strategies.vix_detector import vix_detector

panel = data_feeds.load_bundled(["SPX", "UST10"], end="2004-12-31")
prep = prepare(panel, vix_detector(panel), cost_table(panel.symbols, CostModel()))
strat = RegimeSwitching("ra", {"calm": {"SPX": 0.8, "UST10": 0.2},
                               "stressed": {"SPX": 0.2, "UST10": 0.8}}, {"SPX": 0.6, "UST10": 0.4})
raw = run_strategy_raw(prep, strat)
drivers = [m for k, m in sys.modules.items() if k.startswith("_regime_engine_driver_")]
(run,) = [m.run_nb for m in drivers]
out = {
    "hits": sum(run.stats.cache_hits.values()),
    "misses": sum(run.stats.cache_misses.values()),
    "equity": raw.equity.tolist(),
    "fills": raw.fills.tolist(),
}
if sys.argv[1] == "reference":  # the same run through run_nb itself (compiled here)
    from engine.core import user_driver
    user_driver._bound.cache_clear()
    real = user_driver.bound_driver
    user_driver.bound_driver = lambda p, u: user_driver.partial(user_driver.run_nb, p, u)
    ref = run_strategy_raw(prep, strat)
    user_driver.bound_driver = real
    out["same_as_run_nb"] = bool(
        np.array_equal(ref.equity, raw.equity) and np.array_equal(ref.fills, raw.fills)
        and np.array_equal(ref.post, raw.post)
    )
print(json.dumps(out))
"""


def child(mode: str, cache: Path) -> dict[str, object]:
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(cache / "numba"),
        "REGIME_ENGINE_DRIVER_CACHE": str(cache / "drivers"),
        "PYTHONPATH": str(ROOT),
    }
    res = subprocess.run(
        [sys.executable, "-c", CHILD, mode], cwd=ROOT, env=env, capture_output=True,
        text=True, check=True,
    )  # fmt: skip
    out: dict[str, object] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def test_second_process_loads_the_user_driver_from_the_cache(tmp_path: Path) -> None:
    first = child("reference", tmp_path)
    assert first["misses"] == 1 and first["hits"] == 0  # compiled (and saved) here
    assert first["same_as_run_nb"] is True
    second = child("plain", tmp_path)
    assert second["hits"] == 1 and second["misses"] == 0  # loaded, nothing compiled
    assert second["equity"] == first["equity"] and second["fills"] == first["fills"]
    assert len(list((tmp_path / "drivers").glob("driver_*.py"))) == 1


def test_functions_not_importable_by_name_run_through_run_nb() -> None:
    import numba as nb

    from engine.core.step_nb import detector_update_nb, run_nb

    @nb.njit
    def local_filter(dparams, dstate, feats, inputs, post):  # type: ignore[no-untyped-def]
        return 0

    assert importable(local_filter) is None and importable(detector_update_nb) is not None
    bound = bound_driver(local_filter, detector_update_nb)
    assert bound.func is run_nb and bound.args == (local_filter, detector_update_nb)  # type: ignore[attr-defined]

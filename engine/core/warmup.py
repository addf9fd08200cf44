"""Compile (or load) every built-in kernel ahead of the first real run.

numba compiles a kernel the first time it is called and, with ``cache=True``, stores it
on disk; a fresh install therefore pays the compile on its first backtest. Run
``python -m engine.core.warmup`` once after installing (or in a container build) to
fill the cache: the built-in pipeline in the compiled driver (static, regime-table and
inverse-vol policies; every built-in detector kernel through one dispatch) and in the
streaming driver. User policies and filters still compile once per process (a loop
specialised on a dispatcher argument can't be disk-cached).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from engine.core.backtest import prepare, run_strategy_raw
from engine.core.spec import CostModel, cost_table
from engine.core.streaming import StreamingDriver, replay
from engine.ground import layout as L
from engine.ground.bars import BarPanel
from engine.regimes.inputs import Schedule, resolve_inputs


class _Table:
    """A minimal built-in-policy strategy (the warm-up can't import ``strategies``)."""

    name, rebalance, uses_builtin_features = "warmup", "M", True

    def __init__(self, kind: int) -> None:
        self.kind = kind

    @property
    def policy(self) -> object:
        from engine.core.policy_nb import builtin_policy_nb

        return builtin_policy_nb

    def params(self, symbols: tuple[str, ...], labels: tuple[str, ...]) -> np.ndarray:
        n = len(symbols)
        p = np.zeros(L.SP_HEADER + n)
        p[L.SP_KIND] = self.kind
        p[L.SP_ON_SCHEDULE] = 1.0
        p[L.SP_HEADER :] = 1.0 / n
        return p

    def state_size(self) -> int:
        return 4


def tiny_panel(t_len: int = 300, n: int = 2) -> BarPanel:
    rng = np.random.default_rng(0)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, (t_len, n)), axis=0))
    return BarPanel(
        pd.bdate_range("2000-01-03", periods=t_len),
        tuple(f"W{j}" for j in range(n)),
        close,
        close,
        close,
        close,
        np.full((t_len, n), 1e6),
    )


def warm() -> float:
    """Run the built-in paths once on a tiny panel; returns the seconds it took."""
    from engine.regimes.hmm import GaussianHMMDetector
    from engine.regimes.rule import NoDetector

    t0 = time.perf_counter()
    panel = tiny_panel()
    costs = cost_table(panel.symbols, CostModel(commission_bps=1.0))
    hmm = GaussianHMMDetector(
        inputs=resolve_inputs(panel, "W0", ["logret", "log_vol_fast"]),
        n_states=2,
        schedule=Schedule(min_train=150, refit_every=100, skip=21),
        n_restarts=1,
    )
    for det in (NoDetector(), hmm):
        prep = prepare(panel, det, costs)
        for kind in (L.POLICY_TABLE, L.POLICY_INVERSE_VOL):
            run_strategy_raw(prep, _Table(kind))  # type: ignore[arg-type]
        replay(StreamingDriver.from_prepared(prep, _Table(L.POLICY_TABLE)), panel.head(40))  # type: ignore[arg-type]
    return time.perf_counter() - t0


if __name__ == "__main__":
    print(f"numba kernels compiled or loaded in {warm():.1f} s")

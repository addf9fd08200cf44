"""End to end through the public API vs vectorbt, backtrader and a plain numba loop.

Workload (issue 14): monthly equal-weight rebalance, decided at the close of the first
bar of each month, filled at the next open, 5 bps commission, 1,000,000 cash, synthetic
panels of 5 x 5,000 and 100 x 10,000 bars. Measured in one process, warm (best of
``--reps``), figures printed side by side with ratios:

* regime-engine API: ``run_backtest(config, panel=...)`` including result tables and the
  metrics (info logging off);
* regime-engine kernel: the compiled driver alone (``run_strategy_raw``);
* vectorbt: ``Portfolio.from_orders`` + ``.value()`` + ``.stats()``;
* backtrader: full run on the small panel; on the big one its bars/s on the first
  ``--bt-cap`` asset-bars, extrapolated (``~``);
* numba loop: the same trades in one plain njit loop (no costs model, no records beyond
  equity) — the ceiling for this strategy.

A second table splits the API call into its stages, timed with ``perf_counter`` around the
public functions that ``run_backtest`` calls (wrapped for the measurement, so the stages
run in the real pipeline): parse+prepare (config parsing, strategy objects,
``prepare_run``), kernel (``run_strategy_raw``), tables (``strategy_run``,
``check_targets``, ``regimes_frame``, ``BacktestResult``), metrics (``compute_metrics``)
and the rest of ``run_backtest`` (other). Figures are from the fastest of ``--reps`` calls.
Backtrader runs in full on the small workload by default (``--bt-cap``), so its ratio to
the API is measured in the same run.

    .venv/bin/python -m benchmarks.speed [--reps 5] [--bt-cap 100000] [--skip-bt]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import numba as nb
import numpy as np
import structlog

from benchmarks import peers
from benchmarks._common import machine, prepare_static, synthetic_panel, table, timed
from benchmarks.peers import CASH, COMMISSION, backtrader_run
from engine.core.backtest import run_strategy_raw
from engine.core.spec import new_period_flags
from engine.ground.bars import BarPanel
from strategies.static import StaticAllocation

CONFIG: dict[str, Any] = {
    "detector": {"kind": "none"},
    "costs": {"commission_bps": COMMISSION * 1e4},
    "execution": {"initial_cash": CASH},
    "strategies": [{"kind": "static", "name": "ew", "weights": "equal", "rebalance": "M"}],
}


@nb.njit(cache=True)
def numba_loop_nb(
    bar_open: np.ndarray, close: np.ndarray, decide: np.ndarray, cash0: float, fee: float
) -> np.ndarray:
    """Equal weight at the next open after each decision bar; equity at every close."""
    t_len, n = close.shape
    pos = np.zeros(n)
    pend = np.zeros(n)
    cash = cash0
    eq = np.empty(t_len)
    has = False
    for t in range(t_len):
        if has:
            for j in range(n):
                q = pend[j]
                if q != 0.0:
                    cash -= q * bar_open[t, j] + abs(q) * bar_open[t, j] * fee
                    pos[j] += q
            has = False
        e = cash
        for j in range(n):
            e += pos[j] * close[t, j]
        eq[t] = e
        if decide[t]:
            w = 1.0 / n
            for j in range(n):
                pend[j] = w * e * (1.0 - 2.0 * fee) / close[t, j] - pos[j]
            has = True
    return eq


def numba_run(panel: BarPanel, reps: int) -> float:
    decide = new_period_flags(panel.timestamps_ns, "M")
    decide[0] = True
    _, best, _ = timed(
        lambda: numba_loop_nb(panel.open, panel.close, decide, CASH, COMMISSION), reps
    )
    return best


def vectorbt_run(panel: BarPanel, reps: int) -> float:
    return peers.vectorbt_run(panel, "equal", stats=True, reps=max(1, reps // 2))[1]


def engine_api(panel: BarPanel, reps: int) -> float:
    from engine.api import run_backtest

    _, best, _ = timed(lambda: run_backtest(CONFIG, panel=panel, progress=False), reps)
    return best


#: stage -> (module, function name) pairs that run_backtest calls (looked up at call time)
STAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "parse+prepare": (
        ("engine.config", "parse_config"),
        ("engine.api", "load_config"),
        ("engine.api", "build_strategy"),
        ("engine.api", "prepare_run"),
    ),
    "kernel": (("engine.api", "run_strategy_raw"),),
    "tables": (
        ("engine.api", "strategy_run"),
        ("engine.weights", "check_targets"),
        ("engine.api", "regimes_frame"),
        ("engine.api", "BacktestResult"),
    ),
    "metrics": (("engine.api", "compute_metrics"),),
}


@contextlib.contextmanager
def stage_timers(spent: dict[str, float]) -> Iterator[None]:
    """Wrap the functions of :data:`STAGES` so each call adds its wall time to
    ``spent[stage]``; the originals are restored on exit."""
    import importlib

    saved: list[tuple[Any, str, Any]] = []

    def timing(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[stage] = spent.get(stage, 0.0) + time.perf_counter() - t0

        return wrapper

    try:
        for stage, targets in STAGES.items():
            for mod_name, attr in targets:
                mod = importlib.import_module(mod_name)
                fn = getattr(mod, attr, None)
                if fn is not None:
                    saved.append((mod, attr, fn))
                    setattr(mod, attr, timing(stage, fn))
        yield
    finally:
        for mod, attr, fn in reversed(saved):
            setattr(mod, attr, fn)


def engine_stages(panel: BarPanel, reps: int) -> dict[str, float]:
    """Seconds per stage of the fastest of ``reps`` API calls (plus ``total``, ``other``)."""
    from engine.api import run_backtest

    best: dict[str, float] = {"total": float("inf")}
    spent: dict[str, float] = {}
    with stage_timers(spent):
        run_backtest(CONFIG, panel=panel, progress=False)
        for _ in range(max(reps, 10)):
            spent.clear()
            t0 = time.perf_counter()
            res = run_backtest(CONFIG, panel=panel, progress=False)
            total = time.perf_counter() - t0
            del res  # freed outside the clock, as in timed()
            if total < best["total"]:
                best = {"total": total, **spent}
    best["other"] = best["total"] - sum(best.get(k, 0.0) for k in STAGES)
    return best


def engine_kernel(panel: BarPanel, reps: int) -> float:
    prep = prepare_static(panel, COMMISSION * 1e4)
    strat = StaticAllocation("ew", "equal", "M")
    _, best, _ = timed(lambda: run_strategy_raw(prep, strat), reps)
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--bt-cap", type=int, default=100_000)
    ap.add_argument("--skip-bt", action="store_true")
    args = ap.parse_args(argv)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    rows = []
    stage_rows = []
    for n, t_len in ((5, 5_000), (100, 10_000)):
        panel = synthetic_panel(n, t_len)
        api = engine_api(panel, args.reps)
        st = engine_stages(panel, args.reps)
        stage_rows.append(
            {
                "workload": f"{n} x {t_len:,}",
                "API ms": st["total"] * 1e3,
                **{f"{k} ms": st.get(k, 0.0) * 1e3 for k in (*STAGES, "other")},
                "API - kernel - tables ms": (st["total"] - st["kernel"] - st["tables"]) * 1e3,
            }
        )
        kern = engine_kernel(panel, args.reps)
        vbt_s = vectorbt_run(panel, args.reps)
        loop = numba_run(panel, args.reps)
        bt = "skipped"
        if not args.skip_bt:
            if n * t_len <= args.bt_cap:
                bt_s, _ = backtrader_run(panel, "equal")
                bt = f"{bt_s * 1e3:.0f} ms ({bt_s / api:.0f}x)"
            else:
                cap_bars = max(50, args.bt_cap // n)
                bt_s, _ = backtrader_run(panel.head(cap_bars), "equal")
                est = bt_s * t_len / cap_bars
                bt = f"~{est:.1f} s (~{est / api:.0f}x)"
        rows.append(
            {
                "workload": f"{n} x {t_len:,}",
                "r-e API ms": api * 1e3,
                "r-e kernel ms": kern * 1e3,
                "kernel M asset-bars/s": n * t_len / kern / 1e6,
                "vectorbt ms": vbt_s * 1e3,
                "vbt / API": vbt_s / api,
                "backtrader (x API)": bt,
                "numba loop ms": loop * 1e3,
                "API / loop": api / loop,
            }
        )
    print(machine())
    print(table(rows, ".3g"))
    print("targets: API >= 10x faster than vectorbt; >= 1,000x faster than backtrader (small)")
    print()
    print("API stages (fastest call; perf_counter around the public pieces run_backtest calls)")
    print(table(stage_rows, ".3g"))


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t0:.0f} s)")

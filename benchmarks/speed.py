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

    .venv/bin/python -m benchmarks.speed [--reps 5] [--bt-cap 100000] [--skip-bt]
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from typing import Any

import numba as nb
import numpy as np
import structlog

from benchmarks._common import machine, prepare_static, synthetic_panel, table, timed
from benchmarks.peers import CASH, COMMISSION, backtrader_run, target_frame
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
    import vectorbt as vbt

    size = target_frame(panel, "equal").shift(1)
    close, open_ = panel.field_frame("close"), panel.field_frame("open")

    def go() -> Any:
        pf = vbt.Portfolio.from_orders(
            close=close,
            size=size,
            size_type="targetpercent",
            price=open_,
            fees=COMMISSION,
            init_cash=CASH,
            cash_sharing=True,
            group_by=True,
            call_seq="auto",
            freq="1D",
        )
        pf.value()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pf.stats()

    _, best, _ = timed(go, max(1, reps // 2))
    return best


def engine_api(panel: BarPanel, reps: int) -> float:
    from engine.api import run_backtest

    _, best, _ = timed(lambda: run_backtest(CONFIG, panel=panel, progress=False), reps)
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
    for n, t_len in ((5, 5_000), (100, 10_000)):
        panel = synthetic_panel(n, t_len)
        api = engine_api(panel, args.reps)
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


if __name__ == "__main__":
    t0 = time.perf_counter()
    main()
    print(f"({time.perf_counter() - t0:.0f} s)")

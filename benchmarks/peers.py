"""regime-engine vs backtrader vs vectorbt on the same strategy, in one process run.

Strategy: monthly-rebalanced target weights (60/40 SPX/UST10 on the bundled real panel;
equal weight on the synthetic panels), decided at the close of the first bar of each month,
filled at the next bar's open, 5 bps commission on traded notional, fractional shares,
1,000,000 initial cash, valued at closes.

* regime-engine: the compiled driver (warm; the numba compile is shown apart), running the
  whole step every bar (features, rule detector, policy, orders, fills, accounting);
* backtrader: in ``next()`` on the rebalance bars, market orders for ``target * value /
  close - held`` shares (fill at the next open), percent commission, sells before buys;
* vectorbt: ``Portfolio.from_orders`` with ``size_type="targetpercent"`` placed on the bar
  after the decision at ``price=open``, cash shared, ``call_seq="auto"`` (sells first).

Why final equities differ slightly: regime-engine and backtrader size orders in shares
from the decision bar's *close* and fill them at the next open (so weights after the fill
drift by the overnight gap); vectorbt sizes the target percent at the *fill* price. Without
leverage regime-engine scales buys down to the available cash; backtrader rejects a buy
the cash can't cover (status Margin), so its orders are sized on (1 - 2 x commission) of
the portfolio value to fully invest like the others (without that, its bond buy on the
bundled 60/40 was rejected and equity ended 30% apart).

Backtrader runs on the first ``--bt-cap`` asset-bars of the big synthetic panels (it
needs minutes for them); its bars/s there is measured on that slice and the full-size wall
time is extrapolated (marked ``~``).

    .venv/bin/python -m benchmarks.peers [--reps 3] [--bt-cap 200000] [--quick]

Install the peers with ``pip install -e .[peers]``.
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from benchmarks._common import machine, prepare_static, synthetic_panel, table, timed
from engine.core.backtest import run_strategy_raw
from engine.core.spec import new_period_flags
from engine.ground.bars import BarPanel
from strategies.static import StaticAllocation

COMMISSION = 5e-4
CASH = 1_000_000.0


# ---------------------------------------------------------------- regime-engine
def engine_run(panel: BarPanel, weights: dict[str, float] | str) -> tuple[float, float, float]:
    """``(compile seconds, warm seconds, final equity)`` of the compiled driver."""
    strat = StaticAllocation("bench", weights, "M")
    prepare_static(panel, COMMISSION * 1e4)  # first call loads the feature kernel
    t0 = time.perf_counter()
    prep = prepare_static(panel, COMMISSION * 1e4)
    prep_s = time.perf_counter() - t0
    first, best, out = timed(lambda: run_strategy_raw(prep, strat), 3)
    return first - best, best + prep_s, float(out[0][-1])


def target_frame(panel: BarPanel, weights: dict[str, float] | str) -> pd.DataFrame:
    """Target weights on decision bars (first bar, first bar of each month), else NaN."""
    n = panel.n_assets
    w = (
        np.full(n, 1.0 / n)
        if weights == "equal"
        else np.array([weights.get(s, 0.0) for s in panel.symbols])  # type: ignore[union-attr]
    )
    decide = new_period_flags(panel.timestamps_ns, "M")
    decide[0] = True
    tgt = np.full((panel.n_bars, n), np.nan)
    tgt[decide] = w
    return pd.DataFrame(tgt, index=panel.index, columns=list(panel.symbols))


# ---------------------------------------------------------------- vectorbt
def vectorbt_run(panel: BarPanel, weights: dict[str, float] | str) -> tuple[float, float, float]:
    import vectorbt as vbt

    tgt = target_frame(panel, weights)
    size = tgt.shift(1)  # decided at t's close, placed at t+1's open
    close = panel.field_frame("close")
    open_ = panel.field_frame("open")

    def go() -> float:
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
        return float(pf.value().iloc[-1])

    first, best, eq = timed(go, 3)
    return first - best, best, eq


# ---------------------------------------------------------------- backtrader
def backtrader_run(panel: BarPanel, weights: dict[str, float] | str) -> tuple[float, float]:
    """``(wall seconds, final equity)`` of one backtrader run."""
    import backtrader as bt

    tgt = target_frame(panel, weights)
    decide = ~np.isnan(tgt.to_numpy()[:, 0])
    wrow = np.nan_to_num(tgt.to_numpy()[decide][0]) if decide.any() else np.zeros(panel.n_assets)

    class Rebalance(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.i = 0

        def next(self) -> None:
            if decide[self.i]:
                # backtrader rejects (Margin) a buy the cash can't cover, where regime-engine
                # scales it down: leave room for the commission so both fully invest
                value = self.broker.getvalue() * (1.0 - 2.0 * COMMISSION)
                orders = []
                for j, d in enumerate(self.datas):
                    held = self.getposition(d).size
                    orders.append(((wrow[j] * value) / d.close[0] - held, d))
                for qty, d in sorted(orders, key=lambda x: x[0]):  # sells first
                    if qty < 0.0:
                        self.sell(data=d, size=-qty)
                    elif qty > 0.0:
                        self.buy(data=d, size=qty)
            self.i += 1

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.broker.setcash(CASH)
    cerebro.broker.set_checksubmit(False)
    cerebro.broker.setcommission(
        commission=COMMISSION, commtype=bt.CommInfoBase.COMM_PERC, percabs=True, stocklike=True
    )
    for j, sym in enumerate(panel.symbols):
        df = pd.DataFrame(
            {
                "open": panel.open[:, j],
                "high": np.maximum(panel.open[:, j], panel.close[:, j]),
                "low": np.minimum(panel.open[:, j], panel.close[:, j]),
                "close": panel.close[:, j],
                # backtrader never fills on a bar with zero volume: "unknown" (0) -> huge
                "volume": np.where(panel.volume[:, j] > 0, panel.volume[:, j], 1e12),
            },
            index=panel.index,
        )
        cerebro.adddata(bt.feeds.PandasData(dataname=df, openinterest=None), name=sym)
    cerebro.addstrategy(Rebalance)
    t0 = time.perf_counter()
    cerebro.run(runonce=False, preload=True)
    wall = time.perf_counter() - t0
    return wall, float(cerebro.broker.getvalue())


# ---------------------------------------------------------------- driver
def bench(name: str, panel: BarPanel, weights: Any, bt_cap: int, skip_bt: bool) -> list[dict]:  # type: ignore[type-arg]
    rows: list[dict[str, Any]] = []
    ab = panel.n_bars * panel.n_assets
    comp, eng_s, eng_eq = engine_run(panel, weights)
    rows.append(
        {
            "workload": name,
            "engine": "regime-engine",
            "compile s": comp,
            "wall s": eng_s,
            "M asset-bars/s": ab / eng_s / 1e6,
            "x slower than r-e": 1.0,
            "final equity": eng_eq,
            "vs r-e": 0.0,
        }
    )
    try:
        vcomp, v_s, v_eq = vectorbt_run(panel, weights)
        rows.append(
            {
                "workload": name,
                "engine": "vectorbt",
                "compile s": vcomp,
                "wall s": v_s,
                "M asset-bars/s": ab / v_s / 1e6,
                "x slower than r-e": v_s / eng_s,
                "final equity": v_eq,
                "vs r-e": v_eq / eng_eq - 1.0,
            }
        )
    except Exception as exc:  # report, don't die: a peer may not install / run
        print(f"vectorbt failed on {name}: {type(exc).__name__}: {exc}")
    if not skip_bt:
        try:
            n_bars = min(panel.n_bars, max(2, bt_cap // panel.n_assets))
            sub = panel.head(n_bars) if n_bars < panel.n_bars else panel
            b_s, b_eq = backtrader_run(sub, weights)
            full_s = b_s * panel.n_bars / n_bars
            approx = n_bars < panel.n_bars
            ref = eng_eq
            if approx:  # compare on the same slice
                _, _, ref = engine_run(sub, weights)
            rows.append(
                {
                    "workload": name,
                    "engine": "backtrader" + (f" ({n_bars} bars)" if approx else ""),
                    "compile s": 0.0,
                    "wall s": ("~" if approx else "") + f"{full_s:.4g}",
                    "M asset-bars/s": n_bars * panel.n_assets / b_s / 1e6,
                    "x slower than r-e": full_s / eng_s,
                    "final equity": b_eq,
                    "vs r-e": b_eq / ref - 1.0,
                }
            )
        except Exception as exc:
            print(f"backtrader failed on {name}: {type(exc).__name__}: {exc}")
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bt-cap", type=int, default=200_000, help="max asset-bars for backtrader")
    ap.add_argument("--quick", action="store_true", help="bundled panel only")
    ap.add_argument("--no-backtrader", action="store_true")
    args = ap.parse_args(argv)
    warnings.filterwarnings("ignore")

    from data_feeds import load_bundled

    t0 = time.perf_counter()
    import backtrader  # noqa: F401
    import vectorbt  # noqa: F401

    print(f"peer imports: {time.perf_counter() - t0:.1f}s ({machine()})")
    work: list[tuple[str, BarPanel, Any]] = [
        (
            "bundled 60/40 (4589x2)",
            load_bundled(["SPX", "UST10"], panel="classic"),
            {"SPX": 0.6, "UST10": 0.4},
        ),
    ]
    if not args.quick:
        work.append(("synthetic EW 100x10000", synthetic_panel(100, 10_000), "equal"))
        work.append(("synthetic EW 1000x5000", synthetic_panel(1000, 5_000, seed=1), "equal"))
    rows = []
    for name, panel, weights in work:
        rows += bench(name, panel, weights, args.bt_cap, args.no_backtrader)
    print(table(rows))
    print(
        "\nwall s: regime-engine = features + detector prepare + compiled run (warm); "
        "vectorbt = from_orders + value() (warm, inputs prebuilt); backtrader = cerebro.run()."
        "\n'vs r-e' = final equity relative to regime-engine's on the same bars."
    )


if __name__ == "__main__":
    main()

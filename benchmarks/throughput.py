"""Throughput of the compiled and streaming drivers (one core; figures, not tests).

Compiled driver: one backtest (features -> rule detector -> policy -> orders -> fills ->
portfolio, every bar) of the bundled real panel (60/40, monthly, 5 bps) and of a synthetic
100 assets x 10,000 bars panel (equal weight, monthly), in asset-bars per second. The first
call (numba compile or cache load) is shown apart from the warm best-of-N.

A third workload runs the default detector on (Gaussian HMM, 3 states, fitted by hmmlearn
every 126 bars on trailing data; the fits are prepared once, outside the timing: the timed
part is the step kernel, online filter included) with the regime-aware strategy on the
4-asset bundled panel.

Streaming driver: the same 60/40 replayed bar by bar through ``StreamingDriver.on_bar``.

    .venv/bin/python -m benchmarks.throughput [--reps 5] [--assets 100] [--bars 10000]

Targets (issue 14): >= 100M asset-bars/s on 100 x 10,000 static; >= 25M with the HMM on the
4-asset bundled panel; >= 100k bars/s streaming.
"""

from __future__ import annotations

import argparse
from functools import partial

from benchmarks._common import machine, prepare_static, synthetic_panel, table, timed
from engine.core.backtest import prepare, run_strategy_raw
from engine.core.spec import CostModel, Smoothing, cost_table
from engine.core.streaming import StreamingDriver, replay
from engine.regimes.config import HMMDetectorConfig
from strategies.regime_switching import RegimeSwitching
from strategies.static import StaticAllocation


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--assets", type=int, default=100)
    ap.add_argument("--bars", type=int, default=10_000)
    args = ap.parse_args(argv)

    from data_feeds import load_bundled

    bundled = load_bundled(["SPX", "UST10", "WTI", "CASH"], panel="classic")
    synth = synthetic_panel(args.assets, args.bars)
    hmm_prep = prepare(
        bundled,
        HMMDetectorConfig(market="SPX").build(bundled),
        cost_table(bundled.symbols, CostModel(commission_bps=5.0)),
        smoothing=Smoothing(confirm=2),
    )
    regime = RegimeSwitching(
        "regime_aware",
        table={
            "calm": {"SPX": 0.7, "UST10": 0.2, "WTI": 0.1},
            "volatile": {"SPX": 0.35, "UST10": 0.5, "WTI": 0.05, "CASH": 0.1},
            "crisis": {"SPX": 0.05, "UST10": 0.6, "CASH": 0.35},
        },
        warmup={"SPX": 0.6, "UST10": 0.4},
        rebalance="M",
    )
    work = [
        ("bundled 60/40", bundled, StaticAllocation("60_40", {"SPX": 0.6, "UST10": 0.4}, "M")),
        (
            f"synthetic {args.assets}x{args.bars} EW",
            synth,
            StaticAllocation("ew", "equal", "M"),
        ),
    ]
    rows = []
    for name, panel, strat, prep in [(*w, prepare_static(w[1])) for w in work] + [
        ("bundled HMM regime-aware", bundled, regime, hmm_prep)
    ]:
        ab = panel.n_bars * panel.n_assets
        # ~1 ms runs: more repetitions for a stable best (scheduler noise on a shared box)
        reps = args.reps if ab > 1_000_000 else max(args.reps, 50)
        first, best, out = timed(partial(run_strategy_raw, prep, strat), reps)
        rows.append(
            {
                "workload": name,
                "bars": panel.n_bars,
                "assets": panel.n_assets,
                "first call s": first,
                "warm s": best,
                "compile s (first-warm)": first - best,
                "bars/s": panel.n_bars / best,
                "M asset-bars/s": ab / best / 1e6,
                "final equity": float(out[0][-1]),
            }
        )
    print(f"compiled driver ({machine()})")
    print(table(rows))

    prep = prepare_static(bundled)
    strat = work[0][2]

    def stream() -> list:  # type: ignore[type-arg]
        return replay(StreamingDriver.from_prepared(prep, strat), bundled)

    first, best, outs = timed(stream, max(1, args.reps // 2))
    compiled_eq = run_strategy_raw(prep, strat)[0][-1]
    print()
    print("streaming driver (same 60/40, bar by bar through on_bar)")
    print(
        table(
            [
                {
                    "workload": "bundled 60/40",
                    "bars": bundled.n_bars,
                    "first replay s": first,
                    "warm s": best,
                    "bars/s": bundled.n_bars / best,
                    "us/bar": best / bundled.n_bars * 1e6,
                    "equity == compiled": bool(outs[-1].equity == compiled_eq),
                }
            ]
        )
    )


if __name__ == "__main__":
    main()

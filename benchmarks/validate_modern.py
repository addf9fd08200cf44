"""The README's walk-forward table on the bundled modern panel (2000-2022).

For each regime detector (the default HMM, the statistical jump model, an HMM whose inputs
include the VIX, the previous default HMM) and each commission level (5 and 10 bps) it runs
``regime-engine validate``'s walk-forward (5-year expanding training span, 1-year test spans,
detector refitted at test-span starts on training data only, only test bars stitched), without the
purged-CV candidates and the Monte Carlo, and prints:

* OOS Sharpe over the T-bill CASH index (validate's rf) and at rf = 0, CAGR, volatility and
  max drawdown of static 60/40, equal weight, regime-aware and, per detector, its two static
  baselines (``static_avg_weights``: the regime-aware strategy's average held weights;
  ``static_vol_matched``: the 60/40 mix de-levered with CASH to its volatility, ``k``
  re-chosen at each fold from earlier bars only; ``static_vol_matched_is``: one ``k`` from
  the OOS bars themselves, the conservative variant);
* the paired stationary-bootstrap 95 % CI and p-value of the Sharpe difference (rf = CASH)
  of regime-aware minus static 60/40 and minus each baseline, and the max-drawdown
  difference's CI against 60/40;
* each strategy's return, max drawdown and mean equity weight in Feb-Apr 2020 and 2022
  (``engine.analysis.episodes``).

    .venv/bin/python -m benchmarks.validate_modern [--reps 1000] [--out runs/validate_modern]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.analysis.episodes import episode_table
from engine.analysis.walkforward import FitMemo
from engine.config import RunConfig, load_config
from engine.validate import ValidationConfig, run_validation

ROOT = Path(__file__).resolve().parents[1]
DETECTORS: dict[str, dict[str, Any]] = {
    "HMM (default)": {},
    "jump model": {"kind": "jump"},
    "HMM [logret, log VIX]": {"features": ["logret", "exog.log_VIX"]},
    "HMM old default [logret, log_vol_fast], confirm 1": {
        "features": ["logret", "log_vol_fast"],
        "smoothing": {"confirm": 1},
    },
}
STRATS = ("static_60_40", "equal_weight", "regime_aware")
BASELINES = ("static_avg_weights", "static_vol_matched", "static_vol_matched_is")


def config(det: dict[str, Any], bps: float) -> RunConfig:
    base = load_config(ROOT / "configs" / "validate.toml").model_dump(mode="json")
    d = dict(base["detector"])
    if "kind" in det and det["kind"] != d["kind"]:
        d = {
            k: v
            for k, v in d.items()
            if k in ("market", "n_states", "labels", "min_train", "seed", "smoothing")
        }
    d.update(det)
    base["detector"] = d
    base["costs"] = {**base["costs"], "commission_bps": bps}
    return RunConfig.model_validate(base)


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--reps", type=int, default=1000)
    ap.add_argument("--bps", type=float, nargs="+", default=[5.0, 10.0])
    ap.add_argument("--out", type=Path, default=Path("runs/validate_modern"))
    args = ap.parse_args()
    v = ValidationConfig.model_validate(
        {"bootstrap_reps": args.reps, "cost_bps": [0.0], "cv": {"enabled": False}}
    )
    rows, diffs, eps = [], [], []
    memo = FitMemo()  # the cost levels of one detector share its walk-forward fits
    t_start = time.perf_counter()
    fit_s = 0.0
    for dname, det in DETECTORS.items():
        for bps in args.bps:
            t0 = time.perf_counter()
            cfg = config(det, bps)
            res = run_validation(cfg, v, mc_paths=0, fit_memo=memo)
            fit_s += res.timings.get("walkforward_fits_s", 0.0)
            r = res.oos_returns
            panel = res.oos_result.panel
            classes = dict(zip(panel.symbols, panel.asset_classes, strict=True))
            names = (*STRATS, *BASELINES)
            w = pd.concat({s: res.oos_result.runs[s].weights for s in names}, axis=1)
            eq_cols = [c for c in panel.symbols if classes[c] == "equity"]
            assert res.rf_label == "CASH", res.rf_label
            for s in names:
                m = res.summary.loc[s]
                if s in STRATS[:2] and dname != next(iter(DETECTORS)):
                    continue  # static strategies do not depend on the detector
                rows.append(
                    {
                        "bps": bps,
                        "strategy": s if s in STRATS[:2] else f"{s}, {dname}",
                        "sharpe_xs_tbill": m["sharpe"],
                        "sharpe_rf0": m["sharpe_rf0"],
                        "cagr": m["cagr"],
                        "volatility": m["volatility"],
                        "max_drawdown": m["max_drawdown"],
                        "mean_w_equity": float(w[s][eq_cols].sum(axis=1).mean()),
                    }
                )
            g = res.significance
            for vs, key in (("static_60_40", ""), *((b, f"_vs_{b}") for b in BASELINES)):
                diffs.append(
                    {
                        "bps": bps,
                        "detector": dname,
                        "vs": vs,
                        "sharpe_diff": g[f"sharpe_diff{key}"],
                        "ci_low": g[f"sharpe_diff{key}_lower"],
                        "ci_high": g[f"sharpe_diff{key}_upper"],
                        "p": g[f"p_sharpe_diff{key}_le_0"],
                        "break_even_bps": res.break_even[f"sharpe{key}"],
                        "maxdd_diff": g["max_drawdown_diff"] if not key else np.nan,
                        "maxdd_low": g["max_drawdown_diff_lower"] if not key else np.nan,
                        "maxdd_high": g["max_drawdown_diff_upper"] if not key else np.nan,
                    }
                )
            print(res.verdict_lines[0], flush=True)
            for b, row in res.baselines.iterrows():
                print(f"  {b}: {row['what']} ({row['weights']})", flush=True)
            print(f"  k by fold: {np.round(res.folds['vol_matched_scale'].to_numpy(), 3)}")
            equity = (1.0 + r[list(names)]).cumprod()
            e = episode_table(equity, weights=w, asset_classes=classes)
            e = e.reset_index().assign(bps=bps, detector=dname)
            eps.append(e)
            print(
                f"{dname}, {bps:g} bps: {time.perf_counter() - t0:.1f} s (walk-forward fits "
                f"{res.timings.get('walkforward_fits_s', 0.0):.2f} s)",
                flush=True,
            )
    print(
        f"all runs: {time.perf_counter() - t_start:.1f} s, walk-forward fits {fit_s:.2f} s "
        f"({memo.misses} fitted, {memo.hits} reused)",
        flush=True,
    )
    table = pd.DataFrame(rows)
    dtab = pd.DataFrame(diffs)
    etab = pd.concat(eps, ignore_index=True)
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "oos.csv", index=False)
    dtab.to_csv(args.out / "sharpe_diff.csv", index=False)
    etab.to_csv(args.out / "episodes.csv", index=False)
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 30)
    print(
        f"\nOOS {r.index[0].date()} .. {r.index[-1].date()}, {len(res.folds)} folds, "
        f"{args.reps} bootstrap reps"
    )
    print(table.to_string(index=False, float_format=lambda x: f"{x:.4f}"))
    print(dtab.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    cols = [
        "bps",
        "detector",
        "episode",
        "strategy",
        "return",
        "max_drawdown",
        "mean_w_equity",
        "end_w_equity",
    ]
    print(etab[cols].to_string(index=False, float_format=lambda x: f"{x:.3f}"))


if __name__ == "__main__":
    main()

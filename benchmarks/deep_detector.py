"""Detection quality of the GRU (deep) detector beside the HMM and the jump model.

Same synthetic 2-, 3- and 4-state processes and the same metrics as
:mod:`benchmarks.detectors` (balanced accuracy of the online raw state vs the truth, states in
ascending-volatility order; median lag after a true switch; share of switches missed; false
switches per year; online ns/bar in the compiled loop; mean seconds per refit). Every
detector: first fit at bar 756, refit every 252 bars, inputs ``[logret, log_vol_fast]``.

    .venv/bin/python -m benchmarks.deep_detector [--bars 5040] [--seed 7] [--seeds 1]

Needs the ``deep`` extra (``pip install -e ".[deep]"``).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from benchmarks.detectors import balanced_accuracy, fit_all, online, processes, switch_metrics
from engine.core.backtest import feature_history
from engine.core.spec import Features
from engine.ground.bars import BarPanel
from engine.regimes.base import Detector
from engine.regimes.config import GRUDetectorConfig, HMMDetectorConfig, JumpDetectorConfig


def detectors(k: int) -> dict[str, Callable[[BarPanel], Detector]]:
    common = {"market": "EQ", "n_states": k, "min_train": 756, "refit_every": 252}
    return {
        "hmm [logret, log_vol_fast]": HMMDetectorConfig(**common).build,
        "jump [logret, log_vol_fast]": JumpDetectorConfig(**common).build,
        "gru (hmm labels)": GRUDetectorConfig(**common).build,
        "gru (forward-vol labels)": GRUDetectorConfig(**common, label_source="forward_vol").build,
    }


def evaluate(n_bars: int, seeds: list[int], reps: int) -> None:
    fparams = Features().array()
    rows: dict[tuple[str, str], list[tuple[float, ...]]] = {}
    for seed in seeds:
        for pname, (panel, truth) in processes(n_bars, seed).items():
            k = int(truth.max()) + 1
            feats = feature_history(panel, fparams)
            exog = panel.exog if panel.exog.shape[1] else np.zeros((panel.n_bars, 1))
            for dname, build in detectors(k).items():
                det = build(panel)
                params, bars, fit_s = fit_all(det, feats, exog)
                raw, _, ns = online(det, params, bars, feats, exog, reps)
                m = raw >= 0
                ba = balanced_accuracy(truth[m], raw[m], k)
                lag, miss, fsw = switch_metrics(truth[m], raw[m])
                rows.setdefault((pname, dname), []).append((ba, lag, miss, fsw, ns, fit_s))
    last = ""
    for (pname, dname), vals in rows.items():
        if pname != last:
            print(f"\n## {pname}: {n_bars} bars, seeds {seeds} (mean over seeds)")
            print(
                "| detector | bal. acc | median lag (bars) | missed | false sw/yr "
                "| online ns/bar | refit s |"
            )
            print("|---|---|---|---|---|---|---|")
            last = pname
        a = np.nanmean(np.array(vals), axis=0)
        print(
            f"| {dname} | {a[0]:.3f} | {a[1]:.1f} | {a[2]:.0%} | {a[3]:.1f} | {a[4]:.0f} "
            f"| {a[5]:.2f} |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=5040)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--seeds", type=int, default=1, help="number of seeds from --seed")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    evaluate(args.bars, list(range(args.seed, args.seed + args.seeds)), args.reps)


if __name__ == "__main__":
    main()

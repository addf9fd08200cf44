"""Detection quality and speed of every detector on synthetic regime panels.

For 2-, 3- and 4-state Markov-switching processes (``data_feeds.synthetic``) it prints, per
detector: balanced accuracy of the online (filtered, raw) state against the true state
(states mapped by ascending volatility, which is how every detector orders its states),
median detection lag in bars after a true switch (first bar the detector names the new
state), share of switches missed, false switches per year (detected switches into a state
that is not the true one), the per-bar cost of the online update in the compiled loop
(ns/bar, refits excluded) and the mean cost of one refit.

BOCPD is a changepoint detector: its "truth" is "a switch happened in the last 20 bars";
its lag is the first alarm after a switch, its false switches are alarm onsets with no
true switch in the previous 20 bars.

    .venv/bin/python -m benchmarks.detectors [--bars 5040] [--seed 7] [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from data_feeds.synthetic import generate_regime_panel, two_state_example
from engine.core.backtest import feature_history
from engine.core.spec import Features
from engine.ground import layout as L
from engine.ground.bars import BarPanel
from engine.regimes.base import Detector
from engine.regimes.config import (
    BOCPDDetectorConfig,
    GMMDetectorConfig,
    HMMDetectorConfig,
    JumpDetectorConfig,
    KMeansDetectorConfig,
    SupervisedDetectorConfig,
)
from engine.regimes.online_nb import online_run_nb

BARS_PER_YEAR = 252
CP_TOLERANCE = 20


def processes(n_bars: int, seed: int) -> dict[str, tuple[BarPanel, np.ndarray]]:
    """The synthetic panels: name -> (panel, true states in ascending-vol order)."""
    out = {"2-state (vol x3, dwell 100)": two_state_example(n_bars, 3.0, 100.0, seed)}
    vols3 = np.array([[0.007, 0.003], [0.014, 0.004], [0.028, 0.006]])
    means3 = np.array([[6e-4, 1e-4], [0.0, 1e-4], [-1.5e-3, 3e-4]])
    out["3-state (vol 1:2:4, dwell 100)"] = generate_regime_panel(
        n_bars, means3, vols3, mean_dwell=[100.0] * 3, seed=seed, symbols=("EQ", "BD")
    )
    vols4 = np.array([[0.005, 0.003], [0.010, 0.003], [0.020, 0.004], [0.040, 0.006]])
    means4 = np.array([[6e-4, 1e-4], [3e-4, 1e-4], [-5e-4, 2e-4], [-2e-3, 3e-4]])
    out["4-state (vol 1:2:4:8, dwell 100)"] = generate_regime_panel(
        n_bars, means4, vols4, mean_dwell=[100.0] * 4, seed=seed, symbols=("EQ", "BD")
    )
    return out


def detectors(k: int) -> dict[str, Callable[[BarPanel], Detector]]:
    common = {"market": "EQ", "n_states": k, "min_train": 756, "refit_every": 252}
    return {
        "hmm [logret]": HMMDetectorConfig(**common, features=("logret",)).build,
        "hmm [logret, log_vol_fast]": HMMDetectorConfig(**common).build,
        "gmm [logret, log_vol_fast]": GMMDetectorConfig(**common).build,
        "kmeans [log_vol_fast]": KMeansDetectorConfig(**common, features=("log_vol_fast",)).build,
        "jump [logret, log_vol_fast]": JumpDetectorConfig(**common).build,
        "supervised [logret, log_vol_fast]": SupervisedDetectorConfig(**common).build,
        "bocpd [logret]": BOCPDDetectorConfig(market="EQ").build,
    }


def balanced_accuracy(truth: np.ndarray, pred: np.ndarray, k: int) -> float:
    recalls = [float((pred[truth == s] == s).mean()) for s in range(k) if (truth == s).any()]
    return float(np.mean(recalls))


def switch_metrics(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    """``(median lag, missed share, false switches per year)`` of a state detector."""
    sw = np.flatnonzero(truth[1:] != truth[:-1]) + 1
    lags: list[int] = []
    missed = 0
    for i, tau in enumerate(sw):
        end = sw[i + 1] if i + 1 < len(sw) else len(truth)
        hit = np.flatnonzero(pred[tau:end] == truth[tau])
        if hit.size:
            lags.append(int(hit[0]))
        else:
            missed += 1
    det = np.flatnonzero(pred[1:] != pred[:-1]) + 1
    false = int(np.sum(pred[det] != truth[det]))
    years = len(truth) / BARS_PER_YEAR
    return (
        float(np.median(lags)) if lags else float("nan"),
        missed / max(len(sw), 1),
        false / years,
    )


def cp_metrics(truth: np.ndarray, alarm: np.ndarray) -> tuple[float, float, float, float]:
    """BOCPD: ``(balanced accuracy, median lag, missed share, false alarms per year)``."""
    sw = np.flatnonzero(truth[1:] != truth[:-1]) + 1
    recent = np.zeros(len(truth), dtype=bool)
    for tau in sw:
        recent[tau : tau + CP_TOLERANCE] = True
    lags: list[int] = []
    missed = 0
    for tau in sw:
        hit = np.flatnonzero(alarm[tau : tau + CP_TOLERANCE])
        if hit.size:
            lags.append(int(hit[0]))
        else:
            missed += 1
    onsets = np.flatnonzero(alarm[1:] & ~alarm[:-1]) + 1
    false = int(np.sum(~recent[onsets]))
    ba = balanced_accuracy(recent.astype(int), alarm.astype(int), 2)
    return (
        ba,
        float(np.median(lags)) if lags else float("nan"),
        missed / max(len(sw), 1),
        false / (len(truth) / BARS_PER_YEAR),
    )


def fit_all(
    det: Detector, feats: np.ndarray, exog: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float]:
    bars = np.asarray(det.fit_bars(feats.shape[0]), dtype=np.int64)
    rows = []
    prev = None
    t0 = time.perf_counter()
    for b in bars:
        prev = np.asarray(det.fit(feats[:b], exog[:b], prev), dtype=np.float64)
        rows.append(prev)
    fit_s = (time.perf_counter() - t0) / len(bars)
    width = max(len(r) for r in rows)
    params = np.zeros((len(rows), width))
    for i, r in enumerate(rows):
        params[i, : len(r)] = r
    return params, bars, fit_s


def online(
    det: Detector,
    params: np.ndarray,
    bars: np.ndarray,
    feats: np.ndarray,
    exog: np.ndarray,
    reps: int,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Raw states, posteriors and the best-of-``reps`` online cost in ns per bar."""
    best = np.inf
    raw = np.zeros(0, dtype=np.int64)
    post = np.zeros((feats.shape[0], det.n_states))
    for _ in range(reps + 1):  # first pass compiles/warms
        dstate = np.zeros(max(1, det.state_size(feats.shape[1])))
        t0 = time.perf_counter_ns()
        raw = online_run_nb(params, bars, feats, exog, dstate, post)
        best = min(best, time.perf_counter_ns() - t0)
    return raw, post, best / feats.shape[0]


def evaluate(n_bars: int, seed: int, reps: int) -> None:
    fparams = Features().array()
    for pname, (panel, truth) in processes(n_bars, seed).items():
        k = int(truth.max()) + 1
        feats = feature_history(panel, fparams)
        exog = panel.exog if panel.exog.shape[1] else np.zeros((panel.n_bars, 1))
        print(f"\n## {pname}: {n_bars} bars, {int(np.sum(truth[1:] != truth[:-1]))} switches")
        print(
            "| detector | bal. acc | median lag (bars) | missed | false sw/yr "
            "| online ns/bar | refit ms |"
        )
        print("|---|---|---|---|---|---|---|")
        for dname, build in detectors(k).items():
            det = build(panel)
            params, bars, fit_s = fit_all(det, feats, exog)
            raw, _, ns = online(det, params, bars, feats, exog, reps)
            m = raw >= 0
            if dname.startswith("bocpd"):
                ba, lag, miss, fsw = cp_metrics(truth[m], raw[m] == 1)
            else:
                ba = balanced_accuracy(truth[m], raw[m], k)
                lag, miss, fsw = switch_metrics(truth[m], raw[m])
            print(
                f"| {dname} | {ba:.3f} | {lag:.1f} | {miss:.0%} | {fsw:.1f} | {ns:.0f} "
                f"| {1e3 * fit_s:.1f} |"
            )


def speed_hmm6(n_bars: int, reps: int) -> None:
    """The speed target: HMM, K = 3, 6 inputs (full covariance), online ns/bar."""
    panel, _ = generate_regime_panel(
        n_bars,
        [[5e-4, 1e-4, 3e-4], [0.0, 1e-4, 0.0], [-1e-3, 3e-4, -5e-4]],
        [[0.007, 0.003, 0.01], [0.014, 0.004, 0.02], [0.028, 0.006, 0.04]],
        mean_dwell=[100.0] * 3,
        seed=3,
        symbols=("EQ", "BD", "CM"),
    )
    feats = feature_history(panel, Features().array())
    exog = np.zeros((panel.n_bars, 1))
    print("\n## speed: HMM K=3, 6 inputs")
    print(f"| covariance | online ns/bar | refit ms (expanding, <= {n_bars} bars) |")
    print("|---|---|---|")
    for cov in ("full", "diag"):
        cfg = HMMDetectorConfig(
            market="EQ",
            n_states=3,
            covariance=cov,
            features=(
                "logret",
                "log_vol_fast",
                "log_vol_slow",
                "ma_gap",
                "BD.logret",
                "CM.log_vol_fast",
            ),
            min_train=756,
            refit_every=504,
        )
        det = cfg.build(panel)
        params, bars, fit_s = fit_all(det, feats, exog)
        assert int(params[0, L.DX_N_IN]) == 6
        _, _, ns = online(det, params, bars, feats, exog, reps)
        print(f"| {cov} | {ns:.0f} | {1e3 * fit_s:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=5040)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    evaluate(args.bars, args.seed, args.reps)
    speed_hmm6(args.bars, args.reps)


if __name__ == "__main__":
    main()

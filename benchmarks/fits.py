"""HMM fit benchmark: the default config's schedule of fits, compiled Baum-Welch vs hmmlearn.

    python -m benchmarks.fits              # in-process schedule both ways + the CLI run
    python -m benchmarks.fits --skip-cli   # the in-process part only

In one process, on the default run's data (bundled panel, SPX log returns, 3 states, full
covariance, first fit at bar 504 then every 126 bars on an expanding window; first fit
3 k-means++ starts, each refit a warm start from the previous model + 1 random start):

- the whole schedule (``fit_schedule``: standardization, starts, EM, label ordering,
  the window filter) with ``fitter="numba"`` (best of ``--reps``) and ``"hmmlearn"``
  (best of ``--ref-reps``), the EM runs and iterations of each, and the ratio;
- how far the two schedules' parameters and online posteriors are apart, and whether the
  online states are the same;
- whether the multi-start decides the result: how many refits a random start won over the
  warm start, and the states of a warm-start-only schedule (``refit_restarts=0``).

Then ``regime-engine backtest --no-report`` end to end (warm numba cache, child
processes, best of ``--cli-reps``) with the default config and with the same config plus
``fitter = "hmmlearn"``, and whether the two runs' ``metrics.json`` are identical.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import engine.regimes.hmm as hmm_mod
from engine.api import load_panel
from engine.config import RunConfig, load_config
from engine.core.backtest import feature_history
from engine.regimes.base import fit_schedule
from engine.regimes.config import HMMDetectorConfig
from engine.regimes.online_nb import online_run_nb

ROOT = Path(__file__).resolve().parents[1]


class EMLog:
    """Counts EM runs and iterations, and records each fit's candidate scores in order."""

    def __init__(self) -> None:
        self.runs = 0
        self.iters = 0
        self.seconds = 0.0
        self.calls: list[tuple[int, float]] = []  # (id of the window, score) in call order

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def counted(z: np.ndarray, *args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            res = fn(z, *args, **kw)
            self.seconds += time.perf_counter() - t0
            self.runs += 1
            if res is not None:
                self.iters += res.n_iter
            score = res.score if res is not None else -np.inf
            self.calls.append((id(z), score))
            return res

        return counted

    def per_fit(self) -> list[list[float]]:
        """Candidate scores of each fit, in order (a fit's EM runs share its window)."""
        out: list[list[float]] = []
        last = None
        for key, score in self.calls:
            if key != last:
                out.append([])
                last = key
            out[-1].append(score)
        return out


def hmm_config(cfg: RunConfig) -> HMMDetectorConfig:
    det = cfg.detector
    assert isinstance(det, HMMDetectorConfig), "the default run's detector is an HMM"
    return det


def run_schedule(
    cfg: RunConfig, panel: Any, feats: np.ndarray, exog: np.ndarray, **update: Any
) -> tuple[np.ndarray, np.ndarray, EMLog, float]:
    """``(params, fit_bars, EM log, seconds)`` of the detector's whole fit schedule."""
    det = hmm_config(cfg).model_copy(update=update).build(panel)
    log = EMLog()
    orig = hmm_mod.em_fit
    hmm_mod.em_fit = log.wrap(orig)  # type: ignore[assignment]
    try:
        t0 = time.perf_counter()
        params, bars = fit_schedule(det, feats, exog)
        secs = time.perf_counter() - t0
    finally:
        hmm_mod.em_fit = orig  # type: ignore[assignment]
    return params, bars, log, secs


def online(
    cfg: RunConfig, panel: Any, params: np.ndarray, bars: np.ndarray, feats: np.ndarray,
    exog: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    det = cfg.detector.build(panel)
    post = np.zeros((feats.shape[0], det.n_states))
    dstate = np.zeros(det.state_size(feats.shape[1]))
    ex = exog if exog.shape[1] else np.zeros((feats.shape[0], 1))
    raw = online_run_nb(params, bars, feats, ex, dstate, post)
    return np.asarray(raw), post


def best_of(
    reps: int, cfg: RunConfig, panel: Any, feats: np.ndarray, exog: np.ndarray, **update: Any
) -> tuple[np.ndarray, np.ndarray, EMLog, float]:
    best: tuple[np.ndarray, np.ndarray, EMLog, float] | None = None
    for _ in range(max(1, reps)):
        out = run_schedule(cfg, panel, feats, exog, **update)
        if best is None or out[3] < best[3]:
            best = out
    assert best is not None
    return best


def in_process(reps: int, ref_reps: int) -> None:
    cfg = load_config()
    panel = load_panel(cfg)
    feats = feature_history(panel, cfg.features.build().array())
    exog = panel.exog
    import hmmlearn.hmm  # noqa: F401  (imports are not part of either timing)

    run_schedule(cfg, panel, feats, exog, fitter="numba")  # numba cache load / compile
    p_nb, bars, log_nb, t_nb = best_of(reps, cfg, panel, feats, exog, fitter="numba")
    p_ref, _, log_ref, t_ref = best_of(ref_reps, cfg, panel, feats, exog, fitter="hmmlearn")
    n = len(bars)
    print(
        f"default schedule: {n} fits on {panel.n_bars:,} bars "
        f"(windows {int(bars[0])}..{int(bars[-1])} bars), {hmm_config(cfg).covariance} covariance"
    )
    for name, t, log in (("numba", t_nb, log_nb), ("hmmlearn", t_ref, log_ref)):
        print(
            f"  {name:8s}: {t:7.3f} s  ({t / n * 1e3:6.1f} ms/fit; {log.runs} EM runs, "
            f"{log.iters:,} iterations, {log.seconds:6.3f} s in EM)"
        )
    print(
        f"  ratio hmmlearn / numba: {t_ref / t_nb:.1f}x "
        f"(EM alone {log_ref.seconds / log_nb.seconds:.1f}x)"
    )
    raw_nb, post_nb = online(cfg, panel, p_nb, bars, feats, exog)
    raw_ref, post_ref = online(cfg, panel, p_ref, bars, feats, exog)
    print(
        f"  parameters max |diff| {np.max(np.abs(p_nb - p_ref)):.2e}; online posteriors max "
        f"|diff| {np.max(np.abs(post_nb - post_ref)):.2e}; states "
        f"{'identical' if np.array_equal(raw_nb, raw_ref) else 'DIFFER'}"
    )
    # does the multi-start decide the result?
    wins = sum(1 for scores in log_nb.per_fit()[1:] if int(np.argmax(scores)) != 0)
    p_warm, _, log_warm, t_warm = best_of(
        reps, cfg, panel, feats, exog, fitter="numba", refit_restarts=0
    )
    raw_warm, post_warm = online(cfg, panel, p_warm, bars, feats, exog)
    differ = int(np.sum(raw_warm != raw_nb))
    print(
        f"multi-start: a random start beat the warm start at {wins} of {n - 1} refits; "
        f"warm start only (refit_restarts=0): {t_warm:.3f} s, {log_warm.runs} EM runs, "
        f"states differ on {differ} of {len(raw_nb):,} bars, posteriors max |diff| "
        f"{np.max(np.abs(post_warm - post_nb)):.2e}"
    )


def _cli(config: Path | None, out: Path) -> float:
    cmd = [str(ROOT / ".venv" / "bin" / "regime-engine"), "backtest", "--no-report"]
    cmd += ["--out", str(out)] + ([str(config)] if config else [])
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=ROOT, env=dict(os.environ))
    return time.perf_counter() - t0


def cli_runs(reps: int) -> None:
    text = (ROOT / "configs" / "default.toml").read_text()
    marker = 'kind = "hmm"'
    assert marker in text, "configs/default.toml: no HMM detector section"
    with tempfile.TemporaryDirectory() as tmp:
        ref_cfg = Path(tmp) / "hmmlearn.toml"
        if 'fitter = "numba"' in text:
            ref_text = text.replace('fitter = "numba"', 'fitter = "hmmlearn"', 1)
        else:
            ref_text = text.replace(marker, marker + '\nfitter = "hmmlearn"', 1)
        ref_cfg.write_text(ref_text)
        _cli(None, Path(tmp) / "warm")  # warm the numba cache and the file cache
        t_nb = min(_cli(None, Path(tmp) / "numba") for _ in range(max(1, reps)))
        t_ref = min(_cli(ref_cfg, Path(tmp) / "hmmlearn") for _ in range(max(1, reps)))
        same = filecmp.cmp(
            Path(tmp) / "numba" / "metrics.json",
            Path(tmp) / "hmmlearn" / "metrics.json",
            shallow=False,
        )
    print(
        f"regime-engine backtest --no-report (warm cache, best of {reps}): "
        f"fitter=numba {t_nb:.2f} s, fitter=hmmlearn {t_ref:.2f} s "
        f"({t_ref / t_nb:.1f}x); metrics.json {'identical' if same else 'DIFFER'}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=3, help="numba schedule repetitions")
    ap.add_argument("--ref-reps", type=int, default=1, help="hmmlearn schedule repetitions")
    ap.add_argument("--cli-reps", type=int, default=2)
    ap.add_argument("--skip-cli", action="store_true")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    in_process(args.reps, args.ref_reps)
    if not args.skip_cli:
        cli_runs(args.cli_reps)


if __name__ == "__main__":
    main()

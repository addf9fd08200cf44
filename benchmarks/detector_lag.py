"""How fast does the default detector see a crisis, and how fast does it come back?

Evidence for the default detector inputs and smoothing (``engine/regimes/config.py``,
``configs/default.toml``), in two parts:

1. **Synthetic**: ``two_state_example`` (vol ratio 3, mean dwell 100 bars, 5,000 bars),
   seeds 0, 1, 2. A 2-state Gaussian HMM on the default schedule (first fit at bar 504, refit
   every 126 bars, expanding window; the online forward filter between fits) per candidate,
   against the true states: balanced accuracy of the online state and the detection lag in
   **each direction** (calm -> crisis, crisis -> calm): bars from a true switch to the first
   bar the detector names the new state, as a distribution over all switches of the three
   seeds (median, 75th/90th percentile, max) and the share missed (never named before the
   next true switch); false switches per year. An "ideal" forward filter that knows the
   true parameters is the ceiling.
2. **Real, out of sample** (bundled modern panel, SPX): the default 3-state HMM with each
   candidate's inputs/smoothing, fitted on trailing data only, inside the default run: the
   crisis entry and exit dates around the 2008 and 2020 crashes and in 2022, and the default
   regime-aware strategy's Sharpe / CAGR / max drawdown over 2002-2022 (5 bps).

    .venv/bin/python -m benchmarks.detector_lag [--quick]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.detectors import balanced_accuracy, fit_all, online
from data_feeds.synthetic import transition_from_dwell, two_state_example
from engine.core.backtest import feature_history
from engine.core.spec import Features, Smoothing
from engine.ground import layout as L
from engine.regimes.config import HMMDetectorConfig
from engine.regimes.online_nb import smooth_state_nb

BARS_PER_YEAR = 252
SEEDS = (0, 1, 2)
N_BARS = 5000


@dataclass(frozen=True)
class Candidate:
    name: str
    features: tuple[str, ...]
    smoothing: Smoothing = field(default_factory=Smoothing)


CANDIDATES = (
    Candidate("logret", ("logret",)),
    Candidate("logret + log_vol_fast (old default)", ("logret", "log_vol_fast")),
    Candidate("log_vol_fast", ("log_vol_fast",)),
    Candidate("logret, confirm 2 (default)", ("logret",), Smoothing(0.0, 0, 2)),
    Candidate("logret, p >= 0.8", ("logret",), Smoothing(0.8, 0, 1)),
    Candidate("logret + log_vol_fast, confirm 2", ("logret", "log_vol_fast"), Smoothing(0.0, 0, 2)),
)


def smoothed(raw: np.ndarray, post: np.ndarray, sm: Smoothing) -> np.ndarray:
    """The trading smoother of the step (``smooth_state_nb``) over a raw state path."""
    arr = sm.array()
    rstate = np.zeros(L.N_REGIME_STATE)
    rstate[L.G_SMOOTHED] = -1.0
    rstate[L.G_CAND] = -1.0
    out = np.empty_like(raw)
    for t in range(raw.shape[0]):
        smooth_state_nb(int(raw[t]), post[t], arr, rstate)
        out[t] = int(rstate[L.G_SMOOTHED])
    return out


def lags(truth: np.ndarray, pred: np.ndarray) -> dict[int, tuple[list[int], int]]:
    """Per target state: (lags of the detected switches into it, number missed)."""
    sw = np.flatnonzero(truth[1:] != truth[:-1]) + 1
    out: dict[int, tuple[list[int], int]] = {0: ([], 0), 1: ([], 0)}
    for i, tau in enumerate(sw):
        end = sw[i + 1] if i + 1 < len(sw) else len(truth)
        new = int(truth[tau])
        hit = np.flatnonzero(pred[tau:end] == new)
        got, missed = out[new]
        if hit.size:
            got.append(int(hit[0]))
        else:
            out[new] = (got, missed + 1)
    return out


def ideal_filter(panel: Any) -> np.ndarray:
    """Forward filter of the market asset's log returns with the TRUE 2-state parameters."""
    r = np.diff(np.log(panel.close[:, 0]), prepend=np.log(100.0))
    mu = np.array([5e-4, -1e-3])
    sd = np.array([0.008, 0.024])
    p = transition_from_dwell([100.0, 100.0])
    alpha = np.array([0.5, 0.5])
    out = np.empty(len(r), dtype=np.int64)
    for t, x in enumerate(r):
        like = np.exp(-0.5 * ((x - mu) / sd) ** 2) / sd
        alpha = (alpha @ p) * like
        alpha /= alpha.sum()
        out[t] = int(np.argmax(alpha))
    return out


def dist(x: list[int]) -> str:
    if not x:
        return "- | - | - | -"
    q = np.percentile(x, [50, 75, 90])
    return f"{q[0]:.0f} | {q[1]:.0f} | {q[2]:.0f} | {max(x)}"


def synthetic(quick: bool) -> None:
    seeds = SEEDS[:1] if quick else SEEDS
    print(f"## synthetic: 2 states, vol ratio 3, mean dwell 100, {N_BARS} bars, seeds {seeds}")
    print("2-state HMM, default schedule (first fit 504, refit 126, expanding), online state")
    print("lags in bars over all switches of all seeds: median | p75 | p90 | max\n")
    print(
        "| candidate | bal. acc (per seed) | calm->crisis lag | missed "
        "| crisis->calm lag | missed | false sw/yr |"
    )
    print("|---|---|---|---|---|---|---|")
    panels = {s: two_state_example(N_BARS, 3.0, 100.0, s) for s in seeds}
    feats = {s: feature_history(p, Features().array()) for s, (p, _) in panels.items()}
    rows: list[tuple[str, Callable[[int], np.ndarray]]] = []

    def hmm_path(c: Candidate) -> Callable[[int], np.ndarray]:
        def run(seed: int) -> np.ndarray:
            panel, _ = panels[seed]
            det = HMMDetectorConfig(market="EQ", n_states=2, features=c.features).build(panel)
            exog = np.zeros((panel.n_bars, 1))
            params, bars, _ = fit_all(det, feats[seed], exog)
            raw, post, _ = online(det, params, bars, feats[seed], exog, 0)
            return smoothed(raw, post, c.smoothing)

        return run

    for c in CANDIDATES:
        rows.append((c.name, hmm_path(c)))
    rows.append(("ideal filter (true parameters)", lambda s: ideal_filter(panels[s][0])))
    for name, run in rows:
        t0 = time.perf_counter()
        bas, up, down, up_miss, down_miss, false, years = [], [], [], 0, 0, 0, 0.0
        for s in seeds:
            truth = panels[s][1]
            pred = run(s)
            m = np.arange(len(truth)) >= 504  # scored once every candidate has a fit
            truth, pred = truth[m], pred[m]
            bas.append(balanced_accuracy(truth, np.maximum(pred, 0), 2))
            lg = lags(truth, pred)
            up += lg[1][0]
            up_miss += lg[1][1]
            down += lg[0][0]
            down_miss += lg[0][1]
            det = np.flatnonzero(pred[1:] != pred[:-1]) + 1
            false += int(np.sum(pred[det] != truth[det]))
            years += len(truth) / BARS_PER_YEAR
        n_up, n_down = len(up) + up_miss, len(down) + down_miss
        print(
            f"| {name} | {np.mean(bas):.3f} ({', '.join(f'{b:.3f}' for b in bas)}) "
            f"| {dist(up)} | {up_miss}/{n_up} | {dist(down)} | {down_miss}/{n_down} "
            f"| {false / years:.1f} |",
            flush=True,
        )
        _ = t0


EPISODES = {
    "2008": ("2008-09-01", "2009-03-09", "2009-12-31"),
    "2020": ("2020-02-19", "2020-03-23", "2020-12-31"),
    "2022": ("2022-01-03", "2022-10-12", "2022-11-08"),
}


def real(quick: bool) -> None:
    from engine.api import run_backtest
    from engine.config import RunConfig

    base = RunConfig().model_dump(mode="json")
    print("\n## real data, out of sample: bundled modern panel, default 3-state HMM on SPX")
    print("fits on trailing data only (first fit 2002-01, refit every 126 bars); the regime")
    print("strategy is the default regime_aware (5 bps); crisis = highest-volatility state.")
    print("entry: first crisis bar after the start date; exit: first non-crisis bar after the")
    print("market bottom (bars after it); calm: first calm bar after the bottom\n")
    print(
        "| candidate | "
        + " | ".join(f"{e} entry | {e} exit (bars) | {e} calm" for e in EPISODES)
        + " | crisis share | Sharpe | CAGR | max DD |"
    )
    print("|---|" + "---|---|---|" * len(EPISODES) + "---|---|---|---|")
    cands = CANDIDATES[:2] if quick else CANDIDATES
    extra = Candidate("logret + exog.log_VIX", ("logret", "exog.log_VIX"))
    for c in (*cands, extra):
        cfg = dict(base)
        det = dict(cfg["detector"])
        det["features"] = list(c.features)
        det["smoothing"] = {
            "prob_threshold": c.smoothing.prob_threshold,
            "min_dwell": c.smoothing.min_dwell,
            "confirm": c.smoothing.confirm,
        }
        cfg["detector"] = det
        cfg["strategies"] = [s for s in cfg["strategies"] if s["kind"] == "regime"]
        res = run_backtest(cfg, progress=False)
        st = res.regimes["smoothed_state"]
        crisis = int(st.max())
        cells = []
        for start, bottom, end in EPISODES.values():
            w = st.loc[start:end]  # type: ignore[misc]
            ent = w[w == crisis]
            after = st.loc[bottom:end]  # type: ignore[misc]
            out = after[after != crisis]
            calm = after[after == 0]
            fmt = lambda s: str(s.index[0].date()) if len(s) else "never"  # noqa: E731
            n_exit = after.index.get_loc(out.index[0]) if len(out) else float("nan")
            cells += [fmt(ent), f"{fmt(out)} ({n_exit})", fmt(calm)]
        m = res.metrics["regime_aware"]
        share = float((st[st >= 0] == crisis).mean())
        print(
            f"| {c.name} | "
            + " | ".join(cells)
            + f" | {share:.0%} | {m['sharpe']:.3f} | {m['cagr']:.2%} | {m['max_drawdown']:.1%} |",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one seed, two candidates")
    ap.add_argument("--skip-synthetic", action="store_true")
    args = ap.parse_args()
    pd.set_option("display.width", 200)
    if not args.skip_synthetic:
        synthetic(args.quick)
    real(args.quick)


if __name__ == "__main__":
    main()

"""Static baselines that isolate a regime strategy's *timing* from its *de-risking*.

A regime-aware allocation that beats 60/40 may do so only because it holds less equity on
average. Three baselines answer that, on the same bars, costs and rebalancing calendars as
the strategy (``validate`` on its out-of-sample bars, ``backtest`` after the detector's
warm-up):

* the **average-weight mix** (:data:`AVG_MIX`, :func:`average_weights`): the strategy's
  mean realised weight of each asset over the evaluation window, held constant. If the
  detector's timing adds nothing, the strategy and this mix have the same expected return
  and risk; what the strategy earns beyond it is timing. (The mean weights are the
  evaluation window's own, so this one is *not* out of sample: it favours the baseline.)
* the **volatility-matched mix** (:data:`VOL_MIX`, :func:`training_scales`): the
  benchmark's mix scaled by ``k`` with the rest in the cash asset (``k < 1`` de-levers),
  ``k`` re-chosen at the start of every segment (``validate``: each walk-forward test
  fold; ``backtest``: each year from the evaluation start, ``validation.test_years``)
  from **bars before the segment only**, so the
  baseline is itself out of sample. ``k`` makes the mix's volatility over those bars equal
  the strategy's *realised* volatility over them: the bars from the evaluation start (the
  detector's first fit) to the segment start, i.e. the strategy's own earlier out-of-sample
  returns; when fewer than ``min_bars`` exist (the first segment), all bars before the
  segment (the strategy's warm-up weights: what it is known to hold before any fit).
  Realised, not in-sample, returns: a replay of the segment's fit over its own training
  bars would time those bars with hindsight (lower volatility than it can deliver), and it
  costs one strategy run per segment (an optimiser per run for ``kind = "optimized"``).
  ``k`` is the closed form for the frictionless, daily-rebalanced mix
  (:func:`scale_for_volatility`); the traded baseline then rebalances on the benchmark's
  calendar with costs.
* the **benchmark** the user names (``validation.benchmark``; ``backtest``: the first
  static strategy).

The baselines are built-in-policy schedules (:class:`ScheduledMix`): one run each of the
disk-cached loop, whatever the number of segments. :func:`evaluation_start` gives the first
bar a regime strategy acts on its own (the detector's first fit; before it the strategy
holds its warm-up weights).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.analysis._common import filtered_state
from engine.core.policy_nb import N_POLICY_STATE, builtin_policy_nb

AVG_MIX = "static_avg_weights"
VOL_MIX = "static_vol_matched"
VOL_MIX_IS = "static_vol_matched_is"  # k from the evaluation window itself (conservative)
MIN_BARS = 63  # realised bars (a quarter of daily bars) before a segment to match volatility


def average_weights(weights: pd.DataFrame, index: pd.Index | None = None) -> dict[str, float]:
    """Mean held weight of each asset over the rows ``index`` (all rows when ``None``).

    ``weights`` holds one strategy's weights at each bar's close (columns = symbols); the
    rows not invested (weights summing below 1) stay in account cash, as in the strategy.
    Assets never held are left out.
    """
    w = weights.astype(float).fillna(0.0)
    if index is not None:
        w = w.loc[w.index.isin(index)]
    if len(w) == 0:
        raise ValueError("average_weights: no rows in the evaluation window")
    mean = w.mean(axis=0)
    return {str(k): float(v) for k, v in mean.items() if abs(float(v)) > 1e-12}


def scaled_mix(
    weights: Mapping[str, float],
    scale: float,
    cash: str | None,
    max_gross: float = 1.0,
) -> tuple[dict[str, float], float]:
    """``weights`` (risky part) times ``scale``, the rest (``1 - scale * sum``) in ``cash``.

    The weight of ``cash`` in ``weights`` is treated as cash (it is replaced by the
    residual). Without a cash asset the residual stays uninvested. ``scale`` is capped so
    the risky gross exposure stays within ``max_gross`` and the cash weight non-negative
    (no borrowing; ``scale = inf`` gives the largest allowed); returns the mix and the scale
    used.
    """
    if np.isnan(scale) or scale < 0:
        raise ValueError(f"scaled_mix: scale must be >= 0, got {scale}")
    risky = {k: float(v) for k, v in weights.items() if k != cash and float(v) != 0.0}
    gross = float(sum(abs(v) for v in risky.values()))
    if gross > 0:
        scale = min(scale, max_gross / gross)
    net = float(sum(risky.values()))
    if cash is not None and scale * net > 1.0:
        scale = 1.0 / net
    out = {k: v * scale for k, v in risky.items()}
    rest = 1.0 - scale * net
    if cash is not None and rest > 1e-12:
        out[cash] = rest
    return out, float(scale)


def evaluation_start(regimes: pd.DataFrame | pd.Series | None) -> pd.Timestamp | None:
    """The first bar with a filtered state (the detector's first fit): before it the
    strategy holds its warm-up weights. ``None`` when there is no regime table or no
    fit at all; the first bar when there is no warm-up."""
    if regimes is None or len(regimes) == 0:
        return None
    if isinstance(regimes, pd.DataFrame) and "state" not in regimes.columns:
        return None
    st = filtered_state(regimes)
    hit = np.flatnonzero(st.to_numpy() >= 0)
    return pd.Timestamp(st.index[int(hit[0])]) if hit.size else None


class WindowView:
    """A result-like view of ``result`` from bar ``start`` on: ``equity``, ``weights``,
    ``regimes``, ``prices`` and ``fills`` sliced (fills by timestamp); every other attribute
    (``panel``, ``config``, ``regime_labels`` ...) is the result's own."""

    def __init__(self, result: Any, start: pd.Timestamp) -> None:
        self._result = result
        self.start = pd.Timestamp(start)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)

    def _cut(self, name: str) -> pd.DataFrame:
        df: pd.DataFrame = getattr(self._result, name)
        return df.loc[df.index >= self.start]

    @property
    def equity(self) -> pd.DataFrame:
        return self._cut("equity")

    @property
    def weights(self) -> pd.DataFrame:
        return self._cut("weights")

    @property
    def regimes(self) -> pd.DataFrame:
        return self._cut("regimes")

    @property
    def prices(self) -> pd.DataFrame:
        return self._cut("prices")

    @property
    def fills(self) -> pd.DataFrame:
        f: pd.DataFrame = self._result.fills
        if f is None or len(f) == 0 or "timestamp" not in f.columns:
            return f
        return f.loc[pd.to_datetime(f["timestamp"]) >= self.start].reset_index(drop=True)


def after_warmup(result: Any) -> WindowView | None:
    """``result`` from its :func:`evaluation_start` on, or ``None`` when there is no
    warm-up to leave out (no regime table, no fit, or a fit at the first bar)."""
    start = evaluation_start(getattr(result, "regimes", None))
    equity: pd.DataFrame = result.equity
    if start is None or len(equity) == 0 or start <= equity.index[0]:
        return None
    return WindowView(result, start)


# ------------------------------------------------------------------ volatility matching
def scale_for_volatility(target: float, mix: np.ndarray, cash: np.ndarray | None) -> float:
    """The ``k >= 0`` with ``std(k * (mix - cash) + cash) == target`` (per-bar returns).

    ``mix``: the benchmark mix's per-bar returns, ``cash``: the cash asset's (``None``:
    the rest stays uninvested and earns 0). The variance is quadratic in ``k``; a target
    below the smallest reachable volatility gives the ``k`` that reaches it; a mix with no
    volatility gives ``k = 1``.
    """
    c = np.zeros_like(mix) if cash is None else np.asarray(cash, dtype=float)
    x = np.asarray(mix, dtype=float) - c
    if x.size < 2 or not np.isfinite(target):
        return 1.0
    vx = float(np.var(x, ddof=1))
    if vx <= 0.0:
        return 1.0
    cxc = float(np.cov(x, c, ddof=1)[0, 1]) if c.any() else 0.0
    vc = float(np.var(c, ddof=1))
    disc = cxc * cxc - vx * (vc - target * target)
    k = (-cxc + np.sqrt(disc)) / vx if disc >= 0.0 else -cxc / vx
    return float(max(k, 0.0))


def training_scales(
    strategy: np.ndarray,
    mix: np.ndarray,
    cash: np.ndarray | None,
    starts: Sequence[int] | np.ndarray,
    eval_start: int,
    min_bars: int = MIN_BARS,
) -> np.ndarray:
    """``k`` for each segment starting at bar ``starts[i]``, from bars before it only.

    ``strategy`` / ``mix`` / ``cash`` are per-bar returns over all bars (row ``t``: bar
    ``t - 1`` to ``t``; row 0 is not read). The strategy's realised returns on rows
    ``(eval_start, start)`` set the target; with fewer than ``min_bars`` of them, rows
    ``[1, start)``. The mix's volatility is matched over the same rows.
    """
    out = np.ones(len(starts))
    for i, s in enumerate(starts):
        lo = eval_start + 1 if s - eval_start - 1 >= min_bars else 1
        rows = slice(lo, s)
        r = np.asarray(strategy[rows], dtype=float)
        if r.size < 2:
            continue
        target = float(np.std(r, ddof=1))
        out[i] = scale_for_volatility(target, mix[rows], None if cash is None else cash[rows])
    return out


# ------------------------------------------------------------------ the compiled baselines
@dataclass(frozen=True)
class ScheduledMix:
    """Fixed mixes that change at given bars: ``mixes[i]`` from bar ``starts[i]`` on
    (``starts[0]`` is taken as bar 0). The built-in policy (disk-cached loop) runs it: the
    mix in force is rebalanced to on the ``rebalance`` calendar, so a new mix takes effect
    at the first scheduled rebalance on or after its start bar. One mix is a static
    allocation."""

    name: str
    starts: tuple[int, ...]
    mixes: tuple[Mapping[str, float], ...]
    rebalance: str | None = "M"
    uses_builtin_features: bool = False

    @property
    def policy(self) -> Any:
        return builtin_policy_nb

    def params(self, symbols: tuple[str, ...], labels: tuple[str, ...]) -> np.ndarray:
        from engine.ground import layout as L
        from engine.weights import weight_vector

        rows = [weight_vector(dict(m), symbols, f"baseline {self.name!r}") for m in self.mixes]
        p = np.zeros(L.SP_HEADER + len(rows) * len(symbols) + len(rows))
        p[L.SP_KIND] = L.POLICY_SCHEDULE
        p[L.SP_ON_SCHEDULE] = 1.0 if self.rebalance else 0.0
        p[L.SP_N_STATES] = len(rows)
        p[L.SP_HEADER : L.SP_HEADER + len(rows) * len(symbols)] = np.concatenate(rows)
        p[L.SP_HEADER + len(rows) * len(symbols) :] = [0, *self.starts[1:]]
        return p

    def state_size(self) -> int:
        return N_POLICY_STATE


def mix_text(mix: Mapping[str, float]) -> str:
    """``SPX 0.600, UST10 0.400``: a mix for tables."""
    return ", ".join(f"{a} {w:.3f}" for a, w in mix.items())


def benchmark_mix(scfg: Any, symbols: Sequence[str], held: pd.DataFrame) -> dict[str, float]:
    """A benchmark's target mix: its configured static weights (``kind = "static"``), else
    its average held weights ``held`` (its weights over the evaluation bars)."""
    from engine.weights import normalized

    if getattr(scfg, "kind", None) == "static":
        spec = normalized(scfg.weights, scfg.normalize)
        if isinstance(spec, str):  # "equal"
            return {str(sym): 1.0 / len(symbols) for sym in symbols}
        return {str(k): float(v) for k, v in spec.items()}
    return average_weights(held)


@dataclass(frozen=True)
class BaselineSet:
    """A regime strategy's two static baselines and their description."""

    strategies: tuple[ScheduledMix, ...]  # AVG_MIX, VOL_MIX (, VOL_MIX_IS)
    table: pd.DataFrame  # rows AVG_MIX, VOL_MIX: what, scale, weights
    scales: np.ndarray  # VOL_MIX's k per segment
    starts: np.ndarray  # the segments' first bars


def build_baselines(
    prep: Any,
    candidate: str,
    weights: pd.DataFrame,
    equity: pd.Series,
    bench: str,
    bench_mix_: Mapping[str, float],
    eval_rows: np.ndarray,
    starts: Sequence[int],
    rebalance: tuple[str | None, str | None],
    max_gross: float = 1.0,
    where: str = "evaluation",
    in_sample: bool = False,
) -> BaselineSet:
    """The average-weight and volatility-matched baselines of ``candidate`` (with
    ``in_sample`` also :data:`VOL_MIX_IS`: one ``k`` matching the volatility over the
    evaluation bars themselves, as if known in advance; it keeps the benchmark's Sharpe,
    so it is the conservative variant).

    ``weights`` / ``equity``: the candidate's held weights and equity over all bars;
    ``eval_rows``: bool per bar, the evaluation window (average weights); ``starts``: the
    segments' first bars (the first one is the evaluation start); ``rebalance``: the
    candidate's and the benchmark's calendars (average and volatility-matched mix; monthly
    when one has none, so that a new ``k`` is applied).
    """
    from engine.analysis.metrics import cash_symbol
    from engine.core.backtest import run_strategy_raw

    panel = prep.panel
    avg = average_weights(weights, panel.index[eval_rows])
    cash = cash_symbol(panel)
    reb_avg, reb_vol = rebalance[0] or "M", rebalance[1] or "M"  # a calendar to re-apply k
    unit = ScheduledMix(VOL_MIX, (0,), (dict(bench_mix_),), reb_vol)
    eq_mix = np.asarray(run_strategy_raw(prep, unit)[0], dtype=float)
    mix_r = np.concatenate([[0.0], eq_mix[1:] / eq_mix[:-1] - 1.0])
    e = equity.to_numpy(dtype=float)
    cand_r = np.concatenate([[0.0], e[1:] / e[:-1] - 1.0])
    cash_r = None
    if cash is not None:
        c = panel.close[:, panel.column(cash)].astype(float)
        cash_r = np.nan_to_num(np.concatenate([[0.0], c[1:] / c[:-1] - 1.0]))
    st = np.asarray(starts, dtype=np.int64)
    ks = training_scales(cand_r, mix_r, cash_r, st, int(st[0]))
    mixes = [scaled_mix(bench_mix_, k, cash, max_gross) for k in ks]
    ks = np.array([k for _, k in mixes])
    vol_s = ScheduledMix(VOL_MIX, tuple(int(x) for x in st), tuple(w for w, _ in mixes), reb_vol)
    avg_s = ScheduledMix(AVG_MIX, (0,), (avg,), reb_avg)
    lens = np.diff(np.append(st, panel.n_bars))
    k_mean = float(np.average(ks, weights=lens)) if lens.sum() > 0 else float(ks[0])
    k_txt = (
        f"x {ks[0]:.3f}"
        if len(ks) == 1
        else f"x {ks.min():.3f}..{ks.max():.3f} (mean {k_mean:.3f})"
    )
    names, strategies = [AVG_MIX, VOL_MIX], [avg_s, vol_s]
    what = [
        f"static mix at {candidate}'s average held weights over the {where} bars",
        f"{bench}'s mix {k_txt}, rest in {cash or 'account cash'}: {candidate}'s realised "
        f"volatility before each of {len(ks)} segments (out of sample)",
    ]
    scales = [np.nan, k_mean]
    if in_sample:
        rows = np.asarray(eval_rows, dtype=bool).copy()
        rows[0] = False
        k_is = scale_for_volatility(
            float(np.std(cand_r[rows], ddof=1)),
            mix_r[rows],
            None if cash_r is None else cash_r[rows],
        )
        w_is, k_is = scaled_mix(bench_mix_, k_is, cash, max_gross)
        names.append(VOL_MIX_IS)
        strategies.append(ScheduledMix(VOL_MIX_IS, (0,), (w_is,), reb_vol))
        what.append(
            f"{bench}'s mix x {k_is:.3f}, rest in {cash or 'account cash'}: {candidate}'s "
            f"volatility over the {where} bars themselves (in sample, conservative)"
        )
        scales.append(k_is)
    table = pd.DataFrame(
        {
            "what": what,
            "scale": scales,
            "weights": [
                mix_text(scaled_mix(bench_mix_, k, cash, max_gross)[0] if np.isfinite(k) else avg)
                for k in scales
            ],
        },
        index=pd.Index(names, name="baseline"),
    )
    return BaselineSet(tuple(strategies), table, ks, st)


# ------------------------------------------------------------------ verdicts
def diff_text(boot: pd.DataFrame, p: float, level: float, key: str = "sharpe") -> str:
    """``+0.123 (95% CI [+0.010, +0.240], p=0.020)``: a paired-bootstrap difference."""
    d = boot.loc[f"{key}_diff"]
    if not np.isfinite(d["lower"]):  # estimates only (no resampling)
        return f"{d['estimate']:+.3f}"
    return (
        f"{d['estimate']:+.3f} ({level:.0%} CI [{d['lower']:+.3f}, {d['upper']:+.3f}], p={p:.3f})"
    )


def derisking_verdict(
    candidate: str, rows: Mapping[str, tuple[pd.DataFrame, float]], level: float, rf: str
) -> str:
    """One sentence: does the detector add value beyond de-risking? From the paired
    bootstraps (``rows``: baseline -> (table, p)) against :data:`VOL_MIX` (the benchmark
    at the strategy's risk; :data:`VOL_MIX_IS` too when given) and :data:`AVG_MIX` (its
    own average mix): it does when every such Sharpe-difference interval excludes 0, it is
    not shown when none does."""
    names = [n for n in (VOL_MIX, VOL_MIX_IS, AVG_MIX) if n in rows]
    lows = {n: float(rows[n][0]["lower"].to_dict()["sharpe_diff"]) for n in names}
    wins = {n: lo > 0 for n, lo in lows.items()}
    nums = "; ".join(f"vs {n} {diff_text(*rows[n], level)}" for n in names)
    if not all(np.isfinite(x) for x in lows.values()):
        return (
            f"{candidate}: Sharpe (rf = {rf}) difference {nums} (point estimates: no "
            "bootstrap was run, so no verdict on the detector vs de-risking)."
        )
    if names and all(wins.values()):
        word = "ADDS value beyond de-risking"
    elif all(wins[n] for n in (VOL_MIX, VOL_MIX_IS) if n in wins) and not wins.get(AVG_MIX, False):
        word = (
            "adds value beyond holding less risk, but NOT significantly beyond holding its "
            "own average mix"
        )
    elif any(wins.values()):
        only = ", ".join(n for n, w in wins.items() if w)
        word = (
            f"beats only {only} significantly, so value beyond de-risking is NOT shown "
            "against every static baseline"
        )
    else:
        word = (
            "does NOT add value beyond de-risking (not shown: no static baseline's interval "
            "excludes 0)"
        )
    return f"{candidate}: the detector {word}: Sharpe (rf = {rf}) difference {nums}."


# ------------------------------------------------------------------ backtest
@dataclass(frozen=True)
class BacktestBaselines:
    """The baselines of every regime strategy of a backtest, after the warm-up."""

    table: pd.DataFrame  # rows (strategy, baseline)
    verdicts: dict[str, str]  # strategy -> the one-sentence verdict
    rf_label: str
    start: pd.Timestamp  # the evaluation start (first fit)


def backtest_baselines(
    cfg: Any,
    prep: Any,
    result: Any,
    candidates: Sequence[str],
    bench: str,
    *,
    periods_per_year: float,
    reps: int = 1000,
    level: float = 0.95,
    seed: int = 12345,
    segment_years: float = 1.0,
) -> BacktestBaselines | None:
    """The three baselines of each of ``candidates`` (regime strategies of ``result``) on
    the backtest's bars and costs, from the detector's first fit on: the average-weight
    mix, the volatility-matched mix (``k`` re-chosen every ``segment_years`` from the
    evaluation start, from earlier bars, :func:`training_scales`) and the benchmark
    ``bench``; the paired bootstrap
    (Sharpe over the run's risk-free rate) of each candidate against each, and the
    one-sentence verdict. ``None`` when the detector never fits."""
    from engine.analysis.bootstrap import paired_bootstraps
    from engine.analysis.metrics import result_risk_free
    from engine.core.backtest import run_strategy_raw

    start = evaluation_start(result.regimes)
    if start is None or not candidates:
        return None
    panel = prep.panel
    e0 = int(panel.index.get_indexer([start])[0])
    step = max(round(periods_per_year * segment_years), 1)
    starts = list(range(e0, panel.n_bars, step))
    eval_rows = np.arange(panel.n_bars) >= e0
    rf, rf_label = result_risk_free(result)
    scfgs = {s.name: s for s in cfg.strategies}
    mix = benchmark_mix(scfgs[bench], panel.symbols, result.runs[bench].weights.loc[eval_rows])
    ex = cfg.execution
    max_gross = ex.max_gross if ex.allow_leverage else 1.0

    def after(eq: pd.Series | np.ndarray) -> pd.Series:
        e = pd.Series(np.asarray(eq, dtype=float), index=panel.index)
        return (e / e.shift(1) - 1.0).iloc[e0 + 1 :]

    rows, verdicts = [], {}
    for cand in candidates:
        bset = build_baselines(
            prep,
            cand,
            result.runs[cand].weights,
            result.runs[cand].equity,
            bench,
            mix,
            eval_rows,
            starts,
            (getattr(scfgs[cand], "rebalance", None), getattr(scfgs[bench], "rebalance", None)),
            max_gross,
            "post-warm-up",
        )
        series = {bench: after(result.runs[bench].equity)}
        for s in bset.strategies:
            series[s.name] = after(run_strategy_raw(prep, s)[0])
        boots = paired_bootstraps(
            after(result.runs[cand].equity),
            series,
            reps,
            level,
            seed=seed,
            periods_per_year=periods_per_year,
            rf=rf,
        )
        verdicts[cand] = derisking_verdict(cand, boots, level, rf_label)
        what = {**bset.table["what"].to_dict(), bench: "the benchmark"}
        weights = {**bset.table["weights"].to_dict()}
        weights[bench] = mix_text(mix)
        for name in (AVG_MIX, VOL_MIX, bench):
            t, p = boots[name]
            cell = t.to_dict(orient="index")
            r = series[name].to_numpy(dtype=float)
            rows.append(
                {
                    "strategy": cand,
                    "baseline": name,
                    "sharpe": float(cell["sharpe_benchmark"]["estimate"]),
                    "cagr": float(cell["cagr_benchmark"]["estimate"]),
                    "volatility": float(np.std(r, ddof=1) * np.sqrt(periods_per_year)),
                    "max_drawdown": float(cell["max_drawdown_benchmark"]["estimate"]),
                    "sharpe_diff": float(cell["sharpe_diff"]["estimate"]),
                    "sharpe_diff_lower": float(cell["sharpe_diff"]["lower"]),
                    "sharpe_diff_upper": float(cell["sharpe_diff"]["upper"]),
                    "p_sharpe_diff_le_0": p,
                    "max_drawdown_diff": float(cell["max_drawdown_diff"]["estimate"]),
                    "scale": float(bset.table["scale"].get(name, np.nan)),
                    "what": what[name],
                    "weights": weights[name],
                }
            )
    table = pd.DataFrame(rows).set_index(["strategy", "baseline"])
    table.attrs["rf_label"] = rf_label
    return BacktestBaselines(table, verdicts, rf_label, pd.Timestamp(start))

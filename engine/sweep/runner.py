"""Run a sweep: expand the grid, fit each distinct detector once, run every combination
through the compiled driver on an executor, and collect a tidy results table."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import structlog

from engine.assemble import Run
from engine.config import ConfigError, RunConfig
from engine.core.backtest import feature_history
from engine.core.spec import new_period_flags
from engine.core.usage import strategy_params
from engine.ground import layout as L
from engine.ground.bars import BarPanel
from engine.plugins.names import Names
from engine.plugins.strategy import CompiledStrategy
from engine.sweep.config import Plan, build_plan
from engine.sweep.executors import Executor, SerialExecutor
from engine.sweep.fitcache import FitCache, fit_key, panel_digest
from engine.sweep.metrics_nb import METRIC_NAMES
from engine.sweep.tasks import (
    Fit,
    FitJob,
    SweepData,
    fit_task,
    regimes_of,
    run_chunk,
    run_one,
    shared_passes,
)

log = structlog.get_logger(__name__)


@dataclass
class SweepResult:
    """The results table (one row per combination) and where the time went."""

    table: pd.DataFrame
    timings: dict[str, float]
    plan: Plan
    fits: list[Fit] = field(default_factory=list)

    def save(self, out: str | Path) -> Path:
        """Write ``results.parquet``, ``results.csv`` and ``heatmap.png`` into ``out``."""
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        self.table.to_parquet(folder / "results.parquet", index=False)
        self.table.to_csv(folder / "results.csv", index=False)
        try:
            write_heatmap(self.table, folder / "heatmap.png")
        except ImportError:  # pragma: no cover - matplotlib is a runtime dependency
            pass
        return folder


StrategyKey = tuple[int, int, int, int]
"""``(strategy config, fit, features, detector)`` of one strategy params row; features and
detector are -1 unless the strategy binds to a regime pass (its rows differ by them)."""


def _strategy_rows(
    plan: Plan, run: Run, fits: list[Fit], keys: list[StrategyKey], panel: BarPanel
) -> tuple[list[np.ndarray], list[int], list[np.ndarray], list[Any]]:
    """Policy parameters per distinct strategy key. A strategy that decides its targets
    ahead of the loop (``bind_regimes``, e.g. ``kind = "optimized"``) is bound to the
    regime pass of its combination's fit, features and smoothing, as a backtest binds
    it to its prepared run."""
    from engine.assemble import build_strategy

    sparams, ssize, flags, policies = [], [], [], []
    flag_cache: dict[str | None, np.ndarray] = {}
    rows: dict[int, np.ndarray] = {}
    for s_i, f_i, x_i, d_i in keys:
        scfg = plan.strategies[s_i]
        strat = build_strategy(scfg)
        if not isinstance(strat, CompiledStrategy):
            raise ConfigError(
                f"sweep.strategy_name: {scfg.name!r} is a Python strategy; sweeps run compiled "
                "strategies only"
            )
        try:
            if x_i >= 0:
                if x_i not in rows:
                    rows[x_i] = feature_history(
                        panel, run.features_variant(plan.features[x_i]).array()
                    )
                post, raw = regimes_of(
                    panel,
                    rows[x_i],
                    fits[f_i],
                    run.features_variant(plan.features[x_i]).array(),
                    plan.detectors[d_i].smoothing.build().array(),
                    run.execution_variant(plan.executions[0]).array(),
                    run.costs_variant(plan.costs[0]),
                )[:2]
                strat = strat.bind_regimes(panel, post, raw)  # type: ignore[attr-defined]
            sparams.append(
                strategy_params(strat, Names(panel.symbols, fits[f_i].labels, panel.exog_names))
            )
        except ValueError as exc:
            raise ConfigError(f"sweep.strategy: {exc}") from None
        ssize.append(int(strat.state_size()))
        freq = strat.rebalance
        if freq not in flag_cache:
            flag_cache[freq] = new_period_flags(panel.timestamps_ns, freq)
        flags.append(flag_cache[freq])
        policies.append(strat.policy)
    return sparams, ssize, flags, policies


def _binds(plan: Plan) -> list[bool]:
    """Per strategy config: whether its strategy binds to a regime pass."""
    from engine.assemble import build_strategy

    return [callable(getattr(build_strategy(s), "bind_regimes", None)) for s in plan.strategies]


def fit_all(
    plan: Plan, run: Run, executor: Executor, cache: FitCache
) -> tuple[list[Fit], np.ndarray, float]:
    """Fit every distinct (detector, features) pair once (through the cache), each
    resolved in the context of ``run`` (market, inputs, bar frequency).

    Returns the fits, the fit index of each combination, and the seconds spent fitting.
    """
    panel = run.inputs
    digest = panel_digest(panel)
    pair_of: dict[tuple[int, int], int] = {}
    keys: list[str] = []
    jobs: list[FitJob] = []
    fit_idx = np.empty(plan.n_combos, dtype=np.int64)
    for i, (d_i, x_i) in enumerate(plan.combos[:, [0, 1]]):
        pair = (int(d_i), int(x_i))
        if pair not in pair_of:
            feat = plan.features[pair[1]]
            det = run.detector_variant(plan.detectors[pair[0]], run.features_variant(feat))[0]
            key = fit_key(det, feat, digest)
            if key in keys:  # detectors that differ only by smoothing share the fit
                pair_of[pair] = keys.index(key)
            else:
                pair_of[pair] = len(keys)
                keys.append(key)
                jobs.append(FitJob(det, run.features_variant(feat).array()))
        fit_idx[i] = pair_of[pair]
    t0 = time.perf_counter()
    fits: list[Fit | None] = [cache.get(k) for k in keys]
    todo = [j for j, f in enumerate(fits) if f is None]
    try:
        done = executor.map(fit_task, panel, [jobs[j] for j in todo], "detector fits")
    except ValueError as exc:
        raise ConfigError(f"sweep.detector: {exc}") from None
    for j, fit in zip(todo, done):
        cache.put(keys[j], fit)
        fits[j] = fit
    return [f for f in fits if f is not None], fit_idx, time.perf_counter() - t0


def build_data(
    plan: Plan, run: Run, fits: list[Fit], fit_idx: np.ndarray, share: bool = True
) -> SweepData:
    """The arrays every combination shares, and each combination's row of indices (every
    section resolved by ``run``, as the backtest of that combination would); with
    ``share``, the features and regime pass of each (fit, features, smoothing) done once
    for all the strategies and cost models run with it (:func:`shared_passes`: the same
    results bit for bit, the work of one run instead of one per combination)."""
    panel = run.inputs
    pairs: dict[StrategyKey, int] = {}
    n = plan.n_combos
    combos = np.empty((n, 7), dtype=np.int64)
    binds = _binds(plan)
    for i in range(n):
        d_i, x_i, s_i, c_i, e_i = (int(v) for v in plan.combos[i])
        sp = (s_i, int(fit_idx[i]), x_i, d_i) if binds[s_i] else (s_i, int(fit_idx[i]), -1, -1)
        if sp not in pairs:
            pairs[sp] = len(pairs)
        combos[i] = (fit_idx[i], x_i, pairs[sp], c_i, e_i, d_i, -1)
    sparams, ssize, flags, policies = _strategy_rows(plan, run, fits, list(pairs), panel)
    costs = []
    for c_i, cc in enumerate(plan.costs):
        try:
            costs.append(run.costs_variant(cc))
        except ValueError as exc:
            raise ConfigError(f"sweep.costs (combination set {c_i}): {exc}") from None
    data = SweepData(
        open=panel.open,
        close=panel.close,
        volume=panel.volume,
        exog=panel.exog,
        n_features=panel.n_assets * L.N_FEAT_ASSET,
        fits=fits,
        fparams=[run.features_variant(f).array() for f in plan.features],
        sparams=sparams,
        sstate_size=ssize,
        flags=flags,
        policies=policies,
        costs=costs,
        eparams=[run.execution_variant(e).array() for e in plan.executions],
        smooth=[d.smoothing.build().array() for d in plan.detectors],
        combos=combos,
        periods_per_year=run.periods_per_year,
    )
    return shared_passes(data, panel) if share else data


def chunks(n: int, workers: int, size: int = 0) -> list[np.ndarray]:
    """Split ``range(n)`` into chunks (``size`` each, or about 4 per worker)."""
    if n == 0:
        return []
    if size <= 0:
        size = max(1, -(-n // (4 * max(workers, 1))))
    return [np.arange(i, min(i + size, n)) for i in range(0, n, size)]


def run_sweep(
    run: RunConfig,
    *,
    panel: BarPanel | None = None,
    executor: Executor | None = None,
    cache: FitCache | None = None,
    source: str = "<config>",
    share_passes: bool = True,
) -> SweepResult:
    """Expand ``run.sweep`` and run every combination; see :mod:`engine.sweep`.

    ``share_passes=False`` runs the features and the regime pass inside every
    combination (the same results; for tests and benchmarks)."""
    from engine.assemble import assemble

    t_start = time.perf_counter()
    plan = build_plan(run, source)
    if plan.n_combos == 0:
        raise ConfigError(f"{source}: sweep: no combinations to run")
    base = assemble(run, panel)  # the config's strategies checked; per combination, below
    base.check_history()  # a first fit beyond the data: the backtest's line, before any fit
    executor = executor or SerialExecutor()
    cache = cache if cache is not None else FitCache(plan.sweep.fit_cache)
    t_plan = time.perf_counter()
    fits, fit_idx, fit_s = fit_all(plan, base, executor, cache)
    data = build_data(plan, base, fits, fit_idx, share_passes)
    t_data = time.perf_counter()
    run_one(data, 0)  # compile (or load from numba's cache) once, before workers start
    t_compile = time.perf_counter()
    parts = executor.map(
        run_chunk, data, chunks(plan.n_combos, executor.n_workers, plan.sweep.chunk_size), "sweep"
    )
    metrics = np.concatenate(parts) if parts else np.empty((0, len(METRIC_NAMES)))
    t_runs = time.perf_counter()
    table = results_table(plan, metrics, fit_idx)
    timings = {
        "plan_s": t_plan - t_start,
        "fits_s": fit_s,
        "prepare_s": t_data - t_plan - fit_s,
        "compile_s": t_compile - t_data,
        "runs_s": t_runs - t_compile,
        "total_s": time.perf_counter() - t_start,
        "n_combos": float(plan.n_combos),
        "n_fits": float(len(fits)),
        "fit_cache_hits": float(cache.hits),
        "workers": float(executor.n_workers),
    }
    log.info("sweep.done", **{k: round(v, 3) for k, v in timings.items()})
    return SweepResult(table=table, timings=timings, plan=plan, fits=fits)


def _null(v: object) -> bool:
    """An unset value (``rebalance = "none"`` is None; pandas may hold it as NaN)."""
    return v is None or (isinstance(v, float) and v != v)


def _value_kind(v: object) -> str:
    """A swept value's column type: numbers together, text, or a table/list."""
    if isinstance(v, dict | list):
        return "dict/list"
    if isinstance(v, int | float | np.number) and not isinstance(v, bool):
        return "number"
    return type(v).__name__


def results_table(plan: Plan, metrics: np.ndarray, fit_idx: np.ndarray) -> pd.DataFrame:
    """Tidy table: combination id, swept values, fit id, then the metrics."""
    params = pd.DataFrame(plan.params, index=range(plan.n_combos))
    for col in params.columns:  # lists/dicts (e.g. weights), mixed axes as canonical text
        kinds = {_value_kind(v) for v in params[col] if not _null(v)}
        if "dict/list" in kinds or len(kinds) > 1:  # shrinkage = ["none", 0.5]: one type
            params[col] = params[col].map(lambda v: None if _null(v) else str(v))
    head = pd.DataFrame({"combo": np.arange(plan.n_combos), "fit": fit_idx})
    met = pd.DataFrame(metrics, columns=list(METRIC_NAMES))
    met["n_trades"] = met["n_trades"].astype(np.int64)
    return pd.concat([head, params, met], axis=1)


def write_heatmap(table: pd.DataFrame, path: Path, metric: str = "sharpe") -> Path | None:
    """Mean ``metric`` over the first two swept parameters (a PNG); None if < 2 params."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = [c for c in table.columns if "." in c and table[c].nunique() > 1]
    if len(cols) < 2:
        return None
    grid = table.pivot_table(index=cols[0], columns=cols[1], values=metric, aggfunc="mean")
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * grid.shape[1], 1.0 + 0.5 * grid.shape[0]))
    im = ax.imshow(grid.to_numpy(dtype=float), cmap="viridis", aspect="auto")
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns], rotation=45)
    ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index])
    ax.set_xlabel(cols[1])
    ax.set_ylabel(cols[0])
    for (r, c), v in np.ndenumerate(grid.to_numpy(dtype=float)):
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", color="w", fontsize=7)
    fig.colorbar(im, ax=ax, label=f"mean {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

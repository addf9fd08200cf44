"""The Python API: run a config's backtest (the run itself is built by
:func:`engine.assemble.assemble`, the one composition root)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import structlog
from tqdm import tqdm

from engine.assemble import (
    Run,
    assemble,
    check_targets,
    load_panel,
)
from engine.config import ConfigError, CustomConfig, RunConfig, StrategyConfig, load_config
from engine.core.backtest import Prepared, run_strategy_raw
from engine.core.result import BacktestResult, StrategyRun, regimes_frame, strategy_run
from engine.core.streaming import StreamingDriver, outputs_to_run, replay
from engine.ground.bars import BarPanel
from engine.plugins.strategy import CompiledStrategy, PythonStrategy

log = structlog.get_logger(__name__)


def info_enabled() -> bool:
    """Whether this module's info lines are emitted (their arguments are built only then);
    True when the configured logger cannot tell."""
    check = getattr(log, "is_enabled_for", None)
    return True if check is None else bool(check(logging.INFO))


def prepare_run(
    cfg: RunConfig,
    panel: BarPanel,
    strategies: list[CompiledStrategy | PythonStrategy] | None = None,
) -> Prepared:
    """Cost table, features and detector fits for a config over ``panel``: the
    :func:`engine.assemble.assemble` run, prepared.

    User features are computed only when the detector's inputs or a strategy's
    ``features`` name them (registered with :func:`engine.plugins.features.register`).
    """
    run = assemble(cfg, panel, strategies if strategies is not None else [])
    _log_features(run)
    return run.prepare()


def _log_features(run: Run) -> None:
    if info_enabled():  # the description costs more than the rest of the preparation
        log.info(
            "features",
            bars=run.frequency.name,
            periods_per_year=run.periods_per_year,
            **run.cfg.features.describe(run.frequency),
        )


class _NoProgress:
    """Stands in for a disabled progress bar (a disabled tqdm still costs 10-40 µs a call)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def strategy_error(scfg: StrategyConfig, panel: BarPanel, exc: BaseException) -> str:
    """One line for a strategy that failed while running, naming the parameter when a
    symbol parameter is not in the data (``strategies.tilt.params.equity: 'SPY' ...``)."""
    lookup = isinstance(exc, KeyError) or " not in " in str(exc)
    if isinstance(scfg, CustomConfig) and lookup:
        for key, val in scfg.params.items():
            if isinstance(val, str) and val not in panel.symbols:
                return (
                    f"strategies.{scfg.name}.params.{key}: {val!r} is not a symbol of the "
                    f"data ({', '.join(panel.symbols)})"
                )
    what = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
    if isinstance(scfg, CustomConfig):  # a parameter whose value the error quotes
        for key, val in scfg.params.items():
            if isinstance(val, str) and repr(val) in what.replace("np.str_(", ""):
                return f"strategies.{scfg.name}.params.{key}: {val!r}: {what}"
    return f"strategies.{scfg.name}: {what}"


def run_python_strategy(prep: Prepared, strategy: PythonStrategy) -> tuple[StrategyRun, Any]:
    """Replay history through the streaming driver for a callback strategy."""
    drv = StreamingDriver.from_prepared(prep, strategy)
    return outputs_to_run(strategy.name, prep.panel, replay(drv, prep.panel))


def run_backtest(
    config: RunConfig | str | Path | dict[str, Any] | None = None,
    *,
    panel: BarPanel | None = None,
    progress: bool | None = None,
    baseline_reps: int = 0,
) -> BacktestResult:
    """Run every strategy of ``config`` over the same bars, costs and detector.

    ``config`` is a :class:`RunConfig`, a path to a TOML file, a mapping, or ``None`` for
    the defaults (bundled data, 60/40 vs equal weight vs regime-aware). Returns a
    :class:`BacktestResult` with equity, weights, fills, regimes and metrics tables, and
    ``baselines`` (:func:`engine.analysis.baselines.backtest_baselines`: each regime
    strategy against its static baselines and benchmark after the warm-up; the paired
    bootstrap with ``baseline_reps`` replications, point estimates only with 0).
    """
    from engine.config import parse_config

    if isinstance(config, dict):
        cfg = parse_config(config)
    elif isinstance(config, RunConfig):
        cfg = config
    else:
        cfg = load_config(config)
    panel = panel if panel is not None else load_panel(cfg)
    show = sys.stderr.isatty() if progress is None else progress
    steps: tqdm[Any] | _NoProgress = _NoProgress()
    if show:
        steps = tqdm(total=1 + len(cfg.strategies), desc="backtest", leave=False)
    run = assemble(cfg, panel)
    strategies = run.strategies
    _log_features(run)
    prep = run.prepare()
    steps.update(1)
    runs: dict[str, StrategyRun] = {}
    regimes = None
    for scfg, strat in zip(cfg.strategies, strategies, strict=True):
        try:
            if isinstance(strat, CompiledStrategy):
                raw = run_strategy_raw(prep, strat)
                runs[strat.name] = strategy_run(strat.name, panel, raw)
            else:
                runs[strat.name], raw = run_python_strategy(prep, strat)
            check_targets(
                raw.targets, panel.symbols, panel.index, cfg, strat.name, raw.decision_bars
            )
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ConfigError(strategy_error(scfg, panel, exc)) from None
        if regimes is None:
            regimes = regimes_frame(panel, raw.post, raw.raw, raw.smoothed, prep.detector.labels)
        steps.update(1)
    steps.close()
    assert regimes is not None
    result = BacktestResult(
        panel=panel,
        runs=runs,
        regimes=regimes,
        regime_labels=prep.detector.labels,
        features=prep.features,
        config=cfg.model_dump(mode="json"),
    )
    result.metrics = compute_metrics(result)
    for strat in strategies:  # optimisers: solves and failed solves (kept previous targets)
        bind = getattr(strat, "bind", None)
        if callable(bind):
            bound = bind(prep)  # cached: the table this run used
            result.metrics[strat.name]["optimizer_solves"] = float(bound.solves)
            result.metrics[strat.name]["optimizer_failures"] = float(bound.failures)
    result.baselines = run_baselines(run, prep, result, baseline_reps)
    if info_enabled():
        log.info(
            "backtest.done",
            bars=panel.n_bars,
            assets=panel.n_assets,
            strategies=list(runs),
            start=str(panel.index[0].date()),
            end=str(panel.index[-1].date()),
        )
    return result


def run_baselines(run: Run, prep: Prepared, result: BacktestResult, reps: int) -> Any:
    """The static baselines of the run's regime strategies (``kind = "regime"`` or
    ``"optimized"``) against the benchmark (``validation.benchmark``, else the first static
    strategy), or None (``validation.baselines = false``, no such strategies, no fit).
    Their Sharpe differences go into the candidates' metrics (``sharpe_diff_vs_NAME``)."""
    from engine.analysis.baselines import backtest_baselines
    from engine.validation_config import parse_validation

    cfg = run.cfg
    v = parse_validation(cfg)
    compiled = {s.name for s in run.strategies if isinstance(s, CompiledStrategy)}
    cands = [c for c in cfg.state_aware() if c in compiled]
    bench = v.benchmark or cfg.default_benchmark()
    if not v.baselines or not cands or bench is None or bench not in result.runs:
        return None
    out = backtest_baselines(
        cfg,
        prep,
        result,
        [c for c in cands if c != bench],
        bench,
        periods_per_year=run.periods_per_year,
        reps=reps,
        level=v.level,
        seed=v.seed,
        segment_years=v.test_years,
    )
    if out is not None:
        for key, row in out.table.iterrows():
            cand, name = key if isinstance(key, tuple) else (key, "")
            m = result.metrics[str(cand)]
            m[f"sharpe_diff_vs_{name}"] = float(row["sharpe_diff"])
            if np.isfinite(row["sharpe_diff_lower"]):
                m[f"sharpe_diff_vs_{name}_lower"] = float(row["sharpe_diff_lower"])
                m[f"sharpe_diff_vs_{name}_upper"] = float(row["sharpe_diff_upper"])
                m[f"p_sharpe_diff_vs_{name}_le_0"] = float(row["p_sharpe_diff_le_0"])
    return out


def compute_metrics(result: BacktestResult) -> dict[str, dict[str, float]]:
    """Per-strategy summary metrics (the values of
    :func:`engine.analysis.metrics.summary_table`: bars per year from the data, Sharpe/Sortino
    over the configured risk-free series), computed from the runs' arrays."""
    from engine.analysis.metrics import run_summaries

    try:
        out = run_summaries(result)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for name in out:
        out[name]["final_equity"] = float(result.runs[name].equity.iloc[-1])
        flag_untraded(name, result.runs[name], out[name], result.config or {})
    return out


def flag_untraded(name: str, run: StrategyRun, metrics: dict[str, float], cfg: dict) -> None:
    """A strategy whose targets held a position but that never traded (a ``lot_size``
    above what the cash buys, ``initial_cash`` below the minimum commission...) is not a
    normal 0 % result: a warning naming the likely key and ``never_traded = 1`` in its
    metrics (metrics.json, the tables)."""
    if metrics.get("n_trades", 0.0) != 0.0:
        return
    targets = run.targets.to_numpy(dtype=float)
    if not (np.nan_to_num(np.abs(targets)) > 0.0).any():
        return  # an all-cash strategy: no trade is the right answer
    metrics["never_traded"] = 1.0
    costs, ex = cfg.get("costs") or {}, cfg.get("execution") or {}
    why = [
        f"{k} = {costs[k]:g}"
        for k in ("lot_size", "commission_min", "commission_per_share")
        if costs.get(k)
    ]
    why += [f"{k} = {ex[k]:g}" for k in ("initial_cash", "min_trade_value") if k in ex]
    log.warning(
        "strategy.never_traded",
        strategy=name,
        note="its targets held positions but no order ever filled: the result is cash, "
        "not the strategy; check " + ", ".join(why),
    )

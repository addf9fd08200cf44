"""The Python API: wire a config's data, detector and strategies to the core.

This module and :mod:`engine.cli` are the only parts of ``engine`` that import
``data_feeds`` and ``strategies`` (the core never does).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import structlog
from tqdm import tqdm

from engine.config import ConfigError, CustomConfig, RunConfig, StrategyConfig, load_config
from engine.core.backtest import Prepared, prepare, run_strategy_raw
from engine.core.result import BacktestResult, StrategyRun, regimes_frame, strategy_run
from engine.core.spec import cost_table
from engine.core.strategy import CompiledStrategy, PythonStrategy
from engine.core.streaming import StreamingDriver, outputs_to_run, replay
from engine.core.usage import features_named_by, strategy_features
from engine.features.user import with_inputs
from engine.frequency import infer_frequency
from engine.ground.bars import BarPanel, DataError

log = structlog.get_logger(__name__)


def load_panel(cfg: RunConfig) -> BarPanel:
    """Bars for a config: the bundled panel or the user's CSV/Parquet files."""
    import data_feeds
    from data_feeds.bundled_panel import PANEL_DEFAULT_SYMBOLS, bundled_panel_name

    d = cfg.data
    if isinstance(d.source, str) and d.source.partition(":")[0] == "bundled":
        if d.calendar:
            log.warning("data.calendar", calendar=d.calendar, note="checked on your own files only")
        syms = d.symbols
        if syms is None:  # the panel's default selection (your own files: every symbol)
            syms = list(PANEL_DEFAULT_SYMBOLS[bundled_panel_name(d.source)])
        return data_feeds.load_bundled(syms, d.start, d.end, panel=d.source)
    paths = [d.source] if isinstance(d.source, str) else list(d.source)
    fmt = d.format
    if fmt == "auto":
        fmt = "parquet" if all(str(p).endswith((".parquet", ".pq")) for p in paths) else "csv"
    loader = data_feeds.load_parquet if fmt == "parquet" else data_feeds.load_csv
    return loader(
        paths,
        symbols=d.symbols,
        start=d.start,
        end=d.end,
        fill=None if d.fill == "none" else d.fill,
        ohlc_from_close=d.ohlc_from_close,
        timezone=d.timezone,
        calendar=d.calendar,
    )


def build_strategy(scfg: StrategyConfig) -> CompiledStrategy | PythonStrategy:
    """A strategy object from its config section."""
    from strategies.regime_switching import RegimeSwitching
    from strategies.static import StaticAllocation
    from strategies.weights import normalized

    if scfg.kind == "static":
        w = normalized(scfg.weights, scfg.normalize)
        return StaticAllocation(scfg.name, w, scfg.rebalance, scfg.drift)
    if scfg.kind == "inverse_vol":
        w = normalized(scfg.weights, scfg.normalize)
        return StaticAllocation(scfg.name, w, scfg.rebalance, scfg.drift, True)
    if scfg.kind == "regime":
        return RegimeSwitching(
            scfg.name,
            {k: normalized(v, scfg.normalize) for k, v in scfg.table.items()},
            normalized(scfg.warmup, scfg.normalize),
            scfg.rebalance,
            scfg.on_change,
            scfg.blend,
            scfg.drift,
        )
    return load_custom(scfg)


def load_custom(scfg: CustomConfig) -> CompiledStrategy | PythonStrategy:
    """Import ``module:Class`` and build it with ``name`` and ``params``."""
    mod_name, _, cls_name = scfg.target.partition(":")
    try:
        cls = getattr(importlib.import_module(mod_name), cls_name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"strategies.{scfg.name}.target: cannot import {scfg.target!r}: {exc}"
        ) from None
    try:
        obj = cls(name=scfg.name, **scfg.params)
    except TypeError as exc:
        raise ConfigError(f"strategies.{scfg.name}.params: {exc}") from None
    if not isinstance(obj, CompiledStrategy | PythonStrategy):
        raise ConfigError(
            f"strategies.{scfg.name}.target: {scfg.target} is neither a compiled "
            "nor a Python strategy"
        )
    return obj


def prepare_run(
    cfg: RunConfig,
    panel: BarPanel,
    strategies: list[CompiledStrategy | PythonStrategy] | None = None,
) -> Prepared:
    """Cost table, features and detector fits for a config over ``panel``.

    User features are computed only when the detector's inputs or a strategy's
    ``features`` name them (registered with :func:`engine.plugins.features.register`).
    """
    try:
        costs = cost_table(panel.symbols, cfg.costs.default(), cfg.costs.per_symbol())
    except ValueError as exc:
        raise ConfigError(f"costs: {exc}") from None
    names = getattr(cfg.detector, "features", None) or ()
    if isinstance(names, str):
        names = (names,)
    named = [*names, getattr(cfg.detector, "feature", "")]
    wanted = features_named_by(named, panel.exog_names)
    try:
        for strat in strategies or []:
            wanted += [f for f in strategy_features(strat) if f not in wanted]
        panel = with_inputs(panel, wanted)
        det_cfg = market_for(cfg, panel)
        detector = det_cfg.build(panel)
    except DataError as exc:
        raise ConfigError(f"detector: {exc}") from None
    freq = infer_frequency(panel.index, cfg.data.periods_per_year)
    log.info(
        "features",
        bars=freq.name,
        periods_per_year=freq.periods_per_year,
        **cfg.features.describe(freq),
    )
    try:
        return prepare(
            panel,
            detector,
            costs,
            cfg.execution.build(freq.periods_per_year),
            cfg.features.build(freq),
            cfg.detector.smoothing.build(),
            user_features=wanted,
            feature_assets=(det_cfg.market,) if hasattr(det_cfg, "market") else (),
        )
    except ValueError as exc:  # e.g. history too short for the detector's first fit
        raise ConfigError(f"detector: {exc}") from None


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


def market_for(cfg: RunConfig, panel: BarPanel) -> Any:
    """The detector config with ``market`` defaulted to the first equity-like symbol of the
    data when the config does not set it (logged); unchanged otherwise."""
    det = cfg.detector
    if not hasattr(det, "market") or "market" in det.model_fields_set:
        return det
    if det.market in panel.symbols and panel.asset_classes[panel.column(det.market)] in (
        "equity",
        "unknown",
    ):
        return det
    from engine.config import equity_like_symbol

    sym = equity_like_symbol(panel.symbols, panel.asset_classes)
    if sym != det.market:
        log.warning("detector.market", market=sym, reason="not set: first equity-like symbol")
    return det.model_copy(update={"market": sym})


def run_python_strategy(prep: Prepared, strategy: PythonStrategy) -> tuple[StrategyRun, Any]:
    """Replay history through the streaming driver for a callback strategy."""
    drv = StreamingDriver.from_prepared(prep, strategy)
    return outputs_to_run(strategy.name, prep.panel, replay(drv, prep.panel))


def run_backtest(
    config: RunConfig | str | Path | dict[str, Any] | None = None,
    *,
    panel: BarPanel | None = None,
    progress: bool | None = None,
) -> BacktestResult:
    """Run every strategy of ``config`` over the same bars, costs and detector.

    ``config`` is a :class:`RunConfig`, a path to a TOML file, a mapping, or ``None`` for
    the defaults (bundled data, 60/40 vs equal weight vs regime-aware). Returns a
    :class:`BacktestResult` with equity, weights, fills, regimes and metrics tables.
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
    steps = tqdm(total=1 + len(cfg.strategies), desc="backtest", disable=not show, leave=False)
    strategies = [build_strategy(scfg) for scfg in cfg.strategies]
    prep = prepare_run(cfg, panel, strategies)
    steps.update(1)
    from strategies.weights import check_targets

    rules = cfg.execution.weight_rules()
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
                raw.targets, panel.symbols, panel.index, rules, strat.name, raw.decision_bars
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
    log.info(
        "backtest.done",
        bars=panel.n_bars,
        assets=panel.n_assets,
        strategies=list(runs),
        start=str(panel.index[0].date()),
        end=str(panel.index[-1].date()),
    )
    return result


def compute_metrics(result: BacktestResult) -> dict[str, dict[str, float]]:
    """Per-strategy summary metrics (see :func:`engine.analysis.metrics.summary_table`:
    bars per year from the data, Sharpe/Sortino over the configured risk-free series)."""
    from engine.analysis.metrics import summary_table

    try:
        table = summary_table(result)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    out = {str(k): {str(c): float(v) for c, v in row.items()} for k, row in table.iterrows()}
    for name in out:
        out[name]["final_equity"] = float(result.runs[name].equity.iloc[-1])
    return out

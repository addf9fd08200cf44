"""The composition root: a config + its data -> the run every command executes.

One function, :func:`assemble`, resolves everything a run needs from a :class:`RunConfig`
and a :class:`BarPanel`: the bar frequency (and so the periods per year that annualise
borrow, financing and metrics, and turn time-named feature windows into bars), the
detector's market (defaulted to the first equity-like symbol when the config does not set
it), the user features named by the detector or declared by a strategy (computed into the
inputs block), the detector built on those inputs, the cost table, the execution, feature
and smoothing settings, and the strategies. Backtest (whole and chunked), validate (every
fold and the Monte Carlo paths), sweeps, advise, paper trading and the local exchange all
build their run here and nowhere else, so a config that backtests behaves the same in every
command (``tests/app/test_entry_parity.py`` holds them to it).

This is the only module of ``engine`` that imports ``data_feeds`` and ``strategies``, and,
besides the CLI (which picks the paper venue), the only one that imports ``brokers``: the
registry of history sources ``brokers.history`` (``[data] source = "alpaca"``), by name.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import structlog

from engine.config import (
    BROKER_SOURCES,
    ConfigError,
    CustomConfig,
    RunConfig,
    StrategyConfig,
)
from engine.core.backtest import Prepared, detector_fparams, prepare
from engine.core.spec import Execution, Features, Smoothing, cost_table
from engine.core.streaming import StreamingDriver
from engine.core.usage import features_named_by, strategy_features
from engine.features.user import with_columns, with_inputs
from engine.ground.bars import BarPanel, DataError
from engine.ground.frequency import Frequency, infer_frequency
from engine.plugins.features import UserFeature
from engine.plugins.strategy import CompiledStrategy, PythonStrategy
from engine.regimes.inputs import ConstantInput
from engine.weights import WeightRules

log = structlog.get_logger(__name__)

Strategy = CompiledStrategy | PythonStrategy


# ------------------------------------------------------------------ data and plug-ins
def import_plugins(cfg: RunConfig) -> None:
    """Import the config's ``[plugins] modules`` (registering their features and
    detectors), after putting the config file's folder on the import path (so plug-in
    modules and ``custom`` targets beside the config are found). Idempotent; an import
    that fails is a one-line :class:`ConfigError` naming ``plugins.modules.N``."""
    folder = cfg.folder
    if folder is not None and str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
        importlib.invalidate_caches()
    for i, name in enumerate(cfg.plugins.modules):
        key = f"plugins.modules.{i}"
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name is not None and name.startswith(exc.name):
                where = f"{folder} (the config's folder)" if folder is not None else "."
                raise ConfigError(
                    f"{key}: no module {name!r}: put {name.split('.')[0]}.py (or a package "
                    f"folder) in {where} or install it"
                ) from None
            raise ConfigError(f"{key}: importing {name!r} failed: {exc}") from None
        except Exception as exc:  # the user's module raised while importing
            msg = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise ConfigError(f"{key}: importing {name!r} failed: {msg}") from None


def add_exog_files(cfg: RunConfig, panel: BarPanel) -> BarPanel:
    """``panel`` with the config's ``[[data.exog]]`` series joined as-of (each value known
    ``lag`` after its timestamp); errors name the table's key (``data.exog.0.path: ...``)."""
    from engine.features.exog import asof_join, read_series

    for i, ex in enumerate(cfg.data.exog):
        key = f"data.exog.{i}"
        try:
            series = read_series(ex.path)
        except DataError as exc:
            raise ConfigError(f"{key}.path: {exc}") from None
        if ex.columns is not None:
            missing = [c for c in ex.columns if c not in series.columns]
            if missing:
                raise ConfigError(
                    f"{key}.columns: {missing[0]!r} is not a column of {ex.path} "
                    f"(has {', '.join(map(str, series.columns))})"
                )
            series = series[list(ex.columns)]
        names = tuple(ex.names) if ex.names is not None else tuple(map(str, series.columns))
        clash = sorted(set(names) & set(panel.exog_names))
        if clash:
            where = "names" if ex.names is not None else "columns"
            raise ConfigError(
                f"{key}.{where}: series {clash[0]!r} is already in the data (an earlier "
                "file or the bars' own); rename it with names = [...]"
            )
        try:
            values = asof_join(panel.index, series, ex.lag)
        except DataError as exc:
            raise ConfigError(f"{key}.lag: {exc}") from None
        panel = with_columns(panel, values, names)
        known = np.isfinite(values).any(axis=1)
        if not known.any():
            log.warning("data.exog", file=ex.path, note="no value known within the bars' dates")
    return panel


def load_panel(cfg: RunConfig) -> BarPanel:
    """Bars for a config (the bundled panel or the user's CSV/Parquet files) with its
    exogenous files joined; the config's plug-in modules are imported first."""
    import_plugins(cfg)
    panel = add_exog_files(cfg, _load_bars(cfg))
    check_risk_free(cfg, panel)
    check_benchmark(cfg, panel)
    return panel


def check_benchmark(cfg: RunConfig, panel: BarPanel) -> None:
    """``report.benchmark``, when given, is a strategy or a symbol of the data (it was
    found only when a report was written, after the run, as an internal error)."""
    from engine.analysis.benchmark import unknown_benchmark

    name = cfg.report.benchmark
    have = [*(s.name for s in cfg.strategies), *panel.symbols]
    if name is not None and name not in have:
        raise ConfigError(unknown_benchmark(name, have))


def check_risk_free(cfg: RunConfig, panel: BarPanel) -> None:
    """``metrics.risk_free`` read against the data before any run (a symbol the data lack,
    a rate file that is missing, in percent or starts late): every command refuses it in
    the same line (backtest found it after the run; validate ended in an internal error)."""
    from engine.analysis.metrics import risk_free_returns

    try:
        risk_free_returns(panel, cfg.metrics.risk_free)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _load_bars(cfg: RunConfig) -> BarPanel:
    import data_feeds
    from data_feeds.bundled_panel import PANEL_DEFAULT_SYMBOLS, bundled_panel_name

    d = cfg.data
    if isinstance(d.source, str) and d.source in BROKER_SOURCES:
        return load_broker_history(cfg)
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
        max_jump=d.max_jump if np.isfinite(d.max_jump) else None,
    )


def load_broker_history(cfg: RunConfig) -> BarPanel:
    """``[data] source = "alpaca"``: the broker's bars from the local Parquet cache, the
    missing days fetched first (``data_feeds.broker_cache``). The history client is picked
    by name in ``brokers.history`` (as the paper venue is in ``brokers.cli``) and opened only
    when a fetch is needed, so a covered run needs no keys and no network; the venue's SDK
    stays inside ``brokers/alpaca``."""
    from brokers.history import open_history
    from data_feeds.broker_cache import load_broker_panel

    d = cfg.data
    return load_broker_panel(d, lambda: open_history(d))


def load_chunks(cfg: RunConfig) -> Any:
    """The config's one Parquet file as an iterable of panels of ``data.chunk_bars`` bars
    (:class:`data_feeds.parquet_chunks.ParquetChunks`, ``max_bars`` its length bound)."""
    import data_feeds.parquet_chunks as pqc

    d = cfg.data
    if d.chunk_bars is None or not isinstance(d.source, str):
        raise ConfigError("data.chunk_bars: chunks need chunk_bars and one Parquet file")
    zone = d.timezone
    if d.calendar:
        from data_feeds.loaders import calendar_zone

        zone = zone or calendar_zone(d.calendar)
        log.warning("data.calendar", calendar=d.calendar, note="sessions not checked in chunks")
    return pqc.ParquetChunks(
        d.source,
        d.chunk_bars,
        symbols=d.symbols,
        start=d.start,
        end=d.end,
        ohlc_from_close=d.ohlc_from_close,
        timezone=zone,
        fill=d.fill,
    )


def load_files(files: Sequence[str], max_jump: float | None = None) -> tuple[BarPanel, str, bool]:
    """The user's files as a panel, the ``format`` to put in a config and whether open/high/
    low had to come from the close (close-only files: ``date,close``, ``date,AAPL,JPM``)
    (``init``; ``max_jump``: ``data.max_jump``, the config's default when None)."""
    from engine.config import DataConfig

    jump = DataConfig.model_fields["max_jump"].default if max_jump is None else max_jump
    try:
        return _load_files(files, jump if np.isfinite(jump) else None)
    except DataError as exc:
        if "data.max_jump" not in str(exc):
            raise
        raise DataError(f"{exc} (init: --max-jump)") from None


def _load_files(files: Sequence[str], max_jump: float | None) -> tuple[BarPanel, str, bool]:
    import data_feeds

    if not files:
        raise DataError("init: give at least one CSV or Parquet file")
    parquet = [str(f).endswith((".parquet", ".pq")) for f in files]
    if any(parquet) and not all(parquet):
        raise DataError("init: mix of CSV and Parquet files; convert them to one format")
    fmt = "parquet" if all(parquet) else "csv"
    loader = data_feeds.load_parquet if fmt == "parquet" else data_feeds.load_csv
    try:
        return loader(list(files), max_jump=max_jump), fmt, False
    except DataError as exc:
        if "ohlc_from_close" not in str(exc):
            raise
    return loader(list(files), ohlc_from_close=True, max_jump=max_jump), fmt, True


def build_strategy(scfg: StrategyConfig) -> Strategy:
    """A strategy object from its config section; a section no strategy can be built from
    (e.g. ``normalize = true`` on all-zero weights) is a one-line :class:`ConfigError`."""
    try:
        return _build_strategy(scfg)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"strategies.{scfg.name}: {exc}") from None


def _build_strategy(scfg: StrategyConfig) -> Strategy:
    from engine.weights import normalized
    from strategies.regime_switching import RegimeSwitching
    from strategies.static import StaticAllocation

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
    if scfg.kind == "optimized":
        from strategies.optimized import from_config

        return from_config(scfg)
    return load_custom(scfg)


def check_strategies(
    strategies: Sequence[Strategy], panel: BarPanel, rules: WeightRules | None = None
) -> None:
    """Refuse, before the run, strategies that cannot give a right number here: their
    optional ``check(symbols)`` (settings no weights can meet, e.g. bounds summing above
    the budget), ``check_data(panel)`` (e.g. inverse-vol on an asset whose price never
    moves) and ``check_rules(rules)`` (e.g. an optimiser's shorts without
    ``execution.allow_short``). A one-line :class:`ConfigError` naming the strategy."""
    hooks: list[tuple[str, Any]] = [("check", panel.symbols), ("check_data", panel)]
    if rules is not None:
        hooks.append(("check_rules", rules))
    for hook, arg in hooks:
        for strat in strategies:
            check = getattr(strat, hook, None)
            if callable(check):
                try:
                    check(arg)
                except ValueError as exc:
                    raise ConfigError(f"strategies.{strat.name}: {exc}") from None


def check_tables(
    strategies: Sequence[Strategy], symbols: tuple[str, ...], labels: tuple[str, ...]
) -> None:
    """Regime tables read against the detector's labels once the detector is built (a key
    that is no regime, a regime without a row): one line naming the strategy in every
    command (paper ended in an unexpected ValueError, validate in another error)."""
    for strat in strategies:
        rows = getattr(strat, "rows", None)
        if callable(rows) and labels:
            try:
                rows(symbols, labels)
            except ValueError as exc:
                raise ConfigError(f"strategies.{strat.name}: {exc}") from None


def load_custom(scfg: CustomConfig) -> Strategy:
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


def check_targets(
    targets: np.ndarray,
    symbols: Sequence[str],
    index: Any,
    cfg: RunConfig,
    strategy: str,
    decision_bars: np.ndarray | None = None,
) -> None:
    """Refuse targets the execution's weight rules forbid (a ValueError naming the bar and
    the fix for the strategy's kind)."""
    from engine.weights import check_targets as check

    kind = next((s.kind for s in cfg.strategies if s.name == strategy), None)
    rules = cfg.execution.weight_rules()
    check(targets, tuple(symbols), index, rules, strategy, decision_bars, kind)


# ------------------------------------------------------------------ config sections
def costs_for(cfg: RunConfig, symbols: tuple[str, ...]) -> np.ndarray:
    """The ``(N, N_COST)`` cost table of a config (:func:`engine.core.spec.cost_table`);
    without per-symbol overrides the default row is built once and repeated."""
    default = cfg.costs.default()
    per_symbol = cfg.costs.per_symbol()
    if per_symbol or not symbols:
        return cost_table(symbols, default, per_symbol)
    return np.repeat(default.row()[None, :], len(symbols), axis=0)


def market_for(cfg: RunConfig, panel: BarPanel, detector: Any = None) -> Any:
    """The detector config (``detector``, default ``cfg.detector``) with ``market``
    defaulted to the first equity-like symbol of the data when it is not set (logged);
    unchanged otherwise."""
    det = cfg.detector if detector is None else detector
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


def past_feature_warmup(detector_cfg: Any, features: Features) -> Any:
    """The detector section with ``skip`` raised to ``features.ma_window`` when one of its
    inputs is a ``ma_gap`` (``"ma_gap"``, ``"SPX.ma_gap"``, ``"log_ma_gap"``): that
    feature is 0 until its moving average has ``ma_window`` bars, and those rows would
    enter every fit as a spike of zeros. Logged ``detector.skip_raised``; other sections
    and inputs unchanged."""
    skip = getattr(detector_cfg, "skip", None)
    names = getattr(detector_cfg, "features", None) or ()
    gaps = [n for n in names if n.split(".")[-1].removeprefix("log_") == "ma_gap"]
    if skip is None or not gaps or skip >= features.ma_window:
        return detector_cfg
    log.info(
        "detector.skip_raised",
        skip=features.ma_window,
        configured=skip,
        inputs=gaps,
        note=f"ma_gap is 0 until its {features.ma_window}-bar moving average is full: fits "
        "leave those bars out (features.ma_window)",
    )
    return detector_cfg.model_copy(update={"skip": features.ma_window})


def in_bars(detector_cfg: Any, freq: Frequency) -> Any:
    """The detector section with ``min_train`` / ``refit_every`` given in time (``"2y"``,
    ``"26w"``) turned into bars of the data's frequency (unitless ints are bars already);
    one that resolves below its key's minimum is a :class:`ConfigError` naming the key."""
    sized = getattr(detector_cfg, "in_bars", None)
    if not callable(sized):
        return detector_cfg
    try:
        return sized(freq)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def check_history(
    detector_cfg: Any, detector: Any, n_bars: int, freq: Frequency, given: object = None
) -> None:
    """Refuse a history too short for the detector's first fit with the counts and the
    key to change (``detector.min_train: the first fit needs 504 bars ..., the data has
    418``; ``given``: the key's value as written, when a time string); nothing for
    detectors without a fit schedule."""
    fit_bars = getattr(detector, "fit_bars", None)
    if not callable(fit_bars) or len(fit_bars(n_bars)) > 0:
        return
    from engine.regimes.config import fitting_min_train

    need = int(getattr(detector_cfg, "min_train", 0) or 0)
    skip = int(getattr(detector_cfg, "skip", 0) or 0)
    first = max(need, skip + 2)
    if not need:
        raise ConfigError(
            f"detector: the data has {n_bars} bars, too few for the detector's first fit"
        )
    written = f" (min_train = {given!r})" if isinstance(given, str) else ""
    raise ConfigError(
        f"detector.min_train: the first fit needs {freq.describe_bars(first)}{written} and "
        f"the data has {n_bars} bars; set detector.min_train below {n_bars} (e.g. "
        f"{fitting_min_train(n_bars)}) or give more history"
    )


def wanted_features(
    detector_cfg: Any, panel: BarPanel, strategies: Sequence[Strategy]
) -> list[UserFeature]:
    """User features the detector's inputs name or a strategy declares, in that order."""
    names = getattr(detector_cfg, "features", None) or ()
    if isinstance(names, str):
        names = (names,)
    named = [*names, getattr(detector_cfg, "feature", "")]
    wanted = features_named_by(named, panel.exog_names)
    for strat in strategies:
        wanted += [f for f in strategy_features(strat) if f not in wanted]
    return wanted


# ------------------------------------------------------------------ the run
@dataclass(frozen=True)
class Run:
    """Everything a command runs, resolved once from a config and its data.

    ``panel`` is the data as loaded (exogenous series only); ``inputs`` adds the user
    features' columns (what the detector and the compiled driver read).
    """

    cfg: RunConfig
    panel: BarPanel
    inputs: BarPanel
    frequency: Frequency
    detector_config: Any  # the config section, market resolved
    detector: Any  # a Detector, EstimatorDetector or Python detector
    costs: np.ndarray
    execution: Execution
    features: Features
    smoothing: Smoothing
    user_features: tuple[UserFeature, ...]
    strategies: tuple[Strategy, ...]

    @property
    def periods_per_year(self) -> float:
        return float(self.frequency.periods_per_year)

    @property
    def market(self) -> str | None:
        """The symbol the detector reads as the market (None for detectors without one)."""
        return getattr(self.detector_config, "market", None)

    @property
    def feature_assets(self) -> tuple[str, ...]:
        return (self.market,) if self.market is not None else ()

    @property
    def strategy_configs(self) -> tuple[StrategyConfig, ...]:
        return tuple(self.cfg.strategies)

    @cached_property
    def fparams(self) -> np.ndarray:
        """Feature parameters masked to the blocks the detector (and reports) read."""
        return detector_fparams(
            self.detector, self.features, self.panel.symbols, self.feature_assets
        )

    def strategy(self, name: str | None = None) -> tuple[StrategyConfig, Strategy]:
        """A strategy by name (the first when ``name`` is None), with its config."""
        names = [s.name for s in self.cfg.strategies]
        if name is not None and name not in names:
            raise ConfigError(f"unknown strategy {name!r} (config has {', '.join(names)})")
        i = names.index(name) if name is not None else 0
        return self.cfg.strategies[i], self.strategies[i]

    def check_history(self) -> None:
        """Refuse data too short for the detector's first fit (:func:`check_history`): the
        same line from backtest, advise, validate and sweep, before any fit."""
        check_history(
            self.detector_config,
            self.detector,
            self.inputs.n_bars,
            self.frequency,
            getattr(self.cfg.detector, "min_train", None),
        )

    def prepare(self, detector: Any = None) -> Prepared:
        """Features and detector fits over the data (``detector`` replaces the run's, e.g.
        a fold schedule around it)."""
        if detector is None:
            self.check_history()
        try:
            return prepare(
                self.inputs,
                self.detector if detector is None else detector,
                self.costs,
                self.execution,
                self.features,
                self.smoothing,
                user_features=self.user_features,
                feature_assets=self.feature_assets,
            )
        except ConstantInput as exc:  # a constant market price: nothing to fit
            raise ConfigError(f"detector: {exc.dated(self.panel.index)}") from None
        except ValueError as exc:  # e.g. history too short for the detector's first fit
            raise ConfigError(f"detector: {exc}") from None

    def streaming_driver(
        self, strategy: Strategy, *, fitted: tuple[np.ndarray, np.ndarray] | None = None
    ) -> StreamingDriver:
        """The streaming driver of ``strategy`` with this run's settings; without
        ``fitted`` the detector refits online from the streamed history (paper trading)."""
        streaming = getattr(strategy, "streaming", None)  # e.g. kind optimized: callbacks
        if callable(streaming):
            strategy = streaming()
        return StreamingDriver(
            self.panel.symbols,
            strategy,
            self.detector,
            self.costs,
            execution=self.execution,
            features=self.features,
            smoothing=self.smoothing,
            exog_names=self.panel.exog_names,
            fitted=fitted,
            user_features=self.user_features,
            fparams=self.fparams,
        )

    # ---- sections resolved in this run's context (sweeps and validation candidates)
    def detector_variant(
        self, detector_cfg: Any, features: Features | None = None
    ) -> tuple[Any, Any]:
        """``(config with market resolved, built detector)`` for another detector section
        (a sweep's: its market, when the config left it unset and the variant did not
        change it, is this run's resolved one), fitted past the warm-up of ``features``
        (default: this run's)."""
        base = self.cfg.detector
        if (
            hasattr(detector_cfg, "market")
            and "market" not in base.model_fields_set
            and detector_cfg.market == getattr(base, "market", None)
            and self.market is not None
        ):
            detector_cfg = detector_cfg.model_copy(update={"market": self.market})
        det_cfg = past_feature_warmup(
            in_bars(market_for(self.cfg, self.panel, detector_cfg), self.frequency),
            features or self.features,
        )
        try:
            return det_cfg, det_cfg.build(self.inputs)
        except (DataError, ValueError) as exc:
            raise ConfigError(f"detector: {exc}") from None

    def features_variant(self, features_cfg: Any) -> Features:
        return features_cfg.build(self.frequency)  # type: ignore[no-any-return]

    def execution_variant(self, execution_cfg: Any) -> Execution:
        return execution_cfg.build(self.periods_per_year)  # type: ignore[no-any-return]

    def costs_variant(self, costs_cfg: Any) -> np.ndarray:
        return costs_for(self.cfg.model_copy(update={"costs": costs_cfg}), self.panel.symbols)

    def with_detector(self, detector_cfg: Any) -> Run:
        """This run with another detector section (same data, inputs and strategies)."""
        det_cfg, det = self.detector_variant(detector_cfg)
        return replace(
            self,
            cfg=self.cfg.model_copy(update={"detector": det_cfg}),
            detector_config=det_cfg,
            detector=det,
            smoothing=det_cfg.smoothing.build(),
        )


def assemble(
    cfg: RunConfig,
    panel: BarPanel | None = None,
    strategies: Sequence[Strategy] | None = None,
) -> Run:
    """The run of ``cfg`` over ``panel`` (loaded from ``cfg.data`` when None) with
    ``strategies`` (built from ``cfg.strategies`` when None). Errors name the config key.
    The config's plug-in modules are imported first."""
    import_plugins(cfg)
    panel = panel if panel is not None else load_panel(cfg)
    strats = (
        tuple(strategies)
        if strategies is not None
        else tuple(build_strategy(s) for s in cfg.strategies)
    )
    check_strategies(strats, panel, cfg.execution.weight_rules())
    try:
        costs = costs_for(cfg, panel.symbols)
    except ConfigError:
        raise  # names its key (costs.symbols.SPX.commission_bps: ...)
    except ValueError as exc:
        raise ConfigError(f"costs: {exc}") from None
    freq = infer_frequency(panel.index, cfg.data.periods_per_year)
    features = cfg.features.build(freq)
    det_cfg = past_feature_warmup(in_bars(market_for(cfg, panel), freq), features)
    try:
        wanted = wanted_features(cfg.detector, panel, strats)
        inputs = with_inputs(panel, wanted)
        detector = det_cfg.build(inputs)
    except (DataError, ValueError) as exc:
        raise ConfigError(f"detector: {exc}") from None
    check_tables(strats, panel.symbols, tuple(getattr(detector, "labels", ()) or ()))
    if freq.sparse:
        log.warning(
            "data.sessions_missing",
            periods_per_year=round(freq.periods_per_year, 1),
            note=f"daily bars cover {freq.periods_per_year / freq.days_per_year:.0%} of the "
            f"{freq.days_per_year:.0f} sessions a year: years and annualisation use the data's "
            "calendar span (set data.periods_per_year to override)",
        )
    return Run(
        cfg=cfg,
        panel=panel,
        inputs=inputs,
        frequency=freq,
        detector_config=det_cfg,
        detector=detector,
        costs=costs,
        execution=cfg.execution.build(freq.periods_per_year),
        features=features,
        smoothing=cfg.detector.smoothing.build(),
        user_features=tuple(wanted),
        strategies=strats,
    )


class _AssembleModule(types.ModuleType):
    """This module, callable as :func:`assemble`. Importing ``engine.assemble`` (any command
    does) makes the package attribute ``engine.assemble`` this module, shadowing the
    façade's function of the same name; calling the module keeps ``engine.assemble(cfg)``
    right either way."""

    def __call__(self, *args: Any, **kwargs: Any) -> Run:
        return assemble(*args, **kwargs)


sys.modules[__name__].__class__ = _AssembleModule

__all__ = [
    "Run",
    "assemble",
    "build_strategy",
    "check_history",
    "check_strategies",
    "check_targets",
    "costs_for",
    "import_plugins",
    "in_bars",
    "load_chunks",
    "load_custom",
    "load_files",
    "load_panel",
    "market_for",
    "wanted_features",
]

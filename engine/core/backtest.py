"""Façade over the compiled driver: prepare arrays once, run strategies, wrap results."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from engine.core.driver import run_driver
from engine.core.raw import RawRun
from engine.core.result import BacktestResult, StrategyRun, regimes_frame, strategy_run
from engine.core.spec import Execution, Features, Smoothing, new_period_flags
from engine.core.state import initial_state
from engine.core.step_nb import Setup, State
from engine.core.usage import detector_assets, strategy_assets, strategy_features, strategy_params
from engine.features.causal_nb import (
    feature_state_size,
    features_history_nb,
    used_assets,
    with_asset_mask,
)
from engine.features.user import with_columns, with_inputs
from engine.ground import layout as L
from engine.ground.bars import BarPanel
from engine.plugins.detector import Detector, EstimatorDetector
from engine.plugins.features import UserFeature
from engine.plugins.names import Names
from engine.plugins.strategy import CompiledStrategy
from engine.regimes.base import fit_schedule
from engine.regimes.estimator import ExternalPosterior
from engine.regimes.user_filter import UserFilterDetector


@dataclass(frozen=True)
class Prepared:
    """Everything shared by the strategies run over one panel: arrays, features, fits.

    ``panel.exog`` is the full inputs matrix: the exogenous series (the first
    ``len(exog_names)`` columns), then user feature columns, then the posterior columns
    of an estimator detector; the streaming driver rebuilds the last two bar by bar.
    """

    panel: BarPanel
    costs: np.ndarray
    eparams: np.ndarray
    fparams: np.ndarray  # feature parameters, masked to the blocks the detector reads
    smooth: np.ndarray
    detector: Detector
    features: np.ndarray  # (T, F) causal feature history (same kernel as the step)
    dparams: np.ndarray  # (n_fits, P)
    fit_bars: np.ndarray  # (n_fits,)
    execution: Execution
    feature_config: Features
    smoothing: Smoothing
    exog_names: tuple[str, ...] = ()
    user_features: tuple[UserFeature, ...] = ()
    ufilter: Any = None

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])

    @property
    def names(self) -> Names:
        return Names(self.panel.symbols, self.detector.labels, self.panel.exog_names)

    def fparams_for(self, strategy: Any) -> np.ndarray:
        """Feature parameters for a run of ``strategy``: blocks the detector or the
        strategy read (identical in both drivers)."""
        used = used_assets(self.fparams, self.panel.n_assets)
        return with_asset_mask(self.fparams, used | strategy_assets(strategy, self.panel.n_assets))


def feature_history(panel: BarPanel, fparams: np.ndarray) -> np.ndarray:
    """The ``(T, F)`` causal feature history, computed by the step's own feature kernel
    (all zeros, never touched, when no feature block is used)."""
    if not used_assets(fparams, panel.n_assets).any():
        return np.zeros((panel.n_bars, panel.n_assets * L.N_FEAT_ASSET))
    fstate = np.zeros(feature_state_size(panel.n_assets, fparams))
    return np.asarray(features_history_nb(panel.close, fparams, fstate))


def detector_fparams(
    detector: Any, features: Features, symbols: Sequence[str], feature_assets: Sequence[str] = ()
) -> np.ndarray:
    """Feature parameters masked to the asset blocks the detector reads and
    ``feature_assets`` (the parameters both drivers run with)."""
    used = detector_assets(detector, len(symbols))
    for sym in feature_assets:
        used[list(symbols).index(sym)] = True
    return with_asset_mask(features.array(), used)


def prepare(
    panel: BarPanel,
    detector: Detector | EstimatorDetector,
    costs: np.ndarray,
    execution: Execution | None = None,
    features: Features | None = None,
    smoothing: Smoothing | None = None,
    *,
    user_features: Sequence[UserFeature] = (),
    feature_assets: Sequence[str] = (),
) -> Prepared:
    """Compute the feature history and fit the detector at its fit bars (causally).

    ``user_features`` are computed (bar by bar, causally) into the inputs matrix unless
    ``panel`` already holds their columns (:func:`engine.features.user.with_inputs`).
    Built-in feature blocks are computed only for the assets the detector reads and
    ``feature_assets`` (e.g. the market asset, for reports that read its features).
    """
    execution = execution or Execution()
    features = features or Features()
    smoothing = smoothing or Smoothing()
    ufeats = tuple(user_features)
    user_cols = [c for f in ufeats for c in f.columns(panel.symbols)]
    if ufeats and not set(user_cols) <= set(panel.exog_names):
        panel = with_inputs(panel, ufeats)
    exog_names = tuple(n for n in panel.exog_names if n not in set(user_cols))
    if costs.shape != (panel.n_assets, L.N_COST):
        raise ValueError(f"cost table must have shape {(panel.n_assets, L.N_COST)}")
    if isinstance(detector, EstimatorDetector) and not isinstance(detector, Detector):
        detector = ExternalPosterior(detector, col=panel.exog.shape[1])
    fparams = detector_fparams(detector, features, panel.symbols, feature_assets)
    feats = feature_history(panel, fparams)
    if isinstance(detector, ExternalPosterior):
        fit_bars = np.asarray(detector.fit_bars(panel.n_bars), dtype=np.int64)
        if fit_bars.size == 0:
            raise ValueError(f"detector {detector.name!r}: history too short for its first fit")
        post = detector.posterior_history(feats, panel.exog, fit_bars)
        panel = with_columns(panel, post, detector.column_names())
        dparams = np.tile(detector.row(), (fit_bars.size, 1))
    else:
        dparams, fit_bars = fit_schedule(detector, feats, panel.exog)
    return Prepared(
        panel=panel,
        costs=np.ascontiguousarray(costs, dtype=np.float64),
        eparams=execution.array(),
        fparams=fparams,
        smooth=smoothing.array(),
        detector=detector,
        features=feats,
        dparams=dparams,
        fit_bars=fit_bars,
        execution=execution,
        feature_config=features,
        smoothing=smoothing,
        exog_names=exog_names,
        user_features=ufeats,
        ufilter=getattr(detector, "filter", None)
        if isinstance(detector, UserFilterDetector)
        else None,
    )


def fresh_state(prep: Prepared, sstate_size: int, fparams: np.ndarray | None = None) -> State:
    """A fresh state for one strategy over a prepared panel."""
    return initial_state(
        prep.panel.n_assets,
        prep.detector.n_states,
        prep.eparams,
        prep.fparams if fparams is None else fparams,
        prep.detector.state_size(prep.n_features),
        sstate_size,
    )


def setup_for(prep: Prepared, sparams: np.ndarray, fparams: np.ndarray | None = None) -> Setup:
    return Setup(
        prep.costs,
        prep.eparams,
        prep.fparams if fparams is None else fparams,
        prep.dparams,
        prep.fit_bars,
        prep.smooth,
        np.ascontiguousarray(sparams, dtype=np.float64),
    )


#: id(index) -> (weak reference to that index, {freq: new-period flags}); an Index is
#: immutable, so its flags never change; entries die with the index.
_FLAGS: dict[int, tuple[weakref.ref[pd.Index], dict[str | None, np.ndarray]]] = {}


def _forget_flags(key: int, ref: weakref.ref[pd.Index]) -> None:
    entry = _FLAGS.get(key)
    if entry is not None and entry[0] is ref:
        del _FLAGS[key]


def period_flags(index: pd.Index, freq: str | None) -> np.ndarray:
    """:func:`new_period_flags` of a panel's index, computed once per index object and
    calendar (strategies and repeated runs over one panel share them; read, never write)."""
    key = id(index)
    entry = _FLAGS.get(key)
    if entry is None or entry[0]() is not index:
        entry = (weakref.ref(index, partial(_forget_flags, key)), {})
        _FLAGS[key] = entry
    flags = entry[1].get(freq)
    if flags is None:
        ns = np.asarray(pd.DatetimeIndex(index).asi8, dtype=np.int64)
        flags = entry[1][freq] = new_period_flags(ns, freq)
    return flags


def run_strategy_raw(
    prep: Prepared, strategy: CompiledStrategy, *, record_features: bool = False
) -> RawRun:
    """Run one compiled strategy through the compiled driver; the raw output tuple.

    A strategy with a ``bind(prep)`` method (e.g. ``kind = "optimized"``) first turns
    into the compiled strategy it is over this prepared run (its targets decided ahead
    of the loop from bars <= t)."""
    bind = getattr(strategy, "bind", None)
    if callable(bind):
        strategy = bind(prep)
    panel = prep.panel
    missing = [f.name for f in strategy_features(strategy) if f not in prep.user_features]
    if missing:
        raise ValueError(
            f"strategy {strategy.name!r} reads user features not prepared: {', '.join(missing)}"
        )
    sparams = strategy_params(strategy, prep.names)
    fparams = prep.fparams_for(strategy)
    state = fresh_state(prep, strategy.state_size(), fparams)
    flags = period_flags(panel.index, strategy.rebalance)
    args = (
        panel.open,
        panel.close,
        panel.volume,
        panel.exog,
        flags,
        setup_for(prep, sparams, fparams),
        state,
        prep.n_features,
        record_features,
    )
    # the feature rows computed for the fits are this run's when the masks agree
    same = np.array_equal(fparams, prep.fparams) and prep.features.shape[0] == panel.n_bars
    rows = np.ascontiguousarray(prep.features) if same else None
    return run_driver(strategy.policy, *args, ufilter=prep.ufilter, feat_rows=rows)


def run_strategy(prep: Prepared, strategy: CompiledStrategy) -> StrategyRun:
    """Run one compiled strategy and wrap its tables."""
    return strategy_run(strategy.name, prep.panel, run_strategy_raw(prep, strategy))


def run_strategies(
    prep: Prepared, strategies: list[CompiledStrategy], config: dict[str, Any] | None = None
) -> BacktestResult:
    """Run several strategies over the same prepared panel (detector fitted once)."""
    if len({s.name for s in strategies}) != len(strategies):
        raise ValueError("strategy names must be unique")
    runs: dict[str, StrategyRun] = {}
    regimes = None
    for strat in strategies:
        out = run_strategy_raw(prep, strat)
        runs[strat.name] = strategy_run(strat.name, prep.panel, out)
        if regimes is None:
            regimes = regimes_frame(
                prep.panel, out.post, out.raw, out.smoothed, prep.detector.labels
            )
    if regimes is None:
        raise ValueError("no strategies to run")
    return BacktestResult(
        panel=prep.panel,
        runs=runs,
        regimes=regimes,
        regime_labels=prep.detector.labels,
        features=prep.features,
        config=config or {},
    )

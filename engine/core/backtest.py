"""Façade over the compiled driver: prepare arrays once, run strategies, wrap results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.core import layout as L
from engine.core.bars import BarPanel
from engine.core.result import BacktestResult, StrategyRun, regimes_frame, strategy_run
from engine.core.spec import Execution, Features, Smoothing, new_period_flags
from engine.core.state import initial_state
from engine.core.step_nb import Setup, State, run_driver
from engine.core.strategy import CompiledStrategy
from engine.features.causal_nb import feature_state_size, features_history_nb
from engine.regimes.base import Detector, fit_schedule


@dataclass(frozen=True)
class Prepared:
    """Everything shared by the strategies run over one panel: arrays, features, fits."""

    panel: BarPanel
    costs: np.ndarray
    eparams: np.ndarray
    fparams: np.ndarray
    smooth: np.ndarray
    detector: Detector
    features: np.ndarray  # (T, F) causal feature history (same kernel as the step)
    dparams: np.ndarray  # (n_fits, P)
    fit_bars: np.ndarray  # (n_fits,)
    execution: Execution
    feature_config: Features
    smoothing: Smoothing

    @property
    def n_features(self) -> int:
        return int(self.features.shape[1])


def feature_history(panel: BarPanel, fparams: np.ndarray) -> np.ndarray:
    """The ``(T, F)`` causal feature history, computed by the step's own feature kernel."""
    fstate = np.zeros(feature_state_size(panel.n_assets, fparams))
    return np.asarray(features_history_nb(panel.close, fparams, fstate))


def prepare(
    panel: BarPanel,
    detector: Detector,
    costs: np.ndarray,
    execution: Execution | None = None,
    features: Features | None = None,
    smoothing: Smoothing | None = None,
) -> Prepared:
    """Compute the feature history and fit the detector at its fit bars (causally)."""
    execution = execution or Execution()
    features = features or Features()
    smoothing = smoothing or Smoothing()
    fparams = features.array()
    feats = feature_history(panel, fparams)
    dparams, fit_bars = fit_schedule(detector, feats, panel.exog)
    if costs.shape != (panel.n_assets, L.N_COST):
        raise ValueError(f"cost table must have shape {(panel.n_assets, L.N_COST)}")
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
    )


def fresh_state(prep: Prepared, sstate_size: int) -> State:
    """A fresh state for one strategy over a prepared panel."""
    return initial_state(
        prep.panel.n_assets,
        prep.detector.n_states,
        prep.eparams,
        prep.fparams,
        prep.detector.state_size(prep.n_features),
        sstate_size,
    )


def setup_for(prep: Prepared, sparams: np.ndarray) -> Setup:
    return Setup(
        prep.costs,
        prep.eparams,
        prep.fparams,
        prep.dparams,
        prep.fit_bars,
        prep.smooth,
        np.ascontiguousarray(sparams, dtype=np.float64),
    )


def run_strategy_raw(
    prep: Prepared, strategy: CompiledStrategy, *, record_features: bool = False
) -> tuple[Any, ...]:
    """Run one compiled strategy through the compiled driver; the raw output tuple."""
    panel = prep.panel
    sparams = strategy.params(panel.symbols, prep.detector.labels)
    state = fresh_state(prep, strategy.state_size())
    flags = new_period_flags(panel.timestamps_ns, strategy.rebalance)
    args = (
        panel.open,
        panel.close,
        panel.volume,
        panel.exog,
        flags,
        setup_for(prep, sparams),
        state,
        prep.n_features,
        record_features,
    )
    return run_driver(strategy.policy, *args)


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
            regimes = regimes_frame(prep.panel, out[5], out[6], out[7], prep.detector.labels)
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

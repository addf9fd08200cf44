"""The two kinds of sweep task and the read-only data they share.

* :func:`fit_task` fits one distinct detector configuration over the panel (features by
  the step's own kernel, then the detector at its fit bars);
* :func:`run_chunk` runs a chunk of combinations through the compiled driver and returns
  one metrics row per combination.

Both are plain module-level functions of ``(shared, item)`` so any executor (serial,
local processes, Dask) can ship them; the results do not depend on where they run.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from engine.core.backtest import feature_history
from engine.core.driver import Regimes, run_driver
from engine.core.state import initial_state
from engine.core.step_nb import Setup
from engine.ground.bars import BarPanel
from engine.regimes.base import fit_schedule
from engine.sweep.metrics_nb import METRIC_NAMES, metrics_nb


@dataclass(frozen=True)
class Fit:
    """One detector configuration fitted over the panel (the fit cache's value)."""

    dparams: np.ndarray  # (n_fits, P)
    fit_bars: np.ndarray  # (n_fits,) int64
    n_states: int
    labels: tuple[str, ...]
    state_size: int
    seconds: float = 0.0  # time the fit took (0 when it came from the cache)


@dataclass(frozen=True)
class FitJob:
    """A detector config (market resolved by the run) + the feature parameters that feed
    it (built for the data's bar frequency by :class:`engine.assemble.Run`)."""

    detector: Any  # a DetectorConfig model
    fparams: np.ndarray


def fit_task(panel: BarPanel, job: FitJob) -> Fit:
    """Features and detector fits for one configuration (runs on a worker)."""
    import time

    t0 = time.perf_counter()
    feats = feature_history(panel, job.fparams)
    det = job.detector.build(panel)
    dparams, fit_bars = fit_schedule(det, feats, panel.exog)
    return Fit(
        dparams=np.ascontiguousarray(dparams, dtype=np.float64),
        fit_bars=np.ascontiguousarray(fit_bars, dtype=np.int64),
        n_states=int(det.n_states),
        labels=tuple(det.labels),
        state_size=int(det.state_size(feats.shape[1])),
        seconds=time.perf_counter() - t0,
    )


@dataclass(frozen=True)
class SweepData:
    """Everything the combinations share, as arrays (shipped once per worker).

    ``combos`` rows are ``(fit, features, strategy, costs, execution, smoothing, pass)``
    indices into the lists below (``strategy`` indexes ``sparams``, ``sstate_size``,
    ``flags`` and ``policies``; ``pass`` indexes ``regimes``, -1: none).

    ``feat_rows`` (per features setting) and ``regimes`` (per distinct fit, features and
    smoothing: :func:`engine.core.driver.regime_pass`) are the work every combination
    of those settings shares, done once (:func:`shared_passes`); ``None`` / empty: each
    combination computes its own (the same bits).
    """

    open: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    exog: np.ndarray
    n_features: int
    fits: list[Fit]
    fparams: list[np.ndarray]
    sparams: list[np.ndarray]
    sstate_size: list[int]
    flags: list[np.ndarray]  # new-period flags per strategy params row
    policies: list[Any]  # njit policy per strategy params row
    costs: list[np.ndarray]
    eparams: list[np.ndarray]
    smooth: list[np.ndarray]
    combos: np.ndarray  # (n, 7) int64
    periods_per_year: float  # of the data (annualises the metrics)
    feat_rows: list[np.ndarray | None] = field(default_factory=list)
    regimes: list[Regimes] = field(default_factory=list)


SHARED_FEATURES_BYTES = 256 * 2**20
"""Feature histories kept for a sweep (all features settings together) at most; above,
each combination computes its features a block at a time (the regime pass is shared)."""


def regimes_of(
    panel: BarPanel,
    rows: np.ndarray,
    fit: Fit,
    fparams: np.ndarray,
    smooth: np.ndarray,
    eparams: np.ndarray,
    costs: np.ndarray,
) -> Regimes:
    """The regime pass (:func:`engine.core.driver.regime_pass`) of one fit, features
    setting (``rows``: its feature history) and smoothing over ``panel``: what every run
    with them computes, whatever its strategy, costs or execution."""
    from engine.core.driver import regime_pass

    state = initial_state(panel.n_assets, fit.n_states, eparams, fparams, fit.state_size, 1)
    setup = Setup(costs, eparams, fparams, fit.dparams, fit.fit_bars, smooth, np.zeros(1))
    return regime_pass(rows, panel.exog, setup, state)


def shared_passes(data: SweepData, panel: BarPanel) -> SweepData:
    """``data`` with the shared work done: the feature history of each features setting
    (the driver's own kernel; kept when they fit :data:`SHARED_FEATURES_BYTES`) and one
    regime pass per distinct (fit, features, smoothing) of the combinations, each
    combination pointing at its pass (column 6 of ``combos``)."""
    n_bars = panel.close.shape[0]
    used_x = sorted({int(x) for x in data.combos[:, 1]})
    keep = len(used_x) * n_bars * data.n_features * 8 <= SHARED_FEATURES_BYTES
    rows: dict[int, np.ndarray] = {}
    groups: dict[tuple[int, int, int], int] = {}
    regimes: list[Regimes] = []
    combos = data.combos.copy()
    for i in range(len(combos)):
        f_i, x_i, _, c_i, e_i, m_i = (int(v) for v in combos[i, :6])
        key = (f_i, x_i, m_i)
        if key not in groups:
            if x_i not in rows:
                rows[x_i] = np.ascontiguousarray(feature_history(panel, data.fparams[x_i]))
            groups[key] = len(regimes)
            regimes.append(
                regimes_of(
                    panel,
                    rows[x_i],
                    data.fits[f_i],
                    data.fparams[x_i],
                    data.smooth[m_i],
                    data.eparams[e_i],
                    data.costs[c_i],
                )
            )
        combos[i, 6] = groups[key]
    feat_rows: list[np.ndarray | None] = [
        rows.get(x) if keep else None for x in range(len(data.fparams))
    ]
    return replace(data, combos=combos, feat_rows=feat_rows, regimes=regimes)


def run_one(data: SweepData, i: int) -> tuple[Any, ...]:
    """Combination ``i`` through the compiled driver; the raw output tuple."""
    f_i, x_i, s_i, c_i, e_i, m_i, g_i = (int(v) for v in data.combos[i])
    fit = data.fits[f_i]
    eparams = data.eparams[e_i]
    fparams = data.fparams[x_i]
    n = data.close.shape[1]
    state = initial_state(n, fit.n_states, eparams, fparams, fit.state_size, data.sstate_size[s_i])
    setup = Setup(
        data.costs[c_i],
        eparams,
        fparams,
        fit.dparams,
        fit.fit_bars,
        data.smooth[m_i],
        data.sparams[s_i],
    )
    return run_driver(
        data.policies[s_i],
        data.open,
        data.close,
        data.volume,
        data.exog,
        data.flags[s_i],
        setup,
        state,
        data.n_features,
        False,
        feat_rows=data.feat_rows[x_i] if data.feat_rows else None,
        regimes=data.regimes[g_i] if g_i >= 0 else None,
    )


def run_chunk(data: SweepData, rows: np.ndarray) -> np.ndarray:
    """Metrics (``len(rows)`` x ``len(METRIC_NAMES)``) of a chunk of combinations: the
    built-in policy's combinations of each shared regime pass in one compiled call
    (:func:`run_batch`), the others one at a time."""
    from engine.core.step_nb import builtin_policy_nb

    out = np.empty((len(rows), len(METRIC_NAMES)))
    batches: dict[tuple[int, int], list[int]] = {}
    for k, i in enumerate(rows):
        g_i, s_i = int(data.combos[i, 6]), int(data.combos[i, 2])
        if g_i >= 0 and data.policies[s_i] is builtin_policy_nb:
            batches.setdefault((g_i, data.sparams[s_i].shape[0]), []).append(k)
        else:
            raw = run_one(data, int(i))
            metrics_nb(raw[0], raw[9], data.periods_per_year, out[k])
    for ks in batches.values():
        out[ks] = run_batch(data, rows[ks])
    return out


def run_batch(data: SweepData, rows: np.ndarray) -> np.ndarray:
    """Metrics of combinations that share one regime pass and run the built-in policy
    (policy parameters of one length), in one compiled call
    (:func:`engine.sweep.batch_nb.run_batch_nb`): the same bits as :func:`run_one` and
    ``metrics_nb`` for each."""
    from engine.sweep.batch_nb import run_batch_nb

    f_i, x_i, _, _, e_i, m_i, g_i = (int(v) for v in data.combos[rows[0]])
    fit = data.fits[f_i]
    fparams = data.fparams[x_i]
    n = data.close.shape[1]
    template = initial_state(n, fit.n_states, data.eparams[e_i], fparams, fit.state_size, 1)
    s_i, c_i, e_i = (data.combos[rows, j] for j in (2, 3, 4))
    ports = [initial_state(n, 1, data.eparams[e], fparams, 1, 1).port for e in e_i]
    feat_rows = data.feat_rows[x_i] if data.feat_rows else None
    out = np.empty((len(rows), len(METRIC_NAMES)))
    run_batch_nb(
        data.open, data.close, data.volume, data.exog, data.n_features,
        feat_rows if feat_rows is not None else np.zeros((0, data.n_features)),
        data.regimes[g_i], fparams, fit.dparams, fit.fit_bars, data.smooth[m_i], template,
        np.stack([data.flags[s] for s in s_i]), np.stack([data.costs[c] for c in c_i]),
        np.stack([data.eparams[e] for e in e_i]), np.stack([data.sparams[s] for s in s_i]),
        np.stack(ports), np.array([data.sstate_size[s] for s in s_i], dtype=np.int64),
        data.periods_per_year, out,
    )  # fmt: skip
    return out

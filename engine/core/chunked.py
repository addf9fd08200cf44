"""The compiled driver over a history that arrives in chunks (memory flat in its length).

:func:`run_chunked` takes an iterator of :class:`BarPanel` chunks (consecutive bars, same
symbols) and runs every strategy through the compiled driver chunk after chunk, carrying
each strategy's :class:`~engine.core.step_nb.State` (portfolio, features, detector,
smoother and policy states) from one chunk to the next. Only O(T) outputs are kept (equity,
cash, costs, posterior and regimes per bar), plus the fills and the targets/orders of the
bars where a policy rebalanced; the ``(T, N)`` panel, the ``(T, F)`` feature history and
per-bar weights are never built. The result is bit-identical to a whole-panel run.

Detectors: fixed parameters (``none``, ``rule``), fitted once (``refit_every = 0``: the
few chunks up to the fit bar are held, the fit reads the rows before it, as in a whole run),
or refitted on a trailing window (the last ``window`` feature and input rows kept in a
ring; chunks are split at fit bars). What cannot be chunked is refused with one line, never
run with a silently different answer: detectors refitted on an expanding window (their
fits read a growing history), estimator detectors, user features, and
user policies that may read ``ctx.hist`` (the close history of the chunk only) unless
they declare ``reads_history = False``. Bar numbers (a policy's ``t``, fills, decisions)
are those of the whole history: the driver is given each chunk's first bar ``t0``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from engine.core.backtest import Prepared, fresh_state, prepare, setup_for
from engine.core.chunked_fits import Refits, fit_plan
from engine.core.chunked_result import ChunkedResult, ChunkedRun, Grow
from engine.core.driver import run_driver
from engine.core.policy_nb import builtin_policy_nb
from engine.core.raw import RawRun
from engine.core.spec import Execution, Features, Smoothing, period_keys
from engine.core.step_nb import Setup, State
from engine.core.usage import strategy_features, strategy_params
from engine.ground import layout as L
from engine.ground.bars import BarPanel, DataError
from engine.plugins.detector import Detector, EstimatorDetector
from engine.plugins.features import UserFeature
from engine.plugins.strategy import CompiledStrategy

__all__ = ["ChunkedResult", "ChunkedRun", "check_chunkable", "run_chunked"]


def check_chunkable(
    detector: Detector | EstimatorDetector,
    strategies: Sequence[Any],
    user_features: Sequence[UserFeature] = (),
) -> None:
    """Raise a one-line ``ValueError`` for what a chunked run cannot reproduce exactly."""
    if isinstance(detector, EstimatorDetector) and not isinstance(detector, Detector):
        raise ValueError(
            f"detector {detector.name!r}: an estimator detector is fitted on a growing "
            "history, which a chunked run does not keep; run it without chunk_bars"
        )
    fit_plan(detector)
    if user_features:
        names = ", ".join(f.name for f in user_features)
        raise ValueError(
            f"user features ({names}) are computed over the whole history: not available "
            "in a chunked run; run without chunk_bars"
        )
    for strat in strategies:
        if not isinstance(strat, CompiledStrategy):
            raise ValueError(
                f"strategy {getattr(strat, 'name', strat)!r} is a Python strategy: a chunked "
                "run takes compiled strategies only"
            )
        if callable(getattr(strat, "bind", None)):
            raise ValueError(
                f"strategy {strat.name!r} decides its targets ahead of the loop from the whole "
                "history (kind optimized: trailing windows of closes and posteriors), which a "
                "chunked run does not keep; run it without chunk_bars"
            )
        if strat.policy is not builtin_policy_nb and getattr(strat, "reads_history", True):
            raise ValueError(
                f"strategy {strat.name!r}: a user policy may read ctx.hist, which in a chunked "
                "run starts at the chunk's first bar; declare reads_history = False on the "
                "strategy if it never does, or run without chunk_bars"
            )
        if strategy_features(strat):
            raise ValueError(
                f"strategy {strat.name!r} reads user features: not available in a chunked run"
            )


def _join(chunks: Sequence[BarPanel]) -> BarPanel:
    """Consecutive chunks as one panel (the few bars before a detector's fit)."""
    if len(chunks) == 1:
        return chunks[0]
    first = chunks[0]
    for c in chunks[1:]:
        _check_chunk(c, first, None, 0)
    return BarPanel(
        index=pd.DatetimeIndex(np.concatenate([c.timestamps_ns for c in chunks]).view("M8[ns]")),
        symbols=first.symbols,
        open=np.concatenate([c.open for c in chunks]),
        high=np.concatenate([c.high for c in chunks]),
        low=np.concatenate([c.low for c in chunks]),
        close=np.concatenate([c.close for c in chunks]),
        volume=np.concatenate([c.volume for c in chunks]),
        exog=np.concatenate([c.exog for c in chunks]),
        exog_names=first.exog_names,
        asset_classes=first.asset_classes,
        tz=first.tz,
    )


@dataclass
class _Lane:
    """One strategy's carried state and accumulated outputs."""

    strategy: CompiledStrategy
    setup: Setup
    state: State
    equity: Grow
    cash: Grow
    costs: Grow
    fills: Grow
    bars: Grow
    targets: Grow
    orders: Grow


def period_flags(ts_ns: np.ndarray, freq: str | None, prev_key: int | None) -> np.ndarray:
    """New-period flags of a chunk: as :func:`engine.core.spec.new_period_flags` over the
    whole history (the first bar compares with ``prev_key``, the key of the previous
    chunk's last bar; ``None`` for the first chunk)."""
    keys = period_keys(ts_ns, freq)
    flags = np.zeros(len(keys), dtype=np.bool_)
    if freq is None or not len(keys):
        return flags
    flags[1:] = keys[1:] != keys[:-1]
    if prev_key is not None:
        flags[0] = keys[0] != prev_key
    return flags


def drive_chunk(
    lane: _Lane,
    chunk: BarPanel,
    flags: np.ndarray,
    n_features: int,
    t0: int,
    ufilter: Any,
    record_features: bool = False,
) -> RawRun:
    """The compiled driver over one chunk whose first bar is bar ``t0`` of the history:
    bar numbers (fit lookup, fills, decisions, the policy's ``t``) are the whole run's,
    so the carried state reads exactly as after a whole-history run."""
    return run_driver(
        lane.strategy.policy,
        chunk.open,
        chunk.close,
        chunk.volume,
        chunk.exog,
        flags,
        lane.setup,
        lane.state,
        n_features,
        record_features,
        ufilter=ufilter,
        t0=t0,
    )


def _check_chunk(chunk: BarPanel, first: BarPanel, last_ns: int | None, t0: int) -> None:
    if chunk.symbols != first.symbols:
        raise DataError(
            f"chunk at bar {t0} ({chunk.index[0]}): symbols {', '.join(chunk.symbols)} differ "
            f"from the first chunk's {', '.join(first.symbols)}"
        )
    if chunk.exog_names != first.exog_names:
        raise DataError(f"chunk at bar {t0} ({chunk.index[0]}): exogenous series differ")
    if last_ns is not None and chunk.timestamps_ns[0] <= last_ns:
        raise DataError(
            f"chunk at bar {t0}: first bar {chunk.index[0]} is not after the previous "
            f"chunk's last bar {pd.Timestamp(last_ns)}"
        )


def run_chunked(
    chunks: Iterable[BarPanel],
    detector: Detector | EstimatorDetector,
    costs: np.ndarray,
    strategies: CompiledStrategy | Sequence[CompiledStrategy],
    execution: Execution | None = None,
    features: Features | None = None,
    smoothing: Smoothing | None = None,
    *,
    feature_assets: Sequence[str] = (),
    max_bars: int | None = None,
) -> ChunkedResult:
    """Run compiled strategies over consecutive chunks of bars, carrying their states.

    ``chunks`` yields :class:`BarPanel` pieces of one history (same symbols and exogenous
    series, strictly later bars each time); ``max_bars`` (an upper bound of the total,
    optional) sizes the per-bar outputs once. Equal, bit for bit, to running the
    whole history at once (:func:`engine.core.backtest.run_strategy_raw`), with memory
    independent of the number of bars beyond the O(T) outputs. Raises a one-line
    ``ValueError`` for a detector or strategy that a chunked run cannot reproduce
    (:func:`check_chunkable`).
    """
    strats = [strategies] if isinstance(strategies, CompiledStrategy) else list(strategies)
    if not strats:
        raise ValueError("no strategies to run")
    if len({s.name for s in strats}) != len(strats):
        raise ValueError("strategy names must be unique")
    check_chunkable(detector, strats)
    fit_at, schedule = fit_plan(detector)
    it = iter(chunks)
    head: list[BarPanel] = []  # chunks up to the detector's first fit (bounded: fit_at bars)
    while sum(c.n_bars for c in head) <= fit_at:
        nxt = next(it, None)
        if nxt is None:
            break
        if nxt.n_bars:
            head.append(nxt)
    if not head:
        raise DataError("no bars: the chunk iterator is empty")
    first = head[0]
    pre = _join(head)  # the fit at ``fit_at`` reads rows before it only, as in a whole run
    pre = pre.head(fit_at + 1) if pre.n_bars > fit_at + 1 else pre
    prep = prepare(
        pre, detector, costs, execution, features, smoothing, feature_assets=feature_assets
    )
    prep = replace(prep, panel=first.head(1), features=prep.features[:0])
    del pre
    refits = None if schedule is None else Refits(prep.detector, schedule, prep, first.n_assets)
    it = itertools.chain(head[1:], it)
    cap = max(max_bars or 0, sum(c.n_bars for c in head))
    k_states = prep.detector.n_states
    lanes = [_lane(prep, s, cap) for s in strats]
    post = Grow(cap, (k_states,), np.float64)
    raw = Grow(cap, (), np.int64)
    smoothed = Grow(cap, (), np.int64)
    times = Grow(cap, (), np.int64)
    freqs = {s.rebalance for s in strats}
    prev_keys: dict[str | None, int | None] = dict.fromkeys(freqs)
    t0 = 0
    n_chunks = 0
    last_ns: int | None = None
    for chunk in itertools.chain([first], it):
        if not chunk.n_bars:
            continue
        _check_chunk(chunk, first, last_ns, t0)
        n_chunks += 1
        rest: BarPanel | None = chunk
        while rest is not None:  # pieces: a trailing-window refit splits a chunk
            piece = rest
            if refits is not None:
                if refits.next == t0:
                    row = refits.fit(t0)[None, :]
                    for lane in lanes:
                        lane.setup = lane.setup._replace(
                            dparams=row, fit_bar=np.array([t0], dtype=np.int64)
                        )
                if t0 < refits.next < t0 + rest.n_bars:
                    k = refits.next - t0
                    piece, rest = rest.take(np.arange(k)), rest.take(np.arange(k, rest.n_bars))
                else:
                    rest = None
            else:
                rest = None
            ts = piece.timestamps_ns
            flags = {f: period_flags(ts, f, prev_keys[f]) for f in freqs}
            for i, lane in enumerate(lanes):
                record = refits is not None and i == 0
                out = drive_chunk(
                    lane,
                    piece,
                    flags[lane.strategy.rebalance],
                    prep.n_features,
                    t0,
                    prep.ufilter,
                    record,
                )
                if lane.state.rstate[L.G_FIT] >= 0:  # the row in force, counted in the run
                    lane.state.rstate[L.G_FIT] = (refits.count if refits else 1) - 1
                _collect(lane, out)
                if i == 0:
                    post.add(out.post)
                    raw.add(out.raw)
                    smoothed.add(out.smoothed)
                if record and refits is not None:
                    refits.push(out.features, piece.exog)
            times.add(ts)
            prev_keys = {f: int(period_keys(ts[-1:], f)[0]) for f in freqs}
            last_ns = int(ts[-1])
            t0 += piece.n_bars
    index = pd.DatetimeIndex(times.done().view("datetime64[ns]"))  # as BarPanel.index
    return ChunkedResult(
        index=index,
        symbols=first.symbols,
        runs={lane.strategy.name: _finish(lane) for lane in lanes},
        post=post.done(),
        raw=raw.done(),
        smoothed=smoothed.done(),
        regime_labels=prep.detector.labels,
        n_chunks=n_chunks,
    )


def _lane(prep: Prepared, strategy: CompiledStrategy, cap: int) -> _Lane:
    sparams = strategy_params(strategy, prep.names)
    fparams = prep.fparams_for(strategy)
    return _Lane(
        strategy=strategy,
        setup=setup_for(prep, sparams, fparams),
        state=fresh_state(prep, strategy.state_size(), fparams),
        equity=Grow(cap, (), np.float64),
        cash=Grow(cap, (), np.float64),
        costs=Grow(cap, (L.N_COST_KINDS,), np.float64),
        fills=Grow(256, (L.N_FILL_FIELDS,), np.float64),
        bars=Grow(64, (), np.int64),
        targets=Grow(64, (prep.panel.n_assets,), np.float64),
        orders=Grow(64, (prep.panel.n_assets,), np.float64),
    )


def _collect(lane: _Lane, out: RawRun) -> None:
    """Keep a chunk's O(T) outputs, its decisions and fills (bars of the whole run)."""
    lane.equity.add(out.equity)
    lane.cash.add(out.cash)
    lane.costs.add(out.costs)
    lane.fills.add(out.fills)
    lane.bars.add(out.decision_bars)
    lane.targets.add(out.targets)
    lane.orders.add(out.orders)


def _finish(lane: _Lane) -> ChunkedRun:
    return ChunkedRun(
        name=lane.strategy.name,
        equity=lane.equity.done(),
        cash=lane.cash.done(),
        costs=lane.costs.done(),
        fills=lane.fills.done(),
        decision_bars=lane.bars.done(),
        targets=lane.targets.done(),
        orders=lane.orders.done(),
    )

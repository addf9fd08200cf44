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
user policies: they may read ``ctx.hist`` (the close history of the chunk only; declare
``reads_history = False`` if not) and are passed the bar number ``t``, which the compiled
driver counts from each chunk's start until it takes a bar offset
(:data:`DRIVER_BAR_OFFSET`).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.core.backtest import Prepared, fresh_state, prepare, setup_for
from engine.core.policy_nb import builtin_policy_nb
from engine.core.result import fills_frame
from engine.core.spec import Execution, Features, Smoothing, period_keys
from engine.core.step_nb import Setup, State, run_driver
from engine.core.strategy import CompiledStrategy
from engine.core.usage import strategy_features, strategy_params
from engine.features.causal_nb import used_assets
from engine.ground import layout as L
from engine.ground.bars import BarPanel, DataError
from engine.plugins.detector import Detector, EstimatorDetector
from engine.plugins.features import UserFeature

DRIVER_BAR_OFFSET = False
"""Whether :func:`drive_chunk` hands the compiled driver the chunk's first bar number, so
that a policy's ``t`` is the bar of the whole history. Until it does, user policies (which
may read ``t``) are refused; the built-in policy never reads it."""

__all__ = ["ChunkedResult", "ChunkedRun", "check_chunkable", "run_chunked"]


@dataclass
class ChunkedRun:
    """One strategy's outputs over the whole history (arrays, bars in file order)."""

    name: str
    equity: np.ndarray  # (T,)
    cash: np.ndarray  # (T,)
    costs: np.ndarray  # (T, N_COST_KINDS) per-bar cost pieces (currency)
    fills: np.ndarray  # kernel fill records; R_BAR is the bar of the whole history
    decision_bars: np.ndarray  # (D,) int64 bars where the policy rebalanced
    targets: np.ndarray  # (D, N) target weights at those bars
    orders: np.ndarray  # (D, N) share orders placed at those bars

    @property
    def nbytes(self) -> int:
        return sum(
            a.nbytes
            for a in (
                self.equity,
                self.cash,
                self.costs,
                self.fills,
                self.decision_bars,
                self.targets,
                self.orders,
            )
        )


@dataclass(frozen=True)
class _Axis:
    """The two attributes of a panel that the fills table reads."""

    index: pd.DatetimeIndex
    symbols: tuple[str, ...]


@dataclass
class ChunkedResult:
    """Several strategies over the same chunked history, detector and costs."""

    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    runs: dict[str, ChunkedRun]
    post: np.ndarray  # (T, K) filtered posterior
    raw: np.ndarray  # (T,) raw state
    smoothed: np.ndarray  # (T,) smoothed (trading) state
    regime_labels: tuple[str, ...]
    n_chunks: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def n_bars(self) -> int:
        return len(self.index)

    @property
    def equity(self) -> pd.DataFrame:
        df = pd.DataFrame({n: r.equity for n, r in self.runs.items()}, index=self.index)
        df.index.name = "timestamp"
        return df

    @property
    def cash(self) -> pd.DataFrame:
        df = pd.DataFrame({n: r.cash for n, r in self.runs.items()}, index=self.index)
        df.index.name = "timestamp"
        return df

    def fills_of(self, name: str) -> pd.DataFrame:
        """One strategy's fills table (columns of :data:`engine.core.result.FILL_COLUMNS`)."""
        axis: Any = _Axis(self.index, self.symbols)
        return fills_frame(name, axis, self.runs[name].fills)

    @property
    def fills(self) -> pd.DataFrame:
        frames = [self.fills_of(n) for n, r in self.runs.items() if len(r.fills)]
        if not frames:
            return self.fills_of(next(iter(self.runs)))
        return pd.concat(frames, ignore_index=True)

    def targets_of(self, name: str) -> pd.DataFrame:
        """Target weights at the bars where ``name`` rebalanced (index: those bars)."""
        run = self.runs[name]
        return pd.DataFrame(
            run.targets, index=self.index[run.decision_bars], columns=list(self.symbols)
        )

    @property
    def regimes(self) -> pd.DataFrame:
        """timestamp-indexed: state, smoothed_state, label, p0..p{K-1} (as a whole run)."""
        df = pd.DataFrame({"state": self.raw, "smoothed_state": self.smoothed}, index=self.index)
        names = np.asarray([*self.regime_labels, "warmup"], dtype=object)
        df["label"] = names[np.where(self.smoothed >= 0, self.smoothed, len(self.regime_labels))]
        for k in range(self.post.shape[1]):
            df[f"p{k}"] = self.post[:, k]
        df.index.name = "timestamp"
        return df

    def save(self, out_dir: str | Path) -> Path:
        """Write equity.csv, fills.csv, regimes.csv, targets.csv (decision bars only, long:
        timestamp, strategy, symbol, weight), metrics.json, config.json and meta.json."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.equity.to_csv(out / "equity.csv")
        self.fills.to_csv(out / "fills.csv", index=False)
        self.regimes.to_csv(out / "regimes.csv")
        frames = []
        for name in self.runs:
            t = self.targets_of(name).rename_axis("timestamp")
            long = t.reset_index().melt(id_vars="timestamp", var_name="symbol", value_name="weight")
            frames.append(long.assign(strategy=name)[["timestamp", "strategy", "symbol", "weight"]])
        pd.concat(frames, ignore_index=True).to_csv(out / "targets.csv", index=False)
        meta = {"symbols": list(self.symbols), "regime_labels": list(self.regime_labels)}
        (out / "meta.json").write_text(json.dumps(meta, indent=2))
        (out / "metrics.json").write_text(json.dumps(self.metrics, indent=2, default=float))
        (out / "config.json").write_text(json.dumps(self.config, indent=2, default=str))
        return out

    @property
    def nbytes(self) -> int:
        """Bytes held by the outputs (arrays and the time index)."""
        own = self.post.nbytes + self.raw.nbytes + self.smoothed.nbytes + self.index.nbytes
        return own + sum(r.nbytes for r in self.runs.values())


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
        if strat.policy is not builtin_policy_nb and getattr(strat, "reads_history", True):
            raise ValueError(
                f"strategy {strat.name!r}: a user policy may read ctx.hist, which in a chunked "
                "run starts at the chunk's first bar; declare reads_history = False on the "
                "strategy if it never does, or run without chunk_bars"
            )
        if strat.policy is not builtin_policy_nb and not DRIVER_BAR_OFFSET:
            raise ValueError(
                f"strategy {strat.name!r}: a user policy is passed the bar number t, which "
                "the compiled driver still counts from each chunk's first bar; run it "
                "without chunk_bars"
            )
        if strategy_features(strat):
            raise ValueError(
                f"strategy {strat.name!r} reads user features: not available in a chunked run"
            )


def fit_plan(detector: Detector | EstimatorDetector) -> tuple[int, Any]:
    """``(first fit bar, trailing-window schedule or None)`` of a detector a chunked run
    can reproduce: fixed parameters (fitted at bar 0 on no rows), a single fit
    (``refit_every = 0``), or refits on a trailing window of ``window`` rows (the run keeps
    those rows in a ring). Refits on an expanding window read a growing history: a
    one-line ``ValueError``."""
    bars = np.asarray(detector.fit_bars(1), dtype=np.int64)
    if bars.size == 1 and bars[0] == 0:
        return 0, None
    schedule = getattr(detector, "schedule", None)
    every = getattr(schedule, "refit_every", None)
    if every is not None and every <= 0:
        bars = np.asarray(detector.fit_bars(2**62), dtype=np.int64)  # fit once: no range
        if bars.size == 1:
            return int(bars[0]), None
    if every is not None and every > 0 and getattr(schedule, "window", 0) > 0:
        n = int(getattr(schedule, "min_train", 0)) + int(getattr(schedule, "skip", 0)) + 3
        bars = np.asarray(detector.fit_bars(n), dtype=np.int64)  # the first fit is below n
        if bars.size:
            return int(bars[0]), schedule
    raise ValueError(
        f"detector {detector.name!r} is refitted on an expanding window, so a chunked run "
        "could not stay memory-flat; refit it on a rolling window, fit it once "
        "(refit_every = 0), use fixed parameters (kind 'none' or 'rule') or run without "
        "chunk_bars"
    )


class _Refits:
    """Trailing-window refits during a chunked run: the last ``window`` feature rows (the
    detector's columns) and input rows, and the next fit bar."""

    def __init__(self, detector: Any, schedule: Any, prep: Prepared, n_assets: int) -> None:
        self.detector = detector
        self.window = int(schedule.window)
        self.every = int(schedule.refit_every)
        self.next = int(prep.fit_bars[-1]) + self.every
        self.count = len(prep.fit_bars)
        self.previous = np.asarray(prep.dparams[-1], dtype=np.float64)
        used = used_assets(prep.fparams, n_assets)
        self.cols = np.flatnonzero(np.repeat(used, L.N_FEAT_ASSET))
        self.width = int(prep.n_features)
        self.feats = np.zeros((0, self.cols.size))
        self.inputs = np.zeros((0, prep.panel.exog.shape[1]))

    def push(self, feats: np.ndarray, inputs: np.ndarray) -> None:
        """Append a piece's rows (bars in order), keeping the last ``window``."""
        self.feats = np.concatenate([self.feats, feats[:, self.cols]])[-self.window :]
        self.inputs = np.concatenate([self.inputs, inputs])[-self.window :]

    def fit(self, bar: int) -> np.ndarray:
        """The detector fitted at ``bar`` exactly as in a whole run: ``fit`` is given
        ``bar`` rows, of which it reads the trailing window only (the rows before it are
        zero pages, never touched)."""
        n = self.feats.shape[0]
        feats = np.zeros((bar, self.width))
        feats[bar - n :, self.cols] = self.feats
        inputs = np.zeros((bar, self.inputs.shape[1]))
        inputs[bar - n :] = self.inputs
        row = np.asarray(self.detector.fit(feats, inputs, self.previous), dtype=np.float64)
        self.previous = row
        self.next = bar + self.every
        self.count += 1
        return row


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


class _Grow:
    """Rows appended chunk by chunk into one array sized up front (``capacity`` rows).

    It grows by an eighth, at most 65,536 rows (``ndarray.resize`` zero-fills, so touches,
    what it adds) and shrinks with ``ndarray.resize`` (``realloc``: large blocks are
    remapped, not copied), so the outputs never exist twice in memory, as a list of pieces
    joined at the end would."""

    def __init__(self, capacity: int, width: tuple[int, ...], dtype: Any) -> None:
        self.buf = np.empty((max(1, capacity), *width), dtype=dtype)
        self.n = 0

    def add(self, rows: np.ndarray) -> None:
        need = self.n + len(rows)
        if need > len(self.buf):
            grow = min(max(need // 8, 256), 1 << 16)  # zero-filled: bound the slack
            self.buf.resize((need + grow, *self.buf.shape[1:]), refcheck=False)
        self.buf[self.n : need] = rows
        self.n = need

    def done(self) -> np.ndarray:
        """The rows written (the buffer, trimmed in place; no more rows may be added)."""
        if self.n != len(self.buf):
            self.buf.resize((self.n, *self.buf.shape[1:]), refcheck=False)
        return self.buf


@dataclass
class _Lane:
    """One strategy's carried state and accumulated outputs."""

    strategy: CompiledStrategy
    setup: Setup
    state: State
    equity: _Grow
    cash: _Grow
    costs: _Grow
    fills: _Grow
    bars: _Grow
    targets: _Grow
    orders: _Grow


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
) -> tuple[Any, ...]:
    """The compiled driver over one chunk whose first bar is bar ``t0`` of the history.

    The driver numbers bars from 0, so fit bars are shifted into the chunk's numbering
    and bar numbers written into the state and the fill records are shifted back: the
    carried state reads exactly as after a whole-history run.
    """
    port = lane.state.port
    last_decision = port[L.P_LAST_DECISION]
    port[L.P_LAST_DECISION] = -1.0
    setup = lane.setup._replace(fit_bar=lane.setup.fit_bar - t0)
    out = run_driver(
        lane.strategy.policy,
        chunk.open,
        chunk.close,
        chunk.volume,
        chunk.exog,
        flags,
        setup,
        lane.state,
        n_features,
        record_features,
        ufilter=ufilter,
    )
    out[9][:, L.R_BAR] += t0
    port[L.P_BARS] += t0
    port[L.P_LAST_DECISION] = (
        port[L.P_LAST_DECISION] + t0 if port[L.P_LAST_DECISION] >= 0 else last_decision
    )
    return out


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
    refits = None if schedule is None else _Refits(prep.detector, schedule, prep, first.n_assets)
    it = itertools.chain(head[1:], it)
    cap = max(max_bars or 0, sum(c.n_bars for c in head))
    k_states = prep.detector.n_states
    lanes = [_lane(prep, s, cap) for s in strats]
    post = _Grow(cap, (k_states,), np.float64)
    raw = _Grow(cap, (), np.int64)
    smoothed = _Grow(cap, (), np.int64)
    times = _Grow(cap, (), np.int64)
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
                _collect(lane, out, t0)
                if i == 0:
                    post.add(out[5])
                    raw.add(out[6])
                    smoothed.add(out[7])
                if record and refits is not None:
                    refits.push(out[10], piece.exog)
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
        equity=_Grow(cap, (), np.float64),
        cash=_Grow(cap, (), np.float64),
        costs=_Grow(cap, (L.N_COST_KINDS,), np.float64),
        fills=_Grow(256, (L.N_FILL_FIELDS,), np.float64),
        bars=_Grow(64, (), np.int64),
        targets=_Grow(64, (prep.panel.n_assets,), np.float64),
        orders=_Grow(64, (prep.panel.n_assets,), np.float64),
    )


def _collect(lane: _Lane, out: tuple[Any, ...], t0: int) -> None:
    """Keep a chunk's O(T) outputs and its decision rows; drop the per-bar (T, N) ones."""
    equity, cash, _w, targets, orders, _p, _r, _s, costs, fills, _f = out
    lane.equity.add(equity)
    lane.cash.add(cash)
    lane.costs.add(costs)
    lane.fills.add(fills)
    decided = (
        np.flatnonzero(~np.isnan(targets).all(axis=1))
        if targets.shape[1]
        else np.zeros(0, np.int64)
    )
    lane.bars.add(decided + t0)
    lane.targets.add(targets[decided])
    lane.orders.add(orders[decided])


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

"""The streaming driver: the same compiled step, called once per arriving bar.

Used for live and paper feeds (Alpaca, ZeroMQ) and for Python strategies or detectors
with callbacks, historical or live. A compiled strategy goes through
:func:`~engine.core.step_nb.step_nb` exactly as the compiled driver calls it, so replaying
a history through both gives bit-identical fills and equity. A Python strategy goes
through the step's phases (market, detect, orders) with its callback in between.

Detector refits happen here, in Python, when a fit bar arrives: fit ``k`` sees the feature
rows before it, exactly as :func:`engine.regimes.base.fit_schedule` gives them to the
compiled driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numba
import numpy as np
import pandas as pd

from engine.core.policy_nb import builtin_policy_nb
from engine.core.raw import RawRun
from engine.core.result import regimes_frame, strategy_run
from engine.core.spec import Execution, Features, Smoothing, period_bounds
from engine.core.state import initial_state, restore, snapshot
from engine.core.step_nb import (
    Setup,
    State,
    bar_ok_nb,
    context_nb,
    detect_nb,
    detect_user_nb,
    market_nb,
    orders_nb,
    step_builtin_nb,
    step_nb,
)
from engine.core.usage import strategy_features, strategy_params
from engine.features.user import FeatureRunner
from engine.ground import layout as L
from engine.ground.bars import BarPanel, DataError
from engine.plugins.detector import Detector, EstimatorDetector, PythonDetector
from engine.plugins.features import History, UserFeature
from engine.plugins.names import Names
from engine.plugins.strategy import CompiledStrategy, Context, PythonStrategy, targets_array
from engine.regimes.base import stack_params
from engine.regimes.estimator import ExternalPosterior
from engine.regimes.online_nb import argmax_state_nb, detector_update_nb, smooth_state_nb
from engine.regimes.user_filter import UserFilterDetector


class FastCall:
    """Call an njit function, skipping numba's per-call type dispatch after the first call.

    The first call goes through the dispatcher (compiling or loading from the disk
    cache); later calls go straight to the compiled overload of that first call's
    signature. Callers must pass the same types every time (the streaming driver does:
    C-contiguous float64 arrays, ints, bools and the same namedtuples).
    """

    def __init__(self, dispatcher: Any, *bound: Any) -> None:
        self.dispatcher = dispatcher
        self.bound = bound
        self.entry: Any = None

    def __call__(self, *args: Any) -> Any:
        full = (*self.bound, *args)
        if self.entry is not None:
            return self.entry(*full)
        result = self.dispatcher(*full)
        sig = tuple(numba.typeof(a) for a in full)
        overload = self.dispatcher.overloads.get(sig)
        if overload is not None:
            self.entry = overload.entry_point
        return result


class BarOutput(NamedTuple):
    """What one bar produced (a NamedTuple: cheap to build on the hot path)."""

    bar: int
    timestamp_ns: int
    equity: float
    cash: float
    weights: np.ndarray
    posterior: np.ndarray
    state: int
    regime: int
    rebalanced: bool
    targets: np.ndarray  # NaN where not rebalanced
    orders: np.ndarray  # signed share orders placed (0 = none)
    costs: np.ndarray  # (4,) commission, spread, slippage, impact charged this bar
    fills: np.ndarray  # (n, N_FILL_FIELDS) fill records of this bar
    positions: np.ndarray  # shares held after this bar's fills, before its orders
    regime_label: str  # the smoothed regime by name ("-1" before the detector is ready)

    @property
    def timestamp(self) -> pd.Timestamp:
        return pd.Timestamp(self.timestamp_ns)


class StreamingDriver:
    """Feed bars one at a time through the compiled step.

    Parameters
    ----------
    symbols, exog_names
        The instruments (order fixed) and exogenous series of every bar.
    strategy
        A :class:`CompiledStrategy` (runs :func:`step_nb`) or a :class:`PythonStrategy`.
    detector
        A compiled :class:`Detector` (refitted here at its fit bars; a ``DET_USER`` one
        runs its own njit filter), an :class:`EstimatorDetector` (refitted here, predicting
        each bar) or a :class:`PythonDetector`.
    costs
        ``(N, N_COST)`` cost table (see :func:`engine.ground.spec.cost_table`).
    fitted
        Optional ``(dparams, fit_bars)`` computed beforehand (skips online refits).
    user_features
        User features computed here bar by bar (after the exogenous values in the
        inputs row), exactly as :func:`engine.features.user.inputs_matrix` does; the
        ones the strategy declares (its ``features``) are added.
    fparams
        Feature parameters (masked blocks) to use instead of ``features``' defaults.
    """

    def __init__(
        self,
        symbols: tuple[str, ...],
        strategy: CompiledStrategy | PythonStrategy,
        detector: Detector | PythonDetector | EstimatorDetector,
        costs: np.ndarray,
        *,
        execution: Execution | None = None,
        features: Features | None = None,
        smoothing: Smoothing | None = None,
        exog_names: tuple[str, ...] = (),
        fitted: tuple[np.ndarray, np.ndarray] | None = None,
        user_features: Sequence[UserFeature] = (),
        fparams: np.ndarray | None = None,
    ) -> None:
        self.symbols = tuple(symbols)
        self.exog_names = tuple(exog_names)
        self.strategy = strategy
        n = len(self.symbols)
        self.n_features = n * L.N_FEAT_ASSET
        wanted = list(user_features)  # plus the ones the strategy declares
        wanted += [f for f in strategy_features(strategy) if f not in wanted]
        self._runner = FeatureRunner(wanted, self.symbols, self.exog_names)
        input_names = self._runner.input_names
        if isinstance(detector, EstimatorDetector) and not isinstance(detector, Detector):
            detector = ExternalPosterior(detector, col=len(input_names))
        self._external: ExternalPosterior | None = None
        if isinstance(detector, ExternalPosterior):  # own copy: online refits add models
            models = list(detector.models) if fitted is not None else []
            detector = ExternalPosterior(detector.inner, len(input_names), models)
            self._external = detector
            input_names = input_names + detector.column_names()
        self.input_names = input_names
        self.detector = detector
        self._compiled_strategy = isinstance(strategy, CompiledStrategy)
        self._compiled_detector = isinstance(detector, Detector)
        if not self._compiled_strategy and not isinstance(strategy, PythonStrategy):
            raise TypeError("strategy must follow CompiledStrategy or PythonStrategy")
        if not self._compiled_detector and not isinstance(detector, PythonDetector):
            raise TypeError("detector must follow Detector, EstimatorDetector or PythonDetector")
        self.names = Names(self.symbols, detector.labels, self.input_names)
        sparams = strategy_params(strategy, self.names) if self._compiled_strategy else np.zeros(1)
        eparams = (execution or Execution()).array()
        if fparams is None:
            fparams = (features or Features()).array()
        fparams = np.ascontiguousarray(fparams, dtype=np.float64)
        dsize = (
            detector.state_size(self.n_features)  # type: ignore[union-attr]
            if self._compiled_detector
            else 1
        )
        ssize = strategy.state_size() if self._compiled_strategy else 1  # type: ignore[union-attr]
        self.state: State = initial_state(n, detector.n_states, eparams, fparams, dsize, ssize)
        self._fixed_fits = fitted is not None
        if fitted is not None:
            dparams, fit_bars = fitted
        else:
            dparams, fit_bars = np.zeros((1, 2)), np.zeros(0, dtype=np.int64)
        self.setup = Setup(
            np.ascontiguousarray(costs, dtype=np.float64),
            eparams,
            fparams,
            np.ascontiguousarray(dparams, dtype=np.float64),
            np.ascontiguousarray(fit_bars, dtype=np.int64),
            (smoothing or Smoothing()).array(),
            np.ascontiguousarray(sparams, dtype=np.float64),
        )
        self._fit_rows: list[np.ndarray] = [r for r in self.setup.dparams] if fitted else []
        self._feats = np.zeros(self.n_features)
        self._feat_hist = np.empty((0, self.n_features))
        self._exog_hist = np.empty((0, len(self.input_names)))
        self._n_hist = 0
        self._hist = History(self.symbols, self.input_names)
        schedule = (
            np.asarray(detector.fit_bars(1 << 22))  # type: ignore[union-attr]
            if self._compiled_detector and not self._fixed_fits
            else np.zeros(0, dtype=np.int64)
        )
        # online fits need the feature history, unless the only fit is at bar 0
        self._keep_history = schedule.size > 0
        self._refits = self._keep_history and not (schedule.size == 1 and schedule[0] == 0)
        self._no_exog = np.zeros(len(self.exog_names))
        self._fills = np.empty((n, L.N_FILL_FIELDS))
        self.t = 0
        self._last_key: int | None = None
        self._last_ts: int | None = None
        self._rebalance = getattr(strategy, "rebalance", None)
        self._period = (0, 0, -1)  # (key, start_ns, end_ns) of the current calendar period
        self._row_k = -2
        self._row = np.zeros(2)
        self._row_span = (0, -1)
        self._ufilter = (
            getattr(detector, "filter", None) if isinstance(detector, UserFilterDetector) else None
        )
        self._step: FastCall | None = None
        if self._compiled_strategy:
            policy = strategy.policy  # type: ignore[union-attr]
            if policy is builtin_policy_nb and self._ufilter is None:
                self._step = FastCall(step_builtin_nb)
            else:
                ufilter = detector_update_nb if self._ufilter is None else self._ufilter
                self._step = FastCall(step_nb, policy, ufilter)

    @classmethod
    def from_prepared(
        cls, prep: Any, strategy: CompiledStrategy | PythonStrategy, *, refit_online: bool = False
    ) -> StreamingDriver:
        """A driver with the settings of a :class:`~engine.core.backtest.Prepared` run.

        By default it reuses the prepared detector fits; ``refit_online=True`` refits at
        the fit bars from the streamed feature history instead (as live trading does).
        """
        return cls(
            prep.panel.symbols,
            strategy,
            prep.detector,
            prep.costs,
            execution=prep.execution,
            features=prep.feature_config,
            smoothing=prep.smoothing,
            exog_names=prep.exog_names,
            fitted=None if refit_online else (prep.dparams, prep.fit_bars),
            user_features=prep.user_features,
            fparams=prep.fparams_for(strategy),
        )

    # ------------------------------------------------------------------ refits
    def _record_history(self, feats: np.ndarray, exog: np.ndarray) -> None:
        if self._n_hist == self._feat_hist.shape[0]:
            grow = max(256, 2 * self._n_hist)
            self._feat_hist = np.resize(self._feat_hist, (grow, self.n_features))
            self._exog_hist = np.resize(self._exog_hist, (grow, len(self.input_names)))
        self._feat_hist[self._n_hist] = feats
        self._exog_hist[self._n_hist] = exog
        self._n_hist += 1

    def _maybe_refit(self, t: int) -> None:
        """At a fit bar, fit on the feature rows before ``t`` and put the row in force."""
        det = self.detector
        bars = np.asarray(det.fit_bars(t + 1), dtype=np.int64)  # type: ignore[union-attr]
        if bars.size == 0 or bars[-1] != t or len(self._fit_rows) >= bars.size:
            return
        previous = self._fit_rows[-1] if self._fit_rows else None
        row = np.asarray(
            det.fit(  # type: ignore[union-attr]
                self._feat_hist[: self._n_hist], self._exog_hist[: self._n_hist], previous
            ),
            dtype=np.float64,
        )
        self._fit_rows.append(row)
        dparams = stack_params(self._fit_rows)
        self.setup = self.setup._replace(dparams=dparams, fit_bar=np.asarray(bars, dtype=np.int64))

    def _dparams_row(self, t: int) -> np.ndarray:
        """The detector parameter row in force at bar ``t`` (cached between fit bars)."""
        if self._row_span[0] <= t < self._row_span[1]:
            return self._row
        fit_bar = self.setup.fit_bar
        if self._fixed_fits:
            k = int(np.searchsorted(fit_bar, t, side="right")) - 1
        else:
            k = len(self._fit_rows) - 1
        lo = int(fit_bar[k]) if 0 <= k < len(fit_bar) else -1
        hi = int(fit_bar[k + 1]) if self._fixed_fits and k + 1 < len(fit_bar) else 1 << 62
        if not self._fixed_fits:
            hi = t + 1  # online refits: re-check every bar (cheap: no search)
        self._row_span = (lo, hi)
        if k != self._row_k:
            self._row_k = k
            self._row = np.ascontiguousarray(self.setup.dparams[max(k, 0)])
        return self._row

    def _new_period(self, ts_ns: int) -> tuple[int, bool]:
        key, start, end = self._period
        if start <= ts_ns < end:
            return key, False
        self._period = period_bounds(ts_ns, self._rebalance)
        return self._period[0], self._last_key is not None and self._period[0] != self._last_key

    # ------------------------------------------------------------------ bars
    def on_bar(
        self,
        timestamp: Any,
        open: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        exog: np.ndarray | None = None,
    ) -> BarOutput:
        """Process one bar (prices in symbol order) and return what it produced."""
        ts_ns = timestamp if isinstance(timestamp, int) else int(pd.Timestamp(timestamp).value)
        if self._last_ts is not None and ts_ns <= self._last_ts:
            raise DataError(
                f"bar {self.t} ({pd.Timestamp(ts_ns)}): timestamp not after the previous bar"
            )
        o = np.ascontiguousarray(open, dtype=np.float64)
        c = np.ascontiguousarray(close, dtype=np.float64)
        v = np.ascontiguousarray(volume, dtype=np.float64)
        x = self._no_exog if exog is None else np.ascontiguousarray(exog, dtype=np.float64)
        n = len(self.symbols)
        if o.shape != (n,) or c.shape != (n,) or v.shape != (n,) or x.shape != self._no_exog.shape:
            raise DataError(
                f"bar {self.t} ({pd.Timestamp(ts_ns)}): expected {n} values per price field "
                f"and {len(self.exog_names)} exogenous values"
            )
        if not bar_ok_nb(o, c, v):
            raise DataError(
                f"bar {self.t} ({pd.Timestamp(ts_ns)}): open/close must be finite and > 0, "
                "volume finite and >= 0"
            )
        key, new_period = self._new_period(ts_ns)
        t = self.t
        hist = self._hist
        hist.append(o, c, v)
        row = hist.inputs_row()
        row[: x.shape[0]] = x
        self._runner.step(hist)
        x = row
        if self._keep_history:
            self._maybe_refit(t)
        dparams = self._dparams_row(t)
        target = np.empty(n)
        orders = np.zeros(n)
        bar_costs = np.zeros(L.N_COST_KINDS)
        if self._step is not None and self._compiled_detector and self._external is None:
            nf, go = self._step(
                t,
                o,
                c,
                v,
                x,
                hist.field("close"),
                new_period,
                dparams,
                self.setup,
                self.state,
                self._feats,
                target,
                orders,
                bar_costs,
                self._fills,
            )
        else:
            nf, go = self._phased_step(
                t, pd.Timestamp(ts_ns), o, c, v, x, new_period, dparams, target, orders, bar_costs
            )
        if self._refits:
            self._record_history(self._feats, x)
        self.t += 1
        self._last_key = key
        self._last_ts = ts_ns
        st = self.state
        regime = int(st.rstate[L.G_SMOOTHED])
        labels = self.names.labels
        return BarOutput(
            bar=t,
            timestamp_ns=ts_ns,
            equity=float(st.port[L.P_EQUITY]),
            cash=float(st.port[L.P_CASH]),
            weights=st.work.copy(),
            posterior=st.post.copy(),
            state=int(st.rstate[L.G_RAW]),
            regime=regime,
            rebalanced=bool(go),
            targets=target,
            orders=orders,
            costs=bar_costs,
            fills=self._fills[:nf].copy(),
            positions=st.port[L.P_HEADER : L.P_HEADER + n].copy(),
            regime_label=labels[regime] if 0 <= regime < len(labels) else str(regime),
        )

    def _phased_step(
        self,
        t: int,
        ts: pd.Timestamp,
        o: np.ndarray,
        c: np.ndarray,
        v: np.ndarray,
        x: np.ndarray,
        new_period: bool,
        dparams: np.ndarray,
        target: np.ndarray,
        orders: np.ndarray,
        bar_costs: np.ndarray,
    ) -> tuple[int, bool]:
        """The step's phases with Python callbacks for the detector and/or strategy."""
        st, setup = self.state, self.setup
        nf = market_nb(t, o, c, v, setup, st, self._feats, bar_costs, self._fills)
        ext = self._external
        if ext is not None:
            k = int(np.searchsorted(setup.fit_bar, t, side="right")) - 1
            if 0 <= k < len(ext.models):
                x[ext.col : ext.col + ext.n_states] = ext.inner.predict(
                    ext.models[k], self._feats, x
                )[0]
            else:
                x[ext.col : ext.col + ext.n_states] = np.nan
        if self._ufilter is not None:
            detect_user_nb(self._ufilter, t, self._feats, x, dparams, setup, st)
        elif self._compiled_detector:
            detect_nb(t, self._feats, x, dparams, setup, st)
        else:
            post = np.asarray(self.detector.update(self._feats.copy(), x), dtype=np.float64)  # type: ignore[union-attr]
            if post.shape != st.post.shape or not np.isfinite(post).all():
                raise ValueError(f"detector {self.detector.name!r} returned a bad posterior")
            st.post[:] = post
            raw = -1 if np.allclose(post, post[0]) else int(argmax_state_nb(post))
            smooth_state_nb(raw, st.post, setup.smooth, st.rstate)
        hist_close = self._hist.field("close")
        ctx_nb = context_nb(c, self._feats, x, hist_close, new_period, st)
        if self._compiled_strategy:
            go = bool(
                self.strategy.policy(t, ctx_nb, setup.sparams, st.sstate, target)  # type: ignore[union-attr]
            )
        else:
            ctx = Context(
                bar=t,
                timestamp=ts,
                symbols=self.symbols,
                close=c,
                features=self._feats.copy(),
                posterior=st.post.copy(),
                state=int(st.rstate[L.G_RAW]),
                regime=int(st.rstate[L.G_SMOOTHED]),
                regime_changed=bool(st.rstate[L.G_CHANGED]),
                new_period=new_period,
                weights=st.work.copy(),
                equity=float(st.port[L.P_EQUITY]),
                cash=float(st.port[L.P_CASH]),
                positions=st.port[L.P_HEADER : L.P_HEADER + len(self.symbols)].copy(),
                inputs=x.copy(),
                names=self.names,
                hist=self._hist,
            )
            strat = self.strategy
            answer = None
            if ctx.regime_changed:
                answer = targets_array(strat.on_regime_change(ctx), self.symbols)  # type: ignore[union-attr]
            if answer is None:
                answer = targets_array(strat.on_bar(ctx), self.symbols)  # type: ignore[union-attr]
            go = answer is not None
            if answer is not None:
                target[:] = answer
        if go:
            orders_nb(t, target, c, setup, st, orders)
        else:
            target[:] = np.nan
            orders[:] = 0.0
        return nf, go

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to resume after this bar (arrays + counters)."""
        return {
            "state": snapshot(self.state),
            "t": self.t,
            "last_key": self._last_key,
            "last_ts": self._last_ts,
            "fit_rows": [r.copy() for r in self._fit_rows],
            "fit_bar": self.setup.fit_bar.copy(),
            "feat_hist": self._feat_hist[: self._n_hist].copy(),
            "exog_hist": self._exog_hist[: self._n_hist].copy(),
        }

    def resume(self, ckpt: dict[str, Any]) -> None:
        """Continue from a :meth:`checkpoint` (same symbols, strategy and detector)."""
        self.state = restore(ckpt["state"])
        self.t = int(ckpt["t"])
        self._last_key = ckpt["last_key"]
        self._last_ts = ckpt["last_ts"]
        self._fit_rows = [np.asarray(r) for r in ckpt["fit_rows"]]
        if self._fit_rows:
            self.setup = self.setup._replace(
                dparams=stack_params(self._fit_rows),
                fit_bar=np.asarray(ckpt["fit_bar"], dtype=np.int64),
            )
        self._feat_hist = np.asarray(ckpt["feat_hist"], dtype=np.float64).reshape(
            -1, self.n_features
        )
        self._exog_hist = np.asarray(ckpt["exog_hist"], dtype=np.float64).reshape(
            -1, len(self.exog_names)
        )
        self._n_hist = self._feat_hist.shape[0]
        self._row_k = -2
        self._row_span = (0, -1)
        self._period = (0, 0, -1)


def replay(driver: StreamingDriver, panel: BarPanel) -> list[BarOutput]:
    """Feed a whole panel through a streaming driver (for parity tests and Python
    strategies on history)."""
    out = []
    ts = panel.timestamps_ns
    e = len(driver.exog_names)
    for t in range(panel.n_bars):
        out.append(
            driver.on_bar(
                int(ts[t]), panel.open[t], panel.close[t], panel.volume[t], panel.exog[t, :e]
            )
        )
    return out


def outputs_to_run(name: str, panel: BarPanel, outs: list[BarOutput]) -> Any:
    """Collect streaming outputs into the same tables as the compiled driver."""
    fills = [o.fills for o in outs if o.fills.shape[0]]
    n = len(panel.symbols)
    dec = [o for o in outs if o.rebalanced]
    raw = RawRun(
        np.array([o.equity for o in outs]),
        np.array([o.cash for o in outs]),
        np.array([o.bar for o in dec], dtype=np.int64),
        np.array([o.targets for o in dec]).reshape(len(dec), n),
        np.array([o.orders for o in dec]).reshape(len(dec), n),
        np.array([o.posterior for o in outs]),
        np.array([o.state for o in outs], dtype=np.int64),
        np.array([o.regime for o in outs], dtype=np.int64),
        np.array([o.costs for o in outs]),
        np.concatenate(fills) if fills else np.zeros((0, L.N_FILL_FIELDS)),
        np.zeros((1, 1)),
    )
    return strategy_run(name, panel, raw), raw


__all__ = ["BarOutput", "StreamingDriver", "outputs_to_run", "regimes_frame", "replay"]

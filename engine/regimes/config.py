"""Detector settings from the TOML config: one model per detector kind.

``DetectorConfig`` is a union discriminated by ``kind``; each model's ``build`` returns a
:class:`~engine.regimes.base.Detector` for a given panel (symbols resolved to columns).
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.ground.bars import BarPanel, DataError
from engine.ground.frequency import Frequency, parse_window, span_bars
from engine.ground.spec import Smoothing
from engine.regimes.base import Detector
from engine.regimes.changepoint import BOCPDDetector
from engine.regimes.clustering import GMMDetector, KMeansDetector
from engine.regimes.hmm import GaussianHMMDetector
from engine.regimes.inputs import Inputs, Schedule, resolve_inputs
from engine.regimes.jump import JumpModelDetector
from engine.regimes.rule import NoDetector, RuleDetector
from engine.regimes.supervised import SupervisedDetector


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


MinTrain = Annotated[int, Field(ge=10)] | str
"""Bars before the first fit: an int (bars) or a time string (``"2y"``, ``"18m"``)."""
RefitEvery = Annotated[int, Field(ge=0)] | str
"""Bars between fits (0: fit once): an int (bars) or a time string (``"26w"``, ``"4w"``)."""

#: The fewest bars each schedule key may resolve to (the ints' own lower bounds; a refit
#: interval given in time must be at least one bar: 0, "fit once", is written as 0).
SCHEDULE_MIN_BARS = {"min_train": 10, "refit_every": 1}


def fitting_min_train(n_bars: int) -> int:
    """A ``min_train`` that leaves most of ``n_bars`` to trade: a third of the history, at
    least 60 bars, at most half of it (``init`` writes it, short-history errors suggest it)."""
    return max(10, min(max(60, n_bars // 3), n_bars // 2))


class TimedSchedule(Strict):
    """``min_train`` / ``refit_every`` in bars (ints) or in time (strings in the feature
    windows' units: ``"2y"``, ``"18m"``, ``"26w"``, ``"20d"``, ``"4h"``, ``"63bars"``),
    turned into bars of the run's frequency by :meth:`in_bars`."""

    @field_validator("min_train", "refit_every", check_fields=False)
    @classmethod
    def _time_string(cls, v: int | str) -> int | str:
        if isinstance(v, str):
            try:
                parse_window(v)
            except ValueError:
                raise ValueError(
                    f"{v!r}: expected bars (an int) or a number and a unit (y, q, m or mo, "
                    "w, d, h, min, bars), e.g. '2y' or '26w'"
                ) from None
        return v

    def in_bars(self, freq: Frequency) -> TimedSchedule:
        """This section with its time strings as bars of ``freq``; a :class:`ValueError`
        ``detector.KEY: ...`` when one resolves to fewer bars than the key allows."""
        update: dict[str, int] = {}
        for key, lo in SCHEDULE_MIN_BARS.items():
            value = getattr(self, key, None)
            if isinstance(value, str):
                n = span_bars(value, freq)
                if n < lo:
                    raise ValueError(
                        f"detector.{key}: {value!r} is {n} bar(s) of {freq.name} data "
                        f"({freq.periods_per_year:,.0f}/yr); it needs at least {lo}"
                    )
                update[key] = n
        return self.model_copy(update=update) if update else self

    def bars(self, key: str) -> int:
        """``key`` in bars (a time string must have gone through :meth:`in_bars`)."""
        value = getattr(self, key)
        if isinstance(value, str):
            raise ValueError(
                f"detector.{key} = {value!r}: a time string needs the data's frequency "
                "(build the detector through engine.assemble, or give bars)"
            )
        return int(value)


class SmoothingConfig(Strict):
    """Trading hysteresis: probability threshold, minimum dwell, confirmation bars."""

    prob_threshold: float = Field(0.0, ge=0.0, le=1.0)
    min_dwell: int = Field(0, ge=0)
    confirm: int = Field(1, ge=1)

    def build(self) -> Smoothing:
        return Smoothing(self.prob_threshold, self.min_dwell, self.confirm)


class NoDetectorConfig(Strict):
    """No detection (one state "all"): for runs of static strategies only."""

    kind: Literal["none"] = "none"
    smoothing: SmoothingConfig = SmoothingConfig()

    def build(self, panel: BarPanel) -> Detector:
        return NoDetector()


class RuleDetectorConfig(Strict):
    """Baseline: EWMA-vol percentile within its trailing history + trend vs moving average."""

    kind: Literal["rule"] = "rule"
    market: str = "SPX"
    use_slow_vol: bool = False
    history: int = Field(756, ge=20)
    min_history: int = Field(252, ge=1)
    high_pct: float = Field(0.75, gt=0.0, lt=1.0)
    crisis_pct: float = Field(0.90, gt=0.0, le=1.0)
    smoothing: SmoothingConfig = SmoothingConfig()

    def build(self, panel: BarPanel) -> Detector:
        return RuleDetector(
            market=panel.column(self.market),
            use_slow_vol=self.use_slow_vol,
            history=self.history,
            min_history=self.min_history,
            high_pct=self.high_pct,
            crisis_pct=self.crisis_pct,
        )


class FittedConfig(TimedSchedule):
    """Settings shared by the fitted detectors (trailing-window fits, online filter).

    ``features``: input names (see :mod:`engine.regimes.inputs`): ``logret``,
    ``log_vol_fast``, ``SYMBOL.ma_gap``, ``exog.SLOPE_10Y_3M``, ...; standardized with the
    training window's statistics. The first fit is at bar ``min_train``, then every
    ``refit_every`` bars (0: once), on an ``expanding`` window or a ``rolling`` one of
    ``window_length`` bars, leaving out the first ``skip`` bars (feature warm-up).
    ``min_train`` and ``refit_every`` may be time strings (:class:`TimedSchedule`).
    """

    market: str = "SPX"
    features: tuple[str, ...] = ("logret", "log_vol_fast")
    n_states: int = Field(3, ge=2, le=8)
    labels: tuple[str, ...] | None = None
    min_train: MinTrain = 504
    refit_every: RefitEvery = 63
    window: Literal["expanding", "rolling"] = "expanding"
    window_length: int = Field(1260, ge=10)
    skip: int = Field(21, ge=0)
    seed: int = 0
    smoothing: SmoothingConfig = SmoothingConfig()

    def schedule(self) -> Schedule:
        return Schedule(
            min_train=self.bars("min_train"),
            refit_every=self.bars("refit_every"),
            window=self.window_length if self.window == "rolling" else 0,
            skip=self.skip,
        )

    def inputs(self, panel: BarPanel) -> Inputs:
        return resolve_inputs(panel, self.market, self.features)

    def label_names(self) -> tuple[str, ...]:
        if self.labels is not None and len(self.labels) != self.n_states:
            raise ValueError(
                f"detector.labels has {len(self.labels)} names for {self.n_states} states"
            )
        return self.labels or ()


class HMMDetectorConfig(FittedConfig):
    """Gaussian HMM (EM fit) + numba forward filter: the default regime detector.

    ``fitter``: ``"numba"`` (default) runs the compiled Baum-Welch
    (:mod:`engine.regimes.hmm_fit_nb`), ``"hmmlearn"`` runs hmmlearn's ``GaussianHMM``:
    the same algorithm from the same starts (results equal to rounding), ~10x slower.
    """

    kind: Literal["hmm"] = "hmm"
    features: tuple[str, ...] = ("logret",)  # evidence: benchmarks/detector_lag.py
    refit_every: RefitEvery = 126
    covariance: Literal["full", "diag"] = "full"
    n_restarts: int = Field(3, ge=1)
    refit_restarts: int = Field(1, ge=0)
    n_iter: int = Field(50, ge=1)
    tol: float = Field(1e-2, gt=0.0)
    min_covar: float = Field(1e-3, gt=0.0)
    keep_margin: float = Field(0.0, ge=0.0)
    fitter: Literal["numba", "hmmlearn"] = "numba"
    smoothing: SmoothingConfig = SmoothingConfig(confirm=2)

    def build(self, panel: BarPanel) -> Detector:
        return GaussianHMMDetector(
            inputs=self.inputs(panel),
            n_states=self.n_states,
            covariance=self.covariance,
            schedule=self.schedule(),
            n_restarts=self.n_restarts,
            refit_restarts=self.refit_restarts,
            n_iter=self.n_iter,
            tol=self.tol,
            min_covar=self.min_covar,
            keep_margin=self.keep_margin,
            seed=self.seed,
            fitter=self.fitter,
            labels=self.label_names(),
        )


class GMMDetectorConfig(FittedConfig):
    """Gaussian mixture (scikit-learn): per-bar posterior, no dynamics."""

    kind: Literal["gmm"] = "gmm"
    covariance: Literal["full", "diag"] = "full"
    n_init: int = Field(3, ge=1)
    min_covar: float = Field(1e-3, gt=0.0)

    def build(self, panel: BarPanel) -> Detector:
        return GMMDetector(
            inputs=self.inputs(panel),
            n_states=self.n_states,
            covariance=self.covariance,
            schedule=self.schedule(),
            n_init=self.n_init,
            min_covar=self.min_covar,
            seed=self.seed,
            labels=self.label_names(),
        )


class KMeansDetectorConfig(FittedConfig):
    """k-means (scikit-learn): nearest centroid online."""

    kind: Literal["kmeans"] = "kmeans"
    n_init: int = Field(5, ge=1)

    def build(self, panel: BarPanel) -> Detector:
        return KMeansDetector(
            inputs=self.inputs(panel),
            n_states=self.n_states,
            schedule=self.schedule(),
            n_init=self.n_init,
            seed=self.seed,
            labels=self.label_names(),
        )


class JumpDetectorConfig(FittedConfig):
    """Statistical jump model: k-means with a penalty per state switch."""

    kind: Literal["jump"] = "jump"
    penalty: float = Field(20.0, ge=0.0)
    temperature: float = Field(0.0, ge=0.0)
    n_init: int = Field(5, ge=1)

    def build(self, panel: BarPanel) -> Detector:
        return JumpModelDetector(
            inputs=self.inputs(panel),
            n_states=self.n_states,
            penalty=self.penalty,
            temperature=self.temperature,
            schedule=self.schedule(),
            n_init=self.n_init,
            seed=self.seed,
            labels=self.label_names(),
        )


class SupervisedDetectorConfig(FittedConfig):
    """Logistic regression of the next ``horizon`` bars' volatility bucket (embargoed)."""

    kind: Literal["supervised"] = "supervised"
    horizon: int = Field(21, ge=1)
    embargo: int = Field(0, ge=0)
    c: float = Field(1.0, gt=0.0)

    def build(self, panel: BarPanel) -> Detector:
        from engine.ground import layout as L

        return SupervisedDetector(
            inputs=self.inputs(panel),
            market_col=panel.column(self.market) * L.N_FEAT_ASSET + L.F_LOGRET,
            n_states=self.n_states,
            horizon=self.horizon,
            embargo=self.embargo,
            c=self.c,
            schedule=self.schedule(),
            labels=self.label_names(),
        )


class BOCPDDetectorConfig(TimedSchedule):
    """Bayesian online changepoint detection on one input; states (stable, change)."""

    kind: Literal["bocpd"] = "bocpd"
    market: str = "SPX"
    feature: str = "logret"
    expected_run: float = Field(250.0, gt=1.0)
    max_run: int = Field(300, ge=2)
    window: int = Field(5, ge=1)
    prior_kappa: float = Field(1.0, gt=0.0)
    prior_alpha: float = Field(2.0, gt=0.0)
    prior_beta: float = Field(1.0, gt=0.0)
    min_train: MinTrain = 252
    skip: int = Field(21, ge=0)
    smoothing: SmoothingConfig = SmoothingConfig()

    def build(self, panel: BarPanel) -> Detector:
        return BOCPDDetector(
            inputs=resolve_inputs(panel, self.market, [self.feature]),
            expected_run=self.expected_run,
            max_run=self.max_run,
            window=self.window,
            prior_kappa=self.prior_kappa,
            prior_alpha=self.prior_alpha,
            prior_beta=self.prior_beta,
            schedule=Schedule(self.bars("min_train"), 0, 0, self.skip),
        )


class GRUDetectorConfig(FittedConfig):
    """Deep: GRU classifier (PyTorch fit, needs the ``deep`` extra; numba inference).

    Labels come from next-``horizon``-bar volatility buckets (``"forward_vol"``, default) or
    a Gaussian HMM's smoothed states on each training window (``"hmm"``); the last
    ``embargo`` rows before the fit bar carry no loss. See :mod:`engine.regimes.deep`.
    """

    kind: Literal["gru"] = "gru"
    min_train: MinTrain = 756
    refit_every: RefitEvery = 252
    hidden: int = Field(8, ge=1, le=64)
    seq_len: int = Field(64, ge=4)
    burn_in: int = Field(24, ge=0)
    replay: int = Field(48, ge=1)
    label_source: Literal["hmm", "forward_vol"] = "forward_vol"
    horizon: int = Field(21, ge=1)
    embargo: int = Field(10, ge=0)
    epochs: int = Field(100, ge=1)
    refit_epochs: int = Field(40, ge=0)
    batch: int = Field(32, ge=1)
    lr: float = Field(0.01, gt=0.0)
    balance: bool = True
    threads: int = Field(1, ge=1)

    def build(self, panel: BarPanel) -> Detector:
        from engine.ground import layout as L
        from engine.regimes.deep import GRUDetector, require_torch

        require_torch()
        return GRUDetector(
            inputs=self.inputs(panel),
            market_col=panel.column(self.market) * L.N_FEAT_ASSET + L.F_LOGRET,
            n_states=self.n_states,
            hidden=self.hidden,
            seq_len=self.seq_len,
            burn_in=self.burn_in,
            replay=self.replay,
            label_source=self.label_source,
            horizon=self.horizon,
            embargo=self.embargo,
            epochs=self.epochs,
            refit_epochs=self.refit_epochs,
            batch=self.batch,
            lr=self.lr,
            balance=self.balance,
            schedule=self.schedule(),
            seed=self.seed,
            threads=self.threads,
            labels=self.label_names(),
        )


class CustomDetectorConfig(Strict):
    """A plug-in detector built by ``factory(panel, **params)`` (``target = "module:factory"``).

    The factory returns a compiled detector (e.g. a user njit filter), a
    scikit-learn-style one (:class:`~engine.regimes.estimator.SklearnDetector`) or a
    Python one. ``market`` names the asset whose features reports read."""

    kind: Literal["custom"] = "custom"
    target: str
    params: dict[str, Any] = Field(default_factory=dict)
    market: str = "SPX"
    features: tuple[str, ...] = ()  # user features it reads (computed only if named)
    smoothing: SmoothingConfig = SmoothingConfig()

    def build(self, panel: BarPanel) -> Any:
        mod_name, _, fn_name = self.target.partition(":")
        try:
            factory = getattr(importlib.import_module(mod_name), fn_name)
        except (ImportError, AttributeError, ValueError) as exc:
            raise DataError(f"target: cannot import {self.target!r}: {exc}") from None
        try:
            return factory(panel, **self.params)
        except TypeError as exc:
            raise DataError(f"params: {exc}") from None


DetectorConfig = Annotated[
    NoDetectorConfig
    | RuleDetectorConfig
    | HMMDetectorConfig
    | GMMDetectorConfig
    | KMeansDetectorConfig
    | JumpDetectorConfig
    | SupervisedDetectorConfig
    | BOCPDDetectorConfig
    | GRUDetectorConfig
    | CustomDetectorConfig,
    Field(discriminator="kind"),
]

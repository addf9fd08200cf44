"""Shared plumbing of the fitted detectors: inputs, standardization, schedules, ordering.

A fitted detector reads ``d`` *inputs* per bar, each a column of the causal feature row
(``asset * N_FEAT_ASSET + F_*``) or of the exogenous row, optionally log-transformed, then
standardized with the mean and scale of the *training window only* (stored in the
parameter vector, so the online filter applies the very same transform).

Input names (config): ``"logret"``, ``"vol_fast"``, ``"vol_slow"``, ``"ma_gap"``,
``"drawdown"``, ``"rsi"`` for the market asset, ``"SYMBOL.name"`` for another asset,
``"exog.NAME"`` for an exogenous series, ``"SYMBOL.name"`` / ``"name"`` for a user
feature's column (:mod:`engine.plugins.features`); a ``log_`` prefix on the last part
takes the log (``"log_vol_fast"``, ``"exog.log_VIX"``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engine.ground import layout as L
from engine.ground.bars import BarPanel, DataError
from engine.plugins.names import BUILTIN_FEATURES

FEATURE_NAMES: dict[str, int] = BUILTIN_FEATURES
VOL_FEATURES = (L.F_VOL_FAST, L.F_VOL_SLOW)
LOG_FLOOR = 1e-12
MIN_SCALE = 1e-8

# input roles used to put states in order
ROLE_OTHER, ROLE_RETURN, ROLE_VOL, ROLE_EXOG = 0, 1, 2, 3


@dataclass(frozen=True)
class Inputs:
    """Resolved inputs: source column (< 0 for exogenous ``-(j+1)``) and log flag."""

    src: tuple[int, ...]
    log: tuple[bool, ...]
    names: tuple[str, ...] = ()

    @property
    def d(self) -> int:
        return len(self.src)

    def roles(self) -> list[int]:
        out = []
        for s in self.src:
            if s < 0:
                out.append(ROLE_EXOG)
            elif s % L.N_FEAT_ASSET in VOL_FEATURES:
                out.append(ROLE_VOL)
            elif s % L.N_FEAT_ASSET == L.F_LOGRET:
                out.append(ROLE_RETURN)
            else:
                out.append(ROLE_OTHER)
        return out


def resolve_inputs(panel: BarPanel, market: str, names: list[str] | tuple[str, ...]) -> Inputs:
    """Resolve config input names against ``panel`` (errors name the bad entry)."""
    if not names:
        raise DataError("detector inputs: need at least one feature")
    src: list[int] = []
    log: list[bool] = []
    for name in names:
        owner, _, leaf = name.rpartition(".")
        is_log = leaf.startswith("log_")
        base = leaf[4:] if is_log else leaf
        if owner == "exog":
            src.append(-(panel.exog_column(base) + 1))
        elif base not in FEATURE_NAMES and (
            f"{owner or market}.{base}" in panel.exog_names or base in panel.exog_names
        ):  # a user feature's column (per asset "SYM.name", or cross-asset "name")
            key = f"{owner or market}.{base}"
            src.append(-(panel.exog_column(key if key in panel.exog_names else base) + 1))
        else:
            if base not in FEATURE_NAMES:
                raise DataError(
                    f"detector input {name!r}: unknown feature {base!r} "
                    f"(one of {', '.join(FEATURE_NAMES)}, optionally log_-prefixed, "
                    "or exog.NAME, or a registered user feature)"
                )
            asset = panel.column(owner or market)
            src.append(asset * L.N_FEAT_ASSET + FEATURE_NAMES[base])
        log.append(is_log)
    return Inputs(tuple(src), tuple(log), tuple(names))


def design(inputs: Inputs, features: np.ndarray, exog: np.ndarray) -> np.ndarray:
    """The ``(T, d)`` transformed (not yet standardized) input matrix."""
    cols = []
    for s, lg in zip(inputs.src, inputs.log, strict=True):
        x = features[:, s] if s >= 0 else exog[:, -s - 1]
        x = np.asarray(x, dtype=np.float64)
        if lg:
            x = np.log(np.maximum(x, LOG_FLOOR))
        cols.append(x)
    return np.column_stack(cols) if cols else np.zeros((features.shape[0], 0))


def standardize(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(z, mean, scale)`` with statistics of ``x`` itself (the training window)."""
    finite = np.where(np.isfinite(x), x, np.nan)
    mean = np.nan_to_num(np.nanmean(finite, axis=0))
    scale = np.nan_to_num(np.nanstd(finite, axis=0), nan=1.0)
    scale = np.where(scale > MIN_SCALE, scale, 1.0)
    z = (x - mean) / scale
    return np.where(np.isfinite(z), z, 0.0), mean, scale


def header(
    kind: int, n_states: int, inputs: Inputs, mean: np.ndarray, scale: np.ndarray
) -> np.ndarray:
    """The shared header + input block of a fitted detector's parameter vector."""
    h = np.zeros(L.DX_INPUTS + L.DX_IN_STRIDE * inputs.d)
    h[L.D_KIND] = kind
    h[L.D_N_STATES] = n_states
    h[L.DX_N_IN] = inputs.d
    for i in range(inputs.d):
        b = L.DX_INPUTS + L.DX_IN_STRIDE * i
        h[b + L.DXI_SRC] = inputs.src[i]
        h[b + L.DXI_LOG] = 1.0 if inputs.log[i] else 0.0
        h[b + L.DXI_MEAN] = mean[i]
        h[b + L.DXI_SCALE] = scale[i]
    return h


def body_offset(d: int) -> int:
    return L.DX_INPUTS + L.DX_IN_STRIDE * d


def stored_standardization(params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = int(params[L.DX_N_IN])
    idx = L.DX_INPUTS + L.DX_IN_STRIDE * np.arange(d)
    return params[idx + L.DXI_MEAN].copy(), params[idx + L.DXI_SCALE].copy()


@dataclass(frozen=True)
class Schedule:
    """When fits happen and on which rows.

    First fit at bar ``min_train``, then every ``refit_every`` bars (0: fit once). Each fit
    uses rows ``[max(skip, b - window), b)`` (``window`` = 0: expanding). ``skip`` drops the
    features' warm-up rows. Prefix-consistent: fit bars below ``n`` don't depend on ``n``.
    """

    min_train: int = 504
    refit_every: int = 63
    window: int = 0
    skip: int = 21

    def fit_bars(self, n_bars: int) -> np.ndarray:
        first = max(self.min_train, self.skip + 2)
        if self.refit_every <= 0:
            return np.array([first] if first < n_bars else [], dtype=np.int64)
        return np.arange(first, n_bars, self.refit_every, dtype=np.int64)

    def rows(self, n: int) -> slice:
        lo = self.skip if self.window <= 0 else max(self.skip, n - self.window)
        return slice(lo, n)


def state_order(means: np.ndarray, variances: np.ndarray, inputs: Inputs) -> np.ndarray:
    """Permutation putting states in ascending volatility, then descending mean return.

    Volatility key: the state mean of the first volatility input if any; else the state
    variance of the first return input; else the state mean of the first exogenous input
    (VIX-like); else the total variance. ``means``/``variances``: ``(K, d)`` in
    standardized space (monotone transforms keep the order).
    """
    roles = inputs.roles()
    k = means.shape[0]
    if ROLE_VOL in roles:
        key = means[:, roles.index(ROLE_VOL)]
    elif ROLE_RETURN in roles:
        key = variances[:, roles.index(ROLE_RETURN)]
    elif ROLE_EXOG in roles:
        key = means[:, roles.index(ROLE_EXOG)]
    else:
        key = variances.sum(axis=1)
    tie = -means[:, roles.index(ROLE_RETURN)] if ROLE_RETURN in roles else np.zeros(k)
    return np.lexsort((tie, key))


def labelled_stats(z: np.ndarray, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-state mean and variance of ``z`` under a hard assignment (empty states: inf var)."""
    d = z.shape[1]
    means = np.zeros((k, d))
    var = np.full((k, d), np.inf)
    for s in range(k):
        m = labels == s
        if m.any():
            means[s] = z[m].mean(axis=0)
            var[s] = z[m].var(axis=0) if m.sum() > 1 else 0.0
    return means, var


def default_labels(k: int) -> tuple[str, ...]:
    """Meaningful names for states in ascending-volatility order."""
    names = {
        1: ("all",),
        2: ("calm", "volatile"),
        3: ("calm", "volatile", "crisis"),
        4: ("calm", "normal", "volatile", "crisis"),
        5: ("calm", "normal", "elevated", "volatile", "crisis"),
    }
    return names.get(k, tuple(f"state{i}" for i in range(k)))


class ConstantInput(ValueError):
    """A detector input that never moves over a training window (a constant market price:
    its log-returns are all 0): nothing to fit, and the fit's posterior would be uniform
    (1/K each, the last state every bar). ``first``/``last``: the window's rows."""

    def __init__(self, name: str, first: int, last: int) -> None:
        self.name, self.first, self.last = name, first, last
        super().__init__(
            f"input {name!r} is constant over the training window (bars {first} to {last}): "
            "nothing to fit; use a market whose price moves (detector.market) or other "
            "detector.features"
        )

    def dated(self, index: Any) -> str:
        """The message with the window's dates, given the bars' ``index``."""
        if not 0 <= self.first <= self.last < len(index):
            return str(self)
        a, b = index[self.first], index[self.last]
        return (
            f"input {self.name!r} is constant from {a.date()} to {b.date()} (the training "
            f"window, bars {self.first} to {self.last}): nothing to fit; use a market whose "
            "price moves (detector.market) or other detector.features"
        )


def check_varies(inputs: Inputs, x: np.ndarray, rows: slice) -> None:
    """Refuse (:class:`ConstantInput`) a design column whose finite values are all equal."""
    for i in range(x.shape[1]):
        col = x[:, i]
        col = col[np.isfinite(col)]
        if col.size >= 2 and col.max() == col.min():
            name = inputs.names[i] if i < len(inputs.names) else f"#{i}"
            raise ConstantInput(name, int(rows.start or 0), int(rows.stop) - 1)


def varying_design(
    inputs: Inputs,
    schedule: Schedule,
    features: np.ndarray,
    exog: np.ndarray,
    previous: np.ndarray | None,
) -> np.ndarray | None:
    """Design matrix of a fit's training rows (the schedule's window of the rows given, all
    before the fit bar), every input checked to move: a constant one (a market price that
    never moves: log-returns all 0) is :class:`ConstantInput` on a first fit (its posterior
    would be uniform, or one arbitrary cluster), and ``None`` on a refit (``previous`` is
    kept: a rolling window that stood still). Every fitted detector fits through it."""
    rows = schedule.rows(features.shape[0])
    x = design(inputs, features[rows], exog[rows])
    try:
        check_varies(inputs, x, rows)
    except ConstantInput:
        if previous is None:
            raise
        return None
    return x


def training_design(
    inputs: Inputs,
    schedule: Schedule,
    features: np.ndarray,
    exog: np.ndarray,
    previous: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """:func:`varying_design` standardized, with the mean and scale used (``None``: keep
    ``previous``)."""
    x = varying_design(inputs, schedule, features, exog, previous)
    return None if x is None else standardize(x)

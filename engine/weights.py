"""Weight specifications shared by the built-in strategies, and the rules targets obey.

Weights mean what they say (:class:`WeightRules`):

* a negative weight is an error unless shorting is enabled (``execution.allow_short``);
* weights whose gross sum (``sum |w|``) exceeds 1 are an error unless leverage is enabled
  (``execution.allow_leverage``, then up to ``execution.max_gross``);
* a sum below 1 leaves the rest in cash (``{"SPX": 0.5}`` holds 50% cash);
* weights are rescaled (to gross 1) only with an explicit ``normalize = true``.

The same rules apply to static weights, regime tables, custom strategies' targets (checked
bar by bar, the error names the strategy and the bar) and ``advise``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

WeightSpec = Mapping[str, float] | str

#: slack on the gross-exposure check (float rounding of weights such as 1/3)
GROSS_TOL = 1e-9


#: strategy kinds whose weight tables take ``normalize = true``
NORMALIZE_KINDS = ("static", "inverse_vol", "regime")


def gross_fix(kind: str | None) -> str:
    """What to change when a strategy of ``kind`` targets a gross above 1: leverage, or
    ``normalize = true`` only where the kind has that key (custom strategies reject it)."""
    lev = "enable execution.allow_leverage (with max_gross)"
    if kind in NORMALIZE_KINDS:
        return f"{lev} or set normalize = true"
    if kind == "custom":
        return (
            f"{lev} or scale the strategy's targets to a gross of at most 1 (a custom "
            "strategy's targets are fractions of equity; it takes no normalize key)"
        )
    if kind == "optimized":
        return f"{lev} or give warmup weights summing to at most 1"
    return lev


@dataclass(frozen=True)
class WeightRules:
    """What target weights may be: shorts allowed or not, the largest gross exposure."""

    allow_short: bool = False
    max_gross: float = 1.0

    def problem(
        self, w: np.ndarray, symbols: tuple[str, ...] | list[str], kind: str | None = None
    ) -> str | None:
        """Why ``w`` breaks the rules (one phrase, its fix fit for a strategy of ``kind``:
        :func:`gross_fix`), or ``None``."""
        if not np.isfinite(w).all():
            j = int(np.flatnonzero(~np.isfinite(w))[0])
            return f"weight of {symbols[j]} is {w[j]} (weights must be finite)"
        if not self.allow_short and (w < 0).any():
            j = int(np.flatnonzero(w < 0)[0])
            return (
                f"weight of {symbols[j]} is {w[j]:g} < 0; shorting needs "
                "execution.allow_short = true"
            )
        gross = float(np.abs(w).sum())
        if gross > self.max_gross + GROSS_TOL:
            if self.max_gross == 1.0:
                fix = gross_fix(kind)
            else:
                fix = f"execution.max_gross is {self.max_gross:g}"
            return f"weights sum to {gross:g} (gross) > {self.max_gross:g}; {fix}"
        return None


def check_weight_spec(
    spec: WeightSpec, rules: WeightRules, where: str, kind: str | None = None
) -> None:
    """Raise ``ValueError`` naming ``where`` if a configured weight table (of a strategy of
    ``kind``) breaks ``rules``."""
    if isinstance(spec, str):
        return
    names = list(spec)
    w = np.array([float(spec[s]) for s in names])
    why = rules.problem(w, names, kind)
    if why:
        raise ValueError(f"{where}: {why}")


def weight_vector(
    spec: WeightSpec, symbols: tuple[str, ...], where: str, normalize: bool = False
) -> np.ndarray:
    """``{"SPX": 0.6, "UST10": 0.4}`` or ``"equal"`` -> array in symbol order.

    Unknown symbols and non-finite weights are errors naming ``where``. With ``normalize``
    the weights are rescaled to a gross exposure of 1 (``sum |w| = 1``).
    """
    if isinstance(spec, str):
        if spec != "equal":
            raise ValueError(f"{where}: weights must be a table or 'equal', got {spec!r}")
        return np.full(len(symbols), 1.0 / len(symbols))
    unknown = sorted(set(spec).difference(symbols))
    if unknown:
        raise ValueError(
            f"{where}: unknown symbol {unknown[0]!r}; the data has {', '.join(symbols)} "
            "(list your own [[strategies]], or write a starter config with "
            "`regime-engine init FILES`)"
        )
    values = [float(spec.get(s, 0.0)) for s in symbols]
    if not all(map(math.isfinite, values)):
        raise ValueError(f"{where}: weights must be finite")
    w = np.array(values)
    if normalize:
        gross = float(np.abs(w).sum())
        if gross == 0.0:
            raise ValueError(f"{where}: normalize = true needs a non-zero weight")
        w = w / gross
    return w


def check_targets(
    targets: np.ndarray,
    symbols: tuple[str, ...],
    index: pd.DatetimeIndex,
    rules: WeightRules,
    strategy: str,
    bars: np.ndarray | None = None,
    kind: str | None = None,
) -> None:
    """Check a run's target weights: ``(T, N)`` per bar (NaN rows = no decision), or the
    rows at decision ``bars`` only (``kind``: the strategy's, for the hint).

    Raises ``ValueError`` naming the strategy, the first offending bar and why.
    """
    t = np.asarray(targets, dtype=float)
    if t.ndim != 2 or t.size == 0:
        return
    decided = ~np.isnan(t).all(axis=1)
    bad = np.zeros(len(t), dtype=bool)
    tt = np.where(np.isnan(t), 0.0, t)
    if not rules.allow_short:
        bad |= (tt < 0).any(axis=1)
    bad |= np.abs(tt).sum(axis=1) > rules.max_gross + GROSS_TOL
    bad &= decided
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        i = r if bars is None else int(bars[r])
        why = rules.problem(tt[r], symbols, kind)
        raise ValueError(
            f"strategy {strategy!r}, bar {i} ({index[i]}): target {why or 'breaks the rules'}"
        )


def normalized(spec: WeightSpec, normalize: bool) -> WeightSpec:
    """``spec`` rescaled to a gross exposure of 1 when ``normalize`` (``"equal"`` as is)."""
    if not normalize or isinstance(spec, str):
        return spec
    gross = sum(abs(float(v)) for v in spec.values())
    if gross == 0.0:
        raise ValueError(
            "normalize = true: every weight is 0, nothing to rescale to a sum of 1 "
            "(give a non-zero weight, or normalize = false to hold cash)"
        )
    return {k: float(v) / gross for k, v in spec.items()}

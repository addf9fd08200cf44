"""Static baselines that isolate a regime strategy's *timing* from its *de-risking*.

A regime-aware allocation that beats 60/40 may do so only because it holds less equity on
average. Two static mixes answer that, on the same bars and costs as the strategy:

* the **average-weight mix** (:func:`average_weights`): the strategy's mean realised
  weight of each asset over the evaluation window, held constant (rebalanced on the
  strategy's calendar). If the detector's timing adds nothing, the strategy and this mix
  have the same expected return and risk; what the strategy earns beyond it is timing.
* the **volatility-matched mix** (:func:`scaled_mix`, :func:`match_scale`): the benchmark's
  mix scaled by ``k`` with the rest in the cash asset (``k < 1`` de-levers), ``k`` chosen
  so the mix's realised volatility over the evaluation window equals the strategy's. It is
  "the benchmark at the strategy's risk": what the strategy earns beyond it is not
  explained by holding less risk.

Both use the evaluation window's own figures (mean weights, realised volatility): they
favour the baseline, so an edge that survives them is conservative.

:func:`evaluation_start` gives the first bar a regime strategy acts on its own (the
detector's first fit; before it the strategy holds its warm-up weights).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from engine.analysis._common import filtered_state


def average_weights(weights: pd.DataFrame, index: pd.Index | None = None) -> dict[str, float]:
    """Mean held weight of each asset over the rows ``index`` (all rows when ``None``).

    ``weights`` holds one strategy's weights at each bar's close (columns = symbols); the
    rows not invested (weights summing below 1) stay in account cash, as in the strategy.
    Assets never held are left out.
    """
    w = weights.astype(float).fillna(0.0)
    if index is not None:
        w = w.loc[w.index.isin(index)]
    if len(w) == 0:
        raise ValueError("average_weights: no rows in the evaluation window")
    mean = w.mean(axis=0)
    return {str(k): float(v) for k, v in mean.items() if abs(float(v)) > 1e-12}


def scaled_mix(
    weights: Mapping[str, float],
    scale: float,
    cash: str | None,
    max_gross: float = 1.0,
) -> tuple[dict[str, float], float]:
    """``weights`` (risky part) times ``scale``, the rest (``1 - scale * sum``) in ``cash``.

    The weight of ``cash`` in ``weights`` is treated as cash (it is replaced by the
    residual). Without a cash asset the residual stays uninvested. ``scale`` is capped so
    the risky gross exposure stays within ``max_gross`` and the cash weight non-negative
    (no borrowing; ``scale = inf`` gives the largest allowed); returns the mix and the scale
    used.
    """
    if np.isnan(scale) or scale < 0:
        raise ValueError(f"scaled_mix: scale must be >= 0, got {scale}")
    risky = {k: float(v) for k, v in weights.items() if k != cash and float(v) != 0.0}
    gross = float(sum(abs(v) for v in risky.values()))
    if gross > 0:
        scale = min(scale, max_gross / gross)
    net = float(sum(risky.values()))
    if cash is not None and scale * net > 1.0:
        scale = 1.0 / net
    out = {k: v * scale for k, v in risky.items()}
    rest = 1.0 - scale * net
    if cash is not None and rest > 1e-12:
        out[cash] = rest
    return out, float(scale)


def match_scale(
    vol_at: Callable[[float], float],
    target: float,
    k0: float = 1.0,
    tol: float = 1e-4,
    max_iter: int = 8,
    k_max: float = np.inf,
) -> float:
    """The scale ``k`` with ``vol_at(k) == target`` (relative ``tol``), by secant steps.

    ``vol_at`` is the realised volatility of the scaled mix (nearly proportional to ``k``:
    the first step is the proportional one). Returns the best ``k`` found within
    ``[0, k_max]``.
    """
    if not np.isfinite(target) or target <= 0:
        raise ValueError(f"match_scale: target volatility must be > 0, got {target}")
    k_prev, v_prev = 0.0, 0.0  # a mix with no risky weight has (about) no volatility
    k = min(max(k0, 1e-6), k_max)
    best = (np.inf, k)
    for _ in range(max_iter):
        v = vol_at(k)
        err = abs(v / target - 1.0)
        best = min(best, (err, k))
        if err <= tol:
            return k
        slope = (v - v_prev) / (k - k_prev) if k != k_prev else 0.0
        k_next = k + (target - v) / slope if slope > 0 else k * target / max(v, 1e-300)
        k_next = float(min(max(k_next, 1e-6), k_max))
        if k_next == k:
            break
        k_prev, v_prev, k = k, v, k_next
    return float(best[1])


def evaluation_start(regimes: pd.DataFrame | pd.Series | None) -> pd.Timestamp | None:
    """The first bar with a filtered state (the detector's first fit): before it the
    strategy holds its warm-up weights. ``None`` when there is no regime table or no
    fit at all; the first bar when there is no warm-up."""
    if regimes is None or len(regimes) == 0:
        return None
    if isinstance(regimes, pd.DataFrame) and "state" not in regimes.columns:
        return None
    st = filtered_state(regimes)
    hit = np.flatnonzero(st.to_numpy() >= 0)
    return pd.Timestamp(st.index[int(hit[0])]) if hit.size else None


class WindowView:
    """A result-like view of ``result`` from bar ``start`` on: ``equity``, ``weights``,
    ``regimes``, ``prices`` and ``fills`` sliced (fills by timestamp); every other attribute
    (``panel``, ``config``, ``regime_labels`` ...) is the result's own."""

    def __init__(self, result: Any, start: pd.Timestamp) -> None:
        self._result = result
        self.start = pd.Timestamp(start)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._result, name)

    def _cut(self, name: str) -> pd.DataFrame:
        df: pd.DataFrame = getattr(self._result, name)
        return df.loc[df.index >= self.start]

    @property
    def equity(self) -> pd.DataFrame:
        return self._cut("equity")

    @property
    def weights(self) -> pd.DataFrame:
        return self._cut("weights")

    @property
    def regimes(self) -> pd.DataFrame:
        return self._cut("regimes")

    @property
    def prices(self) -> pd.DataFrame:
        return self._cut("prices")

    @property
    def fills(self) -> pd.DataFrame:
        f: pd.DataFrame = self._result.fills
        if f is None or len(f) == 0 or "timestamp" not in f.columns:
            return f
        return f.loc[pd.to_datetime(f["timestamp"]) >= self.start].reset_index(drop=True)


def after_warmup(result: Any) -> WindowView | None:
    """``result`` from its :func:`evaluation_start` on, or ``None`` when there is no
    warm-up to leave out (no regime table, no fit, or a fit at the first bar)."""
    start = evaluation_start(getattr(result, "regimes", None))
    equity: pd.DataFrame = result.equity
    if start is None or len(equity) == 0 or start <= equity.index[0]:
        return None
    return WindowView(result, start)

"""Drawdown episodes of an equity curve: start (peak), trough, recovery, depth and length.

An episode starts at the last running maximum before the equity falls below it, reaches its
trough at the lowest equity before the equity regains that maximum, and ends (``recovery``)
at the first bar whose equity is back at or above the peak; an episode still open at the
last bar has no recovery (``NaT``). ``depth = 1 - trough / peak`` (a positive loss, shown
negative by :mod:`engine.fmt`); lengths are in bars: ``length`` peak to recovery (or to the
last bar), ``to_trough`` peak to trough, ``to_recover`` trough to recovery (NaN if open).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS: tuple[str, ...] = (
    "start",
    "trough",
    "recovery",
    "depth",
    "length",
    "to_trough",
    "to_recover",
)


def drawdown_episodes(equity: pd.Series) -> pd.DataFrame:
    """Every drawdown episode of ``equity``, in time order (columns :data:`COLUMNS`)."""
    e = pd.Series(equity, dtype=float).dropna()
    v = e.to_numpy()
    idx = e.index
    rows = []
    peak_i, i, n = 0, 1, v.size
    while i < n:
        if v[i] >= v[peak_i]:
            peak_i = i
            i += 1
            continue
        # below the peak at bar i: find the recovery bar (first >= peak) after it
        j = i
        while j < n and v[j] < v[peak_i]:
            j += 1
        seg = v[peak_i:j]
        t = peak_i + int(np.argmin(seg))
        rec = j if j < n else None
        end = j if rec is not None else n - 1
        rows.append(
            {
                "start": idx[peak_i],
                "trough": idx[t],
                "recovery": idx[rec] if rec is not None else pd.NaT,
                "depth": 1.0 - v[t] / v[peak_i],
                "length": float(end - peak_i),
                "to_trough": float(t - peak_i),
                "to_recover": float(rec - t) if rec is not None else float("nan"),
            }
        )
        peak_i = j if rec is not None else n
        i = peak_i + 1
    return pd.DataFrame(rows, columns=list(COLUMNS))


def worst_drawdowns(equity: pd.Series, n: int = 5) -> pd.DataFrame:
    """The ``n`` deepest episodes, deepest first (index 1..n)."""
    ep = drawdown_episodes(equity)
    out = ep.sort_values("depth", ascending=False, kind="stable").head(n).reset_index(drop=True)
    out.index = pd.RangeIndex(1, len(out) + 1, name="rank")
    return out

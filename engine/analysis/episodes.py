"""What each strategy did in named market episodes (e.g. the 2020 crash, 2022).

Per episode and strategy: the window's return and maximum drawdown (the conventions of
:func:`engine.analysis.stress.window_stats`: from the last bar at or before ``start`` to the
last bar at or before ``end``), and, when held weights are given, the mean weight per asset
class over the window's bars (after the start bar) and the class weights held at its end.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from engine.analysis.stress import covered_windows, window_stats

#: Episodes a regime-aware allocation must get right (inclusive dates).
EPISODES: dict[str, tuple[str, str]] = {
    "Feb-Apr 2020": ("2020-01-31", "2020-04-30"),  # crash to 03-23, then the V-shaped rebound
    "2022": ("2021-12-31", "2022-12-30"),  # stocks and bonds down together
}


def episode_table(
    equity: pd.DataFrame,
    episodes: Mapping[str, tuple[str, str]] | None = None,
    weights: pd.DataFrame | None = None,
    asset_classes: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Rows (episode, strategy); columns start, end, return, max_drawdown and, with
    ``weights`` (columns ``(strategy, symbol)``) and ``asset_classes`` (symbol -> class),
    ``mean_w_CLASS`` and ``end_w_CLASS`` per class.

    An episode is reported when the data covers its start; one that runs past the data is
    cut at the last bar (``end`` shows where). Episodes the data does not reach are left out.
    """
    eps = episodes or EPISODES
    idx = pd.DatetimeIndex(equity.index)
    if len(idx) == 0:
        return pd.DataFrame()
    last = idx[-1]
    cut = {
        name: (s, str(min(pd.Timestamp(e), last).date()))
        for name, (s, e) in eps.items()
        if pd.Timestamp(s) >= idx[0] and pd.Timestamp(s) < last
    }
    classes = sorted(set((asset_classes or {}).values()))
    rows: dict[tuple[str, str], dict[str, object]] = {}
    for name, (ts, te) in covered_windows(idx, cut).items():
        for strat in equity.columns:
            st = window_stats(equity[strat], ts, te)
            row: dict[str, object] = {
                "start": st["start"],
                "end": st["end"],
                "return": st["return"],
                "max_drawdown": st["max_drawdown"],
            }
            if weights is not None and asset_classes is not None:
                w = weights[strat] if isinstance(weights.columns, pd.MultiIndex) else weights
                win = w.loc[(w.index > st["start"]) & (w.index <= st["end"])].fillna(0.0)
                for c in classes:
                    cols = [s for s in win.columns if asset_classes.get(str(s)) == c]
                    by_bar = win[cols].sum(axis=1) if cols else pd.Series(0.0, index=win.index)
                    row[f"mean_w_{c}"] = float(by_bar.mean()) if len(by_bar) else np.nan
                    row[f"end_w_{c}"] = float(by_bar.iloc[-1]) if len(by_bar) else np.nan
            rows[(name, str(strat))] = row
    if not rows:
        return pd.DataFrame()
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index = pd.MultiIndex.from_tuples(list(rows), names=["episode", "strategy"])
    return out

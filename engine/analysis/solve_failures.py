"""Failed optimiser solves per walk-forward fold (``kind = "optimized"`` in ``validate``).

A strategy that decides its targets ahead of the loop (``bind(prep)``, e.g. the
optimiser) counts its solves and the bars whose solve failed (targets kept). These helpers
put the failures of each fold's test span beside the folds table and into one console
line, so a validation never hides that some rebalances kept stale targets.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from engine.analysis.walkforward import Fold

PREFIX = "failed_solve_count:"
"""Folds-table column of one strategy's failed solves in each test span."""


def bound_counts(prep: Any, strategies: Iterable[Any]) -> dict[str, Any]:
    """Name -> the bound form (``solves``, ``failures``, ``failed_bars``) of every
    strategy that binds to the prepared run (the tables its run used: cached)."""
    out: dict[str, Any] = {}
    for s in strategies:
        bind = getattr(s, "bind", None)
        if callable(bind):
            out[s.name] = bind(prep)
    return out


def with_fold_failures(
    folds_df: pd.DataFrame, folds: list[Fold], bound: dict[str, Any]
) -> pd.DataFrame:
    """``folds_df`` with one ``failed_solve_count:NAME`` column per bound strategy: its failed
    solves whose bar lies in the fold's test span ``[test_start, test_end)``; the whole
    run's ``(solves, failures)`` per strategy in ``attrs["solves"]``."""
    out = folds_df.copy()
    for name, b in bound.items():
        bars = np.asarray(b.failed_bars, dtype=np.int64)
        out[PREFIX + name] = [
            int(((bars >= f.test_start) & (bars < f.test_end)).sum()) for f in folds
        ]
    out.attrs["solves"] = {name: (int(b.solves), int(b.failures)) for name, b in bound.items()}
    return out


def failures_line(folds_df: pd.DataFrame) -> str | None:
    """``Optimizer solves: NAME 250 solves, 2 failed (fold 3: 1, fold 7: 1), targets
    kept; ...`` from :func:`with_fold_failures`'s table (None without bound strategies);
    failures before the first test span are counted as training only."""
    parts = []
    for name, (solves, failures) in folds_df.attrs.get("solves", {}).items():
        col = folds_df[PREFIX + name]
        per = [(k, int(n)) for k, n in col.items() if n]
        rest = failures - sum(n for _, n in per)
        where = [f"fold {k}: {n}" for k, n in per] + ([f"training only: {rest}"] if rest else [])
        text = f"{name} {solves} solves, {failures} failed"
        parts.append(text + (f" ({', '.join(where)}), targets kept" if where else ""))
    return ("Optimizer solves: " + "; ".join(parts)) if parts else None

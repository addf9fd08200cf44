"""Purged and embargoed time-series cross-validation (López de Prado, AFML ch. 7).

Used inside each walk-forward fold's *training* window to choose among a few candidate
parameter sets (strategy table, smoothing); the chosen set is then evaluated on the fold's
test span, which played no part in the choice.

* :func:`purged_kfold` splits rows ``[lo, hi)`` into ``n_splits`` contiguous validation
  blocks; for each, the training rows are all the others minus a *purge* of ``purge`` rows
  before the block (their label/feature horizons overlap it) and an *embargo* of
  ``embargo`` rows after it (serial dependence leaking back).
* :func:`cv_scores` fits the detector once per split on that split's training rows (reused
  by every candidate: candidates differ only in strategy/smoothing) and scores each
  candidate by its annualized Sharpe on the validation rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from engine.analysis.metrics import PERIODS_PER_YEAR
from engine.core.backtest import Prepared, run_strategy_raw
from engine.core.spec import Smoothing
from engine.plugins.strategy import CompiledStrategy
from engine.regimes.base import Detector, stack_params


def purged_kfold(
    lo: int, hi: int, n_splits: int, purge: int = 0, embargo: int = 0
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(train_rows, validation_rows)`` pairs over rows ``[lo, hi)``.

    Validation blocks are contiguous and cover ``[lo, hi)``; a training row ``i`` is kept
    only if ``i < v_start - purge`` or ``i >= v_end + embargo`` for its block
    ``[v_start, v_end)``.
    """
    n = hi - lo
    if n_splits < 2:
        raise ValueError("n_splits must be >= 2")
    if n < n_splits:
        raise ValueError(f"{n} rows cannot be split into {n_splits} blocks")
    if purge < 0 or embargo < 0:
        raise ValueError("purge and embargo must be >= 0")
    edges = lo + (np.arange(n_splits + 1) * n) // n_splits
    rows = np.arange(lo, hi)
    out = []
    for j in range(n_splits):
        v0, v1 = int(edges[j]), int(edges[j + 1])
        keep = (rows < v0 - purge) | (rows >= v1 + embargo)
        out.append((rows[keep], np.arange(v0, v1)))
    return out


@dataclass(frozen=True)
class Candidate:
    """A parameter set to choose among: a compiled strategy and the trading smoothing."""

    name: str
    strategy: CompiledStrategy
    smoothing: Smoothing


def _sharpe(r: np.ndarray, ppy: float) -> float:
    r = r[np.isfinite(r)]
    if r.size < 2:
        return float("nan")
    sd = np.std(r, ddof=1)
    return float(np.mean(r) / sd * np.sqrt(ppy)) if sd > 0 else float("nan")


def fixed_fit(prep: Prepared, detector: Detector, params: np.ndarray, n_bars: int) -> Prepared:
    """``prep`` restricted to its first ``n_bars`` bars with one detector fit in force from
    the detector's own first fit bar (0 when it has none)."""
    own = np.asarray(detector.fit_bars(n_bars), dtype=np.int64)
    b0 = int(own[0]) if own.size else 0
    return replace(
        prep,
        panel=prep.panel.head(n_bars),
        features=prep.features[:n_bars],
        detector=detector,
        dparams=stack_params([np.asarray(params, dtype=np.float64)]),
        fit_bars=np.array([b0], dtype=np.int64),
    )


def cv_scores(
    prep: Prepared,
    detector: Detector,
    candidates: list[Candidate],
    lo: int,
    hi: int,
    n_splits: int = 4,
    purge: int = 21,
    embargo: int = 21,
    periods_per_year: float = PERIODS_PER_YEAR,
    fixed_params: np.ndarray | None = None,
) -> pd.DataFrame:
    """Validation Sharpe of each candidate on each purged split of rows ``[lo, hi)``.

    The detector is fitted once per split on its training rows (the only rows it sees);
    each candidate then runs through the compiled driver over bars ``[0, hi)`` with that fit
    and is scored on the split's validation rows. Rows = splits, columns = candidates.
    ``fixed_params`` (e.g. the fold's own fit on the whole training window) skips the
    per-split fits: cheaper for slow detectors, but the detector then saw the validation
    blocks (equally for every candidate).
    """
    feats, exog = prep.features, prep.panel.exog
    table: dict[str, list[float]] = {c.name: [] for c in candidates}
    for train, valid in purged_kfold(lo, hi, n_splits, purge, embargo):
        if fixed_params is None:
            params = detector.fit(feats[train], exog[train], None)
        else:
            params = fixed_params
        base = fixed_fit(prep, detector, params, hi)
        v = valid[valid >= 1]
        for c in candidates:
            out = run_strategy_raw(replace(base, smooth=c.smoothing.array()), c.strategy)
            eq = np.asarray(out[0], dtype=np.float64)
            table[c.name].append(_sharpe(eq[v] / eq[v - 1] - 1.0, periods_per_year))
    df = pd.DataFrame(table)
    df.index.name = "split"
    return df


def choose(scores: pd.DataFrame) -> str:
    """The candidate with the best mean validation score (NaN counts as worst; ties: first)."""
    mean = scores.mean(axis=0, skipna=True).fillna(-np.inf)
    return str(mean.idxmax())

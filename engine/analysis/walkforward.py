"""Walk-forward out-of-sample evaluation: folds, a fold-scheduled detector, stitched results.

* :func:`make_folds` cuts ``n_bars`` into a first training span and consecutive test spans;
  training is ``expanding`` (all bars before the test span) or ``rolling`` (the last
  ``window`` bars before it).
* :class:`ScheduledDetector` wraps any :class:`~engine.regimes.base.Detector`: it refits
  only at fold starts, on that fold's training rows, so the parameters in force during a
  test span never saw a bar of it (or of anything later). Optionally one *warm-up* fit at
  the wrapped detector's own first fit bar (inside the first training span) lets
  online filters warm up before the first test bar.
* Strategies run continuously through the whole history (the portfolio is path-dependent),
  but every figure is computed on test bars only: :func:`oos_returns` stitches the per-bar
  returns ``E_t / E_{t-1} - 1`` for ``t`` in the test spans (from the first test bar on)
  and :func:`fold_table` gives one row per fold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from engine.analysis.metrics import PERIODS_PER_YEAR
from engine.regimes.base import Detector

Window = Literal["expanding", "rolling"]


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold; bars ``[train_start, train_end)`` train, ``[test_start,
    test_end)`` test (``train_end == test_start``)."""

    k: int
    train_start: int
    train_end: int
    test_start: int
    test_end: int

    @property
    def n_train(self) -> int:
        return self.train_end - self.train_start

    @property
    def n_test(self) -> int:
        return self.test_end - self.test_start


def make_folds(
    n_bars: int,
    train_bars: int,
    test_bars: int,
    window: Window = "expanding",
    window_bars: int | None = None,
    min_test_bars: int = 21,
) -> list[Fold]:
    """Consecutive test spans of ``test_bars`` after a first training span of ``train_bars``.

    ``rolling`` trains on the last ``window_bars`` (default ``train_bars``) bars before each
    test span; ``expanding`` on every bar before it. A last partial test span shorter than
    ``min_test_bars`` is dropped.
    """
    if train_bars < 1 or test_bars < 1:
        raise ValueError("train_bars and test_bars must be >= 1")
    if window not in ("expanding", "rolling"):
        raise ValueError(f"window must be 'expanding' or 'rolling', got {window!r}")
    w = window_bars if window_bars is not None else train_bars
    if w < 1:
        raise ValueError("window_bars must be >= 1")
    folds: list[Fold] = []
    start = train_bars
    while start < n_bars:
        end = min(start + test_bars, n_bars)
        if end - start < min(min_test_bars, test_bars):
            break
        lo = 0 if window == "expanding" else max(0, start - w)
        folds.append(Fold(len(folds), lo, start, start, end))
        start = end
    return folds


def folds_frame(folds: list[Fold], index: pd.DatetimeIndex) -> pd.DataFrame:
    """Fold boundaries as dates (inclusive) and bar counts."""
    return pd.DataFrame(
        {
            "train_start": [index[f.train_start] for f in folds],
            "train_end": [index[f.train_end - 1] for f in folds],
            "test_start": [index[f.test_start] for f in folds],
            "test_end": [index[f.test_end - 1] for f in folds],
            "n_train": [f.n_train for f in folds],
            "n_test": [f.n_test for f in folds],
        },
        index=pd.Index([f.k for f in folds], name="fold"),
    )


def oos_mask(folds: list[Fold], n_bars: int) -> np.ndarray:
    """Boolean mask of the bars inside some test span."""
    m = np.zeros(n_bars, dtype=bool)
    for f in folds:
        m[f.test_start : min(f.test_end, n_bars)] = True
    return m


class ScheduledDetector:
    """A detector refitted only at walk-forward fold starts, on training rows only.

    Fit ``k`` is in force from ``folds[k].test_start`` and sees rows ``[train_start,
    test_start)`` of that fold (``rolling``: the last ``window_bars``). With ``warmup_fit``,
    one extra first fit at the wrapped detector's own first fit bar (if it comes before the
    first test span) lets the online filter warm up on training data.
    """

    def __init__(
        self,
        inner: Detector,
        folds: list[Fold],
        warmup_fit: bool = True,
        memo: FitMemo | None = None,
    ) -> None:
        if not folds:
            raise ValueError("ScheduledDetector needs at least one fold")
        self.inner = inner
        self.folds = list(folds)
        self.warmup_fit = warmup_fit
        self.memo = memo
        self._starts = {f.test_start: f.train_start for f in self.folds}

    @property
    def name(self) -> str:
        return f"walkforward({self.inner.name})"

    @property
    def n_states(self) -> int:
        return self.inner.n_states

    @property
    def labels(self) -> tuple[str, ...]:
        return self.inner.labels

    def state_size(self, n_features: int) -> int:
        return self.inner.state_size(n_features)

    def fit_bars(self, n_bars: int) -> np.ndarray:
        bars = [f.test_start for f in self.folds if f.test_start < n_bars]
        if self.warmup_fit and bars:
            own = np.asarray(self.inner.fit_bars(n_bars), dtype=np.int64)
            if own.size and int(own[0]) < bars[0]:
                bars.insert(0, int(own[0]))
        return np.asarray(bars, dtype=np.int64)

    def fit(
        self, features: np.ndarray, exog: np.ndarray, previous: np.ndarray | None
    ) -> np.ndarray:
        """Fit on the training rows of the fold starting at ``len(features)`` (through the
        memo, when one is given)."""
        b = features.shape[0]
        lo = self._starts.get(b, 0)
        if self.memo is None:
            return self.inner.fit(features[lo:b], exog[lo:b], previous)
        return self.memo.fit(self.inner, features[lo:b], exog[lo:b], previous)


class FitMemo:
    """Detector fits reused where the training window is the same: the same detector
    settings, training rows, exogenous rows and previous parameters (the warm start) give
    the same fit, so a second walk-forward over the same data and folds (another cost
    level, another strategy set) fits nothing again.

    Keyed on a digest of the pickled detector and the bytes of its inputs; only the
    engine's own detectors (seeded, deterministic) are memoised, a user's detector is
    fitted every time. Pass one memo to :func:`engine.validate.run_validation` calls that
    share data and folds (``benchmarks.validate_modern``); ``hits`` / ``misses`` count."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._fits: dict[str, np.ndarray] = {}
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(
        detector: Detector, features: np.ndarray, exog: np.ndarray, previous: np.ndarray | None
    ) -> str | None:
        """The memo key, or ``None`` for a detector that is not memoised."""
        if not type(detector).__module__.startswith("engine.regimes."):
            return None
        import hashlib
        import pickle

        try:
            h = hashlib.sha256(pickle.dumps(detector, protocol=5))
        except (pickle.PicklingError, TypeError, AttributeError):
            return None
        for a in (features, exog, np.empty(0) if previous is None else previous):
            arr = np.ascontiguousarray(a)
            h.update(f"{arr.dtype.str}{arr.shape}".encode())
            h.update(arr.tobytes())
        return h.hexdigest()

    def fit(
        self,
        detector: Detector,
        features: np.ndarray,
        exog: np.ndarray,
        previous: np.ndarray | None,
    ) -> np.ndarray:
        """``detector.fit(features, exog, previous)``, or the same fit done before."""
        key = self.key(detector, features, exog, previous)
        if key is not None and key in self._fits:
            self.hits += 1
            return self._fits[key].copy()
        out = np.asarray(detector.fit(features, exog, previous), dtype=np.float64)
        self.misses += 1
        if key is not None and len(self._fits) < self.max_entries:
            self._fits[key] = out.copy()
        return out


def oos_returns(equity: pd.DataFrame | pd.Series, folds: list[Fold]) -> pd.DataFrame:
    """Per-bar returns on test bars only, stitched in time order (columns = strategies)."""
    e = equity.to_frame() if isinstance(equity, pd.Series) else equity
    r = e.astype(float) / e.astype(float).shift(1) - 1.0
    mask = oos_mask(folds, len(e))
    mask[0] = False
    return r.loc[mask]


def oos_equity(returns: pd.DataFrame, start_value: float = 1.0) -> pd.DataFrame:
    """An equity curve compounding stitched OOS returns (first row = ``start_value``)."""
    return start_value * (1.0 + returns).cumprod()


def _fold_stats(r: np.ndarray, ppy: float) -> dict[str, float]:
    eq = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    sd = np.std(r, ddof=1) if r.size > 1 else 0.0
    years = r.size / ppy
    g = eq[-1]
    return {
        "return": float(g - 1.0),
        "cagr": float(g ** (1.0 / years) - 1.0) if years > 0 and g > 0 else float("nan"),
        "volatility": float(sd * np.sqrt(ppy)),
        "sharpe": float(np.mean(r) / sd * np.sqrt(ppy)) if sd > 0 else float("nan"),
        "max_drawdown": float(np.max(1.0 - eq / np.maximum.accumulate(eq))),
    }


def fold_table(
    equity: pd.DataFrame, folds: list[Fold], periods_per_year: float = PERIODS_PER_YEAR
) -> pd.DataFrame:
    """One row per (fold, strategy): test-span return, CAGR, volatility, Sharpe, max DD."""
    r = equity.astype(float) / equity.astype(float).shift(1) - 1.0
    rows = []
    for f in folds:
        lo = max(f.test_start, 1)
        for col in equity.columns:
            x = r[col].to_numpy()[lo : f.test_end]
            rows.append(
                {
                    "fold": f.k,
                    "strategy": str(col),
                    "test_start": equity.index[f.test_start],
                    "test_end": equity.index[f.test_end - 1],
                    **_fold_stats(x, periods_per_year),
                }
            )
    return pd.DataFrame(rows).set_index(["fold", "strategy"])


def oos_summary(
    returns: pd.DataFrame,
    periods_per_year: float = PERIODS_PER_YEAR,
    rf: pd.Series | float | None = None,
    rf_label: str | None = None,
) -> pd.DataFrame:
    """Sharpe, CAGR, volatility, max drawdown and total return of stitched OOS returns.

    With ``rf`` (per-bar risk-free returns, a Series aligned on the returns' index or a
    scalar) ``sharpe`` is of excess returns ``mean(r - rf) / std(r - rf)`` (the bootstrap's
    definition) and ``sharpe_rf0`` is added; ``attrs["rf_label"]`` names the series
    (``rf_label``, else ``"0"``/``"given"``) so headers read ``sharpe (rf = CASH)``.
    """
    out = {c: _fold_stats(returns[c].to_numpy(dtype=float), periods_per_year) for c in returns}
    df = pd.DataFrame(out).T.rename(columns={"return": "total_return"})
    df.index.name = "strategy"
    cols = ["sharpe", "cagr", "volatility", "max_drawdown", "total_return"]
    if rf is None:
        df = df[cols]
        df.attrs["rf_label"] = rf_label or "0"
        return df
    rates = (
        rf.reindex(returns.index).fillna(0.0).to_numpy(dtype=float)
        if isinstance(rf, pd.Series)
        else np.full(len(returns), float(rf))
    )
    df["sharpe_rf0"] = df["sharpe"]
    for c in returns:
        x = returns[c].to_numpy(dtype=float) - rates
        sd = float(np.std(x, ddof=1)) if x.size > 1 else 0.0
        df.loc[c, "sharpe"] = (
            float(np.mean(x) / sd * np.sqrt(periods_per_year)) if sd > 0 else np.nan
        )
    df = df[["sharpe", "sharpe_rf0", *cols[1:]]]
    df.attrs["rf_label"] = rf_label or (
        "0" if not isinstance(rf, pd.Series) and rf == 0 else "given"
    )
    return df

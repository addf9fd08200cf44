"""Monte Carlo of regime paths: simulate markets from a fitted Gaussian HMM, replay strategies.

A Gaussian HMM (``hmmlearn.hmm.GaussianHMM``, full covariance) is fitted directly on the
panel's daily multi-asset log returns (each asset scaled by its own standard deviation so
the covariance floor means the same for every asset; the scale is undone when simulating).
The engine's own HMM detector models the detector's inputs, not every asset's return, so it
cannot generate a tradable panel; this model can. States are put in ascending order of
total variance. Each simulated path of states and returns is turned into a
:class:`~engine.ground.bars.BarPanel` (open = previous close, no gaps, volume unknown) and run
through the compiled driver by a caller-supplied ``runner``; the distribution of CAGR, max
drawdown and Sharpe (and the candidate-minus-benchmark differences) is summarized by
quantiles. Everything is seeded.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.analysis.metrics import PERIODS_PER_YEAR
from engine.ground.bars import BarPanel

QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)


@dataclass(frozen=True)
class ReturnHMM:
    """A fitted Gaussian HMM of multi-asset log returns (in return units)."""

    symbols: tuple[str, ...]
    start: np.ndarray  # (K,)
    trans: np.ndarray  # (K, K)
    means: np.ndarray  # (K, N) per-bar log-return means
    covars: np.ndarray  # (K, N, N)

    @property
    def n_states(self) -> int:
        return int(self.start.shape[0])

    def describe(self, periods_per_year: float = PERIODS_PER_YEAR) -> pd.DataFrame:
        """Per state: annualized mean and volatility of each asset, persistence, occupancy."""
        stat = np.linalg.matrix_power(self.trans, 512)[0]
        rows = {}
        for k in range(self.n_states):
            row: dict[str, float] = {}
            for j, s in enumerate(self.symbols):
                row[f"{s}_ann_return"] = float(self.means[k, j] * periods_per_year)
                row[f"{s}_ann_vol"] = float(np.sqrt(self.covars[k, j, j] * periods_per_year))
            row["p_stay"] = float(self.trans[k, k])
            row["expected_dwell"] = float(1.0 / max(1.0 - self.trans[k, k], 1e-12))
            row["stationary_prob"] = float(stat[k])
            rows[f"state{k}"] = row
        return pd.DataFrame(rows).T

    def sample(self, n_bars: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``(states (T,), log returns (T, N))`` of one simulated path."""
        k = self.n_states
        states = np.empty(n_bars, dtype=np.int64)
        s = int(rng.choice(k, p=self.start))
        chol = [np.linalg.cholesky(c) for c in self.covars]
        z = rng.standard_normal((n_bars, self.means.shape[1]))
        cum = np.cumsum(self.trans, axis=1)
        u = rng.random(n_bars)
        out = np.empty_like(z)
        for t in range(n_bars):
            if t > 0:
                s = int(min(np.searchsorted(cum[s], u[t], side="right"), k - 1))
            states[t] = s
            out[t] = self.means[s] + chol[s] @ z[t]
        return states, out


def fit_return_hmm(
    panel: BarPanel,
    n_states: int = 3,
    seed: int = 0,
    n_iter: int = 200,
    rows: slice | None = None,
) -> ReturnHMM:
    """Fit a full-covariance Gaussian HMM on the close-to-close log returns of ``panel``."""
    from hmmlearn.hmm import GaussianHMM

    logging.getLogger("hmmlearn").setLevel(logging.ERROR)
    r = np.diff(np.log(panel.close), axis=0)
    if rows is not None:
        r = r[rows]
    r = r[np.all(np.isfinite(r), axis=1)]
    sd = r.std(axis=0, ddof=1)
    scale = np.where(sd > 0, sd, 1e-12)
    z = (r - r.mean(axis=0)) / scale
    mu = r.mean(axis=0)
    m = GaussianHMM(
        n_components=n_states,
        covariance_type="full",
        n_iter=n_iter,
        random_state=seed,
        min_covar=1e-4,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m.fit(z)
    means = mu + np.asarray(m.means_) * scale
    covars = np.asarray(m.covars_) * np.outer(scale, scale)[None, :, :]
    order = np.argsort([np.trace(c) for c in covars])
    trans = np.asarray(m.transmat_)[np.ix_(order, order)]
    trans = trans / trans.sum(axis=1, keepdims=True)
    start = np.asarray(m.startprob_)[order]
    start = start / start.sum() if start.sum() > 0 else np.full(n_states, 1.0 / n_states)
    return ReturnHMM(tuple(panel.symbols), start, trans, means[order], covars[order])


def simulated_panel(
    logret: np.ndarray,
    symbols: Sequence[str],
    start: str = "2000-01-03",
    start_prices: np.ndarray | None = None,
    asset_classes: Sequence[str] = (),
) -> BarPanel:
    """A panel from simulated log returns: business days from ``start``, open = previous
    close, high/low = max/min of open and close, unknown volume."""
    t, n = logret.shape
    p0 = np.full(n, 100.0) if start_prices is None else np.asarray(start_prices, dtype=float)
    close = p0 * np.exp(np.cumsum(logret, axis=0))
    opn = np.vstack([p0[None, :], close[:-1]])
    idx = pd.bdate_range(start, periods=t)
    return BarPanel(
        index=idx,
        symbols=tuple(symbols),
        open=opn,
        high=np.maximum(opn, close),
        low=np.minimum(opn, close),
        close=close,
        volume=np.zeros((t, n)),
        asset_classes=tuple(asset_classes),
    )


def _metrics(eq: np.ndarray, ppy: float) -> tuple[float, float, float]:
    r = eq[1:] / eq[:-1] - 1.0
    sd = np.std(r, ddof=1)
    sharpe = float(np.mean(r) / sd * np.sqrt(ppy)) if sd > 0 else float("nan")
    g = eq[-1] / eq[0]
    cagr = float(g ** (ppy / r.size) - 1.0) if g > 0 else -1.0
    mdd = float(np.max(1.0 - eq / np.maximum.accumulate(eq)))
    return cagr, mdd, sharpe


def monte_carlo(
    model: ReturnHMM,
    runner: Callable[[BarPanel], dict[str, np.ndarray]],
    candidate: str,
    benchmark: str,
    n_paths: int = 200,
    n_bars: int = 2520,
    seed: int = 0,
    skip: int = 0,
    asset_classes: Sequence[str] = (),
    periods_per_year: float = PERIODS_PER_YEAR,
) -> pd.DataFrame:
    """Per-path CAGR, max drawdown and Sharpe of ``candidate`` and ``benchmark``.

    ``runner(panel)`` returns each strategy's equity curve over the simulated panel;
    metrics use bars ``[skip, T)`` (e.g. to leave out the detector warm-up). Rows = paths;
    columns ``cagr_<s>``, ``max_drawdown_<s>``, ``sharpe_<s>``, the ``*_diff`` columns
    (candidate - benchmark) and ``frac_time_state<k>`` of the simulated states.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_paths):
        states, lr = model.sample(n_bars, rng)
        panel = simulated_panel(lr, model.symbols, asset_classes=asset_classes)
        eqs = runner(panel)
        row: dict[str, float] = {}
        for tag, name in (("candidate", candidate), ("benchmark", benchmark)):
            c, m, s = _metrics(np.asarray(eqs[name], dtype=float)[skip:], periods_per_year)
            row[f"cagr_{tag}"], row[f"max_drawdown_{tag}"], row[f"sharpe_{tag}"] = c, m, s
        for key in ("cagr", "max_drawdown", "sharpe"):
            row[f"{key}_diff"] = row[f"{key}_candidate"] - row[f"{key}_benchmark"]
        for k in range(model.n_states):
            row[f"frac_time_state{k}"] = float(np.mean(states == k))
        rows.append(row)
    df = pd.DataFrame(rows)
    df.index.name = "path"
    return df


def mc_quantiles(paths: pd.DataFrame, q: Sequence[float] = QUANTILES) -> pd.DataFrame:
    """Quantiles (columns ``q05``...) and mean of each per-path metric, plus the share of
    paths where the candidate's Sharpe beats the benchmark's (``p_win`` row of sharpe_diff).
    """
    cols = [c for c in paths.columns if not c.startswith("frac_time")]
    qt = paths[cols].quantile(list(q)).T
    qt.columns = [f"q{round(x * 100):02d}" for x in q]
    qt["mean"] = paths[cols].mean()
    qt["p_positive"] = (paths[cols] > 0).mean()
    qt.index.name = "metric"
    return qt

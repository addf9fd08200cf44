"""How sure are we? Bootstrap confidence intervals, deflated Sharpe and the SPA test.

* Confidence intervals use the stationary bootstrap (Politis & Romano 1994) from
  :class:`arch.bootstrap.StationaryBootstrap` with a fixed seed, percentile intervals.
  The block size defaults to the Politis-White optimal (stationary) block length, at least 1.
* The regime-aware vs static comparison resamples the **same** bars for both series (paired),
  preserving their cross-correlation.
* ``p_value`` for ``H0: sharpe_diff <= 0`` is the share of centered bootstrap differences at
  least as large as the observed one: ``(1 + #{d*_b - d >= d}) / (B + 1)``.
* Sharpe ratios are of **excess** returns over a per-bar risk-free series ``rf`` when one is
  given (resampled with the same indices as the returns; CAGR and drawdown stay on total
  returns); ``rf = None`` (default) is rf = 0. ``bootstrap_report`` labels the table with
  ``attrs["rf_label"]``.
* ``periods_per_year`` is inferred from the returns' ``DatetimeIndex`` when not given.
* The deflated Sharpe ratio (Bailey & López de Prado 2014) is the probabilistic Sharpe ratio
  against the expected maximum Sharpe of ``N`` unskilled trials.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from engine.analysis.metrics import PERIODS_PER_YEAR, periods_per_year_of

EULER_GAMMA = 0.5772156649015329


def _sharpe(r: np.ndarray, ppy: float) -> float:
    sd = np.std(r, ddof=1)
    return float(np.mean(r) / sd * np.sqrt(ppy)) if sd > 0 else float("nan")


def _cagr(r: np.ndarray, ppy: float) -> float:
    g = float(np.prod(1.0 + r))
    return g ** (ppy / r.size) - 1.0 if g > 0 else -1.0


def _mdd(r: np.ndarray) -> float:
    e = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    return float(np.max(1.0 - e / np.maximum.accumulate(e)))


def _metric_vector(r: np.ndarray, ppy: float, rf: np.ndarray | float = 0.0) -> np.ndarray:
    return np.array([_sharpe(r - rf, ppy), _cagr(r, ppy), _mdd(r)])


METRICS: tuple[str, ...] = ("sharpe", "cagr", "max_drawdown")

OUTSIDE_NOTE = (
    "the estimate lies outside its interval (resampled blocks break up long drawdowns): not a range"
)
"""What a max-drawdown interval that misses its own estimate says instead of a range."""


def outside_note(estimate: float, lower: float, upper: float) -> str:
    """:data:`OUTSIDE_NOTE` when ``estimate`` is outside ``[lower, upper]`` (a percentile
    interval of a path statistic such as the max drawdown can be, when resampling cannot
    rebuild the paths), else ``""``. NaN intervals say nothing."""
    if not (np.isfinite(lower) and np.isfinite(upper) and np.isfinite(estimate)):
        return ""
    return OUTSIDE_NOTE if not lower <= estimate <= upper else ""


def default_block_size(*series: np.ndarray | pd.Series) -> int:
    """Politis-White optimal stationary block length (max over series, at least 1)."""
    from arch.bootstrap import optimal_block_length  # arch imports in ~2 s: only when used

    b = 1.0
    for s in series:
        x = np.asarray(s, dtype=float)
        if x.size > 10:
            val = float(optimal_block_length(x)["stationary"].iloc[0])
            if np.isfinite(val):
                b = max(b, val)
    return max(1, round(b))


def _ci_frame(est: np.ndarray, boots: np.ndarray, names: list[str], level: float) -> pd.DataFrame:
    a = (1.0 - level) / 2.0
    with warnings.catch_warnings():  # no finite draw (or none at all): NaN intervals
        warnings.simplefilter("ignore", RuntimeWarning)
        lo = np.nanquantile(boots, a, axis=0)
        hi = np.nanquantile(boots, 1.0 - a, axis=0)
        sd = np.nanstd(boots, axis=0, ddof=1)
    return pd.DataFrame(
        {"estimate": est, "lower": lo, "upper": hi, "std": sd},
        index=pd.Index(names, name="metric"),
    )


def bootstrap_ci(
    returns: pd.Series | np.ndarray,
    reps: int = 1000,
    level: float = 0.95,
    block_size: int | None = None,
    seed: int = 12345,
    periods_per_year: float | None = None,
    rf: pd.Series | float | None = None,
) -> pd.DataFrame:
    """Stationary-bootstrap percentile CIs for Sharpe, CAGR and max drawdown.

    Parameters
    ----------
    returns : array-like
        Per-bar simple returns of one strategy.
    reps, level, block_size, seed
        Bootstrap replications, two-sided confidence level, mean block length (default
        :func:`default_block_size`) and the RNG seed.
    rf : Series or float, optional
        Per-bar risk-free returns (a Series aligned on ``returns``' index): the Sharpe is of
        excess returns, resampled with the same indices; ``None`` = 0.

    Returns
    -------
    DataFrame
        Rows sharpe, cagr, max_drawdown; columns estimate, lower, upper, std.
    """
    from arch.bootstrap import StationaryBootstrap

    ppy = periods_per_year_of(returns, periods_per_year)
    r = np.asarray(returns, dtype=float)
    if isinstance(rf, pd.Series) and isinstance(returns, pd.Series):
        rates = rf.reindex(returns.index).fillna(0.0).to_numpy(dtype=float)
    else:
        rates = np.full(r.size, 0.0 if rf is None or isinstance(rf, pd.Series) else float(rf))
    ok = np.isfinite(r)
    x = np.column_stack([r[ok], rates[ok]])
    b = block_size or default_block_size(x[:, 0])
    bs = StationaryBootstrap(b, x, seed=seed)
    boots = bs.apply(lambda d: _metric_vector(d[:, 0], ppy, d[:, 1]), reps)
    return _ci_frame(_metric_vector(x[:, 0], ppy, x[:, 1]), boots, list(METRICS), level)


def _metric_matrix(r: np.ndarray, ppy: float, rf: np.ndarray) -> np.ndarray:
    """:func:`_metric_vector` of every column of ``r`` (bars x series): ``(3, series)``."""
    x = r - rf[:, None]
    sd = np.std(x, axis=0, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        sharpe = np.where(sd > 0, np.mean(x, axis=0) / sd * np.sqrt(ppy), np.nan)
    g = np.prod(1.0 + r, axis=0)
    with np.errstate(invalid="ignore"):
        cagr = np.where(g > 0, np.abs(g) ** (ppy / r.shape[0]) - 1.0, -1.0)
    e = np.vstack([np.ones((1, r.shape[1])), np.cumprod(1.0 + r, axis=0)])
    mdd = np.max(1.0 - e / np.maximum.accumulate(e, axis=0), axis=0)
    return np.vstack([sharpe, cagr, mdd])


def paired_bootstrap(
    candidate: pd.Series,
    benchmark: pd.Series,
    reps: int = 1000,
    level: float = 0.95,
    block_size: int | None = None,
    seed: int = 12345,
    periods_per_year: float | None = None,
    rf: pd.Series | float | None = None,
) -> tuple[pd.DataFrame, float]:
    """Paired stationary bootstrap of ``candidate`` minus ``benchmark`` (e.g. aware - static).

    Both return series are aligned on their common index and resampled with the same
    indices, together with the per-bar risk-free series ``rf`` (Sharpe of excess returns;
    ``None`` = 0).

    Returns
    -------
    (DataFrame, float)
        CIs (rows ``<metric>_candidate``, ``<metric>_benchmark``, ``<metric>_diff`` for
        sharpe, cagr, max_drawdown) and the p-value of ``H0: sharpe_diff <= 0``.
    """
    out = paired_bootstraps(
        candidate,
        {"benchmark": benchmark},
        reps,
        level,
        block_size,
        seed,
        periods_per_year,
        rf,
    )
    return out["benchmark"]


def paired_bootstraps(
    candidate: pd.Series,
    others: Mapping[str, pd.Series],
    reps: int = 1000,
    level: float = 0.95,
    block_size: int | None = None,
    seed: int = 12345,
    periods_per_year: float | None = None,
    rf: pd.Series | float | None = None,
) -> dict[str, tuple[pd.DataFrame, float]]:
    """:func:`paired_bootstrap` of ``candidate`` against each of ``others`` in one pass.

    Every series (and ``rf``) is resampled with the **same** indices, so the rows of one
    table (e.g. the strategy against its benchmark and its static baselines) are draws of
    one experiment. The block size defaults to :func:`default_block_size` of the candidate
    and the *first* other series: the first pair's table is exactly what
    :func:`paired_bootstrap` of that pair gives. Bars missing in any series are left out.
    ``reps = 0``: the estimates only (intervals and p-values NaN; no resampling).
    """
    if not others:
        return {}
    ppy = periods_per_year_of(candidate, periods_per_year)
    names = list(others)
    df = pd.concat([candidate, *(others[k] for k in names)], axis=1, join="inner").dropna()
    if isinstance(rf, pd.Series):
        rf_col = rf.reindex(df.index).fillna(0.0).to_numpy(dtype=float)
    else:
        rf_col = np.full(len(df), float(rf or 0.0))
    x = np.column_stack([df.to_numpy(dtype=float), rf_col])

    def f(data: np.ndarray) -> np.ndarray:
        m = _metric_matrix(data[:, :-1], ppy, data[:, -1])  # (3, 1 + others)
        c = m[:, :1]
        return np.vstack([np.broadcast_to(c, m[:, 1:].shape), m[:, 1:], c - m[:, 1:]]).T.ravel()

    est = f(x)
    boots: np.ndarray
    if reps <= 0:
        boots = np.full((1, est.size), np.nan)
    else:
        from arch.bootstrap import StationaryBootstrap

        b = block_size or default_block_size(x[:, 0], x[:, 1])
        boots = StationaryBootstrap(b, x, seed=seed).apply(f, reps)
    rows = [f"{m}_{tag}" for tag in ("candidate", "benchmark", "diff") for m in METRICS]
    width = len(rows)
    out: dict[str, tuple[pd.DataFrame, float]] = {}
    for i, name in enumerate(names):
        sl = slice(i * width, (i + 1) * width)
        table = _ci_frame(est[sl], boots[:, sl], rows, level)
        d_hat = est[sl][6]
        d_star = boots[:, sl][:, 6]
        d_star = d_star[np.isfinite(d_star)]
        p = float((1 + np.sum(d_star - d_hat >= d_hat)) / (d_star.size + 1)) if reps > 0 else np.nan
        out[name] = (table, p)
    return out


def probabilistic_sharpe_ratio(returns: pd.Series | np.ndarray, sr_benchmark: float = 0.0) -> float:
    """PSR: probability that the true per-bar Sharpe exceeds ``sr_benchmark`` (per bar).

    ``Phi((SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1) / 4 SR^2))`` with sample
    skewness ``g3`` and (non-excess) kurtosis ``g4``.
    """
    from scipy import stats

    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    sd = np.std(r, ddof=1)
    if r.size < 3 or sd == 0:
        return float("nan")
    sr = float(np.mean(r) / sd)
    g3 = float(stats.skew(r))
    g4 = float(stats.kurtosis(r, fisher=False))
    den = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr**2
    if den <= 0:
        return float("nan")
    return float(stats.norm.cdf((sr - sr_benchmark) * np.sqrt(r.size - 1) / np.sqrt(den)))


def expected_max_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum Sharpe of ``n_trials`` zero-skill trials (Bailey & López de Prado).

    ``sqrt(V) * ((1 - g) Phi^-1(1 - 1/N) + g Phi^-1(1 - 1/(N e)))``, ``g`` Euler's constant.
    """
    from scipy import stats

    if n_trials < 2:
        return 0.0
    n = float(n_trials)
    return float(
        np.sqrt(sharpe_variance)
        * (
            (1 - EULER_GAMMA) * stats.norm.ppf(1 - 1 / n)
            + EULER_GAMMA * stats.norm.ppf(1 - 1 / (n * math.e))
        )
    )


def deflated_sharpe_ratio(
    returns: pd.Series | np.ndarray,
    n_trials: int,
    sharpe_variance: float,
    periods_per_year: float = PERIODS_PER_YEAR,
) -> dict[str, float]:
    """Deflated Sharpe ratio (Bailey & López de Prado 2014).

    Parameters
    ----------
    returns : array-like
        Per-bar returns of the selected strategy.
    n_trials : int
        Number of independent trials (parameter sets) tried.
    sharpe_variance : float
        Variance across trials of their **annualized** Sharpe ratios (converted to per-bar
        units by dividing by ``periods_per_year``).

    Returns
    -------
    dict
        ``sharpe`` (annualized), ``sr0`` (annualized expected max Sharpe under no skill),
        ``dsr`` (probability the true Sharpe beats ``sr0``), ``psr`` (vs zero).
    """
    sr0_bar = expected_max_sharpe(n_trials, sharpe_variance / periods_per_year)
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    return {
        "sharpe": _sharpe(r, periods_per_year),
        "sr0": sr0_bar * float(np.sqrt(periods_per_year)),
        "dsr": probabilistic_sharpe_ratio(r, sr0_bar),
        "psr": probabilistic_sharpe_ratio(r, 0.0),
        "n_trials": float(n_trials),
    }


def spa_test(
    benchmark: pd.Series,
    variants: pd.DataFrame,
    reps: int = 1000,
    block_size: int | None = None,
    seed: int = 12345,
) -> pd.Series:
    """Hansen's SPA test: does any variant beat the benchmark? (``arch.bootstrap.SPA``).

    Losses are negative per-bar returns, so a small p-value means at least one variant has a
    significantly higher mean return than the benchmark.

    Returns
    -------
    Series
        p-values ``lower``, ``consistent``, ``upper``.
    """
    from arch.bootstrap import SPA

    df = pd.concat([benchmark.rename("__bench__"), variants], axis=1, join="inner").dropna()
    bench = -df["__bench__"].to_numpy(dtype=float)
    models = -df.drop(columns=["__bench__"]).to_numpy(dtype=float)
    b = block_size or default_block_size(df.to_numpy(dtype=float)[:, 0])
    spa = SPA(bench, models, block_size=b, reps=reps, bootstrap="stationary", seed=seed)
    spa.compute()
    pv = spa.pvalues
    return pd.Series({k: float(pv[k]) for k in ("lower", "consistent", "upper")}, name="spa_pvalue")


def bootstrap_report(
    equity: pd.DataFrame,
    candidate: str,
    benchmark: str,
    reps: int = 1000,
    seed: int = 12345,
    periods_per_year: float | None = None,
    rf: pd.Series | float | None = None,
    rf_label: str | None = None,
) -> pd.DataFrame:
    """Report-ready CI table for ``candidate`` vs ``benchmark`` columns of ``equity``.

    Rows ``<metric>_candidate/_benchmark/_diff`` plus a ``p_sharpe_diff_le_0`` row (p-value in
    ``estimate``). Sharpe rows are over ``rf`` (per bar; label in ``attrs["rf_label"]``).
    """
    rets = equity.astype(float).pct_change(fill_method=None).iloc[1:]
    table, p = paired_bootstrap(
        rets[candidate],
        rets[benchmark],
        reps=reps,
        seed=seed,
        periods_per_year=periods_per_year,
        rf=rf,
    )
    table.loc["p_sharpe_diff_le_0"] = [p, np.nan, np.nan, np.nan]
    table.attrs["rf_label"] = rf_label or ("0" if rf is None or rf == 0 else "given")
    return table

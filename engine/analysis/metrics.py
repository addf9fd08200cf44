"""Performance and risk metrics of an equity curve.

Conventions (all from simple per-bar returns ``r_t = E_t / E_{t-1} - 1``):

* ``periods_per_year`` (``ppy``) is inferred from the equity curve's ``DatetimeIndex`` when
  not given (:func:`engine.ground.frequency.infer_frequency`: 252 for daily sessions, 52 weekly,
  12 monthly, bars-per-session x 252 intraday ...); plain arrays default to 252.
* ``years = n_returns / periods_per_year``; ``cagr = (E_T / E_0) ** (1 / years) - 1``.
* ``volatility = std(r, ddof=1) * sqrt(ppy)``.
* ``sharpe = mean(r - rf) / std(r - rf, ddof=1) * sqrt(ppy)``, NaN when that std is float
  noise (at most ``SD_FLOOR`` = 1e-12 per bar: an all-cash strategy against a constant-rate
  cash index; the same for Sortino's downside deviation); ``rf`` is a *per-bar* rate
  (scalar or Series aligned on the returns), 0 by default. :func:`summary` reports both the
  excess-return figures (``sharpe``, ``sortino``: over the run's risk-free series, see
  :func:`risk_free_returns`) and the rf = 0 ones (``sharpe_rf0``, ``sortino_rf0``); tables
  carry the label in ``df.attrs["rf_label"]`` and headers read ``sharpe (rf = CASH)``.
* ``sortino = mean(r - rf) * ppy / (DD * sqrt(ppy))`` where the downside deviation is
  ``DD = sqrt(mean(min(r - rf, 0) ** 2))`` over **all** bars (positive excess returns count
  as zero; population mean, no ddof), i.e. a target of 0 excess return.
* ``max_drawdown = max_t (1 - E_t / max_{s<=t} E_s)`` reported as a positive fraction.
* ``calmar = cagr / max_drawdown`` (NaN when there is no drawdown).
* VaR / CVaR are of per-bar returns, reported as **positive losses** at confidence ``a``:

  - historical: ``q = quantile(r, 1 - a)`` (numpy linear interpolation), ``VaR = -q``,
    ``CVaR = -mean(r[r <= q])``;
  - Gaussian: ``VaR = -(mu + sigma * z)``, ``CVaR = -(mu - sigma * phi(z) / (1 - a))``
    with ``z = Phi^-1(1 - a)``;
  - Cornish-Fisher: ``z`` replaced by the Cornish-Fisher expansion with the sample skew and
    excess kurtosis; CVaR is the exact tail average of that quantile function,
    ``-(mu - sigma * phi(z) * [1 + S z / 6 + K (z^2 - 1) / 24 - S^2 (2 z^2 - 1) / 36]
    / (1 - a))``.
* ``skew`` and ``kurtosis`` (excess) are pandas' bias-corrected sample estimates.
* ``turnover`` (annualized, one-sided) ``= sum(qty * price) / mean(E) / years / 2``: the
  traded notional (buys plus sells) divided by two, so a full switch from one asset to
  another once a year counts as 1.0 (100%).
* ``total_costs`` = sum of commission + spread + slippage + impact over the fills;
  ``n_trades`` = number of fills.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.analysis._common import COST_COLUMNS, simple_returns, strategy_fills
from engine.analysis.metric_params import make_params, output_keys
from engine.analysis.metrics_nb import SD_FLOOR, fill_totals_nb, summary_nb
from engine.ground.dates import date_order, read_dates
from engine.ground.frequency import infer_frequency

PERIODS_PER_YEAR = 252
"""Bars per year assumed for plain arrays (daily sessions); indexed series infer theirs."""

PPY = float | None

#: Keys that are fractions (rendered as percentages by :func:`format_table`).
PERCENT_KEYS: frozenset[str] = frozenset(
    {
        "total_return",
        "cagr",
        "volatility",
        "max_drawdown",
        "turnover",
        "var95",
        "cvar95",
        "var99",
        "cvar99",
        "var95_gaussian",
        "cvar95_gaussian",
        "var99_gaussian",
        "cvar99_gaussian",
        "var95_cf",
        "cvar95_cf",
        "var99_cf",
        "cvar99_cf",
        "ann_return",
        "cost_drag",
        "return",
        "frac_time",
    }
)


def _arr(returns: pd.Series | np.ndarray) -> np.ndarray:
    a = np.asarray(returns, dtype=float)
    return a[np.isfinite(a)]


def _moments(r: np.ndarray) -> tuple[float, float]:
    """Bias-corrected sample skewness and excess kurtosis (pandas' convention)."""
    if r.size < 4 or np.ptp(r) == 0:
        return float("nan"), float("nan")
    from scipy import stats  # on demand: scipy.stats costs ~0.5 s to import

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(stats.skew(r, bias=False)), float(stats.kurtosis(r, bias=False))


def total_return(equity: pd.Series) -> float:
    """Total simple return ``E_T / E_0 - 1``."""
    e = np.asarray(equity, dtype=float)
    if e.size < 1:
        return float("nan")
    return float(e[-1] / e[0] - 1.0)


def periods_per_year_of(x: Any, periods_per_year: PPY = None) -> float:
    """``periods_per_year`` if given, else inferred from ``x``'s ``DatetimeIndex`` (252 for
    arrays and short series)."""
    return _ppy_of_index(getattr(x, "index", None), periods_per_year)


def _ppy_of_index(idx: Any, periods_per_year: PPY = None) -> float:
    if periods_per_year:
        return float(periods_per_year)
    if isinstance(idx, pd.DatetimeIndex) and len(idx) >= 3:
        return infer_frequency(idx).periods_per_year  # cached per index object
    return float(PERIODS_PER_YEAR)


def cagr(equity: pd.Series, periods_per_year: PPY = None) -> float:
    """Compound annual growth rate with ``years = (len(equity) - 1) / periods_per_year``."""
    periods_per_year = periods_per_year_of(equity, periods_per_year)
    e = np.asarray(equity, dtype=float)
    if e.size < 2:
        return float("nan")
    years = (e.size - 1) / periods_per_year
    growth = e[-1] / e[0]
    if growth <= 0:
        return -1.0
    return float(growth ** (1.0 / years) - 1.0)


def volatility(returns: pd.Series | np.ndarray, periods_per_year: PPY = None) -> float:
    """Annualized standard deviation of per-bar returns (ddof=1)."""
    periods_per_year = periods_per_year_of(returns, periods_per_year)
    r = _arr(returns)
    if r.size < 2:
        return float("nan")
    return float(np.std(r, ddof=1) * np.sqrt(periods_per_year))


def _excess(returns: pd.Series | np.ndarray, rf: float | pd.Series) -> np.ndarray:
    if isinstance(rf, pd.Series) and isinstance(returns, pd.Series):
        ex = returns - rf.reindex(returns.index).fillna(0.0)
        return _arr(ex)
    return _arr(returns) - np.asarray(rf, dtype=float)


def sharpe(
    returns: pd.Series | np.ndarray,
    rf: float | pd.Series = 0.0,
    periods_per_year: PPY = None,
) -> float:
    """Annualized Sharpe ratio ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(ppy)``.

    ``rf`` is a per-bar risk-free rate (scalar or Series aligned on ``returns``).
    """
    periods_per_year = periods_per_year_of(returns, periods_per_year)
    ex = _excess(returns, rf)
    if ex.size < 2:
        return float("nan")
    sd = np.std(ex, ddof=1)
    if sd <= SD_FLOOR:  # constant excess returns (float noise): no ratio
        return float("nan")
    return float(np.mean(ex) / sd * np.sqrt(periods_per_year))


def sortino(
    returns: pd.Series | np.ndarray,
    rf: float | pd.Series = 0.0,
    periods_per_year: PPY = None,
) -> float:
    """Annualized Sortino ratio with downside deviation ``sqrt(mean(min(r - rf, 0)^2))``.

    The mean runs over all bars (a target of zero excess return), so
    ``sortino = mean(ex) / DD * sqrt(ppy)``.
    """
    periods_per_year = periods_per_year_of(returns, periods_per_year)
    ex = _excess(returns, rf)
    if ex.size < 1:
        return float("nan")
    dd = np.sqrt(np.mean(np.minimum(ex, 0.0) ** 2))
    if dd <= SD_FLOOR:
        return float("nan")
    return float(np.mean(ex) / dd * np.sqrt(periods_per_year))


def drawdown(equity: pd.Series) -> pd.Series:
    """Drawdown series ``1 - E_t / running_max(E)`` (non-negative)."""
    e = pd.Series(equity, dtype=float)
    return 1.0 - e / e.cummax()


def max_drawdown(equity: pd.Series | np.ndarray) -> float:
    """Maximum drawdown as a positive fraction (0 when equity never falls)."""
    e = np.asarray(equity, dtype=float)
    if e.size == 0:
        return float("nan")
    return float(np.max(1.0 - e / np.maximum.accumulate(e)))


def calmar(equity: pd.Series, periods_per_year: PPY = None) -> float:
    """Calmar ratio ``cagr / max_drawdown`` (NaN when there is no drawdown)."""
    mdd = max_drawdown(equity)
    if not mdd > 0:
        return float("nan")
    return cagr(equity, periods_per_year) / mdd


def var_cvar_historical(
    returns: pd.Series | np.ndarray, level: float = 0.95
) -> tuple[float, float]:
    """Historical VaR and CVaR at confidence ``level`` as positive losses.

    ``q = quantile(r, 1 - level)``; ``VaR = -q``; ``CVaR = -mean(r[r <= q])``.
    """
    r = _arr(returns)
    if r.size == 0:
        return float("nan"), float("nan")
    q = float(np.quantile(r, 1.0 - level))
    tail = r[r <= q]
    return -q, float(-np.mean(tail))


def var_cvar_gaussian(returns: pd.Series | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Parametric Gaussian VaR and CVaR (positive losses) from the sample mean and std."""
    r = _arr(returns)
    if r.size < 2:
        return float("nan"), float("nan")
    from scipy import stats

    mu, sd = float(np.mean(r)), float(np.std(r, ddof=1))
    z = float(stats.norm.ppf(1.0 - level))
    var = -(mu + sd * z)
    cvar = -(mu - sd * float(stats.norm.pdf(z)) / (1.0 - level))
    return var, cvar


def cornish_fisher_z(z: float, skew: float, exkurt: float) -> float:
    """Cornish-Fisher adjusted standard quantile for skew ``S`` and excess kurtosis ``K``."""
    s, k = skew, exkurt
    return float(z + (z**2 - 1) * s / 6 + (z**3 - 3 * z) * k / 24 - (2 * z**3 - 5 * z) * s**2 / 36)


def var_cvar_cornish_fisher(
    returns: pd.Series | np.ndarray, level: float = 0.95
) -> tuple[float, float]:
    """Cornish-Fisher (modified) VaR and CVaR as positive losses.

    CVaR is the tail average of the Cornish-Fisher quantile function below ``1 - level``,
    computed in closed form from ``int_{-inf}^z He_n(x) phi(x) dx = -He_{n-1}(z) phi(z)``.
    """
    r = _arr(returns)
    if r.size < 4:
        return float("nan"), float("nan")
    mu, sd = float(np.mean(r)), float(np.std(r, ddof=1))
    sk, ku = _moments(r)
    if not (np.isfinite(sk) and np.isfinite(ku)):
        return var_cvar_gaussian(r, level)
    from scipy import stats

    alpha = 1.0 - level
    z = float(stats.norm.ppf(alpha))
    zc = cornish_fisher_z(z, sk, ku)
    var = -(mu + sd * zc)
    bracket = 1 + sk * z / 6 + ku * (z**2 - 1) / 24 - sk**2 * (2 * z**2 - 1) / 36
    es = mu - sd * float(stats.norm.pdf(z)) * bracket / alpha
    return var, -es


def turnover(
    fills: pd.DataFrame | None,
    equity: pd.Series,
    periods_per_year: PPY = None,
) -> float:
    """Annualized one-sided turnover ``sum(qty * price) / mean(equity) / years / 2``."""
    if fills is None or len(fills) == 0 or len(equity) < 2:
        return 0.0
    periods_per_year = periods_per_year_of(equity, periods_per_year)
    notional = float((fills["qty"].astype(float).abs() * fills["price"].astype(float)).sum())
    years = (len(equity) - 1) / periods_per_year
    return notional / float(np.mean(np.asarray(equity, dtype=float))) / years / 2.0


def total_costs(fills: pd.DataFrame | None) -> float:
    """Sum of commission, spread, slippage and impact over the fills (currency)."""
    if fills is None or len(fills) == 0:
        return 0.0
    cols = [c for c in COST_COLUMNS if c in fills.columns]
    return float(fills[cols].astype(float).to_numpy().sum())


def return_stats(
    returns: pd.Series | np.ndarray,
    periods_per_year: PPY = None,
    levels: Iterable[float] = (0.95, 0.99),
) -> dict[str, float]:
    """Distribution metrics of a return sample (no equity curve needed).

    Returns ``ann_return`` (mean * ppy), ``volatility``, ``sharpe``, ``skew``, ``kurtosis``
    (excess) and for each level ``L`` in percent: ``varL``, ``cvarL`` (historical),
    ``varL_gaussian``, ``cvarL_gaussian``, ``varL_cf``, ``cvarL_cf``.
    """
    periods_per_year = periods_per_year_of(returns, periods_per_year)
    r = _arr(returns)
    out: dict[str, float] = {
        "n_bars": float(r.size),
        "ann_return": float(np.mean(r) * periods_per_year) if r.size else float("nan"),
        "volatility": volatility(r, periods_per_year),
        "sharpe": sharpe(r, 0.0, periods_per_year),
    }
    out["skew"], out["kurtosis"] = _moments(r)
    for lv in levels:
        tag = f"{round(lv * 100):d}"
        out[f"var{tag}"], out[f"cvar{tag}"] = var_cvar_historical(r, lv)
        out[f"var{tag}_gaussian"], out[f"cvar{tag}_gaussian"] = var_cvar_gaussian(r, lv)
        out[f"var{tag}_cf"], out[f"cvar{tag}_cf"] = var_cvar_cornish_fisher(r, lv)
    return out


def summary(
    equity: pd.Series,
    fills: pd.DataFrame | None = None,
    periods_per_year: PPY = None,
    rf: float | pd.Series = 0.0,
) -> dict[str, float]:
    """All headline metrics of one equity curve.

    Parameters
    ----------
    equity : Series
        Portfolio value at each bar close.
    fills : DataFrame, optional
        That strategy's fills (qty, price and cost columns) for turnover / costs / trades.
    periods_per_year : float, optional
        Bars per year; inferred from ``equity``'s index when omitted.
    rf : float or Series
        Per-bar risk-free rate for Sharpe and Sortino (see :func:`risk_free_returns`).

    Returns
    -------
    dict
        Keys: total_return, cagr, volatility, sharpe, sortino (over ``rf``), sharpe_rf0,
        sortino_rf0, max_drawdown, calmar, skew, kurtosis, var95, cvar95, var99, cvar99
        (+ ``_gaussian`` / ``_cf`` variants), turnover, total_costs, n_trades,
        periods_per_year, final_equity.

    Computed in one compiled pass (:func:`engine.analysis.metrics_nb.summary_nb`); equal to
    :func:`summary_reference` (the per-metric functions) to rounding.
    """
    if isinstance(rf, np.ndarray) and rf.size > 1:  # rates aligned on finite returns
        return summary_reference(equity, fills, periods_per_year, rf)
    return _summary_of_curve(equity, fill_totals(fills), periods_per_year, rf)


def _summary_of_curve(
    equity: pd.Series | np.ndarray,
    totals: tuple[float, int, float],
    periods_per_year: PPY,
    rf: float | pd.Series | np.ndarray,
) -> dict[str, float]:
    """:func:`summary` given the fills' totals: NaNs dropped, bars per year and rates
    resolved as the reference does, then one kernel call."""
    values = np.asarray(equity, dtype=float)
    index: pd.Index | None = None
    if isinstance(equity, pd.Series):
        index = equity.index
    elif isinstance(rf, pd.Series):  # rates align on the positions, as in a plain Series
        index = pd.RangeIndex(values.size)
    keep = ~np.isnan(values)
    if not keep.all():
        values = values[keep]
        index = index[keep] if index is not None else None
    ppy = _ppy_of_index(index, periods_per_year)
    rates = aligned_rf(rf, index, values.size)
    return summary_arrays(values, rates, ppy, *totals)


def summary_arrays(
    equity: np.ndarray,
    rf: np.ndarray,
    periods_per_year: float,
    notional: float = 0.0,
    n_fills: int = 0,
    costs: float = 0.0,
) -> dict[str, float]:
    """:func:`summary` of a NaN-free equity array: ``rf`` holds one per-bar rate for all
    bars or one per return (``len(equity) - 1``); the fills enter as their totals
    (:func:`fill_totals`, :func:`raw_fill_totals`)."""
    params = make_params(periods_per_year, notional, n_fills, costs)
    out = summary_nb(_readonly(equity), _readonly(rf), _readonly(params))
    return dict(zip(output_keys((0.95, 0.99)), out.tolist(), strict=True))


def _readonly(a: np.ndarray) -> np.ndarray:
    """A read-only C-contiguous float64 view: pandas hands out read-only arrays and numba
    compiles a separate signature per writeability, so the kernels always get this one."""
    v = np.ascontiguousarray(a, dtype=np.float64).view()
    v.flags.writeable = False
    return v


def aligned_rf(rf: float | pd.Series | np.ndarray, index: pd.Index | None, n: int) -> np.ndarray:
    """Per-bar risk-free rates for :func:`summary_arrays`: a scalar as one value, a Series
    aligned on the returns of an equity curve with ``index`` (``n`` bars; missing rates 0)."""
    if not isinstance(rf, pd.Series):
        return np.asarray(rf, dtype=np.float64).reshape(-1)[:1]
    ret_index = (index if index is not None else pd.RangeIndex(n))[1:]
    if rf.index.equals(ret_index):
        vals = rf.to_numpy(dtype=np.float64, copy=True)
    else:
        vals = rf.reindex(ret_index).to_numpy(dtype=np.float64, copy=True)
    vals[np.isnan(vals)] = 0.0
    if vals.size == 0:  # a curve of one bar: no returns
        return np.zeros(1)
    return vals


def fill_totals(fills: pd.DataFrame | None) -> tuple[float, int, float]:
    """``(traded notional sum(|qty| * price), number of fills, total costs)`` of a fills
    table, as :func:`turnover` and :func:`total_costs` sum them."""
    if fills is None or len(fills) == 0:
        return 0.0, 0, 0.0
    qty = np.abs(fills["qty"].to_numpy(dtype=np.float64))
    notional = float(np.nansum(qty * fills["price"].to_numpy(dtype=np.float64)))
    cols = [c for c in COST_COLUMNS if c in fills.columns]
    if not cols:
        return notional, len(fills), 0.0
    block = np.concatenate([fills[c].to_numpy(dtype=np.float64) for c in cols])
    return notional, len(fills), float(np.sum(block))


def raw_fill_totals(rec: np.ndarray) -> tuple[float, int, float]:
    """:func:`fill_totals` of the kernel's fill records (``engine.ground.layout`` R_*)."""
    if rec.shape[0] == 0:
        return 0.0, 0, 0.0
    notional, costs = fill_totals_nb(_readonly(rec))
    return notional, int(rec.shape[0]), costs


def summary_reference(
    equity: pd.Series,
    fills: pd.DataFrame | None = None,
    periods_per_year: PPY = None,
    rf: float | pd.Series = 0.0,
) -> dict[str, float]:
    """:func:`summary` computed metric by metric with the functions above: the reference
    implementation that the one-pass kernel is tested against (same parameters and keys;
    slower)."""
    e = pd.Series(equity, dtype=float).dropna()
    ppy = periods_per_year_of(e, periods_per_year)
    r = simple_returns(e)
    out: dict[str, float] = {
        "total_return": total_return(e),
        "cagr": cagr(e, ppy),
        "volatility": volatility(r, ppy),
        "sharpe": sharpe(r, rf, ppy),
        "sortino": sortino(r, rf, ppy),
        "sharpe_rf0": sharpe(r, 0.0, ppy),
        "sortino_rf0": sortino(r, 0.0, ppy),
        "max_drawdown": max_drawdown(e),
        "calmar": calmar(e, ppy),
    }
    rs = return_stats(r, ppy)
    for k in ("skew", "kurtosis"):
        out[k] = rs[k]
    for k, v in rs.items():
        if k.startswith(("var", "cvar")):
            out[k] = v
    out["turnover"] = turnover(fills, e, ppy)
    out["total_costs"] = total_costs(fills)
    out["n_trades"] = float(0 if fills is None else len(fills))
    out["periods_per_year"] = ppy
    out["final_equity"] = float(e.iloc[-1]) if len(e) else float("nan")
    return out


def summary_table(
    result: Any,
    fills: pd.DataFrame | None = None,
    periods_per_year: PPY = None,
    rf: float | pd.Series | None = None,
    rf_label: str | None = None,
) -> pd.DataFrame:
    """Metrics for every strategy: rows = strategies, columns = metrics.

    Parameters
    ----------
    result : result-like or DataFrame
        An object with ``.equity`` (and ``.fills``) tables, or the equity DataFrame itself
        (one column per strategy). A result with a ``panel`` uses its risk-free series
        (:func:`risk_free_returns` with the config's ``metrics.risk_free``) unless ``rf``
        is given.
    fills : DataFrame, optional
        Fills table with a ``strategy`` column (overrides ``result.fills``).

    The label of the risk-free series is in ``df.attrs["rf_label"]`` (``"CASH"``, ``"0"``).
    """
    if isinstance(result, pd.DataFrame):
        equity = result
    else:
        equity = result.equity
        if fills is None:
            fills = getattr(result, "fills", None)
        if periods_per_year is None:
            periods_per_year = _config_ppy(result)
        if rf is None:
            rf, rf_label = _result_rf(result, rf_label)
    if rf is None:
        rf = 0.0
    if rf_label is None:
        rf_label = "0" if isinstance(rf, float | int) and rf == 0 else "given"
    if isinstance(equity, pd.Series):
        equity = equity.to_frame()
    rows = {
        str(name): summary(equity[name], strategy_fills(fills, str(name)), periods_per_year, rf)
        for name in equity.columns
    }
    df = pd.DataFrame.from_dict(rows, orient="index")
    df.index.name = "strategy"
    df.attrs["rf_label"] = rf_label
    return df


def _config_ppy(result: Any) -> PPY:
    cfg = getattr(result, "config", None) or {}
    ppy: PPY = (cfg.get("data") or {}).get("periods_per_year")
    return ppy


def _result_rf(result: Any, rf_label: str | None) -> tuple[float | pd.Series, str | None]:
    """The configured risk-free series of a result with a panel (else 0, label kept)."""
    if getattr(result, "panel", None) is None:
        return 0.0, rf_label
    cfg = getattr(result, "config", None) or {}
    spec = (cfg.get("metrics") or {}).get("risk_free")
    return risk_free_returns(price_panel(result), "auto" if spec is None else spec)


def result_risk_free(result: Any) -> tuple[float | pd.Series, str]:
    """The risk-free series every Sharpe of a result's report uses, and its label: the
    config's ``metrics.risk_free`` on the result's panel (CASH when present), else 0."""
    rf, label = _result_rf(result, None)
    return rf, label or "0"


def run_summaries(result: Any) -> dict[str, dict[str, float]]:
    """:func:`summary_table` of a backtest result as ``{strategy: {metric: value}}``, computed
    from each run's arrays (``result.runs``: name -> ``.equity`` Series and ``.raw_fills``
    kernel records) without building the equity and fills tables."""
    ppy = _config_ppy(result)
    rf, _ = _result_rf(result, None)
    out: dict[str, dict[str, float]] = {}
    for name, run in result.runs.items():
        raw = getattr(run, "raw_fills", None)
        totals = fill_totals(run.fills) if raw is None else raw_fill_totals(raw)
        out[str(name)] = _summary_of_curve(run.equity, totals, ppy, rf)
    return out


@dataclass(frozen=True)
class _Prices:
    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    close: np.ndarray
    asset_classes: tuple[str, ...]


def price_panel(result: Any) -> Any:
    """``result.panel`` if it holds prices, else one built from ``result.prices`` (a saved
    run's tables) with the panel's asset classes."""
    panel = result.panel
    if hasattr(panel, "close"):
        return panel
    prices = result.prices
    return _Prices(
        pd.DatetimeIndex(prices.index),
        tuple(str(c) for c in prices.columns),
        prices.to_numpy(dtype=float),
        tuple(getattr(panel, "asset_classes", ()) or ()),
    )


CASH_CLASSES: frozenset[str] = frozenset({"cash", "money_market", "tbill", "t-bill"})
"""Asset classes recognised as the panel's cash asset (the ``auto`` risk-free series)."""


def cash_symbol(panel: Any) -> str | None:
    """The panel's cash asset by the documented rule: the first symbol whose asset class
    is in :data:`CASH_CLASSES`, else a symbol named ``CASH`` (any case), else ``None``."""
    classes = tuple(getattr(panel, "asset_classes", ()) or ())
    for sym, cls in zip(panel.symbols, classes):
        if str(cls).lower() in CASH_CLASSES:
            return str(sym)
    for sym in panel.symbols:
        if str(sym).upper() == "CASH":
            return str(sym)
    return None


def risk_free_returns(
    panel: Any, spec: str | float | None = "auto"
) -> tuple[pd.Series | float, str]:
    """Per-bar risk-free returns for a panel and a label for tables.

    ``spec``:

    * ``"auto"`` (default): the cash asset's close-to-close returns (:func:`cash_symbol`),
      or 0 when the panel has none;
    * ``"none"`` or ``0``: zero;
    * a symbol of the panel (``"BIL"``): that asset's close-to-close returns;
    * a number: a constant **annual** rate, per bar ``(1 + rate) ** (1 / ppy) - 1``;
    * ``"file:PATH"``: a CSV with ``timestamp`` and ``rate`` (annual, a fraction) columns,
      the last known rate applied to each bar.
    """
    from engine.ground.frequency import infer_frequency

    if spec is None or (isinstance(spec, int | float) and not isinstance(spec, bool)):
        rate = float(spec or 0.0)
        if rate == 0.0:
            return 0.0, "0"
        ppy = infer_frequency(panel.index).periods_per_year
        return float((1.0 + rate) ** (1.0 / ppy) - 1.0), f"{rate:g}/yr"
    text = str(spec).strip()
    if text.lower() in ("none", "0", "zero"):
        return 0.0, "0"
    if text.lower() == "auto":
        sym = cash_symbol(panel)
        if sym is None:
            return 0.0, "0"
        text = sym
    if text.lower().startswith("file:"):
        return _rate_file(panel, Path(text[5:])), Path(text[5:]).name
    if text not in panel.symbols:
        raise ValueError(
            f"metrics.risk_free: {text!r} is not a symbol of the data "
            f"({', '.join(panel.symbols)}), a number, 'auto', 'none' or 'file:PATH'"
        )
    close = pd.Series(panel.close[:, panel.symbols.index(text)], index=panel.index)
    return simple_returns(close), text


def _rate_file(panel: Any, path: Path) -> pd.Series:
    from engine.ground.frequency import infer_frequency

    if not path.is_file():
        raise ValueError(f"metrics.risk_free: {path}: file not found")
    df = pd.read_csv(path)
    cols = {str(c).lower(): c for c in df.columns}
    ts = next((cols[c] for c in ("timestamp", "date") if c in cols), None)
    if ts is None or "rate" not in cols:
        raise ValueError(f"metrics.risk_free: {path}: needs columns 'timestamp' and 'rate'")
    order = date_order(df[ts])
    if order.problem is not None:
        raise ValueError(f"metrics.risk_free: {path}: row {order.row + 2}: {order.problem}")
    rates = pd.Series(
        pd.to_numeric(df[cols["rate"]], errors="coerce").to_numpy(),
        index=read_dates(df[ts], order),
    ).sort_index()
    if rates.isna().any() or rates.index.isna().any():
        raise ValueError(f"metrics.risk_free: {path}: a rate or timestamp is not readable")
    if rates.empty:
        raise ValueError(f"metrics.risk_free: {path}: no rates")
    bad = rates[~((rates > -0.5) & (rates < 1.0))]
    if len(bad):
        when, val = bad.index[0].date(), float(bad.iloc[0])
        hint = (
            f"it looks like a percentage: divide the column by 100 ({val:g}% is {val / 100:g})"
            if (rates.abs() < 100).all() and (rates.abs() >= 1).any()
            else "annual rates are fractions, e.g. 0.02"
        )
        raise ValueError(
            f"metrics.risk_free: {path}: rate {val:g} on {when} is out of range (-0.5, 1); {hint}"
        )
    bars = pd.DatetimeIndex(panel.index)
    local = bars.tz_localize(None) if bars.tz is not None else bars
    if rates.index[0].normalize() > local[0].normalize():
        raise ValueError(
            f"metrics.risk_free: {path}: the first rate is on {rates.index[0].date()}, after "
            f"the run starts ({local[0].date()}); give rates from the start (or set "
            f"data.start = {rates.index[0].date()})"
        )
    ppy = infer_frequency(panel.index).periods_per_year
    # the last rate stamped at or before each bar (a rate dated on the first bar's day
    # but stamped after its time is taken for it)
    at = pd.DatetimeIndex(rates.index).as_unit("ns").asi8
    pos = np.searchsorted(at, local.as_unit("ns").asi8, "right") - 1
    annual = pd.Series(rates.to_numpy()[np.maximum(pos, 0)], index=panel.index)
    return ((1.0 + annual) ** (1.0 / ppy) - 1.0).iloc[1:]


DEFAULT_COLUMNS: tuple[str, ...] = (
    "cagr",
    "volatility",
    "sharpe",
    "sharpe_rf0",
    "sortino",
    "max_drawdown",
    "calmar",
    "cvar95",
    "turnover",
    "total_costs",
    "n_trades",
)


def format_value(key: str, value: float) -> str:
    """Render one metric: percentages for fractions, thousands separators for currency."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    base = key.split("_")[0] if key.startswith(("var", "cvar")) else key
    if key in PERCENT_KEYS or base in ("var95", "var99", "cvar95", "cvar99"):
        return f"{value * 100:.2f}%"
    if key in ("n_trades", "n_bars", "bars", "recovery_bars", "n_spells", "max_dwell"):
        return f"{value:,.0f}"
    if key in ("total_costs", "final_equity", "pnl", "equity"):
        return f"{value:,.0f}"
    return f"{value:.3f}"


def format_frame(df: pd.DataFrame, percent: bool = False) -> pd.DataFrame:
    """The same table with every cell rendered as a string (see :func:`format_value`).

    With ``percent=True`` every number is shown as a percentage.
    """
    out = pd.DataFrame(index=df.index, columns=df.columns, dtype=object)
    for j, c in enumerate(df.columns):
        key = "return" if percent else str(c[-1] if isinstance(c, tuple) else c)
        out.iloc[:, j] = [
            str(v)
            if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.number)
            else format_value(key, float(v))
            for v in df.iloc[:, j]
        ]
    return out


RF_KEYS: frozenset[str] = frozenset({"sharpe", "sortino"})
"""Metrics computed on excess returns over the risk-free series."""


def metric_label(key: str, rf_label: str | None) -> str:
    """Column header: ``sharpe (rf = CASH)`` for excess-return metrics, ``sharpe (rf = 0)``
    for their ``_rf0`` twins, the key otherwise."""
    if key in RF_KEYS and rf_label is not None:
        return f"{key} (rf = {rf_label})"
    if key.endswith("_rf0") and key[:-4] in RF_KEYS:
        return f"{key[:-4]} (rf = 0)"
    return key


def format_table(df: pd.DataFrame, columns: Iterable[str] | None = None) -> str:
    """Pretty fixed-width text table for the CLI (fractions shown as percentages).

    Parameters
    ----------
    df : DataFrame
        Output of :func:`summary_table`.
    columns : iterable of str, optional
        Metrics to show, default :data:`DEFAULT_COLUMNS` (those present).
    """
    cols = [c for c in (columns or DEFAULT_COLUMNS) if c in df.columns]
    if not cols:
        cols = list(df.columns)
    if df.attrs.get("rf_label") == "0":  # the rf = 0 twins would repeat their columns
        cols = [c for c in cols if not (c.endswith("_rf0") and c[:-4] in cols)]
    txt = format_frame(df[cols])
    headers = [str(df.index.name or ""), *(metric_label(c, df.attrs.get("rf_label")) for c in cols)]
    body = [[str(i), *list(txt.loc[i])] for i in txt.index]
    widths = [
        max(len(h), *(len(row[j]) for row in body)) if body else len(h)
        for j, h in enumerate(headers)
    ]
    lines = [
        "  ".join(
            h.ljust(w) if j == 0 else h.rjust(w) for j, (h, w) in enumerate(zip(headers, widths))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for row in body:
        lines.append(
            "  ".join(
                v.ljust(w) if j == 0 else v.rjust(w) for j, (v, w) in enumerate(zip(row, widths))
            )
        )
    return "\n".join(lines)

"""Benchmark-relative statistics: alpha, beta, information ratio, tracking error, capture.

Conventions (simple per-bar returns ``r`` of the strategy and ``b`` of the benchmark on the
same bars; ``ppy`` bars per year):

* ``beta = cov(r, b) / var(b)`` (both ddof=1); ``alpha = (mean(r) - beta * mean(b)) * ppy``
  (Jensen's alpha, annualized arithmetically, zero risk-free rate);
* ``tracking_error = std(r - b, ddof=1) * sqrt(ppy)``;
  ``information_ratio = mean(r - b) * ppy / tracking_error``;
* ``up_capture = mean(r | b > 0) / mean(b | b > 0)``, ``down_capture`` likewise on
  ``b < 0`` (arithmetic means; a down capture below 1 means smaller losses than the benchmark);
* ``correlation`` = Pearson correlation of ``r`` and ``b``;
  ``excess_return`` = CAGR of the strategy minus CAGR of the benchmark.

The benchmark is a strategy of the run, or a symbol held alone (its close, rebased to the
strategies' starting equity); the default is the first symbol of asset class ``equity``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from engine.analysis._common import simple_returns
from engine.analysis.metrics import PERIODS_PER_YEAR, cagr

RELATIVE_COLUMNS: tuple[str, ...] = (
    "excess_return",
    "alpha",
    "beta",
    "correlation",
    "tracking_error",
    "information_ratio",
    "up_capture",
    "down_capture",
)


def _symbol_classes(result: Any) -> dict[str, str]:
    panel = getattr(result, "panel", None)
    syms = tuple(getattr(panel, "symbols", ()) or ())
    classes = tuple(getattr(panel, "asset_classes", ()) or ())
    return {str(s): str(c) for s, c in zip(syms, classes)} if len(syms) == len(classes) else {}


def default_benchmark(result: Any) -> str | None:
    """The first symbol of asset class ``equity`` (else the first price column), or None."""
    prices = getattr(result, "prices", None)
    if prices is None or prices.shape[1] == 0:
        return None
    classes = _symbol_classes(result)
    eq = [s for s in prices.columns if classes.get(str(s), "").lower() == "equity"]
    return str(eq[0] if eq else prices.columns[0])


def benchmark_equity(result: Any, name: str | None = None) -> tuple[str, pd.Series] | None:
    """The benchmark's equity curve on the result's bars, and its display name.

    ``name`` is a strategy (an equity column) or a symbol (a price column, rebased to the
    first strategy's starting equity). ``None``: :func:`default_benchmark`. An unknown name
    raises ``KeyError`` naming the choices.
    """
    equity: pd.DataFrame = result.equity
    prices = getattr(result, "prices", None)
    name = name or default_benchmark(result)
    if name is None:
        return None
    if name in equity.columns:
        return name, equity[name].astype(float)
    if prices is not None and name in prices.columns:
        p = prices[name].astype(float).reindex(equity.index).ffill()
        first = p.first_valid_index()
        if first is None:
            return None
        start = float(equity.iloc[0].mean()) if len(equity.columns) else 1.0
        return f"{name} (buy & hold)", p / float(p.loc[first]) * start
    have = [*map(str, equity.columns), *map(str, [] if prices is None else prices.columns)]
    raise KeyError(unknown_benchmark(name, have))


def unknown_benchmark(name: str, have: list[str]) -> str:
    """The one line for a ``report.benchmark`` that is neither a strategy nor a symbol."""
    return f"report.benchmark: unknown strategy or symbol {name!r}; have {have}"


def relative_stats(
    returns: pd.Series | np.ndarray,
    bench_returns: pd.Series | np.ndarray,
    periods_per_year: float = PERIODS_PER_YEAR,
) -> dict[str, float]:
    """Alpha, beta, correlation, tracking error, information ratio and capture ratios of
    per-bar ``returns`` against ``bench_returns`` (bars where either is NaN are dropped)."""
    r = np.asarray(returns, dtype=float)
    b = np.asarray(bench_returns, dtype=float)
    ok = np.isfinite(r) & np.isfinite(b)
    r, b = r[ok], b[ok]
    nan = float("nan")
    out = dict.fromkeys(RELATIVE_COLUMNS[1:], nan)
    if r.size < 3:
        return out
    vb = float(np.var(b, ddof=1))
    beta = float(np.cov(r, b, ddof=1)[0, 1] / vb) if vb > 0 else nan
    out["beta"] = beta
    out["alpha"] = (float(np.mean(r)) - beta * float(np.mean(b))) * periods_per_year
    sr, sb = float(np.std(r, ddof=1)), float(np.std(b, ddof=1))
    out["correlation"] = float(np.corrcoef(r, b)[0, 1]) if sr > 0 and sb > 0 else nan
    d = r - b
    te = float(np.std(d, ddof=1)) * np.sqrt(periods_per_year)
    out["tracking_error"] = te
    out["information_ratio"] = float(np.mean(d)) * periods_per_year / te if te > 0 else nan
    up, dn = b > 0, b < 0
    out["up_capture"] = float(np.mean(r[up]) / np.mean(b[up])) if up.any() else nan
    out["down_capture"] = float(np.mean(r[dn]) / np.mean(b[dn])) if dn.any() else nan
    return out


def relative_table(
    equity: pd.DataFrame,
    bench: pd.Series,
    periods_per_year: float = PERIODS_PER_YEAR,
) -> pd.DataFrame:
    """:func:`relative_stats` and the CAGR difference for every equity column vs ``bench``.

    Rows = strategies, columns = :data:`RELATIVE_COLUMNS`.
    """
    b = bench.astype(float).reindex(equity.index)
    rb = simple_returns(b)
    bc = cagr(b.dropna(), periods_per_year)
    rows = {}
    for c in equity.columns:
        e = equity[c].astype(float)
        rows[str(c)] = {
            "excess_return": cagr(e.dropna(), periods_per_year) - bc,
            **relative_stats(simple_returns(e), rb, periods_per_year),
        }
    df = pd.DataFrame.from_dict(rows, orient="index", columns=list(RELATIVE_COLUMNS))
    df.index.name = "strategy"
    return df

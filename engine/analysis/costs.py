"""Transaction-cost sensitivity: the same OOS comparison at several commission levels.

The commission (bps of traded notional, every asset) is overridden; the other cost pieces
of the run (spread, slippage, impact) are kept. Detector fits are reused (only the cost
table changes). The *edge* is the candidate's OOS Sharpe minus the benchmark's (also
reported for CAGR); the break-even cost is the commission at which the Sharpe edge
reaches zero, found by bisection on re-run backtests (or linear interpolation on a grid).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from engine.analysis.metrics import PERIODS_PER_YEAR
from engine.analysis.walkforward import Fold, oos_returns, oos_summary
from engine.core.backtest import Prepared, run_strategy_raw
from engine.ground import layout as L
from engine.plugins.strategy import CompiledStrategy

DEFAULT_BPS: tuple[float, ...] = (0.0, 5.0, 10.0, 25.0, 50.0)


def with_commission(prep: Prepared, bps: float) -> Prepared:
    """``prep`` with every asset's commission set to ``bps`` (other cost pieces kept)."""
    costs = prep.costs.copy()
    costs[:, L.C_COMMISSION_BPS] = bps
    return replace(prep, costs=np.ascontiguousarray(costs))


def oos_at_cost(
    prep: Prepared,
    strategies: Sequence[CompiledStrategy],
    folds: list[Fold],
    bps: float,
    periods_per_year: float = PERIODS_PER_YEAR,
    rf: pd.Series | float | None = None,
) -> pd.DataFrame:
    """OOS summary (rows = strategies) of ``strategies`` run at ``bps`` commission
    (Sharpe over ``rf``, per-bar risk-free returns; ``None`` = 0)."""
    p = with_commission(prep, bps)
    eq = pd.DataFrame(
        {s.name: np.asarray(run_strategy_raw(p, s)[0]) for s in strategies},
        index=prep.panel.index,
    )
    return oos_summary(oos_returns(eq, folds), periods_per_year, rf)


def cost_sensitivity(
    prep: Prepared,
    candidate: CompiledStrategy,
    benchmark: CompiledStrategy,
    folds: list[Fold],
    bps: Sequence[float] = DEFAULT_BPS,
    periods_per_year: float = PERIODS_PER_YEAR,
    rf: pd.Series | float | None = None,
    others: Sequence[CompiledStrategy] = (),
    rf_label: str | None = None,
) -> pd.DataFrame:
    """Rows = commission bps; columns ``sharpe_<name>``, ``cagr_<name>`` for both strategies
    and ``sharpe_diff`` / ``cagr_diff`` (candidate minus benchmark), all OOS; Sharpe over
    ``rf`` (label in ``attrs["rf_label"]``). Each of ``others`` (e.g. static baselines,
    weights fixed) adds ``sharpe_<name>`` and ``sharpe_diff_vs_<name>``."""
    rows = []
    for b in bps:
        s = oos_at_cost(
            prep, [candidate, benchmark, *others], folds, float(b), periods_per_year, rf
        )
        c, m = s.loc[candidate.name], s.loc[benchmark.name]
        row = {
            "commission_bps": float(b),
            f"sharpe_{benchmark.name}": m["sharpe"],
            f"sharpe_{candidate.name}": c["sharpe"],
            "sharpe_diff": c["sharpe"] - m["sharpe"],
            f"cagr_{benchmark.name}": m["cagr"],
            f"cagr_{candidate.name}": c["cagr"],
            "cagr_diff": c["cagr"] - m["cagr"],
        }
        for o in others:
            so = float(s["sharpe"].to_dict()[o.name])
            row[f"sharpe_{o.name}"] = so
            row[f"sharpe_diff_vs_{o.name}"] = row[f"sharpe_{candidate.name}"] - so
        rows.append(row)
    out = pd.DataFrame(rows).set_index("commission_bps")
    out.attrs["rf_label"] = rf_label or ("0" if rf is None else "given")
    return out


def break_even_interp(bps: ArrayLike, edge: ArrayLike) -> float:
    """Cost where a piecewise-linear ``edge(bps)`` first falls to zero.

    ``0.0`` if there is no edge at the lowest cost, ``inf`` if it stays positive on the
    whole grid (NaN edges are skipped).
    """
    x = np.asarray(bps, dtype=float)
    y = np.asarray(edge, dtype=float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    order = np.argsort(x)
    x, y = x[order], y[order]
    if x.size == 0:
        return float("nan")
    if y[0] <= 0:
        return float(x[0]) if x[0] <= 0 else 0.0
    for i in range(1, x.size):
        if y[i] <= 0:
            return float(x[i - 1] + (x[i] - x[i - 1]) * y[i - 1] / (y[i - 1] - y[i]))
    return float("inf")


def break_even_bisect(
    edge: Callable[[float], float],
    lo: float = 0.0,
    hi: float = 50.0,
    tol: float = 0.05,
    max_hi: float = 1000.0,
    max_iter: int = 60,
) -> float:
    """Cost ``c`` in bps with ``edge(c) = 0`` by bisection (edge assumed decreasing in cost).

    Returns ``lo`` (0 by default) when there is no edge at ``lo``; ``hi`` is doubled up to
    ``max_hi`` until the edge is gone, ``inf`` if it never is.
    """
    e_lo = edge(lo)
    if not np.isfinite(e_lo) or e_lo <= 0:
        return lo
    e_hi = edge(hi)
    while e_hi > 0:
        if hi >= max_hi:
            return float("inf")
        lo, hi = hi, min(2.0 * hi, max_hi)
        e_hi = edge(hi)
    for _ in range(max_iter):
        if hi - lo <= tol:
            break
        mid = 0.5 * (lo + hi)
        if edge(mid) > 0:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def break_even_cost(
    prep: Prepared,
    candidate: CompiledStrategy,
    benchmark: CompiledStrategy,
    folds: list[Fold],
    metric: str = "sharpe",
    hi: float = 50.0,
    tol: float = 0.05,
    periods_per_year: float = PERIODS_PER_YEAR,
    rf: pd.Series | float | None = None,
) -> float:
    """Commission (bps) at which the OOS ``metric`` edge (candidate - benchmark) vanishes
    (Sharpe over ``rf``: the same difference the verdict quotes)."""

    def edge(bps: float) -> float:
        s = oos_at_cost(prep, [candidate, benchmark], folds, bps, periods_per_year, rf)[metric]
        v = s.to_dict()
        return float(v[candidate.name]) - float(v[benchmark.name])

    return break_even_bisect(edge, 0.0, hi, tol)

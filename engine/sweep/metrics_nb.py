"""Headline metrics of one run, computed in numba straight from the driver's arrays.

Same definitions as :func:`engine.analysis.metrics.summary` (see that module's docstring;
a test checks agreement to 1e-9), without building pandas objects: a sweep computes them
for thousands of runs.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from engine.ground.layout import R_COMMISSION, R_IMPACT, R_PRICE, R_QTY

METRIC_NAMES: tuple[str, ...] = (
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "turnover",
    "total_costs",
    "n_trades",
    "final_equity",
)


@nb.njit(cache=True)
def metrics_nb(equity: np.ndarray, fills: np.ndarray, ppy: float, out: np.ndarray) -> None:
    """Write :data:`METRIC_NAMES` of an equity curve and its fill records into ``out``."""
    nan = np.nan
    n = equity.shape[0]
    out[:] = nan
    if n == 0:
        return
    e0 = equity[0]
    e_last = equity[n - 1]
    out[0] = e_last / e0 - 1.0
    out[10] = e_last
    years = (n - 1) / ppy
    if n >= 2:
        growth = e_last / e0
        out[1] = -1.0 if growth <= 0.0 else growth ** (1.0 / years) - 1.0
    # simple returns (non-finite ones dropped, as the pandas path does)
    r = np.empty(max(n - 1, 0))
    m = 0
    for t in range(1, n):
        x = equity[t] / equity[t - 1] - 1.0
        if np.isfinite(x):
            r[m] = x
            m += 1
    r = r[:m]
    if m >= 2:
        mu = r.mean()
        sd = np.sqrt(((r - mu) ** 2).sum() / (m - 1))
        out[2] = sd * np.sqrt(ppy)
        if sd != 0.0:
            out[3] = mu / sd * np.sqrt(ppy)
    if m >= 1:
        mu = r.mean()
        neg = np.minimum(r, 0.0)
        dd = np.sqrt((neg * neg).mean())
        if dd != 0.0:
            out[4] = mu / dd * np.sqrt(ppy)
    peak = equity[0]
    mdd = 0.0
    for t in range(n):
        if equity[t] > peak:
            peak = equity[t]
        d = 1.0 - equity[t] / peak
        if d > mdd:
            mdd = d
    out[5] = mdd
    if mdd > 0.0:
        out[6] = out[1] / mdd
    nf = fills.shape[0]
    notional = 0.0
    costs = 0.0
    for i in range(nf):
        notional += abs(fills[i, R_QTY]) * fills[i, R_PRICE]
        for c in range(R_COMMISSION, R_IMPACT + 1):
            costs += fills[i, c]
    out[7] = 0.0 if (nf == 0 or n < 2) else notional / equity.mean() / years / 2.0
    out[8] = costs
    out[9] = nf

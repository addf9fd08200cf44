"""One-pass compiled kernel for :func:`engine.analysis.metrics.summary`.

:func:`summary_nb` computes every headline metric of one equity curve in a single
``@njit`` call: total return, CAGR, volatility, Sharpe / Sortino (over a risk-free series and
at rf = 0), max drawdown, Calmar, skew, excess kurtosis, historical / Gaussian /
Cornish-Fisher VaR and CVaR at each level, and turnover. The per-metric functions of
:mod:`engine.analysis.metrics` are the reference implementation; this kernel reproduces
them operation by operation:

* every mean and sum uses numpy's pairwise summation (:func:`pairwise_sum_nb`, the same
  blocking of 8 accumulators over blocks of 128 as ``np.add.reduce``), so means, standard
  deviations and central moments are bit-identical to ``np.mean`` / ``np.std`` /
  ``scipy.stats.skew`` / ``scipy.stats.kurtosis`` (bias-corrected) even when they are sums
  of nearly cancelling terms;
* the historical quantile is numpy's ``linear`` method (``(n - 1) * q``, the same
  two-sided ``lerp``) from an exact order-statistic selection;
* normal quantiles and densities of the fixed levels are constants computed once with
  scipy (:func:`level_params`).

One signature: ``(float64[::1], float64[::1], float64[::1]) -> float64[::1]``;
:func:`fill_totals_nb` sums the fill records (``float64[:, ::1]``) for turnover and costs.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from engine.ground import layout as L

PW_BLOCK = 128  # numpy's PW_BLOCKSIZE
SD_FLOOR = 1e-12
"""Per-bar standard deviations (and downside deviations) at or below this are float noise
(an all-cash strategy against a constant-rate cash index: ~1e-19): the ratio dividing by
them is NaN ("n/a"), never a Sharpe of -2.5e13 (issue 23)."""

# ---------------------------------------------------------------- params vector slots
S_PPY = 0  # bars per year
S_NOTIONAL = 1  # traded notional sum(|qty| * price) of the fills
S_N_FILLS = 2  # number of fills
S_COSTS = 3  # total costs of the fills (currency)
S_N_LEVELS = 4  # number of VaR levels L
S_HEADER = 5
# then L blocks of:
LV_ALPHA = 0  # 1 - level
LV_Z = 1  # Phi^-1(1 - level)
LV_PHI = 2  # phi(z)
LV_C1 = 3  # z**2 - 1
LV_C2 = 4  # z**3 - 3 * z
LV_C3 = 5  # 2 * z**3 - 5 * z
LV_C4 = 6  # 2 * z**2 - 1
LV_WIDTH = 7

# ---------------------------------------------------------------- output slots
O_TOTAL_RETURN = 0
O_CAGR = 1
O_VOL = 2
O_SHARPE = 3
O_SORTINO = 4
O_SHARPE0 = 5
O_SORTINO0 = 6
O_MDD = 7
O_CALMAR = 8
O_SKEW = 9
O_KURT = 10
O_LEVELS = 11  # L blocks of 6: var, cvar, var_gaussian, cvar_gaussian, var_cf, cvar_cf
# then: turnover, total_costs, n_trades, periods_per_year, final_equity

HEAD_KEYS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "sharpe_rf0",
    "sortino_rf0",
    "max_drawdown",
    "calmar",
    "skew",
    "kurtosis",
)
TAIL_KEYS: tuple[str, ...] = (
    "turnover",
    "total_costs",
    "n_trades",
    "periods_per_year",
    "final_equity",
)


@nb.njit(cache=True, error_model="numpy")
def _block_sum_nb(a: np.ndarray, lo: int, n: int) -> float:
    """numpy's pairwise-sum leaf (``n <= 128``): a plain loop below 8 values, else eight
    interleaved accumulators combined as ``((r0+r1)+(r2+r3))+((r4+r5)+(r6+r7))``."""
    if n < 8:
        res = 0.0
        for i in range(lo, lo + n):
            res += a[i]
        return res
    r0 = a[lo]
    r1 = a[lo + 1]
    r2 = a[lo + 2]
    r3 = a[lo + 3]
    r4 = a[lo + 4]
    r5 = a[lo + 5]
    r6 = a[lo + 6]
    r7 = a[lo + 7]
    m = n - n % 8
    i = 8
    while i < m:
        j = lo + i
        r0 += a[j]
        r1 += a[j + 1]
        r2 += a[j + 2]
        r3 += a[j + 3]
        r4 += a[j + 4]
        r5 += a[j + 5]
        r6 += a[j + 6]
        r7 += a[j + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@nb.njit(cache=True, error_model="numpy")
def pairwise_sum_nb(a: np.ndarray, lo: int, n: int) -> float:
    """``np.sum(a[lo:lo + n])`` bit for bit (numpy's pairwise summation).

    numpy splits a block of more than 128 values at ``n // 2`` rounded down to a multiple
    of 8 and adds the two halves' sums; the same tree is walked here with an explicit stack
    (numba's cache does not reload self-recursive functions reliably).
    """
    if n <= PW_BLOCK:
        return _block_sum_nb(a, lo, n)
    los = np.empty(64, dtype=np.int64)
    ns = np.empty(64, dtype=np.int64)
    stage = np.zeros(64, dtype=np.int64)
    left = np.empty(64)
    los[0] = lo
    ns[0] = n
    sp = 1
    ret = 0.0
    while sp > 0:
        top = sp - 1
        m = ns[top]
        if m <= PW_BLOCK:
            ret = _block_sum_nb(a, los[top], m)
            sp -= 1
            continue
        half = m // 2
        half -= half % 8
        st = stage[top]
        if st == 0:  # descend into the left half
            stage[top] = 1
            los[sp] = los[top]
            ns[sp] = half
            stage[sp] = 0
            sp += 1
        elif st == 1:  # left done: keep it, descend into the right half
            left[top] = ret
            stage[top] = 2
            los[sp] = los[top] + half
            ns[sp] = m - half
            stage[sp] = 0
            sp += 1
        else:  # both halves done
            ret = left[top] + ret
            sp -= 1
    return ret


@nb.njit(cache=True, error_model="numpy")
def _ratios(
    x: np.ndarray, n: int, ppy: float, sq: np.ndarray, neg: np.ndarray
) -> tuple[float, float, float, float]:
    """``(mean, std ddof=1, sharpe, sortino)`` of the first ``n`` values of ``x`` as
    ``np.mean`` / ``np.std`` and the reference :func:`sharpe` / :func:`sortino` compute
    them (``sq`` and ``neg`` are scratch buffers)."""
    if n == 0:
        return np.nan, np.nan, np.nan, np.nan
    mu = pairwise_sum_nb(x, 0, n) / n
    for i in range(n):
        d = x[i] - mu
        sq[i] = d * d
        m = min(x[i], 0.0)
        neg[i] = m * m
    sd = math.sqrt(pairwise_sum_nb(sq, 0, n) / (n - 1)) if n >= 2 else np.nan
    sharpe = mu / sd * math.sqrt(ppy) if n >= 2 and sd > SD_FLOOR else np.nan
    dd = math.sqrt(pairwise_sum_nb(neg, 0, n) / n)
    sortino = mu / dd * math.sqrt(ppy) if dd > SD_FLOOR else np.nan
    return mu, sd, sharpe, sortino


@nb.njit(cache=True, error_model="numpy")
def _skew_kurt(n: int, mean: float, m2: float, m3: float, m4: float) -> tuple[float, float]:
    """Bias-corrected skew and excess kurtosis from the central moments, with
    ``scipy.stats.skew`` / ``kurtosis``'s expressions and precision guard (NaN when
    ``m2 <= (eps * mean) ** 2``)."""
    eps = 2.220446049250313e-16
    g = eps * mean
    if m2 <= g * g:
        return np.nan, np.nan
    fn = float(n)
    skew = math.pow((fn - 1.0) * fn, 0.5) / (fn - 2.0) * m3 / math.pow(m2, 1.5)
    nval = (
        1.0 / (n - 2) / (n - 3) * ((fn * fn - 1.0) * m4 / (m2 * m2) - 3 * (fn - 1.0) * (fn - 1.0))
    )
    return skew, (nval + 3.0) - 3.0


@nb.njit(cache=True, error_model="numpy")
def _quantile_sorted(head: np.ndarray, n: int, q: float) -> float:
    """``np.quantile(r, q)`` (method ``linear``) of ``n`` values whose smallest order
    statistics, up to the one the quantile needs, are ``head`` (sorted)."""
    v = (n - 1) * q
    if v >= n - 1:
        return head[n - 1]
    if v < 0:
        return head[0]
    fl = math.floor(v)
    prev = int(fl)
    a = head[prev]
    b = head[prev + 1]
    t = v - fl
    diff = b - a
    if t >= 0.5:
        return b - diff * (1.0 - t)
    return a + diff * t


@nb.njit(cache=True, error_model="numpy")
def select_smallest_nb(a: np.ndarray, n: int, k: int) -> None:
    """Reorder ``a[:n]`` in place so that ``a[:k + 1]`` holds its ``k + 1`` smallest values
    (quickselect, median-of-three Hoare partition; finite values). A hand-written select:
    numba's ``np.partition`` takes seconds to compile."""
    lo = 0
    hi = n - 1
    while hi > lo:
        mid = (lo + hi) // 2
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return


@nb.njit(cache=True, error_model="numpy")
def _needed_rank(n: int, q: float) -> int:
    """Largest 0-based rank that :func:`_quantile_sorted` reads for quantile ``q``."""
    v = (n - 1) * q
    if v >= n - 1:
        return n - 1
    if v < 0:
        return 0
    return math.floor(v) + 1


@nb.njit(cache=True, error_model="numpy")
def summary_nb(equity: np.ndarray, rf: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Every metric of :func:`engine.analysis.metrics.summary` for one NaN-free curve.

    ``equity``: portfolio values (NaNs already dropped); ``rf``: per-bar risk-free rates
    aligned on the returns (``len(equity) - 1`` values, NaNs as 0) or one value for all
    bars; ``params``: :func:`make_params`. Output slots follow :func:`output_keys`.
    """
    ppy = params[S_PPY]
    n_levels = int(params[S_N_LEVELS])
    out = np.full(O_LEVELS + 6 * n_levels + 5, np.nan)
    t_len = equity.size
    tail = O_LEVELS + 6 * n_levels
    out[tail + 1] = params[S_COSTS]
    out[tail + 2] = params[S_N_FILLS]
    out[tail + 3] = ppy
    out[tail + 4] = equity[t_len - 1] if t_len > 0 else np.nan
    out[tail] = 0.0
    if t_len == 0:
        return out
    e0 = equity[0]
    out[O_TOTAL_RETURN] = equity[t_len - 1] / e0 - 1.0
    # max drawdown: max(1 - E / running max), NaN-propagating like np.max
    peak = e0
    mdd = -np.inf
    for t in range(t_len):
        e = equity[t]
        peak = max(peak, e)
        d = 1.0 - e / peak
        if math.isnan(d) or math.isnan(mdd):
            mdd = np.nan
        elif d > mdd:
            mdd = d
    out[O_MDD] = mdd
    cagr = np.nan
    if t_len >= 2:
        years = (t_len - 1) / ppy
        growth = equity[t_len - 1] / e0
        cagr = -1.0 if growth <= 0 else math.pow(growth, 1.0 / years) - 1.0
    out[O_CAGR] = cagr
    if mdd > 0:
        out[O_CALMAR] = cagr / mdd
    # returns: finite ones (for the distribution), and finite excess returns over rf
    n_ret = max(t_len - 1, 1)
    one_rf = rf.size == 1
    zero_rf = one_rf and rf[0] == 0.0  # excess returns are the returns
    r = np.empty(n_ret)
    ex = np.empty(1 if zero_rf else n_ret)
    b1 = np.empty(n_ret)
    b2 = np.empty(n_ret)
    b3 = np.empty(n_ret)
    b4 = np.empty(n_ret)
    n = 0
    n_ex = 0
    lo = np.inf
    hi = -np.inf
    for t in range(t_len - 1):
        x = equity[t + 1] / equity[t] - 1.0
        if math.isfinite(x):
            r[n] = x
            n += 1
            lo = min(lo, x)
            hi = max(hi, x)
        if not zero_rf:
            y = x - (rf[0] if one_rf else rf[t])
            if math.isfinite(y):
                ex[n_ex] = y
                n_ex += 1
    # one pass of deviations for std, the central moments and the downside deviation
    mu = np.nan
    sd = np.nan
    skew = np.nan
    kurt = np.nan
    if n > 0:
        mu = pairwise_sum_nb(r, 0, n) / n
        for i in range(n):
            d = r[i] - mu
            d2 = d * d
            b1[i] = d2
            b2[i] = d2 * d
            b3[i] = d2 * d2
            m = min(r[i], 0.0)
            b4[i] = m * m
        s2 = pairwise_sum_nb(b1, 0, n)
        if n >= 2:
            sd = math.sqrt(s2 / (n - 1))
            out[O_VOL] = sd * math.sqrt(ppy)
            if sd > SD_FLOOR:
                out[O_SHARPE0] = mu / sd * math.sqrt(ppy)
        dd = math.sqrt(pairwise_sum_nb(b4, 0, n) / n)
        if dd > SD_FLOOR:
            out[O_SORTINO0] = mu / dd * math.sqrt(ppy)
        if n >= 4 and hi - lo != 0:
            m3 = pairwise_sum_nb(b2, 0, n) / n
            m4 = pairwise_sum_nb(b3, 0, n) / n
            skew, kurt = _skew_kurt(n, mu, s2 / n, m3, m4)
    out[O_SKEW] = skew
    out[O_KURT] = kurt
    if zero_rf:
        out[O_SHARPE] = out[O_SHARPE0]
        out[O_SORTINO] = out[O_SORTINO0]
    else:
        _, _, out[O_SHARPE], out[O_SORTINO] = _ratios(ex, n_ex, ppy, b1, b4)
    # turnover: sum(|qty| * price) / mean(E) / years / 2
    if params[S_N_FILLS] > 0 and t_len >= 2:
        mean_e = pairwise_sum_nb(equity, 0, t_len) / t_len
        out[tail] = params[S_NOTIONAL] / mean_e / ((t_len - 1) / ppy) / 2.0
    if n == 0:
        return out
    # order statistics for the historical quantiles: the smallest k + 1 values, sorted
    k = 0
    for lv in range(n_levels):
        k = max(k, _needed_rank(n, params[S_HEADER + lv * LV_WIDTH + LV_ALPHA]))
    for i in range(n):
        b2[i] = r[i]
    if k < n - 1:
        select_smallest_nb(b2, n, k)
    head = np.sort(b2[: k + 1])
    for lv in range(n_levels):
        p = S_HEADER + lv * LV_WIDTH
        alpha = params[p + LV_ALPHA]
        z = params[p + LV_Z]
        phi = params[p + LV_PHI]
        o = O_LEVELS + 6 * lv
        q = _quantile_sorted(head, n, alpha)
        m = 0
        for i in range(n):
            if r[i] <= q:
                b1[m] = r[i]
                m += 1
        out[o] = -q
        out[o + 1] = -(pairwise_sum_nb(b1, 0, m) / m)
        if n >= 2:
            out[o + 2] = -(mu + sd * z)
            out[o + 3] = -(mu - sd * phi / alpha)
        if n >= 4:
            if math.isfinite(skew) and math.isfinite(kurt):
                zc = (
                    z
                    + params[p + LV_C1] * skew / 6
                    + params[p + LV_C2] * kurt / 24
                    - params[p + LV_C3] * (skew * skew) / 36
                )
                out[o + 4] = -(mu + sd * zc)
                bracket = (1 + skew * z / 6 + kurt * params[p + LV_C1] / 24) - skew * skew * params[
                    p + LV_C4
                ] / 36
                out[o + 5] = -(mu - sd * phi * bracket / alpha)
            else:
                out[o + 4] = out[o + 2]
                out[o + 5] = out[o + 3]
    return out


@nb.njit(cache=True, error_model="numpy")
def fill_totals_nb(rec: np.ndarray) -> tuple[float, float]:
    """``(traded notional, total costs)`` of kernel fill records (``layout.R_*`` columns),
    summed as the reference does on the fills table: ``nansum(|qty| * price)`` and the
    four cost columns one after the other (a column-major block), pairwise."""
    n = rec.shape[0]
    traded = np.empty(max(n, 1))
    costs = np.empty(max(4 * n, 1))
    for i in range(n):  # one pass over the rows
        v = abs(rec[i, L.R_QTY]) * rec[i, L.R_PRICE]
        traded[i] = 0.0 if math.isnan(v) else v
        costs[i] = rec[i, L.R_COMMISSION]
        costs[n + i] = rec[i, L.R_SPREAD]
        costs[2 * n + i] = rec[i, L.R_SLIPPAGE]
        costs[3 * n + i] = rec[i, L.R_IMPACT]
    return pairwise_sum_nb(traded, 0, n), pairwise_sum_nb(costs, 0, 4 * n)

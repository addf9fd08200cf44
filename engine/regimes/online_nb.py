"""Online regime filters (njit): one dispatch over detector kinds, plus trading smoothing.

Every detector's parameter vector starts with ``[kind, n_states, ...]``; its online
update reads this bar's feature row (and exogenous row), updates its own state vector
and writes the filtered posterior ``P(state_t | data_<=t)``. It returns the raw state
(argmax, or -1 while it cannot yet speak).
"""

from __future__ import annotations

import math
from typing import cast

import numba as nb
import numpy as np

from engine.ground.layout import (
    D_KIND,
    D_N_STATES,
    DE_COL,
    DET_BOCPD,
    DET_EXTERNAL,
    DET_GMM,
    DET_GRU,
    DET_HMM,
    DET_JUMP,
    DET_KMEANS,
    DET_LOGIT,
    DET_NONE,
    DET_RULE,
    DR_ASSET,
    DR_CRISIS_PCT,
    DR_HIGH_PCT,
    DR_HIST,
    DR_MIN_HIST,
    DR_VOL_FEATURE,
    DX_A,
    DX_B,
    DX_C,
    DX_COV_FULL,
    DX_IN_STRIDE,
    DX_INPUTS,
    DX_N_IN,
    DXI_LOG,
    DXI_MEAN,
    DXI_SCALE,
    DXI_SRC,
    DXS_HEADER,
    DXS_INIT,
    DXS_LOGNORM,
    F_MA_GAP,
    G_CAND,
    G_CAND_COUNT,
    G_CHANGED,
    G_DWELL,
    G_RAW,
    G_SMOOTHED,
    N_FEAT_ASSET,
    S_CONFIRM,
    S_MIN_DWELL,
    S_PROB_THRESHOLD,
)
from engine.regimes.deep_nb import gru_update_nb
from engine.regimes.softmax_nb import linear_softmax_nb

RULE_CALM, RULE_VOLATILE, RULE_CRISIS = 0, 1, 2


@nb.njit(cache=True)
def rule_update_nb(
    dparams: np.ndarray, dstate: np.ndarray, feats: np.ndarray, post: np.ndarray
) -> int:
    """Baseline rule: percentile of EWMA vol within its own trailing history, and trend.

    calm (0): vol percentile < high and price above its moving average;
    crisis (2): vol percentile >= crisis and price below its moving average;
    volatile (1): otherwise. The posterior is one-hot (the rule is deterministic).
    ``dstate`` = ``[count, ring of DR_HIST past volatilities]``.
    """
    asset = int(dparams[DR_ASSET])
    vol = feats[asset * N_FEAT_ASSET + int(dparams[DR_VOL_FEATURE])]
    gap = feats[asset * N_FEAT_ASSET + F_MA_GAP]
    hist = int(dparams[DR_HIST])
    count = int(dstate[0])
    n_hist = count if count < hist else hist
    below = 0
    for i in range(n_hist):
        if dstate[1 + i] < vol:
            below += 1
    dstate[1 + count % hist] = vol
    dstate[0] = count + 1
    post[:] = 0.0
    if count < int(dparams[DR_MIN_HIST]):
        post[:] = 1.0 / post.shape[0]
        return -1
    pct = below / n_hist
    if pct >= dparams[DR_CRISIS_PCT] and gap < 0.0:
        s = RULE_CRISIS
    elif pct >= dparams[DR_HIGH_PCT] or gap < 0.0:
        s = RULE_VOLATILE
    else:
        s = RULE_CALM
    post[s] = 1.0
    return s


LOG_FLOOR = 1e-12
#: bar offset 0 as a plain int64: a literal 0 passed to a kernel compiles one more
#: specialisation of it (numba types constant arguments as literals)
ZERO = cast(int, np.int64(0))
LOG_2PI = 1.8378770664093453


@nb.njit(cache=True, inline="always")
def standardize_input_nb(x: float, log: bool, mean: float, scale: float) -> float:
    """One detector input: optionally log, standardize; a non-finite result becomes its
    training mean (z = 0)."""
    if log:
        x = np.log(x if x > LOG_FLOOR else LOG_FLOOR)
    v = (x - mean) / scale
    return v if np.isfinite(v) else 0.0


@nb.njit(cache=True)
def load_inputs_nb(
    dparams: np.ndarray, feats: np.ndarray, exog: np.ndarray, z: np.ndarray, off: int = 0
) -> None:
    """This bar's standardized detector inputs into ``z[off:off + d]``: pick, optionally
    log, standardize (:func:`standardize_input_nb`).
    """
    d = int(dparams[DX_N_IN])
    for i in range(d):
        base = DX_INPUTS + DX_IN_STRIDE * i
        src = int(dparams[base + DXI_SRC])
        x = feats[src] if src >= 0 else exog[-src - 1]
        z[off + i] = standardize_input_nb(
            x, dparams[base + DXI_LOG] != 0.0, dparams[base + DXI_MEAN], dparams[base + DXI_SCALE]
        )


@nb.njit(cache=True)
def gaussian_rows_nb(
    dparams: np.ndarray,
    dstate: np.ndarray,
    feats: np.ndarray,
    exog: np.ndarray,
    t_from: int,
    t_to: int,
    post: np.ndarray,
) -> tuple[int, float]:
    """Scaled forward filter of a Gaussian HMM (also GMM and soft k-means) over rows
    ``t_from .. t_to - 1`` of ``feats`` (T, F) and ``exog`` (T, E), one parameter row in
    force: ``post[t]`` gets the filtered posterior of bar ``t``. O(K^2 + K d^2) per bar.
    Returns the likeliest state of the last bar (-1 for no bar; a bar's likeliest state is
    the first maximum of its posterior row, :func:`argmax_state_nb`) and the sum of the
    bars' log normalisers (the log-likelihood of the rows, standardized space).

    Body (offset ``DX_INPUTS + DX_IN_STRIDE * d``): start (K), transitions (K*K, row i =
    from state i), means (K*d, standardized space), lower-triangular factors U (K*d*d) with
    ``Sigma^-1 = U^T U``, log constants (K) = ``-d/2 log 2 pi + log|det U|``.
    State: ``[init, log normaliser, alpha (K), z (d), log-likelihoods (K)]``; ``alpha`` is
    the filtered posterior of the previous bar (carried across refits: stable order).
    With ``DX_A`` = 1 the prior is ``start`` on every bar (mixture, no dynamics).

    One call filters a run of bars (no call per bar); :func:`gaussian_update_nb` is the
    one-bar case, so both give the same bits.
    """
    k_n = int(dparams[D_N_STATES])
    d = int(dparams[DX_N_IN])
    full = dparams[DX_COV_FULL] != 0.0
    iid = dparams[DX_A] != 0.0
    o_start = DX_INPUTS + DX_IN_STRIDE * d
    o_trans = o_start + k_n
    o_mean = o_trans + k_n * k_n
    o_u = o_mean + k_n * d
    o_lc = o_u + k_n * d * d
    o_alpha = DXS_HEADER
    o_z = o_alpha + k_n
    o_ll = o_z + d
    best = -1
    log_lik = 0.0
    for t in range(t_from, t_to):
        for i in range(d):
            base = DX_INPUTS + DX_IN_STRIDE * i
            src = int(dparams[base + DXI_SRC])
            x = feats[t, src] if src >= 0 else exog[t, -src - 1]
            log = dparams[base + DXI_LOG] != 0.0
            mean, scale = dparams[base + DXI_MEAN], dparams[base + DXI_SCALE]
            dstate[o_z + i] = standardize_input_nb(x, log, mean, scale)
        # emission log-likelihoods
        ll_max = -np.inf
        for k in range(k_n):
            q = 0.0
            mk = o_mean + k * d
            uk = o_u + k * d * d
            if full:
                for i in range(d):
                    s = 0.0
                    row = uk + i * d
                    for j in range(i + 1):
                        s += dparams[row + j] * (dstate[o_z + j] - dparams[mk + j])
                    q += s * s
            else:
                for i in range(d):
                    s = dparams[uk + i * d + i] * (dstate[o_z + i] - dparams[mk + i])
                    q += s * s
            v = dparams[o_lc + k] - 0.5 * q
            dstate[o_ll + k] = v
            if v > ll_max:
                ll_max = v
        # prediction
        if dstate[DXS_INIT] == 0.0 or iid:
            for k in range(k_n):
                post[t, k] = dparams[o_start + k]
        else:
            for j in range(k_n):
                post[t, j] = 0.0
            for i in range(k_n):
                a = dstate[o_alpha + i]
                if a != 0.0:
                    row = o_trans + i * k_n
                    for j in range(k_n):
                        post[t, j] += a * dparams[row + j]
        # update
        total = 0.0
        finite_max = np.isfinite(ll_max)
        for k in range(k_n):
            v = dstate[o_ll + k]
            if v != ll_max or not finite_max:  # exp(0) = 1 exactly: the likeliest state needs none
                post[t, k] *= np.exp(v - ll_max)
            total += post[t, k]
        if not (total > 0.0) or not np.isfinite(total):
            # the prior rules every state out (or the input is absurd): restart from emissions
            total = 0.0
            for k in range(k_n):
                post[t, k] = np.exp(dstate[o_ll + k] - ll_max)
                total += post[t, k]
        best = 0
        for k in range(k_n):
            post[t, k] /= total
            dstate[o_alpha + k] = post[t, k]
            if post[t, k] > post[t, best]:
                best = k
        dstate[DXS_LOGNORM] = np.log(total) + ll_max
        dstate[DXS_INIT] = 1.0
        log_lik += dstate[DXS_LOGNORM]
    return best, log_lik


@nb.njit(cache=True, inline="always")
def gaussian_update_nb(
    dparams: np.ndarray, dstate: np.ndarray, feats: np.ndarray, exog: np.ndarray, post: np.ndarray
) -> int:
    """One bar of :func:`gaussian_rows_nb` (the step's online update)."""
    one = feats[None, :], exog[None, :], post[None, :]
    return gaussian_rows_nb(dparams, dstate, one[0], one[1], ZERO, ZERO + 1, one[2])[0]


@nb.njit(cache=True)
def jump_update_nb(
    dparams: np.ndarray, dstate: np.ndarray, feats: np.ndarray, exog: np.ndarray, post: np.ndarray
) -> int:
    """Statistical jump model, online: the forward dynamic program over past bars only.

    ``V_t(k) = |z_t - c_k|^2 + min(V_{t-1}(k), min_j V_{t-1}(j) + lambda)``; the state is
    ``argmin_k V_t(k)`` (the last state of the optimal penalised path through bar t), the
    posterior ``softmax(-(V - min V) / temperature)``. Body: centroids (K*d).
    State: ``[init, -, V (K), z (d)]``.
    """
    k_n = int(dparams[D_N_STATES])
    d = int(dparams[DX_N_IN])
    lam = dparams[DX_A]
    temp = dparams[DX_B]
    o_c = DX_INPUTS + DX_IN_STRIDE * d
    o_v = DXS_HEADER
    o_z = o_v + k_n
    z = dstate[o_z : o_z + d]
    load_inputs_nb(dparams, feats, exog, z)
    first = dstate[DXS_INIT] == 0.0
    vmin_prev = np.inf
    if not first:
        for k in range(k_n):
            if dstate[o_v + k] < vmin_prev:
                vmin_prev = dstate[o_v + k]
    vmin = np.inf
    best = 0
    for k in range(k_n):
        loss = 0.0
        ck = o_c + k * d
        for i in range(d):
            e = z[i] - dparams[ck + i]
            loss += e * e
        if first:
            v = loss
        else:
            stay = dstate[o_v + k]
            jump = vmin_prev + lam
            v = loss + (stay if stay < jump else jump)
        dstate[o_v + k] = v
        if v < vmin:
            vmin = v
            best = k
    total = 0.0
    for k in range(k_n):
        dstate[o_v + k] -= vmin
        post[k] = np.exp(-dstate[o_v + k] / temp)
        total += post[k]
    for k in range(k_n):
        post[k] /= total
    dstate[DXS_INIT] = 1.0
    return best


@nb.njit(cache=True)
def logit_update_nb(
    dparams: np.ndarray, dstate: np.ndarray, feats: np.ndarray, exog: np.ndarray, post: np.ndarray
) -> int:
    """Supervised: multinomial logistic regression, ``softmax(W z + b)``.

    Body: W (K*d), b (K). State: ``[init, -, z (d)]``.
    """
    k_n = int(dparams[D_N_STATES])
    d = int(dparams[DX_N_IN])
    o_w = DX_INPUTS + DX_IN_STRIDE * d
    o_b = o_w + k_n * d
    o_z = DXS_HEADER
    z = dstate[o_z : o_z + d]
    load_inputs_nb(dparams, feats, exog, z)
    best = linear_softmax_nb(dparams, o_w, o_b, z, d, k_n, post)
    dstate[DXS_INIT] = 1.0
    return best


@nb.njit(cache=True)
def bocpd_update_nb(
    dparams: np.ndarray, dstate: np.ndarray, feats: np.ndarray, exog: np.ndarray, post: np.ndarray
) -> int:
    """Bayesian online changepoint detection (Adams & MacKay 2007), truncated run length.

    Model: the first input is Gaussian with unknown mean and variance (Normal-inverse-gamma
    prior, body ``[mu0, kappa0, alpha0, beta0, lgamma(a_r + 1/2) - lgamma(a_r) for
    a_r = alpha0 + r/2, r < R]``), constant hazard ``DX_A``; run lengths
    ``0 .. R-1`` (``R`` = ``DX_B``), the last bin absorbing. Posterior: ``[P(run >= w),
    P(run < w)]`` with ``w`` = ``DX_C`` ("a change happened in the last w bars").
    State: ``[init, log evidence, P (R), mu (R), kappa (R), alpha (R), beta (R), pred (R)]``.
    """
    d = int(dparams[DX_N_IN])
    hazard = dparams[DX_A]
    r_n = int(dparams[DX_B])
    w = int(dparams[DX_C])
    o = DX_INPUTS + DX_IN_STRIDE * d
    mu0 = dparams[o]
    kappa0 = dparams[o + 1]
    alpha0 = dparams[o + 2]
    beta0 = dparams[o + 3]
    o_p = DXS_HEADER
    o_mu = o_p + r_n
    o_ka = o_mu + r_n
    o_al = o_ka + r_n
    o_be = o_al + r_n
    o_pr = o_be + r_n
    x = 0.0
    zbuf = post[:1]  # scratch: post is rewritten below
    load_inputs_nb(dparams, feats, exog, zbuf)
    x = zbuf[0]
    if dstate[DXS_INIT] == 0.0:
        for r in range(r_n):
            dstate[o_p + r] = 0.0
        dstate[o_p] = 1.0
        dstate[o_mu] = mu0
        dstate[o_ka] = kappa0
        dstate[o_al] = alpha0
        dstate[o_be] = beta0
        dstate[DXS_INIT] = 1.0
    # predictive (Student-t) of x under each run length, times its probability
    cp = 0.0
    for r in range(r_n):
        p = dstate[o_p + r]
        if p < 1e-300:
            dstate[o_pr + r] = 0.0
            continue
        al = dstate[o_al + r]
        ka = dstate[o_ka + r]
        s2 = dstate[o_be + r] * (ka + 1.0) / (al * ka)
        e = x - dstate[o_mu + r]
        if r < r_n - 1:
            lg = dparams[o + 4 + r]  # alpha_r = alpha0 + r/2 exactly: tabulated
        else:
            lg = math.lgamma(al + 0.5) - math.lgamma(al)
        lp = (
            lg
            - 0.5 * np.log(2.0 * al * np.pi * s2)
            - (al + 0.5) * np.log1p(e * e / (2.0 * al * s2))
        )
        g = p * np.exp(lp)
        dstate[o_pr + r] = g
        cp += g
    evidence = cp
    # absorbing last bin keeps the statistics of whichever feeder carries more mass
    last_keep = dstate[o_pr + r_n - 1] >= dstate[o_pr + r_n - 2] if r_n >= 2 else True
    grow_last = dstate[o_pr + r_n - 1] + (dstate[o_pr + r_n - 2] if r_n >= 2 else 0.0)
    # update statistics, shifting run lengths up by one (from the top down)
    for r in range(r_n - 1, 0, -1):
        src = r if (r == r_n - 1 and last_keep) else r - 1
        mu = dstate[o_mu + src]
        ka = dstate[o_ka + src]
        e = x - mu
        dstate[o_mu + r] = (ka * mu + x) / (ka + 1.0)
        dstate[o_be + r] = dstate[o_be + src] + ka * e * e / (2.0 * (ka + 1.0))
        dstate[o_ka + r] = ka + 1.0
        dstate[o_al + r] = dstate[o_al + src] + 0.5
        if r == r_n - 1:
            dstate[o_p + r] = grow_last * (1.0 - hazard)
        else:
            dstate[o_p + r] = dstate[o_pr + r - 1] * (1.0 - hazard)
    dstate[o_mu] = mu0
    dstate[o_ka] = kappa0
    dstate[o_al] = alpha0
    dstate[o_be] = beta0
    dstate[o_p] = cp * hazard
    if not (evidence > 0.0) or not np.isfinite(evidence):
        for r in range(r_n):
            dstate[o_p + r] = 0.0
        dstate[o_p] = 1.0
        evidence = 1.0
    recent = 0.0
    for r in range(r_n):
        dstate[o_p + r] /= evidence
        if r < w:
            recent += dstate[o_p + r]
    dstate[DXS_LOGNORM] = np.log(evidence)
    post[:] = 0.0
    post[1] = recent
    post[0] = 1.0 - recent
    return 1 if recent > 0.5 else 0


@nb.njit(cache=True, inline="always")
def external_update_nb(dparams: np.ndarray, exog: np.ndarray, post: np.ndarray) -> int:
    """Posterior computed outside (e.g. ``predict_proba``), read from the inputs row at
    column ``dparams[DE_COL]``; uniform and -1 while it is not finite."""
    k = post.shape[0]
    col = int(dparams[DE_COL])
    total = 0.0
    for i in range(k):
        v = exog[col + i]
        if not (np.isfinite(v) and v >= 0.0):
            post[:] = 1.0 / k
            return -1
        total += v
    if total <= 0.0:
        post[:] = 1.0 / k
        return -1
    best = 0
    for i in range(k):
        post[i] = exog[col + i] / total
        if post[i] > post[best]:
            best = i
    return best


@nb.njit(cache=True)
def detector_update_nb(
    dparams: np.ndarray,
    dstate: np.ndarray,
    feats: np.ndarray,
    exog: np.ndarray,
    post: np.ndarray,
) -> int:
    """Dispatch one online update to the detector kind named in ``dparams[D_KIND]``."""
    kind = int(dparams[D_KIND])
    if kind == DET_NONE:
        post[:] = 1.0
        return 0
    if kind == DET_RULE:
        return rule_update_nb(dparams, dstate, feats, post)
    if kind == DET_HMM or kind == DET_GMM or kind == DET_KMEANS:
        return gaussian_update_nb(dparams, dstate, feats, exog, post)
    if kind == DET_JUMP:
        return jump_update_nb(dparams, dstate, feats, exog, post)
    if kind == DET_LOGIT:
        return logit_update_nb(dparams, dstate, feats, exog, post)
    if kind == DET_BOCPD:
        return bocpd_update_nb(dparams, dstate, feats, exog, post)
    if kind == DET_GRU:
        return gru_update_nb(dparams, dstate, feats, exog, post)
    if kind == DET_EXTERNAL:
        return external_update_nb(dparams, exog, post)
    post[:] = 1.0 / dparams[D_N_STATES]
    return -1


@nb.njit(cache=True, inline="always")
def argmax_state_nb(post: np.ndarray) -> int:
    best = 0
    for k in range(1, post.shape[0]):
        if post[k] > post[best]:
            best = k
    return best


@nb.njit(cache=True, inline="always")
def smooth_state_nb(raw: int, post: np.ndarray, smooth: np.ndarray, rstate: np.ndarray) -> None:
    """Hysteresis for trading: probability threshold, minimum dwell and confirmation bars.

    Writes the smoothed state, its dwell and the changed flag into ``rstate``.
    """
    rstate[G_RAW] = raw
    rstate[G_CHANGED] = 0.0
    cur = int(rstate[G_SMOOTHED])
    if raw >= 0 and raw != cur:
        if raw == int(rstate[G_CAND]):
            rstate[G_CAND_COUNT] += 1.0
        else:
            rstate[G_CAND] = raw
            rstate[G_CAND_COUNT] = 1.0
        if cur < 0 or (
            post[raw] >= smooth[S_PROB_THRESHOLD]
            and rstate[G_DWELL] >= smooth[S_MIN_DWELL]
            and rstate[G_CAND_COUNT] >= smooth[S_CONFIRM]
        ):
            rstate[G_SMOOTHED] = raw
            rstate[G_DWELL] = 0.0
            rstate[G_CHANGED] = 1.0
            rstate[G_CAND] = -1.0
            rstate[G_CAND_COUNT] = 0.0
    elif raw == cur:
        rstate[G_CAND] = -1.0
        rstate[G_CAND_COUNT] = 0.0
    if int(rstate[G_SMOOTHED]) >= 0:
        rstate[G_DWELL] += 1.0


@nb.njit(cache=True)
def score_rows_nb(
    dparams: np.ndarray, feats: np.ndarray, exog: np.ndarray, state_size: int, n_states: int
) -> float:
    """Sum of the per-bar log normalisers (log-likelihood, standardized space) of a fresh
    filter run over feature rows ``feats`` (T, F) and ``exog`` (T, E)."""
    dstate = np.zeros(state_size)
    kind = int(dparams[D_KIND])
    if kind == DET_HMM or kind == DET_GMM or kind == DET_KMEANS:
        post_rows = np.empty((feats.shape[0], n_states))
        return gaussian_rows_nb(dparams, dstate, feats, exog, ZERO, feats.shape[0], post_rows)[1]
    post = np.empty(n_states)
    total = 0.0
    for t in range(feats.shape[0]):
        detector_update_nb(dparams, dstate, feats[t], exog[t], post)
        total += dstate[DXS_LOGNORM]
    return total


@nb.njit(cache=True)
def filter_rows_nb(
    dparams: np.ndarray, feats: np.ndarray, exog: np.ndarray, state_size: int, n_states: int
) -> np.ndarray:
    """Posteriors (T, K) of a fresh online filter run over feature rows (fixed parameters)."""
    rows = np.empty((1, dparams.shape[0]))
    for i in range(dparams.shape[0]):  # element loop: slice assignment costs compile time
        rows[0, i] = dparams[i]
    out = np.empty((feats.shape[0], n_states))
    raw = np.empty(feats.shape[0], dtype=np.int64)
    fit_bar = np.zeros(1, dtype=np.int64)
    filter_history_nb(rows, fit_bar, ZERO, feats, exog, np.zeros(state_size), out, raw)
    return out


@nb.njit(cache=True)
def filter_history_nb(
    dparams: np.ndarray,
    fit_bar: np.ndarray,
    t0: int,
    feats: np.ndarray,
    exog: np.ndarray,
    dstate: np.ndarray,
    post: np.ndarray,
    raw: np.ndarray,
) -> None:
    """The online filter over a feature history whose first row is bar ``t0``: at bar
    ``t`` the parameter row in force (the last with ``fit_bar <= t``) filters row ``t``;
    ``post`` (T, K) gets the posteriors (uniform before the first fit), ``raw`` (T,) the
    raw states (-1: silent). The Gaussian kinds filter each run of bars under one row in
    one call (:func:`gaussian_rows_nb`), the others bar by bar; the same bits either way.
    """
    t_len = feats.shape[0]
    k_n = post.shape[1]
    k = -1
    while k + 1 < fit_bar.shape[0] and fit_bar[k + 1] <= t0:
        k += 1
    t = 0
    while t < t_len:
        end = t_len if k + 1 >= fit_bar.shape[0] else min(t_len, fit_bar[k + 1] - t0)
        kind = int(dparams[max(k, 0), D_KIND])
        if k < 0:
            for s in range(t, end):
                for i in range(k_n):
                    post[s, i] = 1.0 / k_n
                raw[s] = -1
        elif kind == DET_HMM or kind == DET_GMM or kind == DET_KMEANS:
            gaussian_rows_nb(dparams[k], dstate, feats, exog, t, end, post)
            for s in range(t, end):
                raw[s] = argmax_state_nb(post[s])
        elif kind == DET_NONE:  # as detector_update_nb, without a call per bar
            for s in range(t, end):
                for i in range(k_n):
                    post[s, i] = 1.0
                raw[s] = 0
        else:
            row = dparams[k]
            for s in range(t, end):
                raw[s] = detector_update_nb(row, dstate, feats[s], exog[s], post[s])
        t = end
        while k + 1 < fit_bar.shape[0] and fit_bar[k + 1] <= t0 + t:
            k += 1


@nb.njit(cache=True)
def online_run_nb(
    dparams: np.ndarray,
    fit_bar: np.ndarray,
    feats: np.ndarray,
    exog: np.ndarray,
    dstate: np.ndarray,
    post: np.ndarray,
) -> np.ndarray:
    """The detector half of the compiled driver over a feature history: at bar ``t`` the
    parameter row in force (last ``fit_bar <= t``) filters row ``t``; ``post`` (T, K) gets
    the posteriors (uniform before the first fit). Returns the raw states (-1: silent)."""
    raw = np.empty(feats.shape[0], dtype=np.int64)
    filter_history_nb(dparams, fit_bar, ZERO, feats, exog, dstate, post, raw)
    return raw

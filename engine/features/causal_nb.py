"""Incremental causal features (njit): each bar updates a small state and writes a row.

The feature row of bar ``t`` depends only on closes ``<= t``. Per asset it holds
``N_FEAT_ASSET`` values laid out as in :mod:`engine.ground.layout` (log return, fast/slow
EWMA volatility, gap to the simple moving average, drawdown from the running peak, RSI).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from engine.ground.layout import (
    F_DRAWDOWN,
    F_LOGRET,
    F_MA_GAP,
    F_RSI,
    F_VOL_FAST,
    F_VOL_SLOW,
    FP_HL_FAST,
    FP_HL_SLOW,
    FP_MA_WINDOW,
    FP_MASKED,
    FP_RSI_WINDOW,
    FS_COUNT,
    FS_HEADER,
    FS_MA_SUM,
    FS_PEAK,
    FS_PREV_CLOSE,
    FS_RSI_DOWN,
    FS_RSI_UP,
    FS_VAR_FAST,
    FS_VAR_SLOW,
    N_FEAT_ASSET,
    N_FEAT_PARAMS,
)


def feature_state_size(n_assets: int, fparams: np.ndarray) -> int:
    """Length of the feature state vector for ``n_assets`` and parameters ``fparams``."""
    return n_assets * (FS_HEADER + int(fparams[FP_MA_WINDOW]))


def with_asset_mask(fparams: np.ndarray, used: np.ndarray) -> np.ndarray:
    """``fparams`` computing only the assets flagged in ``used`` (bool, one per asset).

    Unused assets' feature values stay 0 in both drivers: lazy features cost nothing.
    """
    base = np.asarray(fparams, dtype=np.float64)[:N_FEAT_PARAMS].copy()
    base[FP_MASKED] = 1.0
    return np.concatenate([base, np.asarray(used, dtype=np.float64)])


def used_assets(fparams: np.ndarray, n_assets: int) -> np.ndarray:
    """Bool per asset: is its feature block computed under ``fparams``?"""
    if fparams.shape[0] <= N_FEAT_PARAMS or fparams[FP_MASKED] == 0.0:
        return np.ones(n_assets, dtype=np.bool_)
    return np.asarray(fparams[N_FEAT_PARAMS : N_FEAT_PARAMS + n_assets] != 0.0)


@nb.njit(cache=True, inline="always")
def halflife_alpha_nb(halflife: float) -> float:
    """EWMA weight of the newest observation for a half-life in bars."""
    return 1.0 - np.exp(np.log(0.5) / halflife)


@nb.njit(cache=True, inline="always")
def feature_alphas_nb(fparams: np.ndarray) -> tuple[float, float]:
    """EWMA weights ``(fast, slow)`` of the volatility features (once per run)."""
    return halflife_alpha_nb(fparams[FP_HL_FAST]), halflife_alpha_nb(fparams[FP_HL_SLOW])


@nb.njit(cache=True, inline="always")
def features_update_nb(
    close: np.ndarray, fparams: np.ndarray, fstate: np.ndarray, out: np.ndarray
) -> None:
    """Update the feature state with this bar's closes and write the feature row ``out``."""
    a_fast, a_slow = feature_alphas_nb(fparams)
    features_update_with_nb(close, fparams, a_fast, a_slow, fstate, out)


@nb.njit(cache=True, inline="always")
def features_update_with_nb(
    close: np.ndarray,
    fparams: np.ndarray,
    a_fast: float,
    a_slow: float,
    fstate: np.ndarray,
    out: np.ndarray,
) -> None:
    """:func:`features_update_nb` with the EWMA weights given (:func:`feature_alphas_nb`)."""
    n = close.shape[0]
    window = int(fparams[FP_MA_WINDOW])
    a_rsi = 1.0 / fparams[FP_RSI_WINDOW]
    block = FS_HEADER + window
    masked = fparams[FP_MASKED] != 0.0
    for j in range(n):
        if masked and fparams[N_FEAT_PARAMS + j] == 0.0:
            continue
        s = j * block
        o = j * N_FEAT_ASSET
        c = close[j]
        count = fstate[s + FS_COUNT]
        if count == 0.0:
            r = 0.0
            fstate[s + FS_PEAK] = c
        else:
            prev = fstate[s + FS_PREV_CLOSE]
            r = np.log(c / prev)
            r2 = r * r
            if count == 1.0:
                fstate[s + FS_VAR_FAST] = r2
                fstate[s + FS_VAR_SLOW] = r2
            else:
                fstate[s + FS_VAR_FAST] += a_fast * (r2 - fstate[s + FS_VAR_FAST])
                fstate[s + FS_VAR_SLOW] += a_slow * (r2 - fstate[s + FS_VAR_SLOW])
            up = r if r > 0.0 else 0.0
            dn = -r if r < 0.0 else 0.0
            fstate[s + FS_RSI_UP] += a_rsi * (up - fstate[s + FS_RSI_UP])
            fstate[s + FS_RSI_DOWN] += a_rsi * (dn - fstate[s + FS_RSI_DOWN])
            if c > fstate[s + FS_PEAK]:
                fstate[s + FS_PEAK] = c
        # simple moving average over a ring buffer of closes
        k = int(count) % window
        if count >= window:
            fstate[s + FS_MA_SUM] -= fstate[s + FS_HEADER + k]
        fstate[s + FS_HEADER + k] = c
        fstate[s + FS_MA_SUM] += c
        count += 1.0
        fstate[s + FS_COUNT] = count
        fstate[s + FS_PREV_CLOSE] = c

        out[o + F_LOGRET] = r
        out[o + F_VOL_FAST] = np.sqrt(fstate[s + FS_VAR_FAST])
        out[o + F_VOL_SLOW] = np.sqrt(fstate[s + FS_VAR_SLOW])
        if count >= window:
            out[o + F_MA_GAP] = c / (fstate[s + FS_MA_SUM] / window) - 1.0
        else:
            out[o + F_MA_GAP] = 0.0
        out[o + F_DRAWDOWN] = c / fstate[s + FS_PEAK] - 1.0
        up_avg = fstate[s + FS_RSI_UP]
        dn_avg = fstate[s + FS_RSI_DOWN]
        if count <= fparams[FP_RSI_WINDOW] or up_avg + dn_avg == 0.0:
            out[o + F_RSI] = 50.0
        else:
            out[o + F_RSI] = 100.0 * up_avg / (up_avg + dn_avg)


@nb.njit(cache=True)
def features_history_nb(close: np.ndarray, fparams: np.ndarray, fstate: np.ndarray) -> np.ndarray:
    """Run :func:`features_update_nb` over a ``(T, N)`` close history; returns ``(T, F)``."""
    t_len, n = close.shape
    out = np.zeros((t_len, n * N_FEAT_ASSET))
    for t in range(t_len):
        features_update_nb(close[t], fparams, fstate, out[t])
    return out

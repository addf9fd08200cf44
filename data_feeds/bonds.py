"""Constant-maturity bond total returns from a daily yield series.

Each bar the index holds a freshly issued par bond of ``maturity_years`` with semiannual
coupons, bought at yesterday's yield ``y_{t-1}`` (decimal). Its one-bar total return is

    r_t = y_{t-1} / 252  -  D * dy  +  0.5 * C * dy**2,      dy = y_t - y_{t-1}

with ``D`` and ``C`` the modified duration and convexity (in years, years**2) of that par bond
at ``y_{t-1}``. Carry accrues per bar (1/252 of a year), not per calendar day; the
roll-down of the one-day-older bond is ignored (second order for daily bars).
"""

from __future__ import annotations

import numpy as np

BARS_PER_YEAR = 252.0


def par_bond_price(
    coupon: np.ndarray | float, yields: np.ndarray | float, maturity_years: float
) -> np.ndarray:
    """Price (per 1 face) of a bond paying ``coupon/2`` semiannually, at yield ``yields``."""
    n = round(2 * maturity_years)
    if n < 1:
        raise ValueError(f"maturity_years must be at least 0.5, got {maturity_years}")
    c = np.asarray(coupon, dtype=np.float64)[..., None]
    v = 1.0 / (1.0 + np.asarray(yields, dtype=np.float64)[..., None] / 2.0)
    k = np.arange(1, n + 1, dtype=np.float64)
    disc = v**k
    return np.asarray((c / 2.0 * disc).sum(axis=-1) + disc[..., -1])


def par_duration_convexity(
    yields: np.ndarray | float, maturity_years: float
) -> tuple[np.ndarray, np.ndarray]:
    """Modified duration and convexity of a semiannual par bond (coupon = yield)."""
    n = round(2 * maturity_years)
    if n < 1:
        raise ValueError(f"maturity_years must be at least 0.5, got {maturity_years}")
    y = np.asarray(yields, dtype=np.float64)[..., None]
    k = np.arange(1, n + 1, dtype=np.float64)
    cf = np.broadcast_to(y / 2.0, (*y.shape[:-1], n)).copy()
    cf[..., -1] += 1.0
    g = 1.0 + y / 2.0
    price = (cf * g**-k).sum(axis=-1)
    dp = (cf * (k / 2.0) * g ** (-k - 1)).sum(axis=-1)  # -dP/dy
    d2p = (cf * (k / 2.0) * ((k + 1) / 2.0) * g ** (-k - 2)).sum(axis=-1)
    return dp / price, d2p / price


def bond_total_return(yields: np.ndarray, maturity_years: float) -> np.ndarray:
    """Per-bar total returns of a constant-maturity par bond from decimal yields, shape (T,).

    ``r[0] = 0`` (no previous yield); ``r[t]`` uses ``y[t-1]`` and ``y[t]`` as in the module
    docstring. NaN yields propagate.
    """
    y = np.asarray(yields, dtype=np.float64)
    if y.ndim != 1:
        raise ValueError(f"yields must be one-dimensional, got shape {y.shape}")
    r = np.zeros_like(y)
    if y.size < 2:
        return r
    y0 = y[:-1]
    dy = np.diff(y)
    dur, conv = par_duration_convexity(y0, maturity_years)
    r[1:] = y0 / BARS_PER_YEAR - dur * dy + 0.5 * conv * dy**2
    return r

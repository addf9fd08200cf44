"""Compiled single passes of loading: the bar checks, and the time order and calendars of
a long table's symbol blocks.

Each pass only answers "all good?": when a check fails, the
vectorised checks of :mod:`data_feeds.validation` run to name the first bad row, so every
message is theirs. Numbers only (NumPy arrays in, scalars or arrays out), ``cache=True``.
"""

from __future__ import annotations

import numba as nb
import numpy as np

__all__ = ["bars_ok_nb", "block_calendar_nb", "interleaved_calendar_nb"]


@nb.njit(cache=True, nogil=True)
def bars_ok_nb(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    tol: float,
) -> bool:
    """Every bar passes every check of ``validation`` (finite fields, positive prices,
    non-negative volume, ``high >= low``, open and close inside ``[low, high]`` up to the
    relative ``tol``), in one pass over the five columns."""
    strict = True  # first the checks without the tolerance: branch-free, vectorised
    for i in range(open_.size):
        o = open_[i]
        h = high[i]
        lo = low[i]
        c = close[i]
        v = volume[i]
        # comparisons with NaN are False: a NaN anywhere fails one of them
        strict &= (lo > 0.0) & (h < np.inf) & (v >= 0.0) & (v < np.inf)
        strict &= (o >= lo) & (o <= h) & (c >= lo) & (c <= h)
    if strict:
        return True
    for i in range(open_.size):  # rare: open or close outside [low, high], by rounding?
        o = open_[i]
        h = high[i]
        lo = low[i]
        c = close[i]
        v = volume[i]
        good = (o > 0.0) & (c > 0.0) & (lo > 0.0) & (h >= lo) & (h < np.inf)
        good &= (v >= 0.0) & (v < np.inf) & (o < np.inf) & (c < np.inf)
        good &= (o <= h * (1 + tol)) & (o >= lo * (1 - tol))
        good &= (c <= h * (1 + tol)) & (c >= lo * (1 - tol))
        if not good:
            return False
    return True


@nb.njit(cache=True, nogil=True)
def block_calendar_nb(t: np.ndarray, bounds: np.ndarray) -> tuple[bool, bool]:
    """``(increasing, same)`` for the blocks ``t[bounds[k]:bounds[k + 1]]`` of a long
    table: times strictly increasing within every block; every block holding the first
    block's times."""
    increasing = True
    n0 = bounds[1] - bounds[0]
    same = True
    for k in range(bounds.size - 1):
        a = bounds[k]
        b = bounds[k + 1]
        for i in range(a + 1, b):
            increasing &= t[i - 1] < t[i]
        if b - a != n0:
            same = False
        elif same and k > 0:
            for i in range(b - a):
                if t[a + i] != t[bounds[0] + i]:
                    same = False
                    break
    return increasing, same


@nb.njit(cache=True, nogil=True)
def interleaved_calendar_nb(t: np.ndarray, n: int) -> bool:
    """Rows ``n k .. n k + n - 1`` of ``t`` share one time and those times strictly
    increase with ``k`` (a long table sorted by time, every symbol at every time)."""
    for k in range(t.size // n):
        a = k * n
        if k and not t[a - n] < t[a]:
            return False
        for i in range(a + 1, a + n):
            if t[i] != t[a]:
                return False
    return True

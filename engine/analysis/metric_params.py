"""The Python side of :mod:`engine.analysis.metrics_nb`: output key names and the
``params`` vector of :func:`~engine.analysis.metrics_nb.summary_nb` (scipy's normal
quantiles, computed once per set of levels; kept out of the kernel file, which imports
only numpy, numba and kernels)."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import numpy as np

from engine.analysis.metrics_nb import HEAD_KEYS, TAIL_KEYS


def level_tag(level: float) -> str:
    """``0.95`` -> ``"95"`` (the key suffix of :func:`engine.analysis.metrics.return_stats`)."""
    return f"{round(level * 100):d}"


@lru_cache(maxsize=16)
def output_keys(levels: tuple[float, ...]) -> tuple[str, ...]:
    """Names of :func:`summary_nb`'s output slots, in :func:`summary`'s key order."""
    keys = list(HEAD_KEYS)
    for lv in levels:
        t = level_tag(lv)
        keys += [f"var{t}", f"cvar{t}", f"var{t}_gaussian", f"cvar{t}_gaussian"]
        keys += [f"var{t}_cf", f"cvar{t}_cf"]
    return (*keys, *TAIL_KEYS)


NORMAL_CONSTANTS: dict[float, tuple[float, float]] = {
    0.9: (-1.2815515655446004, 0.17549833193248685),
    0.95: (-1.6448536269514722, 0.10313564037537139),
    0.975: (-1.959963984540054, 0.05844506980503538),
    0.99: (-2.3263478740408408, 0.02665214220345808),
}
"""``level -> (scipy.stats.norm.ppf(1 - level), scipy.stats.norm.pdf(that))`` for the usual
levels, exactly as scipy computes them (a test checks it), so a backtest does not import
scipy.stats (about half a second) for four numbers; other levels ask scipy."""


def normal_constants(level: float) -> tuple[float, float]:
    """``(z, phi(z))`` with ``z = scipy.stats.norm.ppf(1 - level)``, bit for bit."""
    known = NORMAL_CONSTANTS.get(level)
    if known is not None:
        return known
    from scipy import stats

    z = float(stats.norm.ppf(1.0 - level))
    return z, float(stats.norm.pdf(z))


@lru_cache(maxsize=16)
def level_params(levels: tuple[float, ...]) -> np.ndarray:
    """Per-level constants (the same Python expressions as the reference functions)."""
    out = []
    for lv in levels:
        alpha = 1.0 - lv
        z, phi = normal_constants(lv)
        out += [alpha, z, phi, z**2 - 1, z**3 - 3 * z, 2 * z**3 - 5 * z, 2 * z**2 - 1]
    arr = np.asarray(out, dtype=np.float64)
    arr.setflags(write=False)
    return arr


def make_params(
    periods_per_year: float,
    notional: float = 0.0,
    n_fills: int = 0,
    costs: float = 0.0,
    levels: Iterable[float] = (0.95, 0.99),
) -> np.ndarray:
    """The ``params`` vector of :func:`summary_nb`."""
    lv = tuple(levels)
    head = np.array([periods_per_year, notional, n_fills, costs, len(lv)], dtype=np.float64)
    return np.concatenate((head, level_params(lv)))

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


@lru_cache(maxsize=16)
def level_params(levels: tuple[float, ...]) -> np.ndarray:
    """Per-level constants (the same Python expressions as the reference functions)."""
    from scipy import stats

    out = []
    for lv in levels:
        alpha = 1.0 - lv
        z = float(stats.norm.ppf(1.0 - lv))
        phi = float(stats.norm.pdf(z))
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

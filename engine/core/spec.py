"""Run settings (re-exported from :mod:`engine.ground.spec`) and the rebalance calendar."""

from __future__ import annotations

import numpy as np

from engine.ground.spec import CostModel, Execution, Features, Smoothing, cost_table

__all__ = [
    "CALENDAR_FREQS",
    "CostModel",
    "Execution",
    "Features",
    "Smoothing",
    "cost_table",
    "new_period_flags",
    "period_bounds",
    "period_keys",
]

CALENDAR_FREQS = ("D", "W", "M", "Q", "Y")


NS_PER_DAY = 86_400_000_000_000


def period_keys(timestamps_ns: np.ndarray, freq: str | None) -> np.ndarray:
    """An int64 key per bar identifying its calendar period (``freq`` in D/W/M/Q/Y).

    Pure integer arithmetic on epoch nanoseconds, so the streaming driver computes the
    same keys bar by bar as the compiled driver does for a whole history.
    """
    ns = np.asarray(timestamps_ns, dtype=np.int64)
    if freq is None:
        return np.zeros(ns.shape, dtype=np.int64)
    days = np.floor_divide(ns, NS_PER_DAY)
    if freq == "D":
        return days
    if freq == "W":
        return np.floor_divide(days + 3, 7)  # 1970-01-01 is a Thursday: weeks start Monday
    months = ns.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    if freq == "M":
        return months
    if freq == "Q":
        return np.floor_divide(months, 3)
    if freq == "Y":
        return np.floor_divide(months, 12)
    raise ValueError(f"rebalance frequency must be one of {CALENDAR_FREQS} or none, got {freq!r}")


def period_bounds(ts_ns: int, freq: str | None) -> tuple[int, int, int]:
    """``(key, start_ns, end_ns)`` of the calendar period holding ``ts_ns`` (same keys as
    :func:`period_keys`); lets the streaming driver test a bar with two comparisons."""
    if freq is None:
        return 0, -(2**63), 2**63 - 1
    key = int(period_keys(np.array([ts_ns], dtype=np.int64), freq)[0])
    if freq == "D":
        return key, key * NS_PER_DAY, (key + 1) * NS_PER_DAY
    if freq == "W":
        return key, (key * 7 - 3) * NS_PER_DAY, (key * 7 + 4) * NS_PER_DAY
    months = {"M": 1, "Q": 3, "Y": 12}[freq]
    lo = np.datetime64(key * months, "M").astype("datetime64[ns]").astype(np.int64)
    hi = np.datetime64((key + 1) * months, "M").astype("datetime64[ns]").astype(np.int64)
    return key, int(lo), int(hi)


def new_period_flags(timestamps_ns: np.ndarray, freq: str | None) -> np.ndarray:
    """True on the first bar of each calendar period after the first bar (causal: it
    compares each bar's period with the previous bar's)."""
    keys = period_keys(timestamps_ns, freq)
    flags = np.zeros(len(keys), dtype=np.bool_)
    if freq is not None and len(keys) > 1:
        flags[1:] = keys[1:] != keys[:-1]
    return flags

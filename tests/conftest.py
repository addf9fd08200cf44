"""Shared fixtures: small synthetic panels and the bundled classic one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.ground.bars import BarPanel


def random_panel(t_len: int = 400, n: int = 3, seed: int = 0, volume: float = 1e6) -> BarPanel:
    """A random-walk OHLCV panel with consistent high/low and gaps at the open."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0002, 0.012, (t_len, n))
    close = 100.0 * np.exp(np.cumsum(r, axis=0))
    gap = np.exp(rng.normal(0.0, 0.003, (t_len, n)))
    op = np.vstack([close[:1], close[:-1]]) * gap
    high = np.maximum(op, close) * 1.001
    low = np.minimum(op, close) * 0.999
    vol = np.full((t_len, n), volume)
    return BarPanel(
        pd.bdate_range("2001-01-01", periods=t_len),
        tuple(f"A{j}" for j in range(n)),
        op,
        high,
        low,
        close,
        vol,
    )


@pytest.fixture(scope="session")
def bundled():
    import data_feeds

    return data_feeds.load_bundled(["SPX", "UST10", "WTI", "CASH"], panel="classic")


@pytest.fixture(autouse=True)
def _no_cold_cache_notice_in_process():  # type: ignore[no-untyped-def]
    """The CLI's one-time "compiling kernels" notice listens to numba globally; called
    in-process by one test, it would print into a later test's stderr whenever numba
    compiles there (a cold cache in CI) and break that test's one-line checks. Tests of
    the notice itself reset it (``logs._compile_listener = None``)."""
    from engine import logs

    if logs._compile_listener is None:
        logs._compile_listener = "not in the test process"
    yield

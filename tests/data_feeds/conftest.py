"""Helpers for data-feed tests: small valid OHLCV frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_feeds import load_csv
from engine.ground.bars import DataError


def make_bars(n: int = 10, start: str = "2008-09-22", seed: int = 0, base: float = 100.0):
    """A valid single-symbol OHLCV frame with a ``timestamp`` column (business days)."""
    rng = np.random.default_rng(seed)
    close = base * np.exp(np.cumsum(0.01 * rng.standard_normal(n)))
    open_ = np.concatenate([[base], close[:-1]])
    high = np.maximum(open_, close) * 1.005
    low = np.minimum(open_, close) * 0.995
    return pd.DataFrame(
        {
            "timestamp": pd.bdate_range(start, periods=n),
            "open": open_,
            "high": high,
            "low": low,
            "close": close,
            "volume": rng.integers(1_000, 10_000, n).astype(float),
        }
    )


@pytest.fixture
def bars():
    return make_bars


def load_error(path: Path, **kw: object) -> str:
    """The one-line message of the ``DataError`` that loading ``path`` raises."""
    with pytest.raises(DataError) as ei:
        load_csv(path, **kw)  # type: ignore[arg-type]
    msg = str(ei.value)
    assert "\n" not in msg
    return msg

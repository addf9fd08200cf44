"""The bundled real daily multi-asset panel (ships with the package; no network needed).

Symbols: SPX and NASDAQ (index levels, real OHLCV, price return: no dividends), UST10
(10-year constant-maturity Treasury total-return index), WTI (crude oil spot), CASH (3-month
T-bill accrual index). Exogenous series: UST10Y_YIELD, UST3M_YIELD, SLOPE_10Y_3M (decimal,
no NaN). See ``bundled/PROVENANCE.md`` for sources and formulas.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources

import numpy as np
import pandas as pd

from data_feeds.validation import parse_table
from engine.core.bars import FIELDS, BarPanel, DataError

BUNDLED_FILE = "bundled/panel.csv.gz"
BUNDLED_ASSET_CLASSES: dict[str, str] = {
    "SPX": "equity",
    "NASDAQ": "equity",
    "UST10": "bond",
    "WTI": "commodity",
    "CASH": "cash",
}
EXOG_PREFIX = "exog_"

__all__ = ["BUNDLED_ASSET_CLASSES", "load_bundled"]


@functools.lru_cache(maxsize=1)
def _full_panel() -> BarPanel:
    ref = resources.files("data_feeds").joinpath(BUNDLED_FILE)
    with ref.open("rb") as fh:
        table = pd.read_csv(fh, compression="gzip", index_col=0, parse_dates=[0])
    exog_cols = [c for c in table.columns if str(c).startswith(EXOG_PREFIX)]
    exog = table[exog_cols]
    frames = parse_table(table.drop(columns=exog_cols), source=f"data_feeds/{BUNDLED_FILE}")
    index = frames[0].index
    stack = {k: np.column_stack([f.data[k] for f in frames]) for k in FIELDS}
    return BarPanel(
        index=index,
        symbols=tuple(f.symbol for f in frames),
        asset_classes=tuple(BUNDLED_ASSET_CLASSES.get(f.symbol, "unknown") for f in frames),
        exog=exog.to_numpy(dtype=np.float64),
        exog_names=tuple(str(c)[len(EXOG_PREFIX) :] for c in exog_cols),
        open=stack["open"],
        high=stack["high"],
        low=stack["low"],
        close=stack["close"],
        volume=stack["volume"],
    )


def load_bundled(
    symbols: Sequence[str] | None = None, start: object = None, end: object = None
) -> BarPanel:
    """The bundled panel, optionally restricted to ``symbols`` and ``[start, end]``.

    Returns a fresh copy each call (the parsed file is cached in memory).
    """
    panel = _full_panel()
    if symbols is not None:
        if isinstance(symbols, str):
            symbols = [symbols]
        for s in symbols:
            if s not in panel.symbols:
                raise DataError(
                    f"bundled panel: unknown symbol {s!r}; available: {', '.join(panel.symbols)}"
                )
        panel = panel.select(list(symbols))
    if start is not None or end is not None:
        return panel.slice(start, end)
    return panel.take(np.arange(panel.n_bars))

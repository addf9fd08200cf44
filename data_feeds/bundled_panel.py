"""The bundled real daily panels (ship with the package; no network needed).

Two panels, chosen by name (``[data] source``): ``"bundled"`` = ``"bundled:modern"`` (the
default) and ``"bundled:classic"``. See ``bundled/PROVENANCE.md`` for sources and formulas.

* **modern**, 2000-01-04 -> 2022-11-08 (includes 2020 and 2022): SPX, NASDAQ, RUT (Russell
  2000), DAX, CAC40, N225 (index closes, local currency; price return except the DAX, a
  performance index), UST2 / UST10 / UST30 (constant-maturity Treasury total-return indices),
  CASH (3-month T-bill accrual). Close-only: ``open = high = low = close``, so a next-open
  fill is a fill at the *next bar's close*. Exogenous: VIX, VIX_LOGCHG5, UST3M_YIELD,
  UST2Y_YIELD, UST10Y_YIELD, SLOPE_10Y_3M, SLOPE_10Y_2Y.
* **classic**, 1999-01-04 -> 2017-03-29: SPX and NASDAQ (real OHLCV), UST10, WTI, CASH;
  exogenous UST10Y_YIELD, UST3M_YIELD, SLOPE_10Y_3M.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from importlib import resources

import numpy as np
import pandas as pd

from data_feeds.validation import parse_table
from engine.ground.bars import FIELDS, BarPanel, DataError

DEFAULT_PANEL = "modern"
BUNDLED_FILES: dict[str, str] = {
    "classic": "bundled/panel.csv.gz",
    "modern": "bundled/modern.csv.gz",
}
BUNDLED_FILE = BUNDLED_FILES["classic"]
PANEL_ASSET_CLASSES: dict[str, dict[str, str]] = {
    "classic": {
        "SPX": "equity",
        "NASDAQ": "equity",
        "UST10": "bond",
        "WTI": "commodity",
        "CASH": "cash",
    },
    "modern": {
        "SPX": "equity",
        "NASDAQ": "equity",
        "RUT": "equity",
        "DAX": "equity",
        "CAC40": "equity",
        "N225": "equity",
        "UST2": "bond",
        "UST10": "bond",
        "UST30": "bond",
        "CASH": "cash",
    },
}
#: the default run's symbols on each panel (``configs/default.toml``)
PANEL_DEFAULT_SYMBOLS: dict[str, tuple[str, ...]] = {
    "classic": ("SPX", "UST10", "WTI", "CASH"),
    "modern": ("SPX", "RUT", "DAX", "N225", "UST10", "CASH"),
}
BUNDLED_ASSET_CLASSES: dict[str, str] = {
    s: c for classes in PANEL_ASSET_CLASSES.values() for s, c in classes.items()
}
EXOG_PREFIX = "exog_"

__all__ = [
    "BUNDLED_ASSET_CLASSES",
    "PANEL_DEFAULT_SYMBOLS",
    "bundled_panel_name",
    "load_bundled",
]


def bundled_panel_name(source: str) -> str:
    """``"bundled"`` / ``"bundled:modern"`` / ``"modern"`` -> ``"modern"``; same for classic.

    Unknown names are a :class:`DataError` listing the choices.
    """
    name = source.removeprefix("bundled").removeprefix(":") or DEFAULT_PANEL
    if name not in BUNDLED_FILES:
        have = ", ".join(f"bundled:{k}" for k in BUNDLED_FILES)
        raise DataError(f"data.source: unknown bundled panel {source!r}; available: {have}")
    return name


@functools.lru_cache(maxsize=len(BUNDLED_FILES))
def _full_panel(name: str) -> BarPanel:
    path = BUNDLED_FILES[name]
    ref = resources.files("data_feeds").joinpath(path)
    with ref.open("rb") as fh:
        table = pd.read_csv(fh, compression="gzip", index_col=0, parse_dates=[0])
    exog_cols = [c for c in table.columns if str(c).startswith(EXOG_PREFIX)]
    exog = table[exog_cols]
    bars = table.drop(columns=exog_cols)
    for col in [c for c in bars.columns if str(c).endswith("_close")]:
        sym = str(col)[: -len("_close")]
        for f in ("open", "high", "low"):  # close-only symbols: no intraday information
            if f"{sym}_{f}" not in bars.columns:
                bars[f"{sym}_{f}"] = bars[col]
    frames = parse_table(bars, source=f"data_feeds/{path}")
    index = frames[0].index
    stack = {k: np.column_stack([f.data[k] for f in frames]) for k in FIELDS}
    classes = PANEL_ASSET_CLASSES[name]
    return BarPanel(
        index=index,
        symbols=tuple(f.symbol for f in frames),
        asset_classes=tuple(classes.get(f.symbol, "unknown") for f in frames),
        exog=exog.to_numpy(dtype=np.float64),
        exog_names=tuple(str(c)[len(EXOG_PREFIX) :] for c in exog_cols),
        open=stack["open"],
        high=stack["high"],
        low=stack["low"],
        close=stack["close"],
        volume=stack["volume"],
    )


def load_bundled(
    symbols: Sequence[str] | None = None,
    start: object = None,
    end: object = None,
    panel: str = DEFAULT_PANEL,
) -> BarPanel:
    """A bundled panel (``panel``: ``"modern"`` (default), ``"classic"``, or a
    ``"bundled[:NAME]"`` source string), optionally restricted to ``symbols`` and
    ``[start, end]``. Returns a fresh copy each call (the parsed file is cached in memory).
    """
    name = bundled_panel_name(panel)
    full = _full_panel(name)
    if symbols is not None:
        if isinstance(symbols, str):
            symbols = [symbols]
        for s in symbols:
            if s not in full.symbols:
                raise DataError(
                    f"bundled:{name} panel: unknown symbol {s!r}; "
                    f"available: {', '.join(full.symbols)}"
                )
        full = full.select(list(symbols))
    if start is not None or end is not None:
        return full.slice(start, end)
    return full.take(np.arange(full.n_bars))

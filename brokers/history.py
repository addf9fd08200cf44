"""History sources of ``[data] source``, by name: the one place a venue's history client is
picked for backtests (as ``brokers/cli.py::VENUES`` picks the paper venue).

:data:`HISTORY` maps a source name to an opener, imported lazily, that returns an object
with ``fetch(symbols, start, end) -> DataFrame`` (a long table of bars), ``describe()`` and
``pages``. The composition root (``engine.assemble``) asks :func:`open_history` by name and
hands the object to the Parquet cache (``data_feeds.broker_cache``): neither the engine nor
the data layer imports a venue's SDK, and no venue imports the cache.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

DATA_URL_ENV = "APCA_API_DATA_URL"  # a market-data base URL (e.g. the local exchange)


def _alpaca(d: Any) -> Any:
    from brokers.alpaca.history import AlpacaHistory

    return AlpacaHistory(
        feed=d.feed,
        adjustment=d.adjustment,
        timeframe_=d.timeframe,
        url=d.url or os.environ.get(DATA_URL_ENV) or None,
    )


HISTORY: dict[str, Callable[[Any], Any]] = {"alpaca": _alpaca}


def open_history(d: Any) -> Any:
    """The history client of ``[data]`` ``d`` (its ``source`` names it)."""
    return HISTORY[d.source](d)


__all__ = ["DATA_URL_ENV", "HISTORY", "open_history"]

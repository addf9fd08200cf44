"""Alpaca as a venue: the only package that imports alpaca-py (trading and market data),
translating its types to the engine's (:mod:`engine.live.ports`) at its edge.

Modules: :mod:`.rest` (credentials, the live guard, timeouts, retries), :mod:`.translate`
(alpaca-py models -> engine types), :mod:`.broker` (``TradingClient``/``TradingStream`` as the
``Broker`` and ``MarketClock`` ports), :mod:`.bars` (historical and streamed daily bars as the
``BarSource`` port), :mod:`.venue` (:func:`open_venue`).
"""

from brokers.alpaca.bars import AlpacaBars, session_date
from brokers.alpaca.broker import AlpacaBroker
from brokers.alpaca.rest import credentials, endpoint_kind
from brokers.alpaca.venue import open_venue
from engine.live.ports import BrokerError, BrokerUnavailable

__all__ = [
    "AlpacaBars",
    "AlpacaBroker",
    "BrokerError",
    "BrokerUnavailable",
    "credentials",
    "endpoint_kind",
    "open_venue",
    "session_date",
]

"""The local Alpaca-like paper exchange (see ``brokers/README.md`` for what it models).

Modules: :mod:`.calendar` (sessions, clock), :mod:`.bars` (synthetic minute bars, bar
queries), :mod:`.faults` (seeded faults), :mod:`.wire` (Alpaca JSON shapes),
:mod:`.streams` (both websockets), :mod:`.rest` (``/v2`` routes, ``/_sim/`` controls),
:mod:`.server` (simulated time, lifecycle, :func:`build_exchange`); the account and order
rules are in :mod:`brokers.local_exchange.matching`.
"""

from brokers.local_exchange.server import HttpError, LocalExchange, build_exchange
from brokers.local_exchange.wire import order_json

__all__ = ["HttpError", "LocalExchange", "build_exchange", "order_json"]

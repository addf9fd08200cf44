"""The local Alpaca-like paper exchange (see ``brokers/README.md`` for what it models).

Modules: :mod:`.calendar` (sessions, clock), :mod:`.bars` (synthetic minute bars, bar
queries), :mod:`.faults` (seeded faults), :mod:`.wire` (Alpaca JSON shapes),
:mod:`.server` (time stepping, REST, websockets); the account and order rules are in
:mod:`brokers.sim`.
"""

from brokers.exchange.server import HttpError, LocalExchange, build_exchange
from brokers.exchange.wire import order_json

__all__ = ["HttpError", "LocalExchange", "build_exchange", "order_json"]

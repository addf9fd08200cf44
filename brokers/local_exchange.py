"""Backward-compatible entry point of the local Alpaca-like exchange (:mod:`brokers.exchange`)."""

from brokers.exchange import HttpError, LocalExchange, build_exchange, order_json
from brokers.exchange.calendar import iso
from brokers.exchange.wire import asset_id, num

__all__ = ["HttpError", "LocalExchange", "asset_id", "build_exchange", "iso", "num", "order_json"]

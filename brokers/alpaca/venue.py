"""Alpaca (or an Alpaca-compatible server) as the loop's venue: one ``TradingClient`` for the
broker and the clock, the market-data clients for the bars, every call bounded and retried."""

from __future__ import annotations

from collections.abc import Callable

from brokers.alpaca.bars import AlpacaBars
from brokers.alpaca.broker import AlpacaBroker
from brokers.alpaca.rest import credentials
from engine.live.ports import Venue, VenueRequest


def open_venue(
    req: VenueRequest,
    *,
    url: str | None = None,
    stream_url: str | None = None,
    sim_status: bool = False,
    on_close: Callable[[], None] | None = None,
) -> Venue:
    """The venue for ``req`` at ``url`` (REST base; None: Alpaca's) and ``stream_url``
    (websocket base: trade updates at ``/stream``, market data at ``/v2/{feed}``)."""
    p = req.paper
    broker = AlpacaBroker(
        live=p.live,
        url=url,
        stream_url=f"{stream_url}/stream" if stream_url else None,
        timeout_s=p.http_timeout_s,
        retry_budget_s=min(p.outage_limit_s, 30.0),
        sim_status=sim_status,
    )
    key, secret = credentials()
    bars = AlpacaBars(
        req.symbols,
        req.data_symbols,
        key=key,
        secret=secret,
        url=url,
        stream_url=f"{stream_url}/v2/{p.feed}" if stream_url else None,
        feed=p.feed,
        adjustment=p.adjustment,
        timeout_s=p.http_timeout_s,
        call=broker.call,
    )
    return Venue(broker=broker, clock=broker, bars=bars, on_close=on_close)


__all__ = ["open_venue"]

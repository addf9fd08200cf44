"""ZeroMQ event bus: bars in, engine events out (see :mod:`engine.bus.schema`)."""

from engine.bus.schema import SCHEMA_VERSION, Message, decode, encode
from engine.bus.zmq_bus import DEFAULT_BARS, DEFAULT_EVENTS, Publisher, Subscriber

__all__ = [
    "DEFAULT_BARS",
    "DEFAULT_EVENTS",
    "SCHEMA_VERSION",
    "Message",
    "Publisher",
    "Subscriber",
    "decode",
    "encode",
]

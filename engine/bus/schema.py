"""The bus message schema, version 1 (msgpack).

Every message is two ZeroMQ frames: ``topic`` (ASCII, used for SUB filtering) and a
msgpack map ``{"v": 1, "kind": topic, "ts": <bar time, ns>, "sent_ns": <perf counter ns>,
...fields}``. Kinds and their fields:

=============  =================================================================
``bar``        ``symbols`` [str], ``open``/``close``/``volume`` [float] (symbol order),
               ``exog`` [float] (optional)
``regime``     ``strategy``, ``bar``, ``regime`` (smoothed state), ``state`` (raw),
               ``label``, ``posterior`` [float]
``targets``    ``strategy``, ``bar``, ``weights`` {symbol: weight}
``order``      ``strategy``, ``bar``, ``symbol``, ``qty`` (signed), ``client_order_id``,
               ``status`` (submitted/skipped/rejected), ``reason`` (why rejected/skipped)
``fill``       ``event`` (fill/partial_fill/canceled/expired/rejected), ``symbol``, ``qty``,
               ``price``, ``client_order_id``, ``position_qty``
``equity``     ``strategy``, ``bar``, ``equity``, ``cash``, ``weights`` {symbol: w}
``status``     ``strategy``, ``phase``, ``regime`` (label), ``prob``, ``targets``
               {symbol: w} or None, ``sent``, ``fills``, ``engine_equity``,
               ``broker_equity``, ``gap_frac`` (the paper loop's line per live bar)
``reconcile``  ``strategy``, ``bar``, ``gap_value``, ``gap_frac``, ``diff``
               {symbol: broker - target shares} (a gap beyond tolerance)
=============  =================================================================

A reader rejects messages whose ``v`` it does not know (``SchemaError``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack

SCHEMA_VERSION = 1
KINDS = ("bar", "regime", "targets", "order", "fill", "equity", "status", "reconcile")


class SchemaError(ValueError):
    """A message that does not follow the schema."""


@dataclass(frozen=True)
class Message:
    kind: str
    body: dict[str, Any]


def encode(kind: str, body: dict[str, Any]) -> list[bytes]:
    """The two frames of a message of ``kind``."""
    if kind not in KINDS:
        raise SchemaError(f"unknown message kind {kind!r}")
    return [kind.encode(), msgpack.packb({"v": SCHEMA_VERSION, "kind": kind, **body})]


def decode(frames: list[bytes]) -> Message:
    """Parse two frames; raises :class:`SchemaError` on anything malformed."""
    if len(frames) != 2:
        raise SchemaError(f"expected 2 frames, got {len(frames)}")
    try:
        body = msgpack.unpackb(frames[1])
    except Exception as exc:
        raise SchemaError(f"bad msgpack payload: {exc}") from None
    if not isinstance(body, dict):
        raise SchemaError("payload is not a map")
    if body.get("v") != SCHEMA_VERSION:
        raise SchemaError(f"unsupported schema version {body.get('v')!r}")
    kind = body.get("kind")
    if kind not in KINDS or frames[0] != str(kind).encode():
        raise SchemaError(f"bad kind {kind!r}")
    return Message(str(kind), body)

"""Checkpoints as JSON with a schema version and a SHA-256 checksum (never pickle).

A checkpoint file is one JSON object::

    {"format": "regime-engine-checkpoint", "schema": 1, "sha256": "<hex>", "payload": {...}}

``payload`` holds plain JSON values; NumPy arrays are written as
``{"__ndarray__": "<dtype>", "shape": [...], "data": "<base64 little-endian bytes>"}``
with the dtype limited to float64, int64 and bool. The checksum covers the canonical
JSON of ``payload`` (sorted keys, no spaces), so a truncated or edited file is refused.
Loading only parses JSON and base64: a crafted file cannot run code.

With a ``key`` (the paper loop's per-install secret, :mod:`engine.live.journal`) the file
also carries ``"hmac"``: HMAC-SHA256 of the same canonical JSON under that key. A SHA-256
anyone can recompute; the HMAC only the holder of the key can, so a file written by anyone
else (or edited and re-hashed) is refused when it is loaded with the key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import numpy as np

FORMAT = "regime-engine-checkpoint"
SCHEMA_VERSION = 1
_DTYPES = {"float64": "<f8", "int64": "<i8", "bool": "|b1"}
_ND = "__ndarray__"


class CheckpointError(ValueError):
    """A checkpoint that cannot be read (one line naming the file and the problem)."""


def _encode(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        name = obj.dtype.name
        if name not in _DTYPES:
            raise TypeError(f"checkpoint: unsupported array dtype {name}")
        data = np.ascontiguousarray(obj, dtype=_DTYPES[name]).tobytes()
        return {_ND: name, "shape": list(obj.shape), "data": base64.b64encode(data).decode()}
    if isinstance(obj, dict):
        bad = [k for k in obj if not isinstance(k, str)]
        if bad:
            raise TypeError(f"checkpoint: non-string key {bad[0]!r}")
        return {k: _encode(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_encode(v) for v in obj]
    if isinstance(obj, bool | None | str):
        return obj
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        return float(obj)
    raise TypeError(f"checkpoint: cannot store {type(obj).__name__}")


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if _ND in obj:
            name = obj[_ND]
            if name not in _DTYPES:
                raise CheckpointError(f"unsupported array dtype {name!r}")
            shape = tuple(int(x) for x in obj["shape"])
            raw = base64.b64decode(str(obj["data"]), validate=True)
            arr = np.frombuffer(raw, dtype=_DTYPES[name])
            if arr.size != int(np.prod(shape, dtype=np.int64)):
                raise CheckpointError(f"array of shape {shape} has {arr.size} values")
            return arr.reshape(shape).astype(name)  # a writable native-order copy
        return {k: _decode(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    return obj


def _canonical(payload: Any) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=True).encode()


def _mac(key: bytes, canonical: bytes) -> str:
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def dumps(payload: dict[str, Any], key: bytes | None = None) -> bytes:
    """The checkpoint bytes of ``payload`` (dicts, lists, scalars, NumPy arrays), signed
    with ``key`` when given."""
    enc = _encode(payload)
    canonical = _canonical(enc)
    digest = hashlib.sha256(canonical).hexdigest()
    doc = {"format": FORMAT, "schema": SCHEMA_VERSION, "sha256": digest, "payload": enc}
    if key is not None:
        doc["hmac"] = _mac(key, canonical)
    return json.dumps(doc, separators=(",", ":"), allow_nan=True).encode()


def loads(data: bytes, source: str = "checkpoint", key: bytes | None = None) -> dict[str, Any]:
    """Parse and verify checkpoint bytes (and their HMAC under ``key`` when given);
    :class:`CheckpointError` names ``source``."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{source}: not a JSON checkpoint ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{source}: not a regime-engine checkpoint")
    if doc.get("schema") != SCHEMA_VERSION:
        raise CheckpointError(
            f"{source}: checkpoint schema {doc.get('schema')!r}, this version reads "
            f"{SCHEMA_VERSION}"
        )
    payload = doc.get("payload")
    if not isinstance(payload, dict):
        raise CheckpointError(f"{source}: checkpoint has no payload")
    canonical = _canonical(payload)
    if hashlib.sha256(canonical).hexdigest() != doc.get("sha256"):
        raise CheckpointError(f"{source}: checksum mismatch (corrupted or edited checkpoint)")
    if key is not None:
        mac = doc.get("hmac")
        if not isinstance(mac, str) or not hmac.compare_digest(mac, _mac(key, canonical)):
            raise CheckpointError(
                f"{source}: not signed with this install's key (written or edited by "
                "someone else); refused"
            )
    try:
        out = _decode(payload)
    except CheckpointError as exc:
        raise CheckpointError(f"{source}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: malformed array ({exc})") from None
    return out  # type: ignore[no-any-return]


def load(path: str | Path, key: bytes | None = None) -> dict[str, Any]:
    """Read and verify the checkpoint at ``path`` (signed with ``key`` when given)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{p}: cannot read checkpoint ({exc.strerror})") from None
    return loads(data, str(p), key)


__all__ = ["SCHEMA_VERSION", "CheckpointError", "dumps", "load", "loads"]

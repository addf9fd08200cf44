"""PUB/SUB sockets for the bus (pyzmq): loopback only unless ``allow_remote``, then
CURVE (:mod:`engine.bus.security`)."""

from __future__ import annotations

import time
from collections.abc import Iterable

import zmq

from engine.bus.schema import Message, SchemaError, decode, encode
from engine.bus.security import Curve, secure

DEFAULT_BARS = "tcp://127.0.0.1:5555"
DEFAULT_EVENTS = "tcp://127.0.0.1:5556"


class Publisher:
    """A PUB socket; ``bind=True`` (default) listens, else connects to a SUB that binds."""

    def __init__(
        self,
        address: str = DEFAULT_EVENTS,
        *,
        bind: bool = True,
        ctx: zmq.Context | None = None,
        allow_remote: bool = False,
        curve: Curve | None = None,
    ) -> None:
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.LINGER, 200)
        self.sock.setsockopt(zmq.SNDHWM, 100_000)
        try:
            secure(self.sock, address, bind=bind, allow_remote=allow_remote, curve=curve)
        except Exception:
            self.sock.close()
            raise
        if bind:
            self.sock.bind(address)
        else:
            self.sock.connect(address)
        self.address = self.sock.getsockopt_string(zmq.LAST_ENDPOINT) if bind else address

    def publish(self, kind: str, **body: object) -> None:
        body.setdefault("sent_ns", time.perf_counter_ns())
        self.sock.send_multipart(encode(kind, body))

    def close(self) -> None:
        self.sock.close()


class Subscriber:
    """A SUB socket filtered on ``kinds`` (all if empty); connects unless ``bind``."""

    def __init__(
        self,
        address: str = DEFAULT_EVENTS,
        kinds: Iterable[str] = (),
        *,
        bind: bool = False,
        ctx: zmq.Context | None = None,
        allow_remote: bool = False,
        curve: Curve | None = None,
    ) -> None:
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.RCVHWM, 100_000)
        try:
            secure(self.sock, address, bind=bind, allow_remote=allow_remote, curve=curve)
        except Exception:
            self.sock.close()
            raise
        topics = list(kinds) or [""]
        for k in topics:
            self.sock.setsockopt_string(zmq.SUBSCRIBE, k)
        if bind:
            self.sock.bind(address)
        else:
            self.sock.connect(address)
        self.address = self.sock.getsockopt_string(zmq.LAST_ENDPOINT) if bind else address
        self.errors = 0

    def recv(self, timeout_ms: int | None = None) -> Message | None:
        """The next valid message, or ``None`` after ``timeout_ms`` (malformed ones are
        counted in ``errors`` and skipped)."""
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        while True:
            wait = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if wait is not None and not self.sock.poll(wait):
                return None
            frames = self.sock.recv_multipart()
            try:
                return decode(frames)
            except SchemaError:
                self.errors += 1
                if deadline is not None and time.monotonic() >= deadline:
                    return None

    def close(self) -> None:
        self.sock.close()

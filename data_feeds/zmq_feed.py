"""Bars over ZeroMQ: any process can drive the engine by publishing ``bar`` messages
(schema in :mod:`engine.bus.schema`); :class:`ZmqBarFeed` receives them as
:class:`~engine.ground.bars.CrossBar` in the engine's symbol order."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from engine.bus.zmq_bus import DEFAULT_BARS, Publisher, Subscriber
from engine.ground.bars import BarPanel, CrossBar, DataError


class ZmqBarFeed:
    """SUB socket for ``bar`` messages (binds by default so publishers connect to it).

    Loopback only unless ``allow_remote``; then CURVE keys from ``curve_dir`` are required
    and only publishers whose public key is authorized can deliver bars."""

    def __init__(
        self,
        symbols: tuple[str, ...],
        exog_names: tuple[str, ...] = (),
        address: str = DEFAULT_BARS,
        *,
        bind: bool = True,
        allow_remote: bool = False,
        curve_dir: str | None = None,
    ) -> None:
        from engine.bus.security import curve_from_dir

        self.symbols, self.exog_names = tuple(symbols), tuple(exog_names)
        curve = curve_from_dir(curve_dir, "server" if bind else "client")
        self.sub = Subscriber(address, ("bar",), bind=bind, allow_remote=allow_remote, curve=curve)
        self.address = self.sub.address
        self.last_ns: int | None = None

    def next(self, timeout_ms: int | None = None) -> CrossBar | None:
        """The next bar (``None`` on timeout); stale/duplicate bars are skipped, bars with
        other symbols raise :class:`DataError`."""
        while True:
            msg = self.sub.recv(timeout_ms)
            if msg is None:
                return None
            b = msg.body
            ts = int(b["ts"])
            if self.last_ns is not None and ts <= self.last_ns:
                continue
            syms = tuple(b.get("symbols", ()))
            if syms != self.symbols:
                raise DataError(f"zmq bar at {ts}: symbols {syms} != {self.symbols}")
            exog = np.asarray(b.get("exog") or np.zeros(len(self.exog_names)), dtype=np.float64)
            self.last_ns = ts
            return CrossBar(
                ts,
                np.asarray(b["open"], dtype=np.float64),
                np.asarray(b["close"], dtype=np.float64),
                np.asarray(b["volume"], dtype=np.float64),
                exog,
            )

    def __iter__(self) -> Iterator[CrossBar]:
        while (bar := self.next()) is not None:
            yield bar

    def close(self) -> None:
        self.sub.close()


def publish_bar(pub: Publisher, panel: BarPanel, t: int) -> None:
    """Publish bar ``t`` of ``panel`` as a ``bar`` message."""
    pub.publish(
        "bar",
        ts=int(panel.timestamps_ns[t]),
        symbols=list(panel.symbols),
        open=panel.open[t].tolist(),
        close=panel.close[t].tolist(),
        volume=panel.volume[t].tolist(),
        exog=panel.exog[t].tolist(),
    )


__all__ = ["ZmqBarFeed", "publish_bar"]

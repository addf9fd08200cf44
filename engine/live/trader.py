"""The strategy's side of the loop: the streaming driver (the backtest's compiled step) fed one
completed bar at a time, with what the loop needs of its output by name (never a slot)."""

from __future__ import annotations

from typing import Any

from engine.core.streaming import BarOutput, StreamingDriver
from engine.live.guard import check_checkpoint
from engine.live.ports import Bar


class Trader:
    """One strategy's streaming driver plus the bar count and the last bar's time."""

    def __init__(self, driver: StreamingDriver, name: str, labels: tuple[str, ...] = ()) -> None:
        self.driver = driver
        self.name = name
        self.symbols = tuple(driver.symbols)
        self.exog_names = tuple(driver.exog_names)
        self.labels = labels
        self.last_ts: int | None = None
        self.bars = 0
        self.last: BarOutput | None = None
        self.regime: int | None = None  # the smoothed regime after the last bar
        self.prev_regime: int | None = None  # ... and before it (None on the first bar)
        self.reference = self.checkpoint()  # a fresh trader's: what a checkpoint must fit

    def step(self, bar: Bar) -> BarOutput:
        """Run one bar through the step; the previous regime stays in :attr:`prev_regime`."""
        exog = bar.exog if bar.exog.shape == (len(self.exog_names),) else None
        out = self.driver.on_bar(bar.timestamp_ns, bar.open, bar.close, bar.volume, exog)
        self.prev_regime = self.regime if self.bars else None
        self.last_ts, self.last, self.regime = bar.timestamp_ns, out, out.regime
        self.bars += 1
        return out

    def label(self, regime: int) -> str:
        return self.labels[regime] if 0 <= regime < len(self.labels) else str(regime)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint(self) -> dict[str, Any]:
        return {
            "driver": self.driver.checkpoint(),
            "last_ts": self.last_ts,
            "bars": self.bars,
            "regime": self.regime,
        }

    def resume(self, ck: dict[str, Any]) -> None:
        """Continue from :meth:`checkpoint`; every array and index is checked against this
        run first (:func:`~engine.live.guard.check_checkpoint`: a CheckpointError)."""
        check_checkpoint(ck, self.reference, self.driver.detector, len(self.symbols))
        self.driver.resume(ck["driver"])
        self.last_ts = None if ck["last_ts"] is None else int(ck["last_ts"])
        self.bars = int(ck["bars"])
        self.regime = None if ck.get("regime") is None else int(ck["regime"])
        self.last = None


__all__ = ["Trader"]

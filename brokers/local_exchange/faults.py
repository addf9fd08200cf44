"""Seeded, reproducible fault injection for the local exchange (toggled at run time)."""

from __future__ import annotations

import collections
import random
import threading
import time
from typing import Any

from brokers.local_exchange.settings import FaultSettings


class Faults:
    """Current fault settings plus their random streams (one per kind, so they don't interact).

    ``draw_order`` decides (reject, partial) for each new order; ``http_fault`` returns the
    HTTP status to inject on a REST call (429, 500) or ``None``. One-shot HTTP errors queued by
    ``/_sim/faults`` come first.
    """

    def __init__(self, settings: FaultSettings, seed: int) -> None:
        self.s = settings
        self._orders = random.Random(seed)
        self._http = random.Random(seed + 1)
        self._lock = threading.Lock()
        self.calls = 0
        self.burst_left = 0
        self.queued: list[int] = []
        self.injected: dict[int, int] = {}
        self._recent: collections.deque[float] = collections.deque()

    def update(self, changes: dict[str, Any]) -> FaultSettings:
        """Merge ``changes`` into the settings (validated like ``[paper.exchange.faults]``)."""
        with self._lock:
            self.s = FaultSettings.model_validate({**self.s.model_dump(), **changes})
            if not (self.s.error_burst_every and self.s.error_burst_len):
                self.burst_left = 0
            return self.s

    def draw_order(self) -> tuple[bool, bool]:
        with self._lock:
            reject = self._orders.random() < self.s.reject_rate
            partial = self._orders.random() < self.s.partial_fill_rate
            return reject, partial

    def http_fault(self) -> int | None:
        with self._lock:
            self.calls += 1
            code: int | None = None
            if self.queued:
                code = self.queued.pop(0)
            else:
                every, length = self.s.error_burst_every, self.s.error_burst_len
                if every > 0 and length > 0 and self.calls % every == 0:
                    self.burst_left = length
                if self.burst_left > 0:
                    self.burst_left -= 1
                    code = 500
                elif self._http.random() < self.s.rate_limit_rate or self._over_limit():
                    code = 429
            if code is None and self.s.requests_per_minute:
                self._recent.append(time.monotonic())
            if code is not None:
                self.injected[code] = self.injected.get(code, 0) + 1
            return code

    def _over_limit(self) -> bool:
        limit = self.s.requests_per_minute
        if limit <= 0:
            return False
        now = time.monotonic()
        while self._recent and self._recent[0] < now - 60.0:
            self._recent.popleft()
        return len(self._recent) >= limit


__all__ = ["Faults"]

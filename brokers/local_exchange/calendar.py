"""The simulated trading calendar and clock: one panel row = one session on its date.

Sessions run 09:30-16:00 America/New_York (Alpaca's ``/v2/calendar`` shape: ``date``,
``open`` "09:30", ``close`` "16:00"); dates without a row are holidays or weekends. Times are
nanoseconds since the epoch (UTC); JSON carries them as RFC 3339 with the New York offset, as
Alpaca's clock does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

NY = "America/New_York"
OPEN_HM = (9, 30)
CLOSE_HM = (16, 0)
SESSION_MINUTES = 390
MINUTE_NS = 60_000_000_000


def iso(ns: int | None, tz: str = "UTC") -> str | None:
    """RFC 3339 time of a nanosecond timestamp (``Z`` for UTC)."""
    if ns is None:
        return None
    text = pd.Timestamp(int(ns), tz="UTC").tz_convert(tz).isoformat()
    return text.replace("+00:00", "Z")


def parse_time(text: str, default_tz: str = NY) -> int:
    """RFC 3339 time or a date (midnight in ``default_tz``) to ns; ``ValueError`` if bad."""
    ts = pd.Timestamp(text)
    if ts is pd.NaT:
        raise ValueError(text)
    if ts.tzinfo is None:
        ts = ts.tz_localize(default_tz)
    return int(ts.tz_convert("UTC").value)


@dataclass(frozen=True)
class Calendar:
    """Session dates with their open/close instants and Alpaca's daily-bar timestamp."""

    dates: tuple[pd.Timestamp, ...]
    open_ns: np.ndarray
    close_ns: np.ndarray
    day_ns: np.ndarray  # midnight New York of each date: the ``t`` of Alpaca's daily bars

    @classmethod
    def from_index(cls, index: pd.DatetimeIndex) -> Calendar:
        days = [pd.Timestamp(d).normalize() for d in pd.DatetimeIndex(index).tz_localize(None)]
        if len(set(days)) != len(days):
            raise ValueError("the panel has two rows on one date; the exchange needs daily bars")

        def at(d: pd.Timestamp, hm: tuple[int, int]) -> int:
            ts = pd.Timestamp(d.year, d.month, d.day, hm[0], hm[1], tz=NY)
            return int(ts.tz_convert("UTC").value)

        return cls(
            dates=tuple(days),
            open_ns=np.array([at(d, OPEN_HM) for d in days], dtype=np.int64),
            close_ns=np.array([at(d, CLOSE_HM) for d in days], dtype=np.int64),
            day_ns=np.array([at(d, (0, 0)) for d in days], dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.dates)

    def minute_starts(self, i: int, per_session: int) -> np.ndarray:
        """Start instants of the session's synthetic minute bars (first 09:30, last 15:59)."""
        if per_session == 1:
            offs = np.array([SESSION_MINUTES - 1])
        else:
            offs = np.round(np.arange(per_session) * (SESSION_MINUTES - 1) / (per_session - 1))
        return self.open_ns[i] + offs.astype(np.int64) * MINUTE_NS

    def next_open_after(self, now: int) -> int:
        """The next session open strictly after ``now`` (past the last row: next weekday)."""
        k = int(np.searchsorted(self.open_ns, now, side="right"))
        if k < len(self):
            return int(self.open_ns[k])
        last = self.dates[-1] + pd.offsets.BDay(1)
        return int(
            pd.Timestamp(last.year, last.month, last.day, 9, 30, tz=NY).tz_convert("UTC").value
        )

    def next_close_after(self, now: int) -> int:
        k = int(np.searchsorted(self.close_ns, now, side="right"))
        if k < len(self):
            return int(self.close_ns[k])
        nxt = self.next_open_after(now)
        return nxt + SESSION_MINUTES * MINUTE_NS

    def is_open(self, now: int) -> bool:
        k = int(np.searchsorted(self.open_ns, now, side="right")) - 1
        return k >= 0 and now < int(self.close_ns[k])

    def clock_json(self, now: int) -> dict[str, Any]:
        """``GET /v2/clock`` at simulated time ``now``."""
        return {
            "timestamp": iso(now, NY),
            "is_open": self.is_open(now),
            "next_open": iso(self.next_open_after(now), NY),
            "next_close": iso(self.next_close_after(now), NY),
        }

    def calendar_json(self, start: str | None, end: str | None) -> list[dict[str, Any]]:
        """``GET /v2/calendar?start&end`` (dates, inclusive)."""
        lo = pd.Timestamp(start).normalize() if start else self.dates[0]
        hi = pd.Timestamp(end).normalize() if end else self.dates[-1]
        if lo.tzinfo is not None:
            lo = lo.tz_localize(None)
        if hi.tzinfo is not None:
            hi = hi.tz_localize(None)
        out = []
        for i, d in enumerate(self.dates):
            if lo <= d <= hi:
                settle = self.dates[i + 1] if i + 1 < len(self) else d + pd.offsets.BDay(1)
                out.append(
                    {
                        "date": d.strftime("%Y-%m-%d"),
                        "open": "09:30",
                        "close": "16:00",
                        "session_open": "0400",
                        "session_close": "2000",
                        "settlement_date": pd.Timestamp(settle).strftime("%Y-%m-%d"),
                    }
                )
        return out


__all__ = ["MINUTE_NS", "NY", "Calendar", "iso", "parse_time"]

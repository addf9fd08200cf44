"""Synthetic minute bars consistent with the panel's daily OHLCV, and Alpaca's bar queries.

Each session gets ``minute_bars_per_session`` one-minute bars: a deterministic path from the
open to the close that touches the day's high and low (rising days dip first, falling days peak
first), volume split evenly. Their aggregate is exactly the daily bar, so the running aggregate
after minute ``m`` is the *in-progress* daily bar that Alpaca serves during the session.
"""

from __future__ import annotations

import base64
import functools
import json
from typing import Any

import msgpack
import numpy as np

from brokers.local_exchange.calendar import MINUTE_NS, Calendar, iso
from engine.ground.bars import BarPanel

O_, H_, L_, C_, V_ = range(5)  # field rows of a (5, D) bar array
MAX_LIMIT = 10_000
TIMEFRAMES = {"1Day": "day", "1D": "day", "1Min": "min", "1T": "min"}
ADJUSTMENTS = ("raw", "split", "dividend", "all")


class BarQueryError(ValueError):
    """A bad ``/v2/stocks/bars`` request (HTTP status and message)."""

    def __init__(self, status: int, message: str, code: int = 42210000) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _path(o: float, h: float, low: float, c: float, m: int) -> np.ndarray:
    """``m + 1`` price knots from ``o`` to ``c`` visiting the low and the high."""
    knots = np.linspace(o, c, m + 1)
    if m >= 3:
        a, b = max(1, round(m / 3)), max(2, round(2 * m / 3))
        b = min(b, m - 1) if b > a else a + 1
        first, second = (low, h) if c >= o else (h, low)
        knots[a], knots[b] = first, second
        for lo_k, hi_k in ((0, a), (a, b), (b, m)):
            knots[lo_k : hi_k + 1] = np.linspace(knots[lo_k], knots[hi_k], hi_k - lo_k + 1)
    return knots


class MinuteBars:
    """Minute bars of every data symbol (tradable symbols, then exogenous series)."""

    def __init__(self, panel: BarPanel, calendar: Calendar, per_session: int) -> None:
        self.panel = panel
        self.cal = calendar
        self.m = int(per_session)
        self.symbols = tuple(panel.symbols) + tuple(panel.exog_names)
        self.col = {s: k for k, s in enumerate(self.symbols)}

    def daily_row(self, i: int) -> np.ndarray:
        """``(5, D)`` open/high/low/close/volume of session ``i`` (high/low made consistent)."""
        p = self.panel
        o, c = p.open[i], p.close[i]
        h = np.fmax(np.fmax(p.high[i], o), c)
        lo = np.fmin(np.fmin(p.low[i], o), c)
        x = p.exog[i]
        tr = np.stack([o, h, lo, c, p.volume[i]])
        ex = np.stack([x, x, x, x, np.zeros_like(x)])
        return np.concatenate([tr, ex], axis=1)

    @functools.lru_cache(maxsize=64)  # noqa: B019 - one cache per exchange is intended
    def session(self, i: int) -> np.ndarray:
        """``(M, 5, D)`` minute bars of session ``i``."""
        d = self.daily_row(i)
        m, n = self.m, d.shape[1]
        out = np.empty((m, 5, n))
        for k in range(n):
            o, h, lo, c, v = d[:, k]
            kn = _path(o, h, lo, c, m)
            out[:, O_, k] = kn[:-1]
            out[:, C_, k] = kn[1:]
            out[:, H_, k] = np.maximum(kn[:-1], kn[1:])
            out[:, L_, k] = np.minimum(kn[:-1], kn[1:])
            if out[:, H_, k].max() < h:
                out[0, H_, k] = h
            if out[:, L_, k].min() > lo:
                out[-1, L_, k] = lo
            out[:, V_, k] = v / m
        return out

    def running(self, i: int, emitted: int) -> np.ndarray:
        """``(5, D)`` daily bar of session ``i`` after ``emitted`` minute bars (0: the open)."""
        if emitted >= self.m:
            return self.daily_row(i)
        s = self.session(i)
        if emitted <= 0:
            o = s[0, O_]
            return np.stack([o, o, o, o, np.zeros_like(o)])
        part = s[:emitted]
        return np.stack(
            [part[0, O_], part[:, H_].max(0), part[:, L_].min(0), part[-1, C_], part[:, V_].sum(0)]
        )

    # ------------------------------------------------------------------ wire formats
    @staticmethod
    def _fields(row: np.ndarray, k: int) -> dict[str, Any]:
        o, h, lo, c, v = (float(x) for x in row[:, k])
        return {
            "o": o,
            "h": h,
            "l": lo,
            "c": c,
            "v": v,
            "n": 1 if v > 0 else 0,
            "vw": (h + lo + c) / 3,
        }

    def stream_messages(
        self, kind: str, i: int, minute: int, symbols: set[str]
    ) -> list[dict[str, Any]]:
        """Market-data stream messages: minute bar ``b`` or the running daily bar ``d``."""
        if kind == "b":
            row = self.session(i)[minute]
            t = int(self.cal.minute_starts(i, self.m)[minute])
        else:
            row = self.running(i, minute + 1)
            t = int(self.cal.day_ns[i])
        stamp = msgpack.Timestamp.from_unix_nano(t)
        out = []
        for s in self.symbols:
            k = self.col[s]
            if (s in symbols or "*" in symbols) and np.isfinite(row[:4, k]).all():
                out.append({"T": kind, "S": s, **self._fields(row, k), "t": stamp})
        return out

    def rows(
        self, symbol: str, frame: str, last: int, emitted: int, start: int, end: int
    ) -> list[dict[str, Any]]:
        """REST bars of ``symbol`` up to session ``last`` (``emitted`` minutes into it)."""
        k = self.col[symbol]
        out: list[dict[str, Any]] = []
        if last < 0:
            return out
        lo = int(np.searchsorted(self.cal.close_ns, start, side="left"))  # sessions ending >= start
        for i in range(max(lo, 0), last + 1):
            if self.cal.day_ns[i] > end:
                break
            n_min = self.m if i < last else emitted
            if frame == "day":
                t = int(self.cal.day_ns[i])
                if start <= t <= end:
                    row = self.daily_row(i) if n_min >= self.m else self.running(i, n_min)
                    if np.isfinite(row[:4, k]).all():  # no trades, no bar (as Alpaca)
                        out.append({"t": iso(t), **self._fields(row, k)})
                continue
            starts = self.cal.minute_starts(i, self.m)
            sess = self.session(i)
            for m in range(n_min):
                t = int(starts[m])
                if start <= t <= end and np.isfinite(sess[m, :4, k]).all():
                    out.append({"t": iso(t), **self._fields(sess[m], k)})
        return out


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode()


def decode_token(token: str) -> int:
    try:
        return int(json.loads(base64.urlsafe_b64decode(token.encode()))["o"])
    except Exception:
        raise BarQueryError(422, "invalid page_token") from None


def minute_emit_ns(cal: Calendar, i: int, per_session: int) -> np.ndarray:
    """When each minute bar of session ``i`` is published: one minute after its start."""
    return cal.minute_starts(i, per_session) + MINUTE_NS


__all__ = [
    "ADJUSTMENTS",
    "MAX_LIMIT",
    "TIMEFRAMES",
    "BarQueryError",
    "MinuteBars",
    "decode_token",
    "encode_token",
    "minute_emit_ns",
]

"""A broker's history as a local Parquet cache (``[data] source = "alpaca"``).

One file per symbol, ``{cache_dir}/{source}/{feed}-{adjustment}-{timeframe}/{SYMBOL}.parquet``
(a long table ``timestamp, symbol, open, high, low, close, volume``), whose schema metadata
records the days the file *covers*: every bar the server had between ``start`` and ``end``
(holidays and days before a symbol's listing included, so they are never asked again).

A run asks for ``[start, end]``. Only what the cover lacks is fetched: the days before its
start and the days after its end, for all symbols with the same missing range in one paged
request; a run whose range is covered sends no request and needs neither keys nor network.
A cover grows contiguously (a later end date fetches only the days after the cover). Only
whole days are cached: ``end`` is clamped to yesterday in New York (today's bar is still
forming during the session). A file that cannot be read, or whose cover is missing, is one
:class:`~engine.ground.bars.DataError` line naming it (delete it to download it again).

The client comes from the caller (``engine.assemble`` opens it through ``brokers.history``
only when something is missing): this module never imports a venue.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import structlog

from engine.ground.bars import DataError

log = structlog.get_logger(__name__)
NY = ZoneInfo("America/New_York")
EARLIEST = dt.date(2000, 1, 1)  # no start: from here (Alpaca's bars begin in 2015-2016)
COVER_KEY = b"regime_engine.cover"
COLUMNS = ["timestamp", "symbol", "open", "high", "low", "close", "volume"]
DAY = dt.timedelta(days=1)


class HistoryClient(Protocol):
    pages: int

    def describe(self) -> str: ...

    def fetch(self, symbols: list[str], start: dt.date, end: dt.date) -> pd.DataFrame: ...


@dataclass
class CacheStats:
    """What one load did: requests (``fetches``), REST pages and bars added."""

    fetches: list[tuple[tuple[str, ...], dt.date, dt.date]] = field(default_factory=list)
    pages: int = 0
    new_bars: int = 0


def last_whole_day(now: dt.datetime | None = None) -> dt.date:
    """Yesterday in New York: the last day whose bars are final."""
    now = now or dt.datetime.now(tz=NY)
    return now.astimezone(NY).date() - DAY


def _date(text: str | None, default: dt.date) -> dt.date:
    return default if not text else pd.Timestamp(text).date()


class BarCache:
    """The cached bars of one source, feed, adjustment and timeframe."""

    def __init__(self, root: str | Path, source: str, key: str) -> None:
        self.folder = Path(root) / source / key

    def path(self, symbol: str) -> Path:
        return self.folder / f"{symbol}.parquet"

    def read(self, symbol: str) -> tuple[pd.DataFrame, tuple[dt.date, dt.date] | None]:
        """The symbol's cached bars and cover (``None``: no file)."""
        p = self.path(symbol)
        if not p.exists():
            return pd.DataFrame(columns=COLUMNS), None
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(p)
            meta = json.loads((table.schema.metadata or {})[COVER_KEY])
            cover = (dt.date.fromisoformat(meta["start"]), dt.date.fromisoformat(meta["end"]))
            df = table.to_pandas()
            missing = [c for c in COLUMNS if c not in df.columns]
            if missing:
                raise ValueError(f"no column {missing[0]!r}")
        except Exception as exc:
            why = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
            if isinstance(exc, KeyError):
                why = "no cover in its metadata"
            raise DataError(
                f"{p}: corrupted bar cache file ({why}); delete it to download its bars again"
            ) from None
        return df[COLUMNS], cover

    def write(self, symbol: str, df: pd.DataFrame, cover: tuple[dt.date, dt.date]) -> None:
        """Replace the symbol's file atomically (a crash leaves the old file or the new)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(df[COLUMNS].reset_index(drop=True), preserve_index=False)
        meta = {
            **(table.schema.metadata or {}),
            COVER_KEY: json.dumps({"start": cover[0].isoformat(), "end": cover[1].isoformat()}),
        }
        p = self.path(symbol)
        tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
        pq.write_table(table.replace_schema_metadata(meta), tmp)
        os.replace(tmp, p)


def missing_ranges(
    cover: tuple[dt.date, dt.date] | None, start: dt.date, end: dt.date
) -> list[tuple[dt.date, dt.date]]:
    """The days of ``[start, end]`` a cover lacks, as ranges that keep the cover contiguous
    (a range past the cover's end starts the day after it)."""
    if start > end:
        return []
    if cover is None:
        return [(start, end)]
    cs, ce = cover
    out = []
    if start < cs:
        out.append((start, cs - DAY))
    if end > ce:
        out.append((ce + DAY, end))
    return out


def load_cached(
    symbols: list[str],
    start: str | None,
    end: str | None,
    cache: BarCache,
    client: Callable[[], HistoryClient],
    *,
    today_last: dt.date | None = None,
) -> tuple[pd.DataFrame, CacheStats]:
    """Bars of ``symbols`` over ``[start, end]`` from the cache, fetching (through the
    client ``client()`` opens, only if needed) what it lacks; the long table and the stats.

    A fetch past a cover's end starts on the last cached bar (one bar of overlap): when the
    server's bar differs from the cached one, the broker has re-adjusted the history since
    (a split or dividend with ``adjustment`` other than ``raw``), and the symbol's whole
    cover is fetched again rather than joining two adjustments at a seam (logged).
    """
    last = today_last or last_whole_day()
    s = _date(start, EARLIEST)
    e = min(_date(end, last), last)
    stats = CacheStats()
    held = {sym: cache.read(sym) for sym in symbols}
    plans: dict[str, list[tuple[dt.date, dt.date]]] = {}
    overlap: dict[str, pd.Series] = {}  # the last cached bar of a symbol extended forward
    for sym in symbols:
        old, cover = held[sym]
        rngs = missing_ranges(cover, s, e)
        if rngs and cover is not None and rngs[-1][0] > cover[1] and len(old):
            row = old.iloc[int(np.argmax(pd.to_datetime(old["timestamp"]).to_numpy()))]
            overlap[sym] = row
            rngs[-1] = (pd.Timestamp(row["timestamp"]).date(), rngs[-1][1])
        plans[sym] = rngs
    opened: list[HistoryClient] = []

    def fetch(syms: list[str], a: dt.date, b: dt.date) -> dict[str, pd.DataFrame]:
        if not opened:
            opened.append(client())
        c = opened[0]
        before = c.pages
        got = c.fetch(syms, a, b)
        stats.fetches.append((tuple(syms), a, b))
        stats.pages += c.pages - before
        stats.new_bars += len(got)
        return {str(k): part for k, part in got.groupby("symbol", sort=False)}

    wants: dict[tuple[dt.date, dt.date], list[str]] = {}
    for sym, rngs in plans.items():
        for rng in rngs:
            wants.setdefault(rng, []).append(sym)
    fetched: dict[str, list[pd.DataFrame]] = {}
    for (a, b), syms in sorted(wants.items()):
        for sym, part in fetch(syms, a, b).items():
            fetched.setdefault(sym, []).append(part)
    for sym, row in overlap.items():
        parts = fetched.get(sym, [])
        new = pd.concat(parts) if parts else pd.DataFrame(columns=COLUMNS)
        same = new[pd.to_datetime(new["timestamp"]) == pd.Timestamp(row["timestamp"])]
        if len(same) and all(
            np.isclose(float(same[f].iloc[0]), float(row[f]), rtol=1e-9, atol=0.0)
            for f in ("open", "high", "low", "close")
        ):
            continue
        cover = held[sym][1]
        assert cover is not None
        a, b = min(s, cover[0]), max(e, cover[1])
        log.warning("data.cache_readjusted", symbol=sym, refetch=f"{a}..{b}")
        held[sym] = (pd.DataFrame(columns=COLUMNS), None)
        fetched[sym] = [fetch([sym], a, b).get(sym, pd.DataFrame(columns=COLUMNS))]
        plans[sym] = [(a, b)]
    frames = []
    for sym in symbols:
        old, cover = held[sym]
        if plans[sym]:
            parts = [p for p in [old, *fetched.get(sym, [])] if len(p)]
            df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
            if len(df):
                df["timestamp"] = pd.to_datetime(df["timestamp"]).astype("datetime64[ns]")
                df = df.sort_values("timestamp", kind="stable").drop_duplicates(
                    "timestamp", keep="last"
                )
            lo = min([s, *([cover[0]] if cover else []), *(a for a, _ in plans[sym])])
            hi = max([e, *([cover[1]] if cover else [])])
            cache.write(sym, df, (lo, hi))
            old = df
        frames.append(old)
    if stats.fetches:
        log.info(
            "data.cache_extended",
            folder=str(cache.folder),
            requests=len(stats.fetches),
            pages=stats.pages,
            bars=stats.new_bars,
        )
    nonempty = [f for f in frames if len(f)]
    if not nonempty:
        raise DataError(
            f"{cache.folder}: no bars of {', '.join(symbols)} between {s} and {e} "
            "(unknown symbols, or none in that range)"
        )
    out = pd.concat(nonempty, ignore_index=True)
    out["timestamp"] = pd.to_datetime(out["timestamp"]).astype("datetime64[ns]")
    lo_ts, hi_ts = pd.Timestamp(s), pd.Timestamp(e) + pd.Timedelta(days=1)
    out = out[(out["timestamp"] >= lo_ts) & (out["timestamp"] < hi_ts)]
    return out.reset_index(drop=True), stats


# ------------------------------------------------------------------ proxies
@dataclass(frozen=True)
class Splice:
    """``symbol`` before ``date`` is ``proxy`` times ``ratio`` (level-matched at ``date``)."""

    symbol: str
    proxy: str
    date: pd.Timestamp
    ratio: float
    anchor: pd.Timestamp  # the proxy's bar the level is matched on (``date`` or the last before)

    def line(self) -> str:
        return (
            f"{self.symbol} before {self.date.date()} = {self.proxy} x {self.ratio:.6g} "
            f"(level-matched on {self.anchor.date()})"
        )


def splice(
    target: pd.DataFrame, proxy: pd.DataFrame, symbol: str, proxy_name: str
) -> tuple[pd.DataFrame, Splice | None]:
    """``target``'s bars with ``proxy``'s before its first bar, scaled so that the proxy's
    close on the target's first date (else on the last proxy date before it) equals the
    target's close that day: the return into the splice day is the proxy's own. Prices
    (open, high, low, close) are scaled; volume is 0 (unknown) on the proxy's rows.
    Both frames: ``timestamp, open, high, low, close, volume``."""
    if not len(target) or not len(proxy):
        return target, None
    target = target.sort_values("timestamp")
    proxy = proxy.sort_values("timestamp")
    d0 = pd.Timestamp(target["timestamp"].iloc[0])
    c0 = float(target["close"].iloc[0])
    upto = proxy[proxy["timestamp"] <= d0]
    before = proxy[proxy["timestamp"] < d0]
    if not len(before):
        return target, None
    anchor = upto.iloc[-1]
    ratio = c0 / float(anchor["close"])
    rows = before.copy()
    for f in ("open", "high", "low", "close"):
        rows[f] = rows[f].astype(float) * ratio
    rows["volume"] = 0.0
    rows["symbol"] = symbol
    out = pd.concat([rows[target.columns], target], ignore_index=True)
    return out, Splice(symbol, proxy_name, d0, ratio, pd.Timestamp(anchor["timestamp"]))


def proxy_bars(spec: str) -> pd.DataFrame:
    """A proxy named ``bundled:SYM`` (the default bundled panel) or ``bundled:PANEL:SYM``,
    as a long table."""
    from data_feeds.bundled_panel import load_bundled

    parts = spec.split(":")
    if parts[0] != "bundled" or len(parts) not in (2, 3):
        raise DataError(
            f"data.proxies: {spec!r} is not a proxy (use 'bundled:SYMBOL' or "
            "'bundled:PANEL:SYMBOL', e.g. 'bundled:SPX' or 'bundled:classic:WTI')"
        )
    panel = "bundled" if len(parts) == 2 else f"bundled:{parts[1]}"
    p = load_bundled([parts[-1]], panel=panel)
    return pd.DataFrame(
        {
            "timestamp": p.index,
            "symbol": parts[-1],
            "open": p.open[:, 0],
            "high": p.high[:, 0],
            "low": p.low[:, 0],
            "close": p.close[:, 0],
            "volume": p.volume[:, 0],
        }
    )


def with_proxies(bars: pd.DataFrame, proxies: dict[str, str]) -> tuple[pd.DataFrame, list[Splice]]:
    """Every symbol named in ``proxies`` spliced onto its proxy (see :func:`splice`)."""
    if not proxies:
        return bars, []
    parts, splices = [], []
    for sym, part in bars.groupby("symbol", sort=False):
        spec = proxies.get(str(sym))
        if spec is not None:
            part, sp = splice(part, proxy_bars(spec), str(sym), spec)
            if sp is not None:
                splices.append(sp)
        parts.append(part)
    return pd.concat(parts, ignore_index=True), splices


# ------------------------------------------------------------------ the panel
KNOWN_CLASSES = {
    "SPY": "equity",
    "IVV": "equity",
    "VOO": "equity",
    "VTI": "equity",
    "QQQ": "equity",
    "IWM": "equity",
    "EFA": "equity",
    "IEF": "bond",
    "TLT": "bond",
    "SHY": "bond",
    "AGG": "bond",
    "GLD": "commodity",
    "IAU": "commodity",
    "DBC": "commodity",
    "BIL": "cash",
    "SGOV": "cash",
    "SHV": "cash",
}


def load_broker_panel(d: Any, client: Callable[[], HistoryClient]) -> Any:
    """The panel of a ``[data]`` section whose source is a broker (``d.source``), from the
    cache under ``d.cache_dir``; ``client()`` opens the history client if bars are missing."""
    from data_feeds.loaders import from_dataframe

    if not d.symbols:
        raise DataError(f"data.symbols: source = {d.source!r} needs the symbols to download")
    cache = BarCache(d.cache_dir, d.source, f"{d.feed}-{d.adjustment}-{d.timeframe}")
    bars, _ = load_cached(list(d.symbols), d.start, d.end, cache, client)
    bars, splices = with_proxies(bars, dict(d.proxies))
    classes = {**KNOWN_CLASSES, **dict(d.asset_classes)}
    panel = from_dataframe(
        bars,
        source=str(cache.folder),
        symbols=list(d.symbols),
        start=d.start,
        end=d.end,
        fill=None if d.fill == "none" else d.fill,
        asset_classes=classes,
        timezone=d.timezone,
        calendar=d.calendar,
    )
    if splices:
        from dataclasses import replace

        panel = replace(panel, provenance=tuple(f"proxy: {sp.line()}" for sp in splices))
    return panel


__all__ = [
    "BarCache",
    "CacheStats",
    "Splice",
    "last_whole_day",
    "load_broker_panel",
    "load_cached",
    "missing_ranges",
    "splice",
    "with_proxies",
]

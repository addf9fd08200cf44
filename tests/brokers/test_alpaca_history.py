"""``[data] source = "alpaca"`` against the local exchange's REST history: alpaca-py's
historical client, paged; a Parquet cache a second run reads without a request and a later
end date extends with the new bars only; SIP refused on a free plan and a corrupted cache
file are one line each; proxies spliced level-matched, the splice in the run header."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from brokers.local_exchange import LocalExchange, build_exchange
from brokers.local_exchange.settings import ExchangeSettings
from engine.assemble import load_panel
from engine.config import RunConfig, parse_config
from engine.ground.bars import BarPanel, DataError

SYMBOLS = ("SPY", "IEF", "TLT", "GLD", "BIL")


def synthetic_panel(
    symbols: tuple[str, ...] = SYMBOLS, n: int = 400, seed: int = 7, first: str = "2019-01-02"
) -> BarPanel:
    """Business-day sessions from ``first``: a random walk per symbol, OHLC around it."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range(first, periods=n)
    k = len(symbols)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, k)), axis=0))
    open_ = close * np.exp(rng.normal(0, 0.002, (n, k)))
    high = np.maximum(open_, close) * 1.003
    low = np.minimum(open_, close) * 0.997
    vol = np.full((n, k), 1e6)
    return BarPanel(idx, symbols, open_, high, low, close, vol)


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APCA_API_KEY_ID", "local-key")
    monkeypatch.setenv("APCA_API_SECRET_KEY", "local-secret")
    monkeypatch.delenv("APCA_API_DATA_URL", raising=False)


@pytest.fixture()
def exchange() -> Any:
    panel = synthetic_panel()
    s = ExchangeSettings(
        port=0, ws_port=0, mode="stepped", history_bars=panel.n_bars, bars_page_limit=300
    )
    with build_exchange(RunConfig(), panel, s) as ex:
        yield ex, panel


def config(ex: LocalExchange, cache: Path, **data: Any) -> RunConfig:
    d = {
        "source": "alpaca",
        "symbols": list(SYMBOLS),
        "start": "2019-01-01",
        "end": "2019-12-31",
        "url": ex.url,
        "cache_dir": str(cache),
        **data,
    }
    return parse_config({"data": d})


def test_first_run_pages_second_run_no_request_later_end_new_bars_only(
    env: None, exchange: Any, tmp_path: Path
) -> None:
    ex, panel = exchange
    in_2019 = int((panel.index <= "2019-12-31").sum())  # sessions in [start, end]
    p1 = load_panel(config(ex, tmp_path))
    assert p1.n_bars == in_2019 and p1.symbols == SYMBOLS
    np.testing.assert_allclose(p1.close, panel.close[:in_2019], rtol=1e-12)
    pages = math.ceil(in_2019 * len(SYMBOLS) / 300)  # the exchange's page size
    assert ex.bar_requests == pages and pages > 1
    assert p1.asset_classes == ("equity", "bond", "bond", "commodity", "cash")

    # the same range again: read from the cache, no request
    calls = ex.rest_calls
    p2 = load_panel(config(ex, tmp_path))
    assert ex.rest_calls == calls
    np.testing.assert_array_equal(p2.close, p1.close)

    # a later end date: only the bars after the cover are fetched (+ the last cached bar,
    # compared with the server's to catch a re-adjusted history)
    p3 = load_panel(config(ex, tmp_path, end="2020-03-31"))
    new = int(((panel.index > "2019-12-31") & (panel.index <= "2020-03-31")).sum())
    assert ex.bar_requests - pages == math.ceil((new + 1) * len(SYMBOLS) / 300)
    assert p3.n_bars == in_2019 + new
    np.testing.assert_allclose(p3.close, panel.close[: in_2019 + new], rtol=1e-12)
    # ... and offline now: no keys, no server
    ex.stop()
    calls = ex.rest_calls
    p4 = load_panel(
        config(ex, tmp_path, start="2019-06-01", end="2020-02-28", url="http://127.0.0.1:9")
    )
    assert ex.rest_calls == calls and p4.index[0] >= pd.Timestamp("2019-06-01")


def test_sip_on_a_free_plan_is_one_line(env: None, exchange: Any, tmp_path: Path) -> None:
    ex, _ = exchange
    with pytest.raises(DataError) as err:
        load_panel(config(ex, tmp_path, feed="sip", end=None))
    msg = str(err.value)
    assert "\n" not in msg and "HTTP 403" in msg and "SIP" in msg and 'feed = "iex"' in msg


def test_a_corrupted_cache_file_is_one_line_naming_it(
    env: None, exchange: Any, tmp_path: Path
) -> None:
    ex, _ = exchange
    load_panel(config(ex, tmp_path))
    f = next(tmp_path.rglob("TLT.parquet"))
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(DataError) as err:
        load_panel(config(ex, tmp_path))
    msg = str(err.value)
    assert "\n" not in msg and str(f) in msg and "corrupted" in msg


def test_missing_keys_is_one_line(
    monkeypatch: pytest.MonkeyPatch, exchange: Any, tmp_path: Path
) -> None:
    ex, _ = exchange
    monkeypatch.delenv("APCA_API_KEY_ID", raising=False)
    monkeypatch.delenv("APCA_API_SECRET_KEY", raising=False)
    with pytest.raises(DataError, match="APCA_API_KEY_ID"):
        load_panel(config(ex, tmp_path))


# ------------------------------------------------------------------ proxies
def _bars(dates: list[str], closes: list[float], sym: str) -> pd.DataFrame:
    c = np.asarray(closes, dtype=float)
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(dates),
            "symbol": sym,
            "open": c * 0.99,
            "high": c * 1.01,
            "low": c * 0.98,
            "close": c,
            "volume": 1e6,
        }
    )


def test_splice_level_matched_by_hand() -> None:
    from data_feeds.broker_cache import splice

    proxy = _bars(
        ["2000-01-03", "2000-01-04", "2000-01-05", "2000-01-06"], [100, 110, 121, 133.1], "SPX"
    )
    target = _bars(["2000-01-05", "2000-01-06"], [40.0, 41.0], "SPY")
    out, sp = splice(target, proxy, "SPY", "bundled:SPX")
    assert sp is not None and sp.date == pd.Timestamp("2000-01-05") and sp.anchor == sp.date
    assert sp.ratio == pytest.approx(40 / 121)
    # 100 * 40/121 = 33.05785..., 110 * 40/121 = 36.36363...; the target's own bars after
    assert out["close"].tolist() == pytest.approx([4000 / 121, 4400 / 121, 40.0, 41.0])
    assert out["open"].iloc[0] == pytest.approx(99 * 40 / 121)
    assert out["volume"].tolist() == [0.0, 0.0, 1e6, 1e6]  # the proxy's volume: unknown
    # the return into the splice day is the proxy's: 40 / (110 * 40/121) = 121/110 = 1.1
    assert out["close"].iloc[2] / out["close"].iloc[1] == pytest.approx(1.1)
    # proxy closed on the target's first day: matched on its last bar before (110 -> x 0.4)
    out, sp = splice(_bars(["2000-01-05"], [44.0], "SPY"), proxy.iloc[:2], "SPY", "bundled:SPX")
    assert (
        sp is not None
        and sp.anchor == pd.Timestamp("2000-01-04")
        and sp.ratio == pytest.approx(0.4)
    )
    assert out["close"].tolist() == pytest.approx([40.0, 44.0, 44.0])  # 100, 110 x 0.4; 44


def test_proxies_lengthen_history_and_the_header_names_the_splice(
    env: None, exchange: Any, tmp_path: Path
) -> None:
    import data_feeds
    from engine.cli import run_header

    ex, panel = exchange
    cfg = config(
        ex,
        tmp_path,
        symbols=["SPY", "BIL"],
        start="2017-01-01",
        proxies={"SPY": "bundled:SPX", "BIL": "bundled:CASH"},
    )
    p = load_panel(cfg)
    spx = data_feeds.load_bundled(["SPX"], "2017-01-01", "2019-01-02")
    first = pd.Timestamp("2019-01-02")
    assert p.index[0] == spx.index[0] and first in p.index
    i = p.index.get_loc(first)
    spy0 = float(panel.close[0, 0])
    ratio = spy0 / float(spx.close[-1, 0])  # SPX on 2019-01-02: the splice day
    np.testing.assert_allclose(p.close[:i, 0], spx.close[:-1, 0] * ratio, rtol=1e-12)
    assert p.close[i, 0] == pytest.approx(spy0)
    assert (p.volume[:i] == 0).all()
    head = run_header(p)
    assert "proxy: SPY before 2019-01-02 = bundled:SPX x" in head
    assert "proxy: BIL before 2019-01-02 = bundled:CASH x" in head


def test_a_readjusted_history_is_fetched_again_not_joined(
    env: None, exchange: Any, tmp_path: Path
) -> None:
    """The broker back-adjusted a symbol's bars since they were cached (a dividend with
    adjustment = "all"): the overlapping bar differs, so that symbol's whole cover is
    fetched again; the others are only extended."""
    import pyarrow.parquet as pq

    ex, panel = exchange
    load_panel(config(ex, tmp_path))
    f = next(tmp_path.rglob("GLD.parquet"))
    t = pq.read_table(f)
    df = t.to_pandas()
    df[["open", "high", "low", "close"]] *= 0.98  # as adjusted before a later dividend
    pq.write_table(pa_table(df).replace_schema_metadata(t.schema.metadata), f)
    p = load_panel(config(ex, tmp_path, end="2020-03-31"))
    n = p.n_bars
    np.testing.assert_allclose(p.close, panel.close[:n], rtol=1e-12)  # GLD included
    assert n == int((panel.index <= "2020-03-31").sum())


def pa_table(df: pd.DataFrame) -> Any:
    import pyarrow as pa

    return pa.Table.from_pandas(df, preserve_index=False)

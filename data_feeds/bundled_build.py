"""Rebuild ``data_feeds/bundled/panel.csv.gz`` from registry packages (run by hand only).

    .venv/bin/python -m data_feeds.bundled_build            # needs `arch` and network for pip

Sources (see ``bundled/PROVENANCE.md``): ``arch`` 8.0.0 datasets (S&P 500, NASDAQ Composite,
WTI) and ``treasury_curves.csv`` inside the zipline-reloaded 3.2.1 wheel (fetched with
``pip download --no-deps``). Never imported by the engine, the tests or the CLI.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from data_feeds.bonds import bond_total_return

OUT = Path(__file__).with_name("bundled") / "panel.csv.gz"
ZIPLINE = "zipline-reloaded==3.2.1"
TREASURY_MEMBER = "zipline/resources/market_data/treasury_curves.csv"
START = "1999-01-04"
FFILL_LIMIT = 5  # max consecutive equity trading days a yield / WTI value is carried forward


def fetch_treasury(workdir: Path, wheel_dir: Path | None = None) -> pd.DataFrame:
    """Daily Treasury CMT yields (decimal) from the zipline-reloaded wheel."""
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


def build(treasury: pd.DataFrame) -> pd.DataFrame:
    """The wide panel table (timestamp, SYM_field..., exog_NAME...)."""
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

    def on_cal(s: pd.Series, name: str) -> np.ndarray:
        s = s.copy()
        s.index = pd.DatetimeIndex(s.index).as_unit("ns")
        full = s.reindex(s.index.union(cal)).ffill(limit=FFILL_LIMIT)
        out = full.reindex(cal).to_numpy(dtype=np.float64)
        if np.isnan(out).any():
            raise SystemExit(f"{name}: gap longer than {FFILL_LIMIT} days on the calendar")
        return out

    y10 = on_cal(treasury["10year"], "10year")
    y3m = on_cal(treasury["3month"], "3month")
    oil = on_cal(wti.dropna(), "WTI")

    cols: dict[str, np.ndarray] = {}
    for sym, df in (("SPX", spx), ("NASDAQ", ndq)):
        d = df.reindex(cal)
        for f in ("Open", "High", "Low", "Close", "Volume"):
            cols[f"{sym}_{f.lower()}"] = d[f].to_numpy(dtype=np.float64)

    ust = 100.0 * np.cumprod(1.0 + bond_total_return(y10, 10.0))
    cols.update(flat_ohlc(ust, "UST10"))
    cols.update(flat_ohlc(oil, "WTI"))
    days = np.diff(cal.asi8) / 86_400e9
    cash_r = np.concatenate([[0.0], y3m[:-1] * days / 365.0])
    cols.update(flat_ohlc(100.0 * np.cumprod(1.0 + cash_r), "CASH"))
    cols["exog_UST10Y_YIELD"] = y10
    cols["exog_UST3M_YIELD"] = y3m
    cols["exog_SLOPE_10Y_3M"] = y10 - y3m
    out = pd.DataFrame(cols, index=cal)
    out.index.name = "timestamp"
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel-dir", type=Path, help="folder already holding the zipline wheel")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        treasury = fetch_treasury(Path(tmp), args.wheel_dir)
    table = build(treasury)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(
        args.out,
        date_format="%Y-%m-%d",
        compression={"method": "gzip", "compresslevel": 9, "mtime": 0},
    )
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB): {len(table)} bars, "
        f"{table.index[0].date()} to {table.index[-1].date()}"
    )


if __name__ == "__main__":
    main()

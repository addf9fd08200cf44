"""One formatting layer for every number a user reads: console tables, the HTML report,
``sweep`` and ``advise``.

Conventions (the same in tables and charts):

* rates and returns are percentages (``12.34%``); ratios (Sharpe, beta, ...) are plain
  decimals; money has thousands separators; counts are integers; dates have no time of day
  when the data are daily.
* **losses are negative**: drawdowns, VaR and CVaR are stored by the analysis layer as
  positive loss fractions (see :mod:`engine.analysis.metrics`) and shown here as negative
  returns (``max_drawdown = 0.25`` prints ``-25.00%``), as the drawdown chart draws them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["pct", "loss", "money", "price", "count", "ratio", "bps", "pvalue", "text"]

#: Exact keys and their kinds; other keys are matched by :data:`_PATTERNS`.
KINDS: dict[str, Kind] = {
    "total_return": "pct",
    "cagr": "pct",
    "volatility": "pct",
    "ann_return": "pct",
    "ann_vol": "pct",
    "turnover": "pct",
    "cost_drag": "pct",
    "return": "pct",
    "frac_time": "pct",
    "share_of_time": "pct",
    "alpha": "pct",
    "tracking_error": "pct",
    "excess_return": "pct",
    "up_capture": "pct",
    "down_capture": "pct",
    "hit_rate": "pct",
    "max_drawdown": "loss",
    "depth": "loss",
    "total_costs": "money",
    "final_equity": "money",
    "pnl": "money",
    "equity": "money",
    "notional": "money",
    "value": "money",
    "n_trades": "count",
    "periods_per_year": "text",
    "max_consecutive_wins": "count",
    "max_consecutive_losses": "count",
    "n_bars": "count",
    "bars": "count",
    "recovery_bars": "count",
    "n_spells": "count",
    "max_dwell": "count",
    "length": "count",
    "to_trough": "count",
    "to_recover": "count",
    "trough_to_recovery": "count",
    "lag_bars": "count",
    "fold": "count",
    "break_even_bps": "bps",
    "bps": "bps",
}

_PATTERNS: tuple[tuple[str, Kind], ...] = (
    (r"(^|_)p_|p[-_ ]?value|^pvalue|^spa_p", "pvalue"),
    (r"sharpe|sortino|calmar|_ratio$|beta|correlation", "ratio"),
    (r"^c?var\d*", "loss"),  # var95, cvar99_cf, var_1d_95 ...
    (r"drawdown|^mdd", "loss"),
    (r"_bps$|^bps", "bps"),
    (r"return|cagr|volatility|_vol$|^weight|frac|share|capture|turnover|exposure|cash_w", "pct"),
    (r"cost|equity|value|notional|pnl|money|commission|spread|slippage|impact", "money"),
    (r"^n_|_bars$|count|dwell|length", "count"),
)

#: Display names for the report's column headers (the console keeps the keys).
LABELS: dict[str, str] = {
    "total_return": "Total return",
    "cagr": "CAGR",
    "volatility": "Volatility",
    "sharpe": "Sharpe",
    "sortino": "Sortino",
    "max_drawdown": "Max drawdown",
    "calmar": "Calmar",
    "cvar95": "CVaR 95% (1d)",
    "var95": "VaR 95% (1d)",
    "var99": "VaR 99% (1d)",
    "cvar99": "CVaR 99% (1d)",
    "turnover": "Turnover /yr",
    "total_costs": "Costs",
    "n_trades": "Fills",
    "final_equity": "Final equity",
    "alpha": "Alpha /yr",
    "beta": "Beta",
    "information_ratio": "Information ratio",
    "tracking_error": "Tracking error",
    "up_capture": "Up capture",
    "down_capture": "Down capture",
    "correlation": "Correlation",
    "excess_return": "Excess CAGR",
    "ann_return": "Ann. return",
    "frac_time": "Share of time",
    "share_of_time": "Share of time",
    "n_bars": "Bars",
    "max_dwell": "Max dwell",
    "n_spells": "Spells",
    "mean_dwell": "Mean dwell",
    "median_dwell": "Median dwell",
    "n_train": "Train bars",
    "n_test": "Test bars",
    "recovery_bars": "Recovery (bars)",
    "recovery_date": "Recovered on",
    "to_trough": "To trough",
    "to_recover": "To recover",
    "length": "Length",
    "depth": "Depth",
    "cost_bps": "Cost (bps of notional)",
    "cost_drag": "Cost drag /yr",
    "lag_any_bars": "Lag to non-calm (bars)",
    "lag_top_bars": "Lag to top state (bars)",
    "share_in_top": "Share in top state",
    "state_at_start": "State at start",
    "hit_rate": "Hit rate",
    "skew": "Skew",
    "kurtosis": "Excess kurtosis",
    "periods_per_year": "Bars per year",
    "recovery": "Recovered on",
    "start_to_recovery_bars": "Start to recovery (bars)",
    "trough_to_recovery": "To recovery",
    "pnl": "P&L",
    "qty": "Quantity",
}
for _lvl in ("95", "99"):
    for _k, _name in (("var", "VaR"), ("cvar", "CVaR")):
        for _m, _how in (("gaussian", "Gaussian"), ("cf", "Cornish-Fisher")):
            LABELS[f"{_k}{_lvl}_{_m}"] = f"{_name} {_lvl}% {_how} (1d)"


#: Generic column words, capitalised even in tables whose other headers are names
#: (``labels=False``: strategies, symbols) and so print as they are.
HEADER_WORDS: dict[str, str] = {
    "estimate": "Estimate",
    "lower": "Lower",
    "upper": "Upper",
    "std": "Std",
    "what": "What",
    "scale": "Scale",
    "weights": "Weights",
    "value": "Value",
    "mean": "Mean",
}


def kind_of(key: Any) -> Kind:
    """The display kind of a metric key (tuples: their last element)."""
    k = str(key[-1] if isinstance(key, tuple) else key).strip().lower()
    if k in KINDS:
        return KINDS[k]
    for pat, kind in _PATTERNS:
        if re.search(pat, k):
            return kind
    return "ratio"


#: Metrics on excess returns: their headers name the risk-free series (``df.attrs["rf_label"]``).
RF_KEYS: frozenset[str] = frozenset({"sharpe", "sortino"})


def label(key: Any, rf_label: str | None = None, readable: bool = True) -> str:
    """A header for a metric key: readable (``"Max drawdown"``) or the key itself; excess-return
    metrics carry their risk-free series (``"Sharpe (rf = CASH)"``; ``sharpe_rf0`` ->
    ``"Sharpe (rf = 0)"``)."""
    k = str(key)

    def name(x: str) -> str:
        if not readable:
            return x
        text = LABELS.get(x, x.replace("_", " "))
        return text[:1].upper() + text[1:]

    if readable and ":" in k:  # "failed_solve_count:my_strategy": the name stays as it is
        metric, _, who = k.partition(":")
        return f"{name(metric)}:{who}"
    if k in RF_KEYS and rf_label is not None:
        return f"{name(k)} (rf = {rf_label})"
    if k.endswith("_rf0") and k[:-4] in RF_KEYS:
        return f"{name(k[:-4])} (rf = 0)"
    return name(k)


def rf0_twins_dropped(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` without its ``sharpe_rf0`` / ``sortino_rf0`` columns when its Sharpe is itself
    at rf = 0 (``attrs["rf_label"] == "0"``): both would read "Sharpe (rf = 0)"."""
    if df.attrs.get("rf_label") != "0":
        return df
    twins = [c for c in df.columns if str(c).endswith("_rf0") and str(c)[:-4] in df.columns]
    if not twins:
        return df
    out = df.drop(columns=twins)
    out.attrs = dict(df.attrs)
    return out


def _finite(x: Any) -> bool:
    return (
        isinstance(x, int | float | np.number)
        and not isinstance(x, bool | np.bool_)
        and (math.isfinite(float(x)))
    )


def pct(x: float, digits: int = 2, signed: bool = False) -> str:
    """``0.1234 -> '12.34%'`` (``signed``: always a sign)."""
    if not _finite(x):
        return "n/a"
    return _no_negative_zero(f"{float(x) * 100:{'+' if signed else ''}.{digits}f}%")


def money(x: float, digits: int = 0, signed: bool = False) -> str:
    """``1234567.8 -> '1,234,568'``."""
    if not _finite(x):
        return "n/a"
    return _no_negative_zero(f"{float(x):{'+' if signed else ''},.{digits}f}")


def ratio(x: float, digits: int = 2) -> str:
    """A plain decimal (Sharpe, beta, ...)."""
    if not _finite(x):
        return "n/a"
    return _no_negative_zero(f"{float(x):.{digits}f}")


def date(ts: Any, daily: bool = True) -> str:
    """A timestamp as ``YYYY-MM-DD`` (``daily=False``: with the time of day)."""
    if ts is None or (isinstance(ts, float) and math.isnan(ts)) or ts is pd.NaT:
        return "n/a"
    t = pd.Timestamp(ts)
    if pd.isna(t):
        return "n/a"
    return f"{t:%Y-%m-%d}" if daily or t == t.normalize() else f"{t:%Y-%m-%d %H:%M}"


def _no_negative_zero(s: str) -> str:
    """``-0.00%`` -> ``0.00%``: a value that rounds to zero has no sign."""
    if s.startswith("-") and not any(ch in "123456789" for ch in s):
        return s[1:]
    return s


def value(key: Any, x: Any, kind: Kind | None = None) -> str:
    """Render one cell by its key's kind (losses negative, see the module docstring)."""
    return _no_negative_zero(_value(key, x, kind))


def _value(key: Any, x: Any, kind: Kind | None = None) -> str:
    if isinstance(x, pd.Timestamp | np.datetime64):
        return date(x, daily=False)  # the time of day only when there is one
    if isinstance(x, bool | np.bool_) or not isinstance(x, int | float | np.number):
        return "n/a" if x is None else str(x)
    k = kind or kind_of(key)
    f = float(x)
    if not math.isfinite(f):
        return "∞" if f == math.inf and k == "bps" else "n/a"
    if k == "pct":
        return pct(f)
    if k == "loss":
        return pct(-abs(f)) if f != 0 else "0.00%"
    if k == "money":
        return money(f)
    if k == "price":
        return money(f, 2)
    if k == "count":
        return f"{f:,.0f}"
    if k == "bps":
        return f"{f:,.1f} bps"
    if k == "pvalue":
        return f"{f:.3f}"
    if k == "text":
        return f"{f:g}"
    return ratio(f, 3 if abs(f) < 10 else 2)


def frame(
    df: pd.DataFrame,
    kinds: Mapping[Any, Kind] | None = None,
    kind: Kind | None = None,
    by_row: bool = False,
) -> pd.DataFrame:
    """The table with every cell rendered as a string.

    ``kinds`` maps columns (``by_row``: index labels) to kinds; ``kind`` forces one kind for
    every numeric cell; otherwise each column's (row's) key decides.
    """
    out = pd.DataFrame(index=df.index, columns=df.columns, dtype=object)
    for i in range(df.shape[0]):
        for j in range(df.shape[1]):
            key = df.index[i] if by_row else df.columns[j]
            k = kind or (kinds or {}).get(key) or kind_of(key)
            out.iat[i, j] = value(key, df.iat[i, j], k)
    return out


def text_table(
    df: pd.DataFrame,
    columns: Iterable[str] | None = None,
    kinds: Mapping[Any, Kind] | None = None,
) -> str:
    """A fixed-width console table (keys as headers, rows left-aligned)."""
    df = rf0_twins_dropped(df)
    cols = [c for c in (columns or df.columns) if c in df.columns] or list(df.columns)
    txt = frame(df[cols], kinds=kinds)
    rf = df.attrs.get("rf_label")
    headers = [str(df.index.name or ""), *[label(c, rf, readable=False) for c in cols]]
    body = [[str(i), *[str(v) for v in txt.loc[i]]] for i in txt.index]
    widths = [max([len(h)] + [len(r[j]) for r in body]) for j, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths))
        )

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *map(line, body)])

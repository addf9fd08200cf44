"""Helpers shared by the report sections: asset classes, the benchmark setting, series
colours, date columns as text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from engine import fmt
from engine.report.plot import BENCH_COLOR, strategy_color


def asset_classes(result: Any) -> dict[str, str] | None:
    """symbol -> asset class of the result's panel, or None when unknown."""
    panel = getattr(result, "panel", None)
    if panel is None:
        return None
    syms = getattr(panel, "symbols", ())
    classes = getattr(panel, "asset_classes", ())
    if len(syms) != len(classes):
        return None
    return {str(s): str(c) for s, c in zip(syms, classes)}


def cash_symbols(result: Any) -> tuple[str, ...]:
    """Symbols of asset class ``cash`` (held as cash in the exposure chart)."""
    classes = asset_classes(result) or {}
    return tuple(s for s, c in classes.items() if c.lower() == "cash")


def config_benchmark(result: Any) -> str | None:
    """The config's ``[report] benchmark`` if set, else the detector's market symbol when it
    is one of the prices (None: the analysis default, the first equity symbol)."""
    cfg = getattr(result, "config", None) or {}
    if not isinstance(cfg, dict):
        return None
    rep = cfg.get("report") or {}
    b = rep.get("benchmark") if isinstance(rep, dict) else None
    if b:
        return str(b)
    det = cfg.get("detector") or {}
    market = det.get("market") if isinstance(det, dict) else None
    prices = getattr(result, "prices", None)
    if market and prices is not None and str(market) in map(str, prices.columns):
        return str(market)
    return None


def candidate_name(names: Sequence[str]) -> str:
    """The strategy a report shows first where it shows one series: the first whose name
    says "regime", else the last (the CLI's bootstrap candidate, the same rule)."""
    return next((n for n in names if "regime" in n), names[-1])


def strategy_weights(weights: pd.DataFrame, s: str) -> pd.DataFrame:
    """One strategy's held weights (symbols as columns, NaN as 0)."""
    if isinstance(weights.columns, pd.MultiIndex):
        return pd.DataFrame(weights[s]).astype(float).fillna(0.0)
    return weights.astype(float).fillna(0.0)


class RunOnly:
    """``result`` with the returns-only series (e.g. the CV-selected one) left out."""

    def __init__(self, result: Any, drop: Sequence[str]) -> None:
        self._r = result
        self.equity = result.equity[[c for c in result.equity.columns if c not in drop]]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._r, name)


class WithSeries:
    """``result`` with one more equity column (e.g. a buy-and-hold benchmark), so the metrics
    treat it exactly like the strategies (same risk-free series, same bars per year)."""

    def __init__(self, result: Any, name: str, equity: pd.Series) -> None:
        self._r = result
        self.equity = result.equity.assign(**{name: equity.reindex(result.equity.index)})

    def __getattr__(self, name: str) -> Any:
        return getattr(self._r, name)


def series_colors(names: Sequence[str], bench: tuple[str, pd.Series] | None) -> dict[str, str]:
    """One colour per series for every chart: strategies in order, a symbol benchmark grey."""
    out = {str(n): strategy_color(i) for i, n in enumerate(names)}
    if bench is not None and bench[0] not in out:
        out[bench[0]] = BENCH_COLOR
    return out


def pct_axis(title: str = "") -> dict[str, Any]:
    """A y-axis in percent."""
    return {"tickformat": ".0%", "title": {"text": title}, "hoverformat": ".2%"}


def dates_as_text(df: pd.DataFrame, cols: Sequence[str], missing: str) -> pd.DataFrame:
    """The date columns ``cols`` as ``YYYY-MM-DD`` text, ``missing`` where empty."""
    out = df.copy()
    for c in cols:
        if c in out.columns:
            out[c] = [fmt.date(v) if pd.notna(v) else missing for v in out[c]]
    return out

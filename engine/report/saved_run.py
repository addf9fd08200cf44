"""Read a run folder written by :meth:`BacktestResult.save` back into result-like tables."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

REQUIRED = ("equity.csv", "weights.csv", "fills.csv", "regimes.csv", "prices.csv", "meta.json")


@dataclass(frozen=True)
class PanelInfo:
    symbols: tuple[str, ...]
    asset_classes: tuple[str, ...]


@dataclass
class SavedRun:
    """The tables the analysis and report read, loaded from CSV."""

    equity: pd.DataFrame
    weights: pd.DataFrame
    fills: pd.DataFrame
    regimes: pd.DataFrame
    prices: pd.DataFrame
    panel: PanelInfo
    regime_labels: tuple[str, ...]
    config: dict[str, Any] = field(default_factory=dict)


def load_run(run_dir: str | Path) -> SavedRun:
    """Load a run folder; a missing file is a one-line ``FileNotFoundError``."""
    d = Path(run_dir)
    missing = [f for f in REQUIRED if not (d / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{d}: not a run folder (missing {', '.join(missing)})")
    meta = json.loads((d / "meta.json").read_text())
    equity = pd.read_csv(d / "equity.csv", index_col=0, parse_dates=True)
    w = pd.read_csv(d / "weights.csv", parse_dates=["timestamp"])
    weights = w.pivot_table(
        index="timestamp", columns=["strategy", "symbol"], values="weight", sort=False
    )
    fills = pd.read_csv(d / "fills.csv", parse_dates=["timestamp"])
    regimes = pd.read_csv(d / "regimes.csv", index_col=0, parse_dates=True)
    prices = pd.read_csv(d / "prices.csv", index_col=0, parse_dates=True)
    config = json.loads((d / "config.json").read_text()) if (d / "config.json").is_file() else {}
    return SavedRun(
        equity=equity,
        weights=weights,
        fills=fills,
        regimes=regimes,
        prices=prices,
        panel=PanelInfo(tuple(meta["symbols"]), tuple(meta["asset_classes"])),
        regime_labels=tuple(meta["regime_labels"]),
        config=config,
    )

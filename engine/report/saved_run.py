"""Read a run folder written by :meth:`BacktestResult.save` back into result-like tables."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine.core.run_folder import check_manifest
from engine.ground.bars import DataError

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
    # the baselines of the run's regime strategies (baselines.csv; None when not saved)
    baselines: Any = None


def load_run(run_dir: str | Path) -> SavedRun:
    """Load a run folder; a missing file is a one-line ``FileNotFoundError``, a file cut
    short, unreadable or from another run a one-line ``DataError`` naming it."""
    d = Path(run_dir)
    missing = [f for f in REQUIRED if not (d / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{d}: not a run folder (missing {', '.join(missing)})")
    try:
        check_manifest(d)
    except ValueError as exc:
        raise DataError(str(exc)) from None
    reading = ["meta.json"]  # the file being read, for the error
    try:
        run = _read(d, reading)
    except (ValueError, KeyError, IndexError, TypeError, pd.errors.EmptyDataError) as exc:
        text = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise DataError(
            f"{d}: {reading[0]}: unreadable ({type(exc).__name__}: {text}); the run folder "
            "is incomplete or damaged: rerun the backtest"
        ) from None
    _check_together(d, run)
    return run


def _check_together(d: Path, run: SavedRun) -> None:
    """The tables must describe one run: the same bars and strategies everywhere."""
    idx = run.equity.index
    names = [str(c) for c in run.equity.columns]
    if run.equity.isna().any().any() or len(idx) == 0:
        raise DataError(f"{d}: equity.csv has empty or unreadable values; rerun the backtest")
    for what, other in (("regimes.csv", run.regimes.index), ("prices.csv", run.prices.index)):
        if not other.equals(idx):
            raise DataError(
                f"{d}: {what} has {len(other)} bars, equity.csv {len(idx)} (not the same run); "
                "rerun the backtest"
            )
    w_names = sorted({str(s) for s in run.weights.columns.get_level_values(0)})
    w_index = pd.DatetimeIndex(run.weights.index)
    if w_names != sorted(names) or not w_index.equals(pd.DatetimeIndex(idx)):
        raise DataError(
            f"{d}: weights.csv is not from the run of equity.csv (strategies "
            f"{', '.join(w_names)} vs {', '.join(names)}, {len(w_index)} vs {len(idx)} bars); "
            "rerun the backtest"
        )
    if len(run.fills) and "strategy" in run.fills.columns:
        extra = sorted({str(s) for s in run.fills["strategy"]} - set(names))
        if extra:
            raise DataError(f"{d}: fills.csv has strategy {extra[0]!r}, not in equity.csv")
    if list(run.prices.columns) != list(run.panel.symbols):
        raise DataError(f"{d}: prices.csv symbols differ from meta.json; rerun the backtest")


def _read(d: Path, reading: list[str]) -> SavedRun:
    def note(name: str) -> None:
        reading[0] = name

    note("meta.json")
    meta = json.loads((d / "meta.json").read_text())
    note("equity.csv")
    equity = pd.read_csv(d / "equity.csv", index_col=0, parse_dates=True)
    equity = equity.apply(pd.to_numeric, errors="coerce")
    equity.index = pd.DatetimeIndex(pd.to_datetime(equity.index, errors="raise"))
    note("weights.csv")
    w = pd.read_csv(d / "weights.csv", parse_dates=["timestamp"])
    weights = w.pivot_table(
        index="timestamp", columns=["strategy", "symbol"], values="weight", sort=False
    )
    note("fills.csv")
    fills = pd.read_csv(d / "fills.csv", parse_dates=["timestamp"])
    note("regimes.csv")
    regimes = pd.read_csv(d / "regimes.csv", index_col=0, parse_dates=True)
    note("prices.csv")
    prices = pd.read_csv(d / "prices.csv", index_col=0, parse_dates=True)
    note("config.json")
    config = json.loads((d / "config.json").read_text()) if (d / "config.json").is_file() else {}
    baselines = None
    if (d / "baselines.csv").is_file():
        note("baselines.csv")
        baselines = _read_baselines(d / "baselines.csv")
    return SavedRun(
        baselines=baselines,
        equity=equity,
        weights=weights,
        fills=fills,
        regimes=regimes,
        prices=prices,
        panel=PanelInfo(tuple(meta["symbols"]), tuple(meta["asset_classes"])),
        regime_labels=tuple(meta["regime_labels"]),
        config=config,
    )


def _read_baselines(path: Path) -> Any:
    """The :class:`~engine.analysis.baselines.BacktestBaselines` saved beside the run."""
    from engine.analysis.baselines import BacktestBaselines

    t = pd.read_csv(path, index_col=[0, 1], keep_default_na=False, na_values=[""])
    whole = ["what", "verdict", "rf_label", "evaluation_start"]  # text the run always writes
    if len(t) == 0 or t[whole].isna().any().any():  # a row cut short (no manifest to say so)
        raise ValueError("a row has blank cells where the run writes values: cut short")
    verdicts = {str(key[0]): str(v) for key, v in zip(t.index, t["verdict"], strict=True)}
    rf_label, start = str(t["rf_label"].iloc[0]), pd.Timestamp(t["evaluation_start"].iloc[0])
    table = t.drop(columns=["verdict", "rf_label", "evaluation_start"])
    table.attrs["rf_label"] = rf_label
    return BacktestBaselines(table, verdicts, rf_label, start)

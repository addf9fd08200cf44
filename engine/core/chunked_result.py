"""What a chunked run returns: per-bar O(T) outputs, fills and decision-bar targets."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.core.result import fills_frame, regimes_frame

__all__ = ["ChunkedResult", "ChunkedRun", "Grow"]


@dataclass
class ChunkedRun:
    """One strategy's outputs over the whole history (arrays, bars in file order)."""

    name: str
    equity: np.ndarray  # (T,)
    cash: np.ndarray  # (T,)
    costs: np.ndarray  # (T, N_COST_KINDS) per-bar cost pieces (currency)
    fills: np.ndarray  # kernel fill records; R_BAR is the bar of the whole history
    decision_bars: np.ndarray  # (D,) int64 bars where the policy rebalanced
    targets: np.ndarray  # (D, N) target weights at those bars
    orders: np.ndarray  # (D, N) share orders placed at those bars

    @property
    def nbytes(self) -> int:
        return sum(
            a.nbytes
            for a in (
                self.equity,
                self.cash,
                self.costs,
                self.fills,
                self.decision_bars,
                self.targets,
                self.orders,
            )
        )


@dataclass(frozen=True)
class _Axis:
    """The two attributes of a panel that the fills table reads."""

    index: pd.DatetimeIndex
    symbols: tuple[str, ...]


@dataclass
class ChunkedResult:
    """Several strategies over the same chunked history, detector and costs."""

    index: pd.DatetimeIndex
    symbols: tuple[str, ...]
    runs: dict[str, ChunkedRun]
    post: np.ndarray  # (T, K) filtered posterior
    raw: np.ndarray  # (T,) raw state
    smoothed: np.ndarray  # (T,) smoothed (trading) state
    regime_labels: tuple[str, ...]
    n_chunks: int = 0
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def n_bars(self) -> int:
        return len(self.index)

    @property
    def equity(self) -> pd.DataFrame:
        df = pd.DataFrame({n: r.equity for n, r in self.runs.items()}, index=self.index)
        df.index.name = "timestamp"
        return df

    @property
    def cash(self) -> pd.DataFrame:
        df = pd.DataFrame({n: r.cash for n, r in self.runs.items()}, index=self.index)
        df.index.name = "timestamp"
        return df

    def fills_of(self, name: str) -> pd.DataFrame:
        """One strategy's fills table (columns of :data:`engine.core.result.FILL_COLUMNS`)."""
        axis: Any = _Axis(self.index, self.symbols)
        return fills_frame(name, axis, self.runs[name].fills)

    @property
    def fills(self) -> pd.DataFrame:
        frames = [self.fills_of(n) for n, r in self.runs.items() if len(r.fills)]
        if not frames:
            return self.fills_of(next(iter(self.runs)))
        return pd.concat(frames, ignore_index=True)

    def targets_of(self, name: str) -> pd.DataFrame:
        """Target weights at the bars where ``name`` rebalanced (index: those bars)."""
        run = self.runs[name]
        return pd.DataFrame(
            run.targets, index=self.index[run.decision_bars], columns=list(self.symbols)
        )

    @property
    def regimes(self) -> pd.DataFrame:
        """timestamp-indexed: state, smoothed_state, label, p0..p{K-1} (as a whole run)."""
        axis: Any = _Axis(self.index, self.symbols)
        return regimes_frame(axis, self.post, self.raw, self.smoothed, self.regime_labels)

    def save(self, out_dir: str | Path) -> Path:
        """Write equity.csv, fills.csv, regimes.csv, targets.csv (decision bars only, long:
        timestamp, strategy, symbol, weight), metrics.json, config.json and meta.json."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.equity.to_csv(out / "equity.csv")
        self.fills.to_csv(out / "fills.csv", index=False)
        self.regimes.to_csv(out / "regimes.csv")
        frames = []
        for name in self.runs:
            t = self.targets_of(name).rename_axis("timestamp")
            long = t.reset_index().melt(id_vars="timestamp", var_name="symbol", value_name="weight")
            frames.append(long.assign(strategy=name)[["timestamp", "strategy", "symbol", "weight"]])
        pd.concat(frames, ignore_index=True).to_csv(out / "targets.csv", index=False)
        meta = {"symbols": list(self.symbols), "regime_labels": list(self.regime_labels)}
        (out / "meta.json").write_text(json.dumps(meta, indent=2))
        (out / "metrics.json").write_text(json.dumps(self.metrics, indent=2, default=float))
        (out / "config.json").write_text(json.dumps(self.config, indent=2, default=str))
        return out

    @property
    def nbytes(self) -> int:
        """Bytes held by the outputs (arrays and the time index)."""
        own = self.post.nbytes + self.raw.nbytes + self.smoothed.nbytes + self.index.nbytes
        return own + sum(r.nbytes for r in self.runs.values())


class Grow:
    """Rows appended chunk by chunk into one array sized up front (``capacity`` rows).

    It grows by an eighth, at most 65,536 rows (``ndarray.resize`` zero-fills, so touches,
    what it adds) and shrinks with ``ndarray.resize`` (``realloc``: large blocks are
    remapped, not copied), so the outputs never exist twice in memory, as a list of pieces
    joined at the end would."""

    def __init__(self, capacity: int, width: tuple[int, ...], dtype: Any) -> None:
        self.buf = np.empty((max(1, capacity), *width), dtype=dtype)
        self.n = 0

    def add(self, rows: np.ndarray) -> None:
        need = self.n + len(rows)
        if need > len(self.buf):
            grow = min(max(need // 8, 256), 1 << 16)  # zero-filled: bound the slack
            self.buf.resize((need + grow, *self.buf.shape[1:]), refcheck=False)
        self.buf[self.n : need] = rows
        self.n = need

    def done(self) -> np.ndarray:
        """The rows written (the buffer, trimmed in place; no more rows may be added)."""
        if self.n != len(self.buf):
            self.buf.resize((self.n, *self.buf.shape[1:]), refcheck=False)
        return self.buf

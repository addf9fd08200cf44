"""Result tables of a backtest: raw kernel outputs wrapped as pandas objects."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.core.raw import RawRun
from engine.ground import layout as L
from engine.ground.bars import BarPanel

FILL_COLUMNS = [
    "timestamp",
    "strategy",
    "symbol",
    "side",
    "qty",
    "price",
    "commission",
    "spread",
    "slippage",
    "impact",
]
COST_COLUMNS = ["commission", "spread", "slippage", "impact"]


class StrategyRun:
    """One strategy's path through the history.

    ``weights`` (held at each close), ``targets`` (NaN rows where the policy did not
    rebalance) and ``orders`` (signed shares placed at each close, 0 = none) are ``(T, N)``
    tables built on first access from the run's fills and decisions (or given directly);
    so is the ``fills`` table from the fill records.
    """

    def __init__(
        self,
        name: str,
        equity: pd.Series,
        cash: pd.Series,
        costs: pd.DataFrame,
        fills: pd.DataFrame | None,
        raw_fills: np.ndarray,
        *,
        weights: pd.DataFrame | None = None,
        targets: pd.DataFrame | None = None,
        orders: pd.DataFrame | None = None,
        source: tuple[BarPanel, RawRun] | None = None,
    ) -> None:
        if source is None and (
            weights is None or targets is None or orders is None or fills is None
        ):
            raise ValueError("StrategyRun needs weights, targets, orders and fills, or a source")
        self.name = name
        self.equity = equity
        self.cash = cash
        self.costs = costs  # per-bar cost pieces (currency)
        self._fills = fills
        self.raw_fills = raw_fills  # kernel fill records (bit-exact parity checks)
        self._weights = weights
        self._targets = targets
        self._orders = orders
        self._source = source

    def _frame(self, values: np.ndarray) -> pd.DataFrame:
        assert self._source is not None
        panel = self._source[0]
        return pd.DataFrame(values, index=panel.index, columns=list(panel.symbols), copy=False)

    @property
    def fills(self) -> pd.DataFrame:
        """The tidy fills table (FILL_COLUMNS), built from the fill records when read."""
        if self._fills is None:
            assert self._source is not None
            self._fills = fills_frame(self.name, self._source[0], self.raw_fills)
        return self._fills

    @property
    def weights(self) -> pd.DataFrame:
        if self._weights is None:
            assert self._source is not None
            panel, raw = self._source
            self._weights = self._frame(raw.weights(panel.close))
        return self._weights

    @property
    def targets(self) -> pd.DataFrame:
        if self._targets is None:
            assert self._source is not None
            panel, raw = self._source
            self._targets = self._frame(raw.dense_targets(panel.n_assets))
        return self._targets

    @property
    def orders(self) -> pd.DataFrame:
        if self._orders is None:
            assert self._source is not None
            panel, raw = self._source
            self._orders = self._frame(raw.dense_orders(panel.n_assets))
        return self._orders

    @property
    def decisions(self) -> pd.DataFrame:
        """Target weights at the bars where the strategy rebalanced only."""
        if self._source is None:
            t = self.targets
            return t[t.notna().any(axis=1)]
        panel, raw = self._source
        return pd.DataFrame(
            raw.targets, index=panel.index[raw.decision_bars], columns=list(panel.symbols)
        )


def fills_frame(name: str, panel: BarPanel, rec: np.ndarray) -> pd.DataFrame:
    """Kernel fill records -> the tidy fills table."""
    if rec.shape[0] == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in FILL_COLUMNS})
    bars = rec[:, L.R_BAR].astype(np.int64)
    assets = rec[:, L.R_ASSET].astype(np.int64)
    qty = rec[:, L.R_QTY]
    # categorical labels: built from integer codes, no per-row string work
    return pd.DataFrame(
        {
            "timestamp": panel.index[bars],
            "strategy": pd.Categorical.from_codes(
                np.zeros(len(bars), dtype=np.int8), pd.Index([name])
            ),
            "symbol": pd.Categorical.from_codes(assets, pd.Index(list(panel.symbols))),
            "side": pd.Categorical.from_codes(
                (qty <= 0).astype(np.int8), pd.Index(["buy", "sell"])
            ),
            "qty": np.abs(qty),
            "price": rec[:, L.R_PRICE],
            "commission": rec[:, L.R_COMMISSION],
            "spread": rec[:, L.R_SPREAD],
            "slippage": rec[:, L.R_SLIPPAGE],
            "impact": rec[:, L.R_IMPACT],
        }
    )


def strategy_run(name: str, panel: BarPanel, out: RawRun) -> StrategyRun:
    """Wrap the compiled driver's raw output (its arrays are adopted, not copied; the
    ``(T, N)`` weights/targets/orders tables are built only when read)."""
    idx = panel.index
    return StrategyRun(
        name=name,
        equity=pd.Series(out.equity, index=idx, name=name, copy=False),
        cash=pd.Series(out.cash, index=idx, name=name, copy=False),
        costs=pd.DataFrame(out.costs, index=idx, columns=COST_COLUMNS, copy=False),
        fills=None,
        raw_fills=out.fills,
        source=(panel, out),
    )


def regimes_frame(
    panel: BarPanel,
    post: np.ndarray,
    raw: np.ndarray,
    smoothed: np.ndarray,
    labels: tuple[str, ...],
) -> pd.DataFrame:
    """timestamp-indexed: state, smoothed_state, label, p0..p{K-1}."""
    import pyarrow as pa

    codes = np.where(smoothed >= 0, smoothed, len(labels)).astype(np.int32)
    names = pa.array([*list(labels), "warmup"], type=pa.large_string())
    # labels decoded by Arrow from integer codes: the same string column, no per-row work
    label = pd.array(
        pa.DictionaryArray.from_arrays(codes, names).cast(pa.large_string()), dtype="str"
    )
    cols: dict[str, Any] = {"state": raw, "smoothed_state": smoothed, "label": label}
    for k in range(post.shape[1]):
        cols[f"p{k}"] = post[:, k]
    return pd.DataFrame(cols, index=panel.index.rename("timestamp"), copy=False)


@dataclass
class BacktestResult:
    """Several strategies over the same bars, costs and detector."""

    panel: BarPanel
    runs: dict[str, StrategyRun]
    regimes: pd.DataFrame
    regime_labels: tuple[str, ...]
    features: np.ndarray | None = None
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    # each regime strategy against its static baselines and benchmark, after the warm-up
    # (engine.analysis.baselines.BacktestBaselines; None when not computed)
    baselines: Any = None

    @property
    def equity(self) -> pd.DataFrame:
        df = pd.DataFrame({n: r.equity for n, r in self.runs.items()})
        df.index.name = "timestamp"
        return df

    @property
    def weights(self) -> pd.DataFrame:
        """Held weights, MultiIndex columns (strategy, symbol)."""
        df = pd.concat({n: r.weights for n, r in self.runs.items()}, axis=1)
        df.columns.names = ["strategy", "symbol"]
        df.index.name = "timestamp"
        return df

    @property
    def fills(self) -> pd.DataFrame:
        frames = [r.fills for r in self.runs.values() if len(r.fills)]
        if not frames:
            return fills_frame("", self.panel, np.zeros((0, L.N_FILL_FIELDS)))
        return pd.concat(frames, ignore_index=True)

    @property
    def prices(self) -> pd.DataFrame:
        return self.panel.field_frame("close")

    def save(self, out_dir: str | Path) -> Path:
        """Write equity.csv, fills.csv, weights.csv, regimes.csv, metrics.json, config."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        self.equity.to_csv(out / "equity.csv")
        self.fills.to_csv(out / "fills.csv", index=False)
        w = self.weights.stack(level=[0, 1], future_stack=True)
        w = pd.Series(w, name="weight") if not isinstance(w, pd.Series) else w.rename("weight")
        w.reset_index().to_csv(out / "weights.csv", index=False)
        self.regimes.to_csv(out / "regimes.csv")
        self.prices.rename_axis("timestamp").to_csv(out / "prices.csv")
        meta = {
            "symbols": list(self.panel.symbols),
            "asset_classes": list(self.panel.asset_classes),
            "regime_labels": list(self.regime_labels),
        }
        (out / "meta.json").write_text(json.dumps(meta, indent=2))
        (out / "metrics.json").write_text(json.dumps(self.metrics, indent=2, default=float))
        (out / "config.json").write_text(json.dumps(self.config, indent=2, default=str))
        if self.baselines is not None:
            b = self.baselines
            table = b.table.assign(
                verdict=[b.verdicts[c] for c, _ in b.table.index],
                rf_label=b.rf_label,
                evaluation_start=b.start.isoformat(),
            )
            table.to_csv(out / "baselines.csv")
        return out

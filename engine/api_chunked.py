"""The Python API for histories longer than memory: ``[data] chunk_bars = N``.

:func:`run_backtest_chunked` reads the config's Parquet file ``chunk_bars`` bars at a
time (:class:`data_feeds.parquet_chunks.ParquetChunks`) and runs its compiled strategies
through :func:`engine.core.chunked.run_chunked`: memory stays flat in the number of bars
beyond the O(T) outputs, and the answer is bit-identical to :func:`engine.api.run_backtest`
over the same bars. Like :mod:`engine.api`, this module wires ``data_feeds`` and
``strategies`` to the core.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import structlog

from engine.config import ConfigError, RunConfig, load_config, parse_config
from engine.core.chunked import ChunkedResult, check_chunkable, run_chunked
from engine.plugins.strategy import CompiledStrategy

log = structlog.get_logger(__name__)

__all__ = ["run_backtest_chunked"]


def _config(config: RunConfig | str | Path | dict[str, Any] | None) -> RunConfig:
    if isinstance(config, dict):
        return parse_config(config)
    if isinstance(config, RunConfig):
        return config
    return load_config(config)


def run_backtest_chunked(
    config: RunConfig | str | Path | dict[str, Any] | None = None,
) -> ChunkedResult:
    """Run every strategy of ``config`` over its Parquet file, ``data.chunk_bars`` bars at
    a time. Returns a :class:`~engine.core.chunked.ChunkedResult` (equity, cash, costs,
    fills, regimes, targets at decision bars, metrics).

    Refused with a one-line :class:`~engine.config.ConfigError`: no ``data.chunk_bars``, a
    source other than one Parquet file, ``fill = "ffill"``, Python strategies, detectors
    refitted on an expanding window (``none``, ``rule``, a single fit, ``refit_every = 0``,
    and refits on a ``rolling`` window are fine), user features. The bar frequency (for
    feature spans and annualisation) is inferred from the first chunk unless
    ``data.periods_per_year`` is set; the risk-free rate of the metrics is 0.
    """
    from engine.api import strategy_error
    from engine.assemble import assemble, check_targets, load_chunks
    from engine.ground.frequency import Frequency

    cfg = _config(config)
    d = cfg.data
    if d.chunk_bars is None:
        raise ConfigError("data.chunk_bars: not set (the number of bars read at a time)")
    if not isinstance(d.source, str):  # the config allows one Parquet file only
        raise ConfigError("data.source: chunk_bars needs one Parquet file")
    chunks = load_chunks(cfg)
    it = iter(chunks)
    first = next(it)  # a DataError names the file and row, as the whole-file loader's
    run = assemble(cfg, first)  # the chunk-level frequency: data.periods_per_year wins
    try:
        check_chunkable(run.detector, list(run.strategies), list(run.user_features))
    except ValueError as exc:
        raise ConfigError(f"data.chunk_bars: {exc}") from None
    freq: Frequency = run.frequency
    log.info("chunked", chunk_bars=d.chunk_bars, bars=freq.name, max_bars=chunks.max_bars)
    compiled = [s for s in run.strategies if isinstance(s, CompiledStrategy)]
    result = run_chunked(
        itertools.chain([first], it),
        run.detector,
        run.costs,
        compiled,
        run.execution,
        run.features,
        run.smoothing,
        feature_assets=run.feature_assets,
        max_bars=chunks.max_bars,
    )
    for scfg, strat in zip(cfg.strategies, compiled, strict=True):
        out = result.runs[strat.name]
        try:
            check_targets(
                out.targets, first.symbols, result.index, cfg, strat.name, out.decision_bars
            )
        except ValueError as exc:
            raise ConfigError(strategy_error(scfg, first, exc)) from None
    result.config = cfg.model_dump(mode="json")
    result.metrics = chunked_metrics(result)
    log.info(
        "backtest.done",
        bars=result.n_bars,
        chunks=result.n_chunks,
        assets=len(result.symbols),
        strategies=list(result.runs),
    )
    return result


def chunked_metrics(result: ChunkedResult) -> dict[str, dict[str, float]]:
    """Per-strategy summary metrics, as :func:`engine.api.compute_metrics` gives them
    (risk-free rate 0: the run keeps no price series to take it from).

    Turnover, costs and trade count come straight from the fill records (dot products over
    blocks of rows, a sum) rather than from a fills table: no per-fill copy is made.
    """
    import pandas as pd

    from engine.analysis.metrics import summary
    from engine.ground import layout as L

    ppy = result.config.get("data", {}).get("periods_per_year")
    out: dict[str, dict[str, float]] = {}
    for name, run in result.runs.items():
        equity = pd.Series(run.equity, index=result.index, name=name, copy=False)
        row = summary(equity, None, ppy, 0.0)
        rec = run.fills
        notional = 0.0
        for a in range(0, len(rec), 1 << 16):  # blocks: no per-fill temporary
            blk = rec[a : a + (1 << 16)]
            notional += float(np.abs(blk[:, L.R_QTY]) @ blk[:, L.R_PRICE])
        years = (len(equity) - 1) / row["periods_per_year"]
        if len(rec) and len(equity) >= 2:  # engine.analysis.metrics.turnover
            row["turnover"] = notional / float(np.mean(run.equity)) / years / 2.0
        row["total_costs"] = float(rec[:, L.R_COMMISSION : L.R_IMPACT + 1].sum())
        row["n_trades"] = float(len(rec))
        out[name] = {str(k): float(v) for k, v in row.items()}
    return out

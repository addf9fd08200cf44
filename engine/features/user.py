"""Run user features bar by bar, the same way in both drivers.

:class:`FeatureRunner` owns one updater per feature and writes each bar's values into the
inputs row after the exogenous series: ``[exog (E) | user feature columns (U)]``. The
compiled driver gets the whole ``(T, E + U)`` matrix from :func:`inputs_matrix` (a replay
through the very same runner); the streaming driver calls :meth:`FeatureRunner.step`
on each arriving bar. Bar ``t``'s values only see :class:`History` up to ``t``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.ground.bars import BarPanel, DataError
from engine.plugins.features import History, UserFeature


class FeatureRunner:
    """User features over one run's symbols; columns follow the exogenous ones."""

    def __init__(
        self,
        features: Sequence[UserFeature],
        symbols: tuple[str, ...],
        exog_names: tuple[str, ...] = (),
    ) -> None:
        self.features = tuple(features)
        self.exog_names = tuple(exog_names)
        cols: list[str] = []
        self._spans: list[tuple[int, int]] = []
        e = len(self.exog_names)
        for f in self.features:
            names = f.columns(tuple(symbols))
            self._spans.append((e + len(cols), e + len(cols) + len(names)))
            cols.extend(names)
        dup = {c for c in cols if cols.count(c) > 1} | (set(cols) & set(self.exog_names))
        if dup:
            raise DataError(f"feature columns defined twice: {', '.join(sorted(dup))}")
        self.columns = tuple(cols)
        self._updaters = [f.start(tuple(symbols)) for f in self.features]

    @property
    def input_names(self) -> tuple[str, ...]:
        return self.exog_names + self.columns

    def step(self, hist: History) -> None:
        """Compute this bar's user features into ``hist.inputs_row()``."""
        row = hist.inputs_row()
        for upd, (lo, hi) in zip(self._updaters, self._spans, strict=True):
            upd(hist, row[lo:hi])


def inputs_matrix(
    panel: BarPanel, features: Sequence[UserFeature]
) -> tuple[np.ndarray, tuple[str, ...]]:
    """``(T, E + U)`` inputs (exogenous series, then user features) and their names."""
    runner = FeatureRunner(features, panel.symbols, panel.exog_names)
    e = len(panel.exog_names)
    inputs = np.zeros((panel.n_bars, e + len(runner.columns)))
    inputs[:, :e] = panel.exog
    if not runner.features:
        return inputs, runner.input_names
    hist = History(
        panel.symbols,
        runner.input_names,
        {"open": panel.open, "close": panel.close, "volume": panel.volume, "inputs": inputs},
    )
    for t in range(panel.n_bars):
        hist.append(panel.open[t], panel.close[t], panel.volume[t])
        runner.step(hist)
    return inputs, runner.input_names


def with_inputs(panel: BarPanel, features: Sequence[UserFeature]) -> BarPanel:
    """``panel`` whose exogenous block also holds the user features' columns (what the
    detectors and the compiled driver read)."""
    if not features:
        return panel
    inputs, names = inputs_matrix(panel, features)
    return replace_inputs(panel, inputs, names)


def with_columns(panel: BarPanel, values: np.ndarray, names: tuple[str, ...]) -> BarPanel:
    """``panel`` with ``values`` (T, k) appended to its inputs block as ``names``."""
    return replace_inputs(panel, np.hstack([panel.exog, values]), panel.exog_names + names)


def replace_inputs(panel: BarPanel, inputs: np.ndarray, names: tuple[str, ...]) -> BarPanel:
    """``panel`` with its exogenous/inputs block replaced."""
    return BarPanel(
        index=panel.index,
        symbols=panel.symbols,
        open=panel.open,
        high=panel.high,
        low=panel.low,
        close=panel.close,
        volume=panel.volume,
        exog=inputs,
        exog_names=tuple(names),
        asset_classes=panel.asset_classes,
        tz=panel.tz,
    )

"""Which detectors a chunked run can fit, and its trailing-window refits (a ring of rows)."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.core.backtest import Prepared
from engine.features.causal_nb import used_assets
from engine.ground import layout as L
from engine.plugins.detector import Detector, EstimatorDetector

__all__ = ["Refits", "fit_plan"]


def fit_plan(detector: Detector | EstimatorDetector) -> tuple[int, Any]:
    """``(first fit bar, trailing-window schedule or None)`` of a detector a chunked run
    can reproduce: fixed parameters (fitted at bar 0 on no rows), a single fit
    (``refit_every = 0``), or refits on a trailing window of ``window`` rows (the run keeps
    those rows in a ring). Refits on an expanding window read a growing history: a
    one-line ``ValueError``."""
    bars = np.asarray(detector.fit_bars(1), dtype=np.int64)
    if bars.size == 1 and bars[0] == 0:
        return 0, None
    schedule = getattr(detector, "schedule", None)
    every = getattr(schedule, "refit_every", None)
    if every is not None and every <= 0:
        bars = np.asarray(detector.fit_bars(2**62), dtype=np.int64)  # fit once: no range
        if bars.size == 1:
            return int(bars[0]), None
    if every is not None and every > 0 and getattr(schedule, "window", 0) > 0:
        n = int(getattr(schedule, "min_train", 0)) + int(getattr(schedule, "skip", 0)) + 3
        bars = np.asarray(detector.fit_bars(n), dtype=np.int64)  # the first fit is below n
        if bars.size:
            return int(bars[0]), schedule
    raise ValueError(
        f"detector {detector.name!r} is refitted on an expanding window, so a chunked run "
        "could not stay memory-flat; refit it on a rolling window, fit it once "
        "(refit_every = 0), use fixed parameters (kind 'none' or 'rule') or run without "
        "chunk_bars"
    )


class Refits:
    """Trailing-window refits during a chunked run: the last ``window`` feature rows (the
    detector's columns) and input rows, and the next fit bar."""

    def __init__(self, detector: Any, schedule: Any, prep: Prepared, n_assets: int) -> None:
        self.detector = detector
        self.window = int(schedule.window)
        self.every = int(schedule.refit_every)
        self.next = int(prep.fit_bars[-1]) + self.every
        self.count = len(prep.fit_bars)
        self.previous = np.asarray(prep.dparams[-1], dtype=np.float64)
        used = used_assets(prep.fparams, n_assets)
        self.cols = np.flatnonzero(np.repeat(used, L.N_FEAT_ASSET))
        self.width = int(prep.n_features)
        self.feats = np.zeros((0, self.cols.size))
        self.inputs = np.zeros((0, prep.panel.exog.shape[1]))

    def push(self, feats: np.ndarray, inputs: np.ndarray) -> None:
        """Append a piece's rows (bars in order), keeping the last ``window``."""
        self.feats = np.concatenate([self.feats, feats[:, self.cols]])[-self.window :]
        self.inputs = np.concatenate([self.inputs, inputs])[-self.window :]

    def fit(self, bar: int) -> np.ndarray:
        """The detector fitted at ``bar`` exactly as in a whole run: ``fit`` is given
        ``bar`` rows, of which it reads the trailing window only (the rows before it are
        zero pages, never touched)."""
        n = self.feats.shape[0]
        feats = np.zeros((bar, self.width))
        feats[bar - n :, self.cols] = self.feats
        inputs = np.zeros((bar, self.inputs.shape[1]))
        inputs[bar - n :] = self.inputs
        row = np.asarray(self.detector.fit(feats, inputs, self.previous), dtype=np.float64)
        self.previous = row
        self.next = bar + self.every
        self.count += 1
        return row

"""Detector fit cache: one fit per distinct detector configuration and training window.

The key is a hash of the detector settings that change the fit (everything but the
trading smoothing, which acts after the filter), the feature settings feeding it, and the
training data (symbols, timestamps and a digest of the bars). Entries live in memory and,
with a folder, on disk as ``.npz`` files, so a later sweep over the same data reuses them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from engine.ground.bars import BarPanel
from engine.sweep.config import canonical
from engine.sweep.tasks import Fit


def panel_digest(panel: BarPanel) -> str:
    """Digest of the training data: symbols, exogenous names, timestamps and bars."""
    h = hashlib.sha256()
    h.update(canonical([list(panel.symbols), list(panel.exog_names)]).encode())
    for arr in (panel.timestamps_ns, panel.open, panel.close, panel.volume, panel.exog):
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:16]


def fit_key(detector: Any, features: Any, digest: str) -> str:
    """Cache key of a detector config (smoothing excluded) over features and data."""
    det = detector.model_dump(mode="json")
    det.pop("smoothing", None)
    feat = features.model_dump(mode="json")
    text = canonical({"detector": det, "features": feat, "data": digest})
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class FitCache:
    """In-memory (and optionally on-disk) map from :func:`fit_key` to :class:`Fit`."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder else None
        self._mem: dict[str, Fit] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Fit | None:
        fit = self._mem.get(key)
        if fit is None and self.folder is not None:
            path = self.folder / f"{key}.npz"
            if path.is_file():
                with np.load(path) as z:
                    meta = json.loads(str(z["meta"]))
                    fit = Fit(
                        dparams=np.ascontiguousarray(z["dparams"]),
                        fit_bars=np.ascontiguousarray(z["fit_bars"], dtype=np.int64),
                        n_states=int(meta["n_states"]),
                        labels=tuple(meta["labels"]),
                        state_size=int(meta["state_size"]),
                    )
                self._mem[key] = fit
        if fit is None:
            self.misses += 1
        else:
            self.hits += 1
        return fit

    def put(self, key: str, fit: Fit) -> None:
        self._mem[key] = fit
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            meta = {
                "n_states": fit.n_states,
                "labels": list(fit.labels),
                "state_size": fit.state_size,
            }
            tmp = self.folder / f"{key}.tmp.npz"
            np.savez(tmp, dparams=fit.dparams, fit_bars=fit.fit_bars, meta=json.dumps(meta))
            tmp.replace(self.folder / f"{key}.npz")

    def __len__(self) -> int:
        return len(self._mem)

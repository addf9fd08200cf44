"""Weight specifications shared by the built-in strategies."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

WeightSpec = Mapping[str, float] | str


def weight_vector(spec: WeightSpec, symbols: tuple[str, ...], where: str) -> np.ndarray:
    """``{"SPX": 0.6, "UST10": 0.4}`` or ``"equal"`` -> array in symbol order.

    Unknown symbols and non-finite weights are errors naming ``where``.
    """
    if isinstance(spec, str):
        if spec != "equal":
            raise ValueError(f"{where}: weights must be a table or 'equal', got {spec!r}")
        return np.full(len(symbols), 1.0 / len(symbols))
    unknown = sorted(set(spec) - set(symbols))
    if unknown:
        raise ValueError(
            f"{where}: unknown symbol {unknown[0]!r}; the data has {', '.join(symbols)}"
        )
    w = np.array([float(spec.get(s, 0.0)) for s in symbols])
    if not np.isfinite(w).all():
        raise ValueError(f"{where}: weights must be finite")
    return w

"""Example: a VIX-threshold detector fed from a file, as a user njit filter.

The VIX series comes from a CSV/Parquet file joined as-of onto the bars with a
publication lag (:func:`engine.features.exog.add_exog`); the detector is a
:class:`~engine.regimes.user_filter.UserFilterDetector`: its Python ``fit`` sets the
threshold to a quantile of the VIX values in the training window (rows before the fit
bar), its njit filter turns each bar's VIX into a calm/stressed posterior. It runs inside
the compiled driver and in the streaming driver (paper trading)::

    panel = add_exog(panel, "vix.csv", columns=["VIX"], lag="1D")
    detector = vix_detector(panel)
"""

from __future__ import annotations

import numba as nb
import numpy as np

from engine.ground.bars import BarPanel
from engine.regimes.inputs import Schedule
from engine.regimes.user_filter import USER_BODY, UserFilterDetector


@nb.njit(cache=True)
def vix_filter_nb(
    dparams: np.ndarray, dstate: np.ndarray, feats: np.ndarray, inputs: np.ndarray, post: np.ndarray
) -> int:
    """body = [VIX column, threshold, width]: P(stressed) = logistic((VIX - thr) / width)."""
    v = inputs[int(dparams[USER_BODY])]
    if not np.isfinite(v):
        post[:] = 0.5
        return -1
    p = 1.0 / (1.0 + np.exp(-(v - dparams[USER_BODY + 1]) / dparams[USER_BODY + 2]))
    post[0] = 1.0 - p
    post[1] = p
    dstate[0] += 1.0
    return 1 if p > 0.5 else 0


def vix_detector(
    panel: BarPanel,
    series: str = "VIX",
    quantile: float = 0.8,
    width: float = 1.0,
    schedule: Schedule | None = None,
) -> UserFilterDetector:
    """calm / stressed from ``series`` against its trailing ``quantile`` (refitted)."""
    col = panel.exog_column(series)

    def fit(features: np.ndarray, inputs: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        x = inputs[:, col]
        x = x[np.isfinite(x)]
        thr = float(np.quantile(x, quantile)) if x.size else np.inf
        return np.array([col, thr, width])

    return UserFilterDetector(
        filter=vix_filter_nb,
        fit_body=fit,
        n_states=2,
        dstate_size=1,
        schedule=schedule or Schedule(min_train=252, refit_every=252, skip=0),
        name="vix_threshold",
        labels=("calm", "stressed"),
    )

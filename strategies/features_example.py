"""Example user features: a rolling correlation between two assets (a pure function of a
causal window) and an EWMA momentum per asset (an incremental njit feature with state).

Register them, then use them by name in detector inputs (``features = ["corr_spx_ust10",
"SPX.ewm_mom"]``) and in strategies (``ctx.feature(None, "corr_spx_ust10")``,
``ctx.feature("SPX", "ewm_mom")`` or the njit ``feature(ctx, fid)``)::

    from engine.plugins.features import register
    from strategies.features_example import rolling_corr, ewm_momentum
    register(rolling_corr("SPX", "UST10", 63))
    register(ewm_momentum(halflife=63))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np

from engine.plugins.context_nb import BarContext, feature
from engine.plugins.features import IncrementalFeature, WindowFeature
from engine.plugins.names import Names


def _log_return_corr(window: np.ndarray) -> float:
    """Correlation of the two columns' log returns over the window."""
    r = np.diff(np.log(window), axis=0)
    a, b = r[:, 0] - r[:, 0].mean(), r[:, 1] - r[:, 1].mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / den) if den > 0.0 else 0.0


def rolling_corr(first: str, second: str, window: int = 63) -> WindowFeature:
    """Cross-asset: correlation of daily log returns over the last ``window`` bars."""
    return WindowFeature(
        name=f"corr_{first.lower()}_{second.lower()}",
        fn=_log_return_corr,
        window=window + 1,
        assets=(first, second),
        per_asset=False,
    )


@nb.njit(cache=True)
def ewm_momentum_nb(
    close: np.ndarray, params: np.ndarray, state: np.ndarray, out: np.ndarray
) -> None:
    """Per asset: EWMA of daily log returns (state: previous close, average per asset)."""
    alpha = params[0]
    n = close.shape[0]
    for j in range(n):
        prev = state[j]
        if prev > 0.0:
            r = np.log(close[j] / prev)
            state[n + j] += alpha * (r - state[n + j])
        state[j] = close[j]
        out[j] = state[n + j]


def ewm_momentum(halflife: float = 63.0, n_assets: int = 64) -> IncrementalFeature:
    """Per-asset incremental feature ``ewm_mom`` (up to ``n_assets`` symbols)."""
    alpha = 1.0 - np.exp(np.log(0.5) / halflife)
    return IncrementalFeature(
        name="ewm_mom", update=ewm_momentum_nb, params=np.array([alpha]), state_size=2 * n_assets
    )


@nb.njit(cache=True)
def diversify_policy_nb(
    t: int, ctx: BarContext, sparams: np.ndarray, sstate: np.ndarray, target: np.ndarray
) -> bool:
    """sparams = [equity, bond, corr feature id]: 60/40, or 80/20 when the two assets'
    returns correlate positively (the bond hedges less)."""
    eq, bd = int(sparams[0]), int(sparams[1])
    c = feature(ctx, int(sparams[2]))
    w = 0.6 if not (c > 0.0) else 0.8
    target[:] = 0.0
    target[eq] = w
    target[bd] = 1.0 - w
    go = sstate[0] == 0.0 or ctx.new_period
    sstate[0] = 1.0
    return go


@dataclass(frozen=True)
class CorrelationTilt:
    """A compiled strategy reading the user feature by name."""

    name: str
    equity: str = "SPX"
    bond: str = "UST10"
    window: int = 63
    rebalance: str | None = "M"
    uses_builtin_features: bool = False

    @property
    def features(self) -> tuple[WindowFeature, ...]:
        return (rolling_corr(self.equity, self.bond, self.window),)

    @property
    def policy(self) -> Any:
        return diversify_policy_nb

    def params(self, symbols: tuple[str, ...], labels: tuple[str, ...], names: Names) -> np.ndarray:
        fid = names.feature(None, self.features[0].name)
        return np.array([names.asset(self.equity), names.asset(self.bond), fid], dtype=np.float64)

    def state_size(self) -> int:
        return 1

"""Example: 12-month time-series momentum / trend on price history, in both forms.

Hold the equity when its close is above where it was ``lookback`` bars ago (and above its
``ma``-bar average), otherwise hold the bond; rebalance monthly. The Python form reads
``ctx.history("SPX", "close", n)``; the compiled form the njit ``history(ctx, asset, n)``:
both are views ending at this bar, so neither can look ahead::

    [[strategies]]
    kind = "custom"
    name = "trend"
    target = "strategies.momentum:CompiledTrend"     # or strategies.momentum:PythonTrend
    params = { equity = "SPX", bond = "UST10", lookback = 252 }
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np

from engine.plugins.context_nb import BarContext, history
from engine.plugins.names import Names
from engine.plugins.strategy import Context


@nb.njit(cache=True)
def trend_policy_nb(
    t: int, ctx: BarContext, sparams: np.ndarray, sstate: np.ndarray, target: np.ndarray
) -> bool:
    """sparams = [equity asset, bond asset, lookback, ma window]."""
    eq, bd, lookback, ma = int(sparams[0]), int(sparams[1]), int(sparams[2]), int(sparams[3])
    closes = history(ctx, eq, lookback + 1)
    target[:] = 0.0
    if closes.shape[0] <= lookback:  # not enough history yet: hold the bond
        target[bd] = 1.0
    else:
        recent = closes[closes.shape[0] - ma :]
        up = closes[-1] > closes[0] and closes[-1] > recent.mean()
        target[eq if up else bd] = 1.0
    go = sstate[0] == 0.0 or ctx.new_period
    sstate[0] = 1.0
    return go


@dataclass(frozen=True)
class CompiledTrend:
    """Compiled form: both drivers (backtests, sweeps, paper trading)."""

    name: str
    equity: str = "SPX"
    bond: str = "UST10"
    lookback: int = 252
    ma: int = 200
    rebalance: str | None = "M"
    uses_builtin_features: bool = False

    @property
    def policy(self) -> Any:
        return trend_policy_nb

    def params(self, symbols: tuple[str, ...], labels: tuple[str, ...], names: Names) -> np.ndarray:
        return np.array(
            [names.asset(self.equity), names.asset(self.bond), self.lookback, self.ma],
            dtype=np.float64,
        )

    def state_size(self) -> int:
        return 1


class PythonTrend:
    """Python form: the same rule with callbacks (streaming driver, historical or live)."""

    def __init__(
        self,
        name: str,
        equity: str = "SPX",
        bond: str = "UST10",
        lookback: int = 252,
        ma: int = 200,
        rebalance: str | None = "M",
    ) -> None:
        self.name = name
        self.equity, self.bond = equity, bond
        self.lookback, self.ma = lookback, ma
        self.rebalance = rebalance
        self._started = False

    def on_regime_change(self, ctx: Context) -> dict[str, float] | None:
        return None

    def on_bar(self, ctx: Context) -> dict[str, float] | None:
        if self._started and not ctx.new_period:
            return None
        self._started = True
        closes = ctx.history(self.equity, "close", self.lookback + 1)
        if closes.shape[0] <= self.lookback:
            return {self.bond: 1.0}
        up = closes[-1] > closes[0] and closes[-1] > closes[-self.ma :].mean()
        return {self.equity: 1.0} if up else {self.bond: 1.0}

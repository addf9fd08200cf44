"""Example user strategies: one compiled (njit policy), one Python (callbacks).

Both implement the same idea — hold equities in calm regimes, tilt to bonds when the
detector says otherwise, and scale the equity weight down when its RSI is overbought —
so they can be compared and swapped. Use them as templates::

    [[strategies]]
    kind = "custom"
    name = "my_tilt"
    target = "strategies.example:CompiledTilt"      # or strategies.example:PythonTilt
    params = { equity = "SPX", bond = "UST10" }
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np

from engine.core.policy_nb import BarContext
from engine.ground.layout import F_RSI, N_FEAT_ASSET
from engine.plugins.strategy import Context


@nb.njit(cache=True)
def tilt_policy_nb(
    t: int, ctx: BarContext, sparams: np.ndarray, sstate: np.ndarray, target: np.ndarray
) -> bool:
    """sparams = [equity column, bond column, calm equity weight, other equity weight].

    Rebalances on the first bar, on regime changes and on new calendar periods.
    """
    eq_col = int(sparams[0])
    bd_col = int(sparams[1])
    w_eq = sparams[2] if ctx.regime <= 0 else sparams[3]
    if ctx.features[eq_col * N_FEAT_ASSET + F_RSI] > 80.0:
        w_eq *= 0.8
    target[:] = 0.0
    target[eq_col] = w_eq
    target[bd_col] = 1.0 - w_eq
    go = sstate[0] == 0.0 or ctx.changed or ctx.new_period
    sstate[0] = 1.0
    return go


@dataclass(frozen=True)
class CompiledTilt:
    """Compiled form: runs in both drivers (backtests, sweeps, paper trading)."""

    name: str
    equity: str = "SPX"
    bond: str = "UST10"
    calm_equity: float = 0.8
    other_equity: float = 0.3
    rebalance: str | None = "M"

    @property
    def policy(self) -> Any:
        return tilt_policy_nb

    def params(self, symbols: tuple[str, ...], labels: tuple[str, ...]) -> np.ndarray:
        return np.array(
            [
                symbols.index(self.equity),
                symbols.index(self.bond),
                self.calm_equity,
                self.other_equity,
            ]
        )

    def state_size(self) -> int:
        return 1


class PythonTilt:
    """Python form: the same rule with callbacks (streaming driver, historical or live)."""

    def __init__(
        self,
        name: str,
        equity: str = "SPX",
        bond: str = "UST10",
        calm_equity: float = 0.8,
        other_equity: float = 0.3,
        rebalance: str | None = "M",
    ) -> None:
        self.name = name
        self.equity, self.bond = equity, bond
        self.calm_equity, self.other_equity = calm_equity, other_equity
        self.rebalance = rebalance
        self._started = False

    def _targets(self, ctx: Context) -> dict[str, float]:
        w_eq = self.calm_equity if ctx.regime <= 0 else self.other_equity
        if ctx.features[ctx.symbols.index(self.equity) * N_FEAT_ASSET + F_RSI] > 80.0:
            w_eq *= 0.8
        return {self.equity: w_eq, self.bond: 1.0 - w_eq}

    def on_regime_change(self, ctx: Context) -> dict[str, float] | None:
        self._started = True
        return self._targets(ctx)

    def on_bar(self, ctx: Context) -> dict[str, float] | None:
        if not self._started or ctx.new_period:
            self._started = True
            return self._targets(ctx)
        return None

"""What a compiled (njit) policy sees at the close of a bar, and named accessors over it.

A compiled policy receives a :data:`BarContext`. User code reads it through the njit
accessors below with ids resolved once, by name, from :class:`~engine.plugins.names.Names`
(``names.asset("SPX")``, ``names.feature("SPX", "rsi")``, ``names.state("crisis")``) and
stored in the policy's parameter vector: no slot arithmetic in user code. Every array in
the context ends at this bar (``hist`` is the close history ``[0, t]``), so a policy cannot
read the future.
"""

from __future__ import annotations

from collections import namedtuple

import numba as nb
import numpy as np

BarContext = namedtuple(
    "BarContext",
    [
        "close",  # (N,) closes of this bar
        "features",  # (N * N_FEAT_ASSET,) built-in causal feature row
        "posterior",  # (K,) filtered regime posterior
        "state",  # raw detector state (-1 = not yet known)
        "regime",  # smoothed (trading) state (-1 = not yet known)
        "changed",  # True on the bar the smoothed state changed
        "new_period",  # True on the first bar of a rebalance period
        "weights",  # (N,) weights held at this close
        "equity",  # portfolio value at this close
        "inputs",  # (E + U,) exogenous series then user features, this bar
        "positions",  # (N,) shares held
        "cash",  # cash at this close
        "hist",  # (t + 1, N) closes of bars 0..t (a view, ends at this bar)
    ],
)
"""What a policy sees at the close of bar ``t``: nothing from later bars."""


@nb.njit(cache=True, inline="always")
def feature(ctx: BarContext, fid: int) -> float:
    """Value of a feature id from :meth:`Names.feature` (built-in, exogenous or user)."""
    if fid >= 0:
        return float(ctx.features[fid])
    return float(ctx.inputs[-fid - 1])


@nb.njit(cache=True, inline="always")
def prob(ctx: BarContext, k: int) -> float:
    """Filtered probability of state ``k`` (id from :meth:`Names.state`)."""
    return float(ctx.posterior[k])


@nb.njit(cache=True, inline="always")
def history(ctx: BarContext, asset: int, n: int) -> np.ndarray:
    """The last ``n`` closes of ``asset`` up to and including this bar (fewer at the start)."""
    t1 = ctx.hist.shape[0]
    lo = t1 - n if t1 > n else 0
    return ctx.hist[lo:t1, asset]


@nb.njit(cache=True, inline="always")
def position(ctx: BarContext, asset: int) -> float:
    """Shares of ``asset`` held at this close."""
    return float(ctx.positions[asset])


@nb.njit(cache=True, inline="always")
def weight(ctx: BarContext, asset: int) -> float:
    """Weight of ``asset`` held at this close (fraction of equity)."""
    return float(ctx.weights[asset])


@nb.njit(cache=True, inline="always")
def cash(ctx: BarContext) -> float:
    return float(ctx.cash)


@nb.njit(cache=True, inline="always")
def equity(ctx: BarContext) -> float:
    return float(ctx.equity)

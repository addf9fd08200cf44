"""A small fake backtest result whose equity is computed from its holdings here."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

COST_RATES = {"commission": 5e-4, "spread": 2e-4, "slippage": 1e-4, "impact": 5e-5}


@dataclass
class FakeResult:
    equity: pd.DataFrame
    weights: pd.DataFrame
    fills: pd.DataFrame
    regimes: pd.DataFrame
    prices: pd.DataFrame
    regime_labels: tuple[str, ...] = ("calm", "stress")
    config: dict = field(default_factory=dict)


def simulate(
    prices: pd.DataFrame,
    targets: np.ndarray,
    name: str,
    capital: float = 1e6,
    every: int = 5,
    ref: pd.DataFrame | None = None,
    price_includes_costs: bool = True,
):
    """Trade to ``targets[t]`` every ``every`` bars at reference prices ``ref`` (default: the
    close). Like the engine, the fill price embeds spread + slippage + impact and only the
    commission is paid from cash (``price_includes_costs=False``: all four paid from cash and
    the fill price is the reference price)."""
    p = prices.to_numpy()
    rp = p if ref is None else ref.to_numpy()
    t_n, n = p.shape
    q = np.zeros(n)
    cash = capital
    eq = np.empty(t_n)
    w = np.empty((t_n, n))
    rows = []
    for t in range(t_n):
        if t % every == 0:
            value = cash + q @ rp[t]
            dq = targets[t] * value / rp[t] - q
            for i in np.flatnonzero(np.abs(dq) * rp[t] > 1e-9):
                notional = abs(dq[i]) * rp[t, i]
                c = {k: r * notional for k, r in COST_RATES.items()}
                side = 1.0 if dq[i] > 0 else -1.0
                if price_includes_costs:
                    frac = (c["spread"] + c["slippage"] + c["impact"]) / notional
                    px = rp[t, i] * (1 + side * frac)
                    cash -= dq[i] * px + c["commission"]
                else:
                    px = rp[t, i]
                    cash -= dq[i] * px + sum(c.values())
                rows.append(
                    {
                        "timestamp": prices.index[t],
                        "strategy": name,
                        "symbol": prices.columns[i],
                        "side": "buy" if side > 0 else "sell",
                        "qty": abs(dq[i]),
                        "price": px,
                        **c,
                    }
                )
            q = q + dq
        eq[t] = cash + q @ p[t]
        w[t] = q * p[t] / eq[t]
    return (
        pd.Series(eq, index=prices.index, name=name),
        pd.DataFrame(w, index=prices.index, columns=prices.columns),
        pd.DataFrame(rows),
    )


def make_result(n: int = 600, seed: int = 7, start: str = "2007-01-01") -> FakeResult:
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range(start, periods=n)
    # two-state Markov regime driving volatility
    state = np.zeros(n, dtype=int)
    for t in range(1, n):
        stay = 0.97 if state[t - 1] == 0 else 0.9
        state[t] = state[t - 1] if rng.random() < stay else 1 - state[t - 1]
    vol = np.where(state == 0, 0.008, 0.025)[:, None] * np.array([1.0, 0.5, 1.4])
    drift = np.where(state == 0, 4e-4, -1e-3)[:, None] * np.array([1.0, 0.2, 1.2])
    r = drift + vol * rng.standard_normal((n, 3))
    prices = pd.DataFrame(
        100 * np.cumprod(1 + r, axis=0), index=idx, columns=["SPX", "UST10", "WTI"]
    )
    static_t = np.tile([0.6, 0.4, 0.0], (n, 1))
    filt = np.r_[np.full(20, -1), state[20:]]
    aware_t = np.where((filt == 1)[:, None], [0.2, 0.7, 0.0], [0.7, 0.2, 0.1])
    e1, w1, f1 = simulate(prices, static_t, "static")
    e2, w2, f2 = simulate(prices, aware_t, "aware")
    equity = pd.concat([e1, e2], axis=1)
    weights = pd.concat({"static": w1, "aware": w2}, axis=1)
    weights.columns.names = ["strategy", "symbol"]
    fills = pd.concat([f1, f2], ignore_index=True)
    p1 = np.clip(np.where(filt == 1, 0.8, 0.2) + 0.1 * rng.standard_normal(n), 0, 1)
    regimes = pd.DataFrame(
        {
            "state": filt,
            "smoothed_state": np.r_[np.full(20, -1), 1 - state[20:]],
            "p0": 1 - p1,
            "p1": p1,
        },
        index=idx,
    )
    return FakeResult(equity, weights, fills, regimes, prices)


@pytest.fixture(scope="session")
def result() -> FakeResult:
    return make_result()

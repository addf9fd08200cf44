"""Typed, frozen run settings (costs, execution, features, smoothing) and their kernel arrays."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields

import numpy as np

from engine.ground import layout as L


@dataclass(frozen=True)
class CostModel:
    """Per-asset cost model; every piece is optional and they compose additively.

    Fill price = reference * (1 ± (half_spread + slippage + impact)), with
    impact = ``impact_coef * sqrt(|qty| / bar volume)`` (skipped when volume is unknown);
    commission = max(``commission_min``, bps * notional + per_share * |qty|), charged in cash.
    Short positions pay ``borrow_bps`` a year of their value, accrued in cash every bar
    (``borrow_bps / 1e4 / periods_per_year`` of the short value at the fill reference price).
    """

    commission_bps: float = 0.0
    commission_per_share: float = 0.0
    commission_min: float = 0.0
    half_spread_bps: float = 0.0
    slippage_bps: float = 0.0
    impact_coef: float = 0.0
    participation: float = 0.0
    lot_size: float = 0.0
    borrow_bps: float = 0.0

    def row(self) -> np.ndarray:
        r = np.zeros(L.N_COST)
        r[L.C_COMMISSION_BPS] = self.commission_bps
        r[L.C_COMMISSION_PER_SHARE] = self.commission_per_share
        r[L.C_COMMISSION_MIN] = self.commission_min
        r[L.C_HALF_SPREAD_BPS] = self.half_spread_bps
        r[L.C_SLIPPAGE_BPS] = self.slippage_bps
        r[L.C_IMPACT_COEF] = self.impact_coef
        r[L.C_PARTICIPATION] = self.participation
        r[L.C_LOT_SIZE] = self.lot_size
        r[L.C_BORROW_BPS] = self.borrow_bps
        if (r < 0).any() or not np.isfinite(r).all():
            bad = [f.name for f in fields(self) if not (getattr(self, f.name) >= 0)]
            raise ValueError(f"cost model fields must be finite and >= 0: {', '.join(bad)}")
        return r


def cost_table(
    symbols: tuple[str, ...], default: CostModel, per_symbol: Mapping[str, CostModel] | None = None
) -> np.ndarray:
    """The ``(N, N_COST)`` cost table: ``default`` with per-symbol overrides."""
    per_symbol = per_symbol or {}
    unknown = set(per_symbol) - set(symbols)
    if unknown:
        raise ValueError(f"cost overrides for unknown symbols: {', '.join(sorted(unknown))}")
    return np.stack([per_symbol.get(s, default).row() for s in symbols])


@dataclass(frozen=True)
class Execution:
    """How orders are sized and filled."""

    initial_cash: float = 1_000_000.0
    fill_at: str = "next_open"  # or "next_close"
    allow_leverage: bool = False
    max_gross: float = 1.0
    trade_band: float = 0.0
    min_trade_value: float = 0.0
    periods_per_year: float = 252.0
    financing_rate: float = 0.0  # annual, paid on negative cash (leverage) every bar

    def array(self) -> np.ndarray:
        if self.fill_at not in ("next_open", "next_close"):
            raise ValueError(
                f"execution.fill_at must be 'next_open' or 'next_close', got {self.fill_at!r}"
            )
        if self.initial_cash <= 0:
            raise ValueError("execution.initial_cash must be > 0")
        e = np.zeros(L.N_EXEC)
        e[L.E_INITIAL_CASH] = self.initial_cash
        e[L.E_FILL_AT_CLOSE] = 1.0 if self.fill_at == "next_close" else 0.0
        e[L.E_MAX_GROSS] = self.max_gross
        e[L.E_ALLOW_LEVERAGE] = 1.0 if self.allow_leverage else 0.0
        e[L.E_TRADE_BAND] = self.trade_band
        e[L.E_MIN_TRADE_VALUE] = self.min_trade_value
        e[L.E_PERIODS_PER_YEAR] = self.periods_per_year
        e[L.E_FINANCING_RATE] = self.financing_rate
        return e


@dataclass(frozen=True)
class Features:
    """Half-lives and windows of the causal features (in bars)."""

    hl_fast: float = 10.0
    hl_slow: float = 63.0
    ma_window: int = 200
    rsi_window: int = 14

    def array(self) -> np.ndarray:
        f = np.zeros(L.N_FEAT_PARAMS)
        f[L.FP_HL_FAST] = self.hl_fast
        f[L.FP_HL_SLOW] = self.hl_slow
        f[L.FP_MA_WINDOW] = self.ma_window
        f[L.FP_RSI_WINDOW] = self.rsi_window
        if (f[: L.FP_MASKED] <= 0).any():
            raise ValueError("features: half-lives and windows must be > 0")
        return f


@dataclass(frozen=True)
class Smoothing:
    """Trading hysteresis on the detector's output (see :func:`smooth_state_nb`)."""

    prob_threshold: float = 0.0
    min_dwell: int = 0
    confirm: int = 1

    def array(self) -> np.ndarray:
        s = np.zeros(L.N_SMOOTH)
        s[L.S_PROB_THRESHOLD] = self.prob_threshold
        s[L.S_MIN_DWELL] = self.min_dwell
        s[L.S_CONFIRM] = self.confirm
        return s

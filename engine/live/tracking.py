"""How paper tracked the backtest: the equity gap of a paper run to its replay, split into
parts that add up to it exactly (``regime-engine paper-report``: :mod:`engine.live.paper_report`).

Both books start from the broker's book at the first recorded live decision (cash
``C1``, shares ``x1``) and are marked at the last decision's closes ``P``; the orders of the
last decision fill after it and are outside the window. The replay trades, at each decision
``k`` and symbol ``s``, ``qb`` shares to the target shares (the strategy's shares x the
decision's account scale, as paper) at the backtest's fill price ``pb`` (its reference price
``r``, the next bar's open or close as ``execution.fill_at`` says, through the engine's cost
kernel) and commission ``cb``. Paper wanted ``qd`` = target shares - the broker's shares
(unrounded), planned ``qi`` (the whole-share, minimum-notional orders it planned: sent,
refused or skipped) and filled ``qp`` = the sum of its fills ``q_f`` at ``p_f`` with
commission ``c_f`` (0 when the broker reports none). ``ph_f``, ``ch_f``: the backtest's fill
price and commission for a fill of ``q_f`` at ``r``. ``F``: the account's cash not explained
by the journalled fills (commissions and fees the broker does not report per fill, dividends,
interest): the broker's cash at the last decision minus ``C1 - sum(q_f p_f + c_f)``.

Each book's end equity is ``C1 + x1 P + sum over trades of q (P - p) - c`` (plus ``F`` for
paper), so the gap paper - replay is a sum over (decision, symbol) of::

    timing   = (qd - qb) (P - r)          paper's book differed at the decision: quantities
                                          the replay traded at another session (an earlier
                                          rounding, rejection or partial fill caught up now)
    rounding = (qi - qd) (P - r)          whole-share lots, minimum notional, buying power
    rejected = (qp - qi) (P - r)          orders refused, skipped or filled in part
    price    = sum_f q_f (ph_f - p_f)     paper's fill prices against the backtest's
    cost     = [qb (pb - r) + cb] - sum_f [q_f (ph_f - r) + c_f]   (and + F once)
                                          the backtest's modelled costs of its trades minus
                                          paper's (modelled spread/slippage/impact of what it
                                          traded, reported commission, unexplained cash)

``timing + rounding + rejected = (qp - qb)(P - r)`` and ``price + cost = sum_f q_f (r - p_f)
- c_f - qb (r - pb) + cb``: together ``sum_f [q_f (P - p_f) - c_f] - [qb (P - pb) - cb]``,
the (decision, symbol)'s share of the gap; summed, plus ``F``, the whole gap.

A fill's implementation shortfall (bps) is ``side x (p_f - ph_f) / r x 1e4``: what paper paid
beyond the backtest's fill price (positive: worse); its modelled cost (bps) is the backtest's
``(side x (ph_f - r) |q_f| + ch_f) / (|q_f| r) x 1e4``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

PARTS = ("timing", "price", "cost", "rounding", "rejected")


@dataclass(frozen=True)
class Fill:
    """One paper fill: signed ``qty`` at ``price`` (commission as reported, else 0), with the
    backtest's price and commission for the same quantity at the leg's reference price."""

    qty: float
    price: float
    commission: float
    model_price: float
    model_commission: float

    def shortfall_bps(self, ref: float) -> float:
        side = 1.0 if self.qty > 0 else -1.0
        return side * (self.price - self.model_price) / ref * 1e4

    def model_cost_bps(self, ref: float) -> float:
        side = 1.0 if self.qty > 0 else -1.0
        aq = abs(self.qty)
        return (side * (self.model_price - ref) * aq + self.model_commission) / (aq * ref) * 1e4


@dataclass(frozen=True)
class Leg:
    """One symbol of one decision in both books (quantities signed, shares)."""

    ref: float  # the backtest's reference price (next bar's open or close)
    mark: float  # the end mark P
    qb: float  # the replay's trade
    pb: float  # ... its fill price
    cb: float  # ... its commission
    qd: float  # paper's unrounded wanted trade
    qi: float  # paper's planned orders
    fills: tuple[Fill, ...] = ()

    @property
    def qp(self) -> float:
        return math.fsum(f.qty for f in self.fills)

    def parts(self) -> dict[str, float]:
        v = self.mark - self.ref
        paper_cost = math.fsum(
            f.qty * (f.model_price - self.ref) + f.commission for f in self.fills
        )
        return {
            "timing": (self.qd - self.qb) * v,
            "price": math.fsum(f.qty * (f.model_price - f.price) for f in self.fills),
            "cost": self.qb * (self.pb - self.ref) + self.cb - paper_cost,
            "rounding": (self.qi - self.qd) * v,
            "rejected": (self.qp - self.qi) * v,
        }

    def gap(self) -> float:
        """This leg's share of the equity gap, computed directly (not from the parts)."""
        paper = math.fsum(f.qty * (self.mark - f.price) - f.commission for f in self.fills)
        return paper - (self.qb * (self.mark - self.pb) - self.cb)


def decompose(legs: Sequence[Leg], unexplained_cash: float = 0.0) -> dict[str, float]:
    """The gap's parts (:data:`PARTS`) summed over ``legs``; ``unexplained_cash`` (``F``,
    paper's cash the fills do not explain) counts as cost."""
    per = [leg.parts() for leg in legs]
    out = {p: math.fsum(x[p] for x in per) for p in PARTS}
    out["cost"] += unexplained_cash
    return out


__all__ = ["PARTS", "Fill", "Leg", "decompose"]

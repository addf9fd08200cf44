"""The equity gap's split (engine.live.tracking) on a hand-built case where each part is
known: one fill at a worse price, one rejected order, one whole-share rounding caught up a
session later (timing), commissions and unexplained cash."""

from __future__ import annotations

import math

import pytest

from engine.live.tracking import PARTS, Fill, Leg, decompose


def legs() -> list[Leg]:
    worse = Leg(  # 10 shares bought at 100.5 where the backtest filled at 100
        ref=100.0,
        mark=110.0,
        qb=10.0,
        pb=100.0,
        cb=1.0,
        qd=10.0,
        qi=10.0,
        fills=(Fill(10.0, 100.5, 0.8, 100.0, 1.0),),
    )
    rejected = Leg(ref=50.0, mark=40.0, qb=5.0, pb=50.0, cb=0.0, qd=5.0, qi=5.0)
    rounded = Leg(  # 2.6 wanted, 2 whole shares bought
        ref=20.0,
        mark=25.0,
        qb=2.6,
        pb=20.0,
        cb=0.0,
        qd=2.6,
        qi=2.0,
        fills=(Fill(2.0, 20.0, 0.0, 20.0, 0.0),),
    )
    caught_up = Leg(  # next session: paper is 0.6 short, buys 1 whole share at 22
        ref=22.0,
        mark=25.0,
        qb=0.0,
        pb=22.0,
        cb=0.0,
        qd=0.6,
        qi=1.0,
        fills=(Fill(1.0, 22.0, 0.0, 22.0, 0.0),),
    )
    return [worse, rejected, rounded, caught_up]


def test_each_part_is_the_hand_computed_one() -> None:
    split = decompose(legs(), unexplained_cash=-0.25)
    want = {
        "price": 10 * (100.0 - 100.5),  # -5
        "rejected": (0 - 5.0) * (40.0 - 50.0),  # +50: the order that failed would have lost
        "rounding": (2.0 - 2.6) * (25.0 - 20.0) + (1.0 - 0.6) * (25.0 - 22.0),  # -3 + 1.2
        "timing": (0.6 - 0.0) * (25.0 - 22.0),  # +1.8: bought a session later
        "cost": (1.0 - 0.8) - 0.25,  # backtest's commission - paper's, unexplained cash
    }
    assert split == pytest.approx(want, abs=1e-12)
    assert set(split) == set(PARTS)


def test_the_parts_add_up_to_the_gap_computed_directly() -> None:
    ls = legs()
    paper = sum(f.qty * (g.mark - f.price) - f.commission for g in ls for f in g.fills) - 0.25
    replay = sum(g.qb * (g.mark - g.pb) - g.cb for g in ls)
    split = decompose(ls, unexplained_cash=-0.25)
    assert math.fsum(split.values()) == pytest.approx(paper - replay, abs=1e-12)
    assert math.fsum(g.gap() for g in ls) - 0.25 == pytest.approx(paper - replay, abs=1e-12)


def test_a_fills_shortfall_and_modelled_cost_in_bps() -> None:
    buy = Fill(10.0, 100.5, 0.0, 100.02, 0.5)  # backtest: 2 bps spread + 0.5 commission
    assert buy.shortfall_bps(100.0) == pytest.approx((100.5 - 100.02) / 100.0 * 1e4)
    assert buy.model_cost_bps(100.0) == pytest.approx((0.02 * 10 + 0.5) / 1000.0 * 1e4)
    sell = Fill(-4.0, 49.9, 0.0, 50.0, 0.0)  # sold 10 cents under the backtest's price
    assert sell.shortfall_bps(50.0) == pytest.approx(0.1 / 50.0 * 1e4)

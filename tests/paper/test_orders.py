"""Order planning: rounding, minimum notional, long-only clipping, buying power."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.live.planning import AssetRule, plan_orders, round_qty

FRAC, WHOLE = AssetRule(True), AssetRule(False)


def test_round_qty() -> None:
    assert round_qty(1.23456789012, FRAC) == 1.23456789
    assert round_qty(-1.23456789012, FRAC) == -1.23456789
    assert round_qty(0.3, FRAC) == 0.3  # float noise does not lose the last unit
    assert round_qty(2.9999, WHOLE) == 2.0
    assert round_qty(-2.9999, WHOLE) == -2.0
    assert round_qty(float("nan"), FRAC) == 0.0


def test_sells_first_and_buys_within_buying_power() -> None:
    plan = plan_orders(
        {"A": 0.0, "B": 100.0},
        {"A": 50.0},
        {},
        {"A": 10.0, "B": 10.0},
        {"A": FRAC, "B": FRAC},
        buying_power=400.0,
        bp_safety=1.0,
    )
    assert [(o.symbol, o.qty) for o in plan.sells] == [("A", -50.0)]
    assert [(o.symbol, o.qty) for o in plan.buys] == [("B", 40.0)]
    assert plan.deferred == {"B": 60.0}


def test_open_orders_count_and_dust_is_dropped() -> None:
    plan = plan_orders(
        {"A": 10.05},
        {"A": 5.0},
        {"A": 5.0},
        {"A": 10.0},
        {"A": FRAC},
        buying_power=1e6,
    )
    assert plan.buys == [] and plan.sells == [] and "A" in plan.dropped  # $0.50 < $1


@settings(deadline=None, max_examples=300)
@given(
    desired=st.lists(st.floats(-50, 500, allow_nan=False), min_size=3, max_size=3),
    held=st.lists(st.floats(0, 500, allow_nan=False), min_size=3, max_size=3),
    open_sell=st.lists(st.floats(0, 1, allow_nan=False), min_size=3, max_size=3),
    prices=st.lists(st.floats(0.5, 3000, allow_nan=False), min_size=3, max_size=3),
    whole=st.lists(st.booleans(), min_size=3, max_size=3),
    bp=st.floats(0, 1e6, allow_nan=False),
)
def test_plan_properties(desired, held, open_sell, prices, whole, bp) -> None:  # type: ignore[no-untyped-def]
    syms = ["A", "B", "C"]
    rules = {s: AssetRule(not w) for s, w in zip(syms, whole, strict=True)}
    pos = dict(zip(syms, held, strict=True))
    opn = {s: -f * pos[s] for s, f in zip(syms, open_sell, strict=True)}  # open sells
    px = dict(zip(syms, prices, strict=True))
    plan = plan_orders(dict(zip(syms, desired, strict=True)), pos, opn, px, rules, buying_power=bp)
    spent = 0.0
    for o in plan.sells + plan.buys:
        step = Decimal(str(o.qty))
        assert -step.as_tuple().exponent <= 9  # at most 9 decimals
        if not rules[o.symbol].fractionable:
            assert o.qty == int(o.qty)
        else:
            assert abs(o.qty) * o.price >= 1.0  # minimum notional
    for o in plan.sells:
        # long-only: never below zero after every open sell and this one fill
        assert pos[o.symbol] + opn[o.symbol] + o.qty >= -1e-9
    for o in plan.buys:
        spent += o.qty * o.price
    assert spent <= 0.98 * bp + 1e-6
    sides = {o.symbol: o.qty > 0 for o in plan.sells + plan.buys}
    assert len(sides) == len(plan.sells) + len(plan.buys)  # one order per symbol
    if bp > 1e7:  # everything fits: the book lands within a step of the target
        for s in syms:
            after = pos[s] + opn[s] + sum(o.qty for o in plan.sells + plan.buys if o.symbol == s)
            want = max(desired[syms.index(s)], 0.0)
            assert abs(after - want) <= (1.0 if not rules[s].fractionable else 1e-9) or (
                abs(after - want) * px[s] < 1.0
            )

"""Properties of the account rules (brokers.local_exchange.matching) under random order flow:
no shorts without shorting, buying power never overspent at submission, fills add up,
events are consistent."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from brokers.local_exchange.matching import AccountRules, OrderError, SimBroker

SYMS = ("A", "B")
action = st.one_of(
    st.tuples(
        st.just("order"),
        st.sampled_from(SYMS),
        st.sampled_from(["buy", "sell"]),
        st.one_of(st.integers(1, 400).map(float), st.floats(0.01, 50).map(lambda x: round(x, 4))),
    ),
    st.tuples(st.just("cancel"), st.integers(0, 30)),
    st.tuples(st.just("session"), st.floats(0.8, 1.25), st.floats(0.8, 1.25)),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(action, min_size=1, max_size=40), st.booleans(), st.booleans())
def test_random_order_flow(actions: list, partial: bool, reject: bool) -> None:  # type: ignore[type-arg]
    flags = iter([(reject, partial)] * 1000)
    b = SimBroker(SYMS, np.zeros((2, 16)), 10_000.0, rules=AccountRules(), draw=lambda: next(flags))
    px = np.array([100.0, 50.0])
    b.on_open(1, px, np.full(2, 1e6))
    b.on_close(
        2,
        px,
    )
    t = 10
    events = []
    for a in actions:
        if a[0] == "order":
            bp = b.buying_power
            try:
                o, ev = b.submit(a[1], a[2], qty=a[3])
            except OrderError as exc:
                assert exc.status in (403, 422)
                continue
            if a[2] == "buy":
                assert a[3] * b.price(a[1]) <= bp + 1e-6  # accepted only within buying power
            events += ev
        elif a[0] == "cancel":
            ids = list(b.orders)
            if ids:
                try:
                    events += b.cancel(ids[a[1] % len(ids)])
                    events += b.finish_cancel(ids[a[1] % len(ids)])
                except OrderError as exc:
                    assert exc.status == 422
        else:
            px = px * np.array([a[1], a[2]])
            events += b.on_open(t, px, np.full(2, 1e6))
            events += b.on_minute(t + 1, px)
            events += b.on_close(t + 2, px)
            t += 10
        assert (b.pos >= -1e-9).all()  # long only without shorting
    for o in b.orders.values():
        fills = [
            e.qty for e in events if e.order.id == o.id and e.event in ("fill", "partial_fill")
        ]
        assert abs(sum(fills) - o.filled_qty) < 1e-9
        if o.status == "rejected":
            assert o.filled_qty == 0
    for j, s in enumerate(SYMS):
        signed = sum(
            (1 if e.order.side == "buy" else -1) * (e.qty or 0.0)
            for e in events
            if e.order.symbol == s and e.event in ("fill", "partial_fill")
        )
        assert abs(signed - b.pos[j]) < 1e-6

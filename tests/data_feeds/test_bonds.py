"""Bond total-return formula: hand-computed case and exact repricing of the par bond."""

from __future__ import annotations

import numpy as np
import pytest

from data_feeds.bonds import bond_total_return, par_bond_price, par_duration_convexity


def test_duration_matches_closed_form_and_convexity_matches_finite_difference() -> None:
    y, m = 0.05, 10.0
    dur, conv = par_duration_convexity(y, m)
    # par bond: D_mod = (1/y) * (1 - (1 + y/2)^(-2m)) = 20 * (1 - 1.025^-20)
    assert dur == pytest.approx(20.0 * (1.0 - 1.025**-20), rel=1e-12)
    assert dur == pytest.approx(7.794581, abs=1e-6)
    h = 1e-4
    p = [float(par_bond_price(y, y + s * h, m)) for s in (-1, 0, 1)]
    assert p[1] == pytest.approx(1.0, abs=1e-14)  # par
    assert float(conv) == pytest.approx((p[0] - 2 * p[1] + p[2]) / h**2 / p[1], rel=1e-5)
    assert float(conv) == pytest.approx(73.6287, abs=1e-3)


def test_hand_case() -> None:
    # y: 5.00% -> 5.10%: r = 0.05/252 - 7.794581*0.001 + 0.5*73.6287*0.001^2
    r = bond_total_return(np.array([0.05, 0.051]), 10.0)
    assert r[0] == 0.0
    hand = 0.05 / 252 - 7.794581142823 * 0.001 + 0.5 * 73.62873142656 * 1e-6
    assert r[1] == pytest.approx(hand, rel=1e-10)
    assert r[1] == pytest.approx(0.000198413 - 0.007794581 + 0.000036814, abs=2e-9)


@pytest.mark.parametrize("y0", [0.005, 0.02, 0.06, 0.12])
@pytest.mark.parametrize("dy", [-0.0025, -0.001, 0.0005, 0.0025])
def test_against_exact_repricing(y0: float, dy: float) -> None:
    r = bond_total_return(np.array([y0, y0 + dy]), 10.0)[1]
    exact = float(par_bond_price(y0, y0 + dy, 10.0)) - 1.0 + y0 / 252
    # second-order expansion: error is third order in dy
    assert abs(r - exact) < 3e-6
    dur, _ = par_duration_convexity(y0, 10.0)
    first_order = y0 / 252 - float(dur) * dy
    assert abs(r - exact) < abs(first_order - exact)


def test_constant_yield_earns_carry_and_shapes() -> None:
    r = bond_total_return(np.full(5, 0.04), 10.0)
    np.testing.assert_allclose(r[1:], 0.04 / 252)
    assert bond_total_return(np.array([0.03]), 10.0).tolist() == [0.0]
    with pytest.raises(ValueError):
        bond_total_return(np.zeros((2, 2)), 10.0)
    with pytest.raises(ValueError):
        par_duration_convexity(0.03, 0.1)

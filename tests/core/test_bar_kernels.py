"""The built-in loop's per-bar kernels: known answers, and no reference counting.

:func:`engine.core.step_nb.run_builtin_nb` calls these on every bar with its own arrays
and the bar index. Written as leaves with one exit, numba prunes every incref of their
array arguments; a row view, a call taking the arrays or an early return would leave
``NRT_incref`` / ``NRT_decref`` atomics in the loop (most of a sweep's time). The IR is
read from a fresh compilation of each function (cached code cannot be inspected).
"""

from __future__ import annotations

import re
from typing import Any

import numba as nb
import numpy as np
import pytest

from engine.core.execution_nb import mark_row_nb
from engine.core.policy_nb import SS_REBALANCED, policy_triggered_nb, within_drift_nb
from engine.ground import layout as L

CLOSE = np.array([[1.0, 1.0], [10.0, 20.0]])


def portfolio(cash: float, pos: list[float]) -> np.ndarray:
    port = np.zeros(L.P_HEADER + 2 * len(pos))
    port[L.P_CASH] = cash
    port[L.P_HEADER : L.P_HEADER + len(pos)] = pos
    return port


def table_params(drift: float, blend: bool = False) -> np.ndarray:
    """A 2-asset regime table: warm-up row (0.5, 0.5), regime 0 (0.7, 0.3), 1 (0.62, 0.38)."""
    sp = np.zeros(L.SP_HEADER + 2 + 2 * 2)
    sp[L.SP_KIND] = L.POLICY_TABLE
    sp[L.SP_DRIFT] = drift
    sp[L.SP_BLEND] = 1.0 if blend else 0.0
    sp[L.SP_N_STATES] = 2
    sp[L.SP_HEADER :] = [0.5, 0.5, 0.7, 0.3, 0.62, 0.38]
    return sp


def test_mark_row_values_the_positions_at_row_t() -> None:
    port = portfolio(5.0, [6.0, 2.0])
    mark_row_nb(CLOSE, 1, port)
    assert port[L.P_EQUITY] == 5.0 + 6.0 * 10.0 + 2.0 * 20.0


@pytest.mark.parametrize(
    ("regime", "drift", "blend", "held"),
    [
        (1, 0.05, False, True),  # |0.6 - 0.62|, |0.4 - 0.38| = 0.02 <= 0.05
        (1, 0.01, False, False),  # 0.02 > 0.01
        (0, 0.05, False, False),  # |0.6 - 0.7| = 0.1 > 0.05
        (-1, 0.15, False, True),  # regime unknown: the warm-up row, 0.1 <= 0.15
        (5, 0.05, False, False),  # no such regime: the warm-up row, 0.1 > 0.05
        (1, 0.0, False, False),  # no drift band
        (1, 0.05, True, False),  # blended targets: the policy decides
    ],
)
def test_within_drift_known_answers(regime: int, drift: float, blend: bool, held: bool) -> None:
    port = portfolio(0.0, [6.0, 2.0])  # at row 1: 60 + 40, weights 0.6 / 0.4
    mark_row_nb(CLOSE, 1, port)
    work = np.full(2, np.nan)
    assert within_drift_nb(1, CLOSE, port, work, table_params(drift, blend), regime) is held
    np.testing.assert_array_equal(work, [0.6, 0.4])  # the held weights, written first


def test_triggers() -> None:
    sp = table_params(0.05)
    sp[L.SP_ON_CHANGE] = 1.0
    fresh = np.zeros(4)
    done = np.zeros(4)
    done[SS_REBALANCED] = 1.0
    assert policy_triggered_nb(sp, fresh, False, False)  # the first allocation
    assert policy_triggered_nb(sp, done, True, False)  # regime change
    assert not policy_triggered_nb(sp, done, False, True)  # calendar off
    sp[L.SP_ON_SCHEDULE] = 1.0
    assert policy_triggered_nb(sp, done, False, True)


def nrt_calls(fn: Any, *args: Any) -> int:
    """``NRT_incref`` / ``NRT_decref`` calls in the body of a fresh compilation of ``fn``."""
    fresh = nb.njit(fn.py_func)
    fresh(*args)
    (ir,) = fresh.inspect_llvm().values()
    body = next(
        d for d in re.split(r"\n(?=define )", ir) if d.startswith("define") and fn.__name__ in d
    )
    return len(re.findall(r"call void @NRT_(?:incref|decref)\(", body))


def test_the_per_bar_kernels_carry_no_reference_counting() -> None:
    port = portfolio(0.0, [6.0, 2.0])
    sp = table_params(0.05)
    assert nrt_calls(mark_row_nb, CLOSE, 1, port) == 0
    assert nrt_calls(policy_triggered_nb, sp, np.zeros(4), False, True) == 0
    assert nrt_calls(within_drift_nb, 1, CLOSE, port, np.zeros(2), sp, 1) == 0

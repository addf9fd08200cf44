"""``softmax(W x + b)`` over a parameter vector: the output layer shared by the
supervised (logistic) detector and the GRU detector's head."""

from __future__ import annotations

import math

import numba as nb
import numpy as np


@nb.njit(cache=True, inline="always")
def linear_softmax_nb(
    p: np.ndarray, o_w: int, o_b: int, x: np.ndarray, n_in: int, k: int, post: np.ndarray
) -> int:
    """``post[:k] = softmax(W x + b)`` with ``W`` (k x n_in) at ``p[o_w:]`` row-major and
    ``b`` at ``p[o_b:]``; numerically stable (max subtracted). Returns the argmax."""
    top = -np.inf
    for c in range(k):
        s = p[o_b + c]
        for i in range(n_in):
            s += p[o_w + c * n_in + i] * x[i]
        post[c] = s
        if s > top:
            top = s
    total = 0.0
    for c in range(k):
        post[c] = math.exp(post[c] - top)
        total += post[c]
    best = 0
    for c in range(k):
        post[c] /= total
        if post[c] > post[best]:
            best = c
    return best

"""Online forward step of the GRU regime classifier (njit; no torch needed at inference).

Parameter vector (fitted-detector header, see :mod:`engine.ground.layout`):
``[DET_GRU, K, d, 0, H, R, warm, fit_id, inputs (d x DX_IN_STRIDE), body]`` where
``DX_A`` = hidden size ``H``, ``DX_B`` = replay length ``R``, ``DX_C`` = warm-up bars,
``DX_D`` = an id of the fit (the fit bar). Body, in torch's own layout (gate order r, z, n):
``W_ih (3H x d), W_hh (3H x H), b_ih (3H), b_hh (3H), W_out (K x H), b_out (K)``.

Per bar: the raw (picked, optionally logged, *not* standardized) inputs go into a ring
buffer of the last ``R`` bars; the row is standardized with the fit's training statistics,
one GRU cell update advances the hidden state, and ``softmax(W_out h + b_out)`` is the
posterior. When the parameter row changes (a refit: ``fit_id`` differs from the one in
the state) the hidden state is rebuilt from zero by replaying the ring buffer through the
new network, so a refit never mixes one network's hidden state with another's weights.
Everything depends on bars ``<= t`` only.

State: ``[init, -, fit_id, count, h (H), ring (R*d), x (d), gi (3H), gh (3H)]``.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

from engine.ground.layout import (
    D_N_STATES,
    DX_A,
    DX_B,
    DX_C,
    DX_D,
    DX_IN_STRIDE,
    DX_INPUTS,
    DX_N_IN,
    DXI_LOG,
    DXI_MEAN,
    DXI_SCALE,
    DXI_SRC,
    DXS_HEADER,
    DXS_INIT,
)
from engine.regimes.softmax_nb import linear_softmax_nb

GS_FIT_ID = DXS_HEADER  # id of the parameter row the hidden state belongs to
GS_COUNT = DXS_HEADER + 1  # bars seen (ring position)
GS_H = DXS_HEADER + 2  # hidden state starts here
LOG_FLOOR = 1e-12


def gru_state_size(hidden: int, replay: int, d: int) -> int:
    """Length of the GRU filter's state vector."""
    return GS_H + hidden + replay * d + d + 6 * hidden


def gru_body_size(hidden: int, d: int, k: int) -> int:
    """Number of body slots of a GRU parameter vector."""
    return 3 * hidden * d + 3 * hidden * hidden + 6 * hidden + k * hidden + k


@nb.njit(cache=True)
def gru_cell_nb(
    p: np.ndarray,
    o: int,
    hidden: int,
    d: int,
    x: np.ndarray,
    h: np.ndarray,
    gi: np.ndarray,
    gh: np.ndarray,
) -> None:
    """One GRU cell update in place (torch semantics): ``h <- (1 - z) * n + z * h``."""
    h3 = 3 * hidden
    o_wih = o
    o_whh = o_wih + h3 * d
    o_bih = o_whh + h3 * hidden
    o_bhh = o_bih + h3
    for j in range(h3):
        s = p[o_bih + j]
        row = o_wih + j * d
        for i in range(d):
            s += p[row + i] * x[i]
        gi[j] = s
        s = p[o_bhh + j]
        row = o_whh + j * hidden
        for i in range(hidden):
            s += p[row + i] * h[i]
        gh[j] = s
    for j in range(hidden):
        r = 1.0 / (1.0 + math.exp(-(gi[j] + gh[j])))
        zg = 1.0 / (1.0 + math.exp(-(gi[hidden + j] + gh[hidden + j])))
        n = math.tanh(gi[2 * hidden + j] + r * gh[2 * hidden + j])
        h[j] = (1.0 - zg) * n + zg * h[j]


@nb.njit(cache=True)
def gru_head_nb(
    p: np.ndarray, o: int, hidden: int, d: int, k: int, h: np.ndarray, post: np.ndarray
) -> int:
    """``post = softmax(W_out h + b_out)``; returns the argmax."""
    o_w = o + 3 * hidden * d + 3 * hidden * hidden + 6 * hidden
    o_b = o_w + k * hidden
    return linear_softmax_nb(p, o_w, o_b, h, hidden, k, post)


@nb.njit(cache=True)
def standardize_row_nb(p: np.ndarray, raw: np.ndarray, x: np.ndarray) -> None:
    """Standardize one raw input row with the fit's statistics (non-finite -> 0)."""
    d = int(p[DX_N_IN])
    for i in range(d):
        base = DX_INPUTS + DX_IN_STRIDE * i
        v = (raw[i] - p[base + DXI_MEAN]) / p[base + DXI_SCALE]
        x[i] = v if np.isfinite(v) else 0.0


@nb.njit(cache=True)
def gru_update_nb(
    dparams: np.ndarray, dstate: np.ndarray, feats: np.ndarray, exog: np.ndarray, post: np.ndarray
) -> int:
    """Online GRU classifier step (see the module doc). Returns the argmax state, or -1
    (uniform posterior) during the first ``warm`` bars."""
    k = int(dparams[D_N_STATES])
    d = int(dparams[DX_N_IN])
    hidden = int(dparams[DX_A])
    replay = int(dparams[DX_B])
    warm = int(dparams[DX_C])
    o = DX_INPUTS + DX_IN_STRIDE * d
    o_h = GS_H
    o_ring = o_h + hidden
    o_x = o_ring + replay * d
    o_gi = o_x + d
    o_gh = o_gi + 3 * hidden
    h = dstate[o_h : o_h + hidden]
    x = dstate[o_x : o_x + d]
    gi = dstate[o_gi : o_gi + 3 * hidden]
    gh = dstate[o_gh : o_gh + 3 * hidden]
    count = int(dstate[GS_COUNT])
    # raw inputs of this bar into the ring
    slot = o_ring + (count % replay) * d
    for i in range(d):
        base = DX_INPUTS + DX_IN_STRIDE * i
        src = int(dparams[base + DXI_SRC])
        v = feats[src] if src >= 0 else exog[-src - 1]
        if dparams[base + DXI_LOG] != 0.0:
            v = math.log(v if v > LOG_FLOOR else LOG_FLOOR)
        dstate[slot + i] = v
    count += 1
    dstate[GS_COUNT] = count
    if dstate[DXS_INIT] == 0.0 or dstate[GS_FIT_ID] != dparams[DX_D]:
        # new network: rebuild the hidden state from zero over the buffered bars
        for j in range(hidden):
            h[j] = 0.0
        n_rep = count if count < replay else replay
        for q in range(count - n_rep, count):
            s0 = o_ring + (q % replay) * d
            standardize_row_nb(dparams, dstate[s0 : s0 + d], x)
            gru_cell_nb(dparams, o, hidden, d, x, h, gi, gh)
        dstate[GS_FIT_ID] = dparams[DX_D]
        dstate[DXS_INIT] = 1.0
    else:
        standardize_row_nb(dparams, dstate[slot : slot + d], x)
        gru_cell_nb(dparams, o, hidden, d, x, h, gi, gh)
    best = gru_head_nb(dparams, o, hidden, d, k, h, post)
    if count < warm:
        post[:] = 1.0 / k
        return -1
    return best


@nb.njit(cache=True)
def gru_sequence_nb(dparams: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Posteriors (T, K) of the network over standardized rows ``z`` (T, d) from ``h = 0``
    (no ring, no warm-up): the reference the parity test compares with torch."""
    k = int(dparams[D_N_STATES])
    d = int(dparams[DX_N_IN])
    hidden = int(dparams[DX_A])
    o = DX_INPUTS + DX_IN_STRIDE * d
    h = np.zeros(hidden)
    gi = np.empty(3 * hidden)
    gh = np.empty(3 * hidden)
    out = np.empty((z.shape[0], k))
    for t in range(z.shape[0]):
        gru_cell_nb(dparams, o, hidden, d, z[t], h, gi, gh)
        gru_head_nb(dparams, o, hidden, d, k, h, out[t])
    return out

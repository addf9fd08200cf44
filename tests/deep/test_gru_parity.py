"""The numba GRU forward step equals torch's (float64) to 1e-6, online and across refits."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from engine.ground import layout as L  # noqa: E402
from engine.regimes.deep import _build_net, export_weights, gru_params  # noqa: E402
from engine.regimes.deep_nb import gru_sequence_nb, gru_state_size  # noqa: E402
from engine.regimes.inputs import Inputs  # noqa: E402
from engine.regimes.online_nb import detector_update_nb  # noqa: E402


def _net(d: int, hidden: int, k: int, seed: int) -> object:
    torch.manual_seed(seed)
    net = _build_net(d, hidden, k).double()
    with torch.no_grad():  # wider than the default init: exercise the non-linearities
        for p in net.parameters():
            p.mul_(3.0)
    return net


def _torch_post(net: object, z: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        logits = net(torch.from_numpy(z)[None])[0]  # type: ignore[operator]
        return torch.softmax(logits, dim=-1).numpy()


def _params(
    net: object,
    d: int,
    hidden: int,
    k: int,
    replay: int,
    fit_id: float,
    mean: np.ndarray,
    scale: np.ndarray,
) -> np.ndarray:
    inputs = Inputs(tuple(range(d)), (False,) * d)
    return gru_params(inputs, mean, scale, k, hidden, replay, 0, fit_id, export_weights(net))


@pytest.mark.parametrize(("d", "hidden", "k"), [(1, 4, 2), (2, 8, 3), (5, 16, 4)])
def test_sequence_matches_torch(d: int, hidden: int, k: int) -> None:
    rng = np.random.default_rng(d * 100 + hidden)
    net = _net(d, hidden, k, seed=hidden)
    z = rng.normal(0.0, 2.0, size=(200, d))
    p = _params(net, d, hidden, k, 8, 1.0, np.zeros(d), np.ones(d))
    np.testing.assert_allclose(gru_sequence_nb(p, z), _torch_post(net, z), rtol=0, atol=1e-6)


def test_online_step_and_refit_replay_match_torch() -> None:
    """Through the detector dispatch: standardization, ring buffer, and the hidden state
    rebuilt over the last ``replay`` bars when the parameter row changes."""
    d, hidden, k, replay = 3, 8, 3, 20
    rng = np.random.default_rng(5)
    feats = rng.normal(1.0, 3.0, size=(120, d))
    exog = np.zeros(1)
    mean1, scale1 = rng.normal(size=d), rng.uniform(0.5, 2.0, size=d)
    mean2, scale2 = rng.normal(size=d), rng.uniform(0.5, 2.0, size=d)
    net1, net2 = _net(d, hidden, k, 1), _net(d, hidden, k, 2)
    p1 = _params(net1, d, hidden, k, replay, 100.0, mean1, scale1)
    p2 = _params(net2, d, hidden, k, replay, 160.0, mean2, scale2)
    assert int(p1[L.D_KIND]) == L.DET_GRU
    dstate = np.zeros(gru_state_size(hidden, replay, d))
    post = np.empty((feats.shape[0], k))
    switch = 70
    for t in range(feats.shape[0]):
        detector_update_nb(p1 if t < switch else p2, dstate, feats[t], exog, post[t])
    ref1 = _torch_post(net1, (feats[:switch] - mean1) / scale1)
    np.testing.assert_allclose(post[:switch], ref1, rtol=0, atol=1e-6)
    # after the refit: net2 from a zero state over the last `replay` bars, then onwards
    z2 = (feats[switch - replay + 1 :] - mean2) / scale2
    ref2 = _torch_post(net2, z2)[replay - 1 :]
    np.testing.assert_allclose(post[switch:], ref2, rtol=0, atol=1e-6)

"""Deep-learning regime detector: a small GRU classifier trained with PyTorch (optional).

Fit (Python, torch CPU, at each fit bar ``n``, rows of the trailing window only):

1. inputs standardized with the window's own statistics (stored in the parameters);
2. labels made inside the window: ``"forward_vol"`` (default) buckets the realised
   volatility of the next ``horizon`` bars (one-hot, quantile edges from the window);
   ``"hmm"`` fits a Gaussian HMM (hmmlearn, diagonal) on the window and uses its *smoothed*
   state probabilities as soft targets (better on 2 states, flickers on 3: see
   ``benchmarks/deep_detector.py``). States are put in
   ascending-volatility order, so state ``k`` keeps its meaning across refits. The last
   ``embargo`` rows (plus ``horizon`` for forward labels) get no loss: their labels would
   lean on the fewest future bars inside the window (HMM) or on bars at/after the fit bar
   (forward volatility), which the fit never sees;
3. a one-layer GRU (``hidden`` units) + linear head trained with Adam on random
   subsequences (``seq_len`` bars, loss after a ``burn_in`` from a zero hidden state),
   class-balanced cross-entropy; a refit warm-starts from the previous network.

The weights are exported to the float64 parameter vector; the online step
(:func:`engine.regimes.deep_nb.gru_update_nb`) is numba, so inference needs no torch and
runs in both drivers and in paper trading. Fitting needs ``pip install -e ".[deep]"``.
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from engine.ground import layout as L
from engine.ground.bars import DataError
from engine.regimes.deep_nb import gru_body_size, gru_state_size
from engine.regimes.inputs import (
    Inputs,
    Schedule,
    body_offset,
    default_labels,
    header,
    standardize,
    state_order,
    varying_design,
)
from engine.regimes.supervised import forward_vol_labels

INSTALL_HINT = 'pip install -e ".[deep]"  (or: pip install torch==2.13.0)'


def torch_available() -> bool:
    """True when PyTorch can be imported (the ``deep`` extra is installed)."""
    return importlib.util.find_spec("torch") is not None


def require_torch() -> None:
    """Raise one clear error naming the install command when torch is missing."""
    if not torch_available():
        raise DataError(
            f'detector kind "gru" needs PyTorch, which is not installed: {INSTALL_HINT}'
        )


# ---------------------------------------------------------------- labels
def hmm_soft_labels(
    z: np.ndarray, k: int, inputs: Inputs, seed: int, restarts: int = 1
) -> np.ndarray | None:
    """Smoothed state probabilities ``(T, K)`` of a Gaussian HMM fitted on ``z`` (the
    training window), states in ascending-volatility order; ``None`` if the fit fails."""
    from hmmlearn.hmm import GaussianHMM

    best: tuple[float, Any] | None = None
    for r in range(restarts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                m = GaussianHMM(
                    n_components=k,
                    covariance_type="diag",
                    n_iter=50,
                    tol=1e-3,
                    min_covar=1e-3,
                    random_state=seed + 7919 * r,
                ).fit(z)
                score = float(m.score(z))
        except (ValueError, np.linalg.LinAlgError):
            continue
        if np.isfinite(score) and (best is None or score > best[0]):
            best = (score, m)
    if best is None:
        return None
    m = best[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proba = np.asarray(m.predict_proba(z))
    if not np.all(np.isfinite(proba)):
        return None
    # the HMM's own emission statistics put the states in ascending-volatility order
    m_means = np.asarray(m.means_)
    m_var = np.stack([np.diag(c) for c in np.asarray(m.covars_)])  # (K, d, d) -> (K, d)
    order = state_order(m_means, m_var, inputs)
    return np.asarray(proba[:, order])


def forward_labels(ret: np.ndarray, horizon: int, k: int, embargo: int) -> tuple[np.ndarray, int]:
    """One-hot forward-volatility buckets ``(T, K)`` and the number of labelled rows."""
    rows, y = forward_vol_labels(ret, horizon, k, embargo)
    out = np.zeros((ret.shape[0], k))
    out[rows, y] = 1.0
    return out, int(rows.shape[0])


# ---------------------------------------------------------------- torch model
def _build_net(d: int, hidden: int, k: int) -> Any:
    import torch

    class GRUNet(torch.nn.Module):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.gru = torch.nn.GRU(d, hidden, batch_first=True)
            self.head = torch.nn.Linear(hidden, k)

        def forward(self, x: Any) -> Any:
            y, _ = self.gru(x)
            return self.head(y)

    return GRUNet()


def export_weights(net: Any) -> np.ndarray:
    """The body of the parameter vector from a trained network (torch's layout)."""
    g, hd = net.gru, net.head
    parts = [g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0, hd.weight, hd.bias]
    return np.concatenate([p.detach().cpu().double().numpy().ravel() for p in parts])


def import_weights(net: Any, body: np.ndarray) -> None:
    """Load a parameter body back into a network (warm start of a refit)."""
    import torch

    g, hd = net.gru, net.head
    o = 0
    with torch.no_grad():
        for p in (g.weight_ih_l0, g.weight_hh_l0, g.bias_ih_l0, g.bias_hh_l0, hd.weight, hd.bias):
            n = p.numel()
            p.copy_(torch.from_numpy(body[o : o + n].reshape(p.shape)).to(p.dtype))
            o += n


def gru_params(
    inputs: Inputs,
    mean: np.ndarray,
    scale: np.ndarray,
    k: int,
    hidden: int,
    replay: int,
    warm: int,
    fit_id: float,
    body: np.ndarray,
) -> np.ndarray:
    """Assemble a full GRU parameter vector (header + inputs + body)."""
    h = header(L.DET_GRU, k, inputs, mean, scale)
    h[L.DX_A] = hidden
    h[L.DX_B] = replay
    h[L.DX_C] = warm
    h[L.DX_D] = fit_id
    if body.shape[0] != gru_body_size(hidden, inputs.d, k):
        raise ValueError("GRU body has the wrong length")
    return np.concatenate([h, body])


@dataclass(frozen=True)
class GRUDetector:
    """GRU regime classifier: torch fit on trailing windows, numba forward step online."""

    inputs: Inputs
    market_col: int  # feature column of the market's log return (forward-vol labels)
    n_states: int = 3
    hidden: int = 8
    seq_len: int = 64
    burn_in: int = 24
    replay: int = 48
    label_source: Literal["hmm", "forward_vol"] = "forward_vol"
    horizon: int = 21
    embargo: int = 10
    epochs: int = 100  # optimizer steps of the first fit
    refit_epochs: int = 40  # optimizer steps of a warm-started refit
    batch: int = 32
    lr: float = 0.01
    balance: bool = True
    schedule: Schedule = field(default_factory=lambda: Schedule(756, 252, 0, 21))
    seed: int = 0
    threads: int = 1
    name: str = "gru"
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.labels:
            object.__setattr__(self, "labels", default_labels(self.n_states))

    def state_size(self, n_features: int) -> int:
        return gru_state_size(self.hidden, self.replay, self.inputs.d)

    def fit_bars(self, n_bars: int) -> np.ndarray:
        return self.schedule.fit_bars(n_bars)

    def targets(self, z: np.ndarray, ret: np.ndarray) -> tuple[np.ndarray, int] | None:
        """Soft targets ``(T, K)`` and the number of leading rows that carry a loss."""
        k, t = self.n_states, z.shape[0]
        if self.label_source == "hmm":
            y = hmm_soft_labels(z, k, self.inputs, self.seed)
            if y is not None:
                return y, max(0, t - self.embargo)
        y, n_lab = forward_labels(ret, self.horizon, k, self.embargo)
        return (y, n_lab) if n_lab > 0 else None

    def fit(
        self, features: np.ndarray, exog: np.ndarray, previous: np.ndarray | None
    ) -> np.ndarray:
        require_torch()
        import torch

        n = features.shape[0]
        rows = self.schedule.rows(n)
        k, d, hd = self.n_states, self.inputs.d, self.hidden
        x = varying_design(self.inputs, self.schedule, features, exog, previous)
        if x is None:
            assert previous is not None
            return previous  # a refit on a window that stood still: the model so far
        z, mean, scale = standardize(x)
        ret = np.nan_to_num(np.asarray(features[rows, self.market_col], dtype=np.float64))
        lab = self.targets(z, ret)
        seq = min(self.seq_len, z.shape[0])
        burn = min(self.burn_in, max(seq - 1, 0))
        if lab is None or lab[1] < burn + 2:
            if previous is not None:
                return previous
            raise ValueError(f"gru detector: too few labelled rows to fit at bar {n}")
        y, n_lab = lab
        torch.set_num_threads(self.threads)
        torch.manual_seed(self.seed)
        net = _build_net(d, hd, k).double()
        warm_start = previous is not None and int(previous[L.D_KIND]) == L.DET_GRU
        if warm_start and previous is not None:
            import_weights(net, previous[body_offset(d) :])
        steps = self.refit_epochs if warm_start else self.epochs
        # class weights (balanced accuracy matters: crises are rare)
        freq = y[:n_lab].mean(axis=0)
        cw = np.where(freq > 1e-3, 1.0 / np.maximum(freq, 1e-3), 0.0) if self.balance else None
        if cw is not None:
            cw = cw / max(float((cw * freq).sum()), 1e-12)
        zt = torch.from_numpy(np.ascontiguousarray(z))
        yt = torch.from_numpy(np.ascontiguousarray(y))
        w_t = torch.from_numpy(cw if cw is not None else np.ones(k))
        mask_rows = torch.from_numpy((np.arange(z.shape[0]) < n_lab).astype(np.float64))
        pos = torch.arange(seq)
        rng = np.random.default_rng([self.seed, n])
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        max_start = z.shape[0] - seq
        for _ in range(steps):
            starts = torch.from_numpy(rng.integers(0, max_start + 1, size=self.batch))
            idx = starts[:, None] + pos[None, :]
            logits = net(zt[idx])
            logp = torch.log_softmax(logits, dim=-1)
            tgt = yt[idx]
            m = mask_rows[idx] * (pos[None, :] >= burn).double()
            per = -(tgt * logp * w_t).sum(-1)
            loss = (per * m).sum() / m.sum().clamp_min(1.0)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
        body = export_weights(net)
        return gru_params(self.inputs, mean, scale, k, hd, self.replay, burn, float(n), body)

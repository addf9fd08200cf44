"""Numeric work runs with BLAS / OpenMP pools at one thread (issue 24): the GMM, k-means
and jump fits, and every task of every sweep executor (serial, local processes)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from engine.regimes.config import DetectorConfig
from engine.sweep.executors import LocalExecutor, SerialExecutor
from tests.regimes.test_fitting import ADAPTER, _three_state


def _max_threads() -> int:
    return max((int(i["num_threads"]) for i in threadpool_info()), default=1)


def _threads_task(shared: Any, item: int) -> tuple[int, int]:
    if item == 0:
        import sklearn.cluster  # noqa: F401  (a pool loaded by a task: limited in later ones)

        return item, 1
    return item, _max_threads()


@pytest.mark.parametrize("executor", [SerialExecutor(progress=False), LocalExecutor(2, False)])
def test_executor_tasks_run_single_threaded(executor: Any) -> None:
    out = executor.map(_threads_task, None, [0, 1, 2, 3, 4, 5], "t")
    assert [i for i, _ in out] == [0, 1, 2, 3, 4, 5]
    assert all(n == 1 for _, n in out), out


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("gmm", "sklearn.mixture.GaussianMixture.fit"),
        ("kmeans", "sklearn.cluster.KMeans.fit"),
        ("jump", "engine.regimes.jump.jump_path_nb"),
    ],
)
def test_cluster_fits_run_single_threaded(kind: str, target: str, monkeypatch: Any) -> None:
    import importlib

    mod_name, _, attr = target.rpartition(".")
    try:
        owner: Any = importlib.import_module(mod_name)
    except ImportError:  # a class method: module.Class.method
        mod_name, _, cls = mod_name.rpartition(".")
        owner = getattr(importlib.import_module(mod_name), cls)
    real = getattr(owner, attr)
    seen: list[int] = []

    def spy(*a: Any, **kw: Any) -> Any:
        seen.append(_max_threads())
        return real(*a, **kw)

    monkeypatch.setattr(owner, attr, spy)
    panel, _, feats = _three_state(700)
    cfg: DetectorConfig = ADAPTER.validate_python({"kind": kind, "market": "EQ"})
    det = cfg.build(panel)  # type: ignore[union-attr]
    det.fit(feats[:600], panel.exog[:600], None)
    assert seen and all(n == 1 for n in seen), seen
    assert np.all(np.isfinite(det.fit(feats[:600], panel.exog[:600], None)))

"""Thread pools limited in the clustering fits: GMM, k-means and jump schedules with BLAS /
OpenMP pools at their default size vs at one thread, in one process.

    python -m benchmarks.threads [--reps 3]

On the default config's data (bundled panel, default features and inputs), each detector
kind's whole fit schedule (``fit_schedule``) is timed with its ``fit_threads(1)`` limit
(as the engine runs it) and with the limit turned into a no-op (the pools as the libraries
size them: one thread per core), best of ``--reps``, alternating; the parameters of the two
are compared bit for bit. Run it on a busy machine too (two busy processes on a 2-core
machine is where issue 24 measured 31.7 s vs 13.1 s for the HMM run).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Iterator

import numpy as np
from threadpoolctl import threadpool_info

import engine.regimes.clustering as clustering
import engine.regimes.jump as jump
from engine.api import load_panel
from engine.config import load_config
from engine.core.backtest import feature_history
from engine.regimes.base import fit_schedule
from engine.regimes.config import DetectorConfig

KINDS = ("gmm", "kmeans", "jump")


@contextlib.contextmanager
def _no_limit(n: int = 1) -> Iterator[None]:
    yield


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    import sklearn.cluster  # noqa: F401  (its OpenMP pool listed below)
    from pydantic import TypeAdapter

    cfg = load_config(None)
    panel = load_panel(cfg)
    feats = feature_history(panel, cfg.features.build().array())
    market = cfg.detector.market if hasattr(cfg.detector, "market") else None
    pools = {i["internal_api"]: i["num_threads"] for i in threadpool_info()}
    print(
        f"load average (1 min) {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
        f"pools at default size: {pools}"
    )
    adapter: TypeAdapter[DetectorConfig] = TypeAdapter(DetectorConfig)  # type: ignore[arg-type]
    for kind in KINDS:
        det = adapter.validate_python({"kind": kind, "market": market}).build(panel)  # type: ignore[union-attr]
        times: dict[str, float] = {"limited": np.inf, "default pools": np.inf}
        params: dict[str, np.ndarray] = {}
        for _ in range(args.reps):
            for label in times:
                patch = label == "default pools"
                saved = (clustering.fit_threads, jump.fit_threads)
                if patch:
                    clustering.fit_threads = jump.fit_threads = _no_limit  # type: ignore[assignment]
                try:
                    t0 = time.perf_counter()
                    params[label], _ = fit_schedule(det, feats, panel.exog)
                    times[label] = min(times[label], time.perf_counter() - t0)
                finally:
                    clustering.fit_threads, jump.fit_threads = saved
        same = params["limited"].tobytes() == params["default pools"].tobytes()
        print(
            f"{kind:>7}: {len(det.fit_bars(feats.shape[0]))} fits | one thread "
            f"{times['limited']:.3f} s | default pools {times['default pools']:.3f} s | "
            f"ratio {times['default pools'] / times['limited']:.2f}x | same parameters: {same}"
        )


if __name__ == "__main__":
    main()

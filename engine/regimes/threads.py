"""BLAS / OpenMP threads limited around the detectors' numeric fit work.

A fit works on matrices of a few thousand rows and a handful of columns: multi-threaded
BLAS (OpenBLAS) or OpenMP (scikit-learn's k-means) buys nothing there and, on a machine
busy with other processes, threads spinning for a core slow a run several times over
(issue 24: 31.7 s with default threads vs 13.1 s with ``OPENBLAS_NUM_THREADS=1``, outputs
byte-identical). :func:`fit_threads` caps them for the duration of a ``with`` block.

``threadpoolctl.threadpool_limits`` scans the loaded libraries on every call (~1.5 ms);
the controller here is built once and rebuilt only when a package that brings its own
thread pool has been imported since (so a library loaded later is still limited).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

_POOL_PACKAGES = ("numpy", "scipy", "sklearn", "torch", "hmmlearn")
_controller: Any = None
_controller_key: tuple[bool, ...] = ()


def _current_controller() -> Any:
    global _controller, _controller_key
    key = tuple(p in sys.modules for p in _POOL_PACKAGES)
    if _controller is None or key != _controller_key:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController()
        _controller_key = key
    return _controller


@contextlib.contextmanager
def fit_threads(n: int = 1) -> Iterator[None]:
    """Limit BLAS and OpenMP pools to ``n`` threads inside the block (restored after)."""
    try:
        ctl = _current_controller()
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        yield
        return
    with ctl.limit(limits=n):
        yield

"""Executors: run ``fn(shared, item)`` over items, serially, on all local cores, or on Dask.

Each task runs with BLAS / OpenMP thread pools limited to one thread (:func:`limited`).

``shared`` is read-only data every task needs (the panel, fits, parameter tables). It is
shipped once per worker, never once per task: local worker processes inherit it by
``fork`` (copy-on-write, no pickling; ``spawn`` elsewhere pickles it once per worker), and
on Dask it is scattered once with ``broadcast=True``. Results come back in item order, so
every executor gives the same table. Walk-forward folds and bootstrap replications can use
the same :meth:`Executor.map`.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any, Protocol, TypeVar

from tqdm import tqdm

S = TypeVar("S")
T = TypeVar("T")
R = TypeVar("R")


class Executor(Protocol):
    """Something that maps a task function over items with shared read-only data."""

    n_workers: int

    def map(
        self, fn: Callable[[S, T], R], shared: S, items: Sequence[T], desc: str = "tasks"
    ) -> list[R]:
        """``[fn(shared, item) for item in items]``, possibly in parallel, in item order."""
        ...


def limited(fn: Callable[[S, T], R], shared: S, item: T) -> R:
    """``fn(shared, item)`` with BLAS / OpenMP pools at one thread (restored after).

    Every executor runs its tasks through this: a sweep's fits and runs work on small
    matrices, and several worker processes each spinning a thread per core slow the
    whole machine (issue 24). The limit is taken per task, not only at worker start, so
    a library loaded by an earlier task (scikit-learn's OpenMP, torch) is limited too; the
    detectors import theirs before taking their own limit."""
    from engine.regimes.threads import fit_threads

    with fit_threads(1):
        return fn(shared, item)


def _progress(total: int, desc: str, show: bool | None) -> tqdm:
    on = sys.stderr.isatty() if show is None else show
    return tqdm(total=total, desc=desc, disable=not on, leave=False)


class SerialExecutor:
    """In this process, one task after the other (tests, debugging, tiny sweeps)."""

    n_workers = 1

    def __init__(self, progress: bool | None = None) -> None:
        self.progress = progress

    def map(
        self, fn: Callable[[S, T], R], shared: S, items: Sequence[T], desc: str = "tasks"
    ) -> list[R]:
        bar = _progress(len(items), desc, self.progress)
        out = []
        for it in items:
            out.append(limited(fn, shared, it))
            bar.update(1)
        bar.close()
        return out


_SHARED: dict[int, Any] = {}


def _init_worker(token: int, shared: Any, blas_threads: int) -> None:
    """Worker start: keep the shared data (inherited by fork) and cap BLAS threads."""
    if shared is not None:
        _SHARED[token] = shared
    _limit_blas(blas_threads)


def _limit_blas(n: int) -> None:
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass


def _call(fn: Callable[[Any, Any], Any], token: int, item: Any) -> Any:
    return limited(fn, _SHARED[token], item)


class LocalExecutor:
    """All local cores: a process pool whose workers hold the shared data once.

    On Linux the pool forks after the shared data is in place, so workers read the parent's
    arrays copy-on-write (no copy, no pickling) and reuse its compiled numba code.
    """

    def __init__(self, workers: int = 0, progress: bool | None = None) -> None:
        self.n_workers = workers if workers > 0 else (os.cpu_count() or 1)
        self.progress = progress

    def map(
        self, fn: Callable[[S, T], R], shared: S, items: Sequence[T], desc: str = "tasks"
    ) -> list[R]:
        if not items:
            return []
        workers = min(self.n_workers, len(items))
        if workers <= 1:
            return SerialExecutor(self.progress).map(fn, shared, items, desc)
        method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
        token = id(shared)
        if method == "fork":
            _SHARED[token] = shared  # inherited by the forked workers
        ctx = mp.get_context(method)
        bar = _progress(len(items), desc, self.progress)
        try:
            with ProcessPoolExecutor(
                max_workers=workers,
                mp_context=ctx,
                initializer=_init_worker,
                initargs=(token, None if method == "fork" else shared, 1),
            ) as pool:
                futs = [pool.submit(_call, fn, token, it) for it in items]
                for f in futs:
                    f.add_done_callback(lambda _f: bar.update(1))
                out = [f.result() for f in futs]
        finally:
            bar.close()
            _SHARED.pop(token, None)
        return out


class DaskExecutor:
    """A Dask distributed cluster (``tcp://HOST:PORT`` or an existing ``Client``).

    The shared data is scattered to every worker once; tasks are submitted in item order
    and gathered in that order, with a progress bar as they complete.
    """

    def __init__(self, scheduler: Any, progress: bool | None = None) -> None:
        from distributed import Client

        self._own = not isinstance(scheduler, Client)
        self.client = Client(scheduler) if self._own else scheduler
        self.progress = progress
        info = self.client.scheduler_info()
        self.n_workers = max(1, sum(int(w.get("nthreads", 1)) for w in info["workers"].values()))

    def map(
        self, fn: Callable[[S, T], R], shared: S, items: Sequence[T], desc: str = "tasks"
    ) -> list[R]:
        from distributed import as_completed

        if not items:
            return []
        shared_f = self.client.scatter(shared, broadcast=True, hash=False)
        futs = [self.client.submit(limited, fn, shared_f, it, pure=False) for it in items]
        bar = _progress(len(items), desc, self.progress)
        for _ in as_completed(futs):
            bar.update(1)
        bar.close()
        out = self.client.gather(futs)
        del shared_f
        return list(out)

    def close(self) -> None:
        if self._own:
            self.client.close()


def make_executor(
    scheduler: str | None = None, workers: int = 0, progress: bool | None = None
) -> Executor:
    """Dask when a scheduler address is given, else local processes (``workers`` = 0: all
    cores, 1: serial)."""
    if scheduler:
        return DaskExecutor(scheduler, progress)
    if workers == 1:
        return SerialExecutor(progress)
    return LocalExecutor(workers, progress)

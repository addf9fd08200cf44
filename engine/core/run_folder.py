"""Run folders written whole or not at all.

:func:`writing` yields a fresh temporary folder beside the run folder; everything a command
writes goes there. On success the files move into the run folder (each ``os.replace`` is
atomic, and SIGINT is held off while they move), a ``manifest.json`` of their sizes comes
with them, and files of an earlier run that this one did not write (a stale
``report.html``) are removed. On any failure or interrupt before that, the temporary folder
is removed and the run folder is left as it was: an interrupted save never destroys the
previous run. Only the files the engine writes are touched, never others in the folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"

RUN_FILES: frozenset[str] = frozenset(
    {
        "equity.csv",
        "fills.csv",
        "weights.csv",
        "regimes.csv",
        "prices.csv",
        "targets.csv",
        "meta.json",
        "metrics.json",
        "config.json",
        "report.html",
        MANIFEST,
    }
)
"""Files a run folder may hold from an earlier run (removed when this run did not write them)."""


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """Hold SIGINT off (delivered after the block) when running in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[Any] = []
    old = signal.signal(signal.SIGINT, lambda *a: got.append(a))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
        if got:
            raise KeyboardInterrupt


@contextlib.contextmanager
def writing(out: str | Path) -> Iterator[Path]:
    """A temporary folder to write a run into; moved into ``out`` when the block ends."""
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.writing-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        sizes = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
        (tmp / MANIFEST).write_text(json.dumps({"files": sizes}, indent=2))
        with _sigint_held():
            for name in sorted(RUN_FILES - set(sizes) - {MANIFEST}):
                (dest / name).unlink(missing_ok=True)
            (dest / MANIFEST).unlink(missing_ok=True)  # a half-moved folder has none
            for name in sizes:
                os.replace(tmp / name, dest / name)
            os.replace(tmp / MANIFEST, dest / MANIFEST)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_manifest(run_dir: Path) -> None:
    """``ValueError`` naming a file whose size is not the one its run wrote (cut short, or
    from another run); folders from before manifests are not checked here."""
    path = run_dir / MANIFEST
    if not path.is_file():
        return
    try:
        sizes = json.loads(path.read_text())["files"]
    except (ValueError, KeyError, TypeError):
        raise ValueError(f"{path}: unreadable manifest; rerun the backtest") from None
    for name, size in sizes.items():
        if name == "report.html":  # derived: `report` writes it again
            continue
        p = run_dir / name
        if not p.is_file():
            raise ValueError(f"{run_dir}: {name} is missing (the run wrote it); rerun the backtest")
        if p.stat().st_size != size:
            raise ValueError(
                f"{run_dir}: {name} is {p.stat().st_size:,} bytes, the run wrote {size:,} "
                "(cut short or from another run); rerun the backtest"
            )

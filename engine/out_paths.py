"""Output paths of the commands, checked before any work (one ``error:`` line, exit 2).

Its own small module so that the applications (``validate``, ``sweep``, ``paper-report``)
check their ``--out`` without importing :mod:`engine.cli` (an import cycle)."""

from __future__ import annotations

from pathlib import Path


class UsageError(ValueError):
    """Bad command-line usage (an unwritable ``--out``, ...): one line, exit code 2."""


def prepare_out_dir(path: str | Path, what: str = "--out") -> Path:
    """Create (or reuse) an output folder *before* any work; one-line error if impossible."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise UsageError(f"{what} {p}: exists and is not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
        probe = p / ".regime-engine-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UsageError(f"{what} {p}: cannot write there ({exc.strerror or exc})") from None
    return p


def prepare_out_file(path: str | Path, what: str = "--out") -> Path:
    """Check an output file's folder is writable and the path is not a folder."""
    p = Path(path)
    if p.is_dir():
        raise UsageError(f"{what} {p}: is a folder, expected a file path")
    prepare_out_dir(p.parent if str(p.parent) else Path("."), what)
    return p


def run_folder(name: str, out: str | None) -> Path:
    """``--out`` or ``runs/NAME`` (names are checked by the config to stay inside runs/)."""
    if out is not None and not out.strip():
        raise UsageError("--out: empty path")
    return prepare_out_dir(out) if out else prepare_out_dir(Path("runs") / name, "run folder")


__all__ = ["UsageError", "prepare_out_dir", "prepare_out_file", "run_folder"]

"""The loop's persistence: the checkpoint and the decision journal, committed in ONE atomic
write.

``state_dir/<strategy>/checkpoint.json`` (:mod:`engine.core.checkpoint`: JSON, schema,
checksum) holds the loop's state *and* the decision lines recorded since the previous commit
(``journal.tail``) with the journal's committed length before them (``journal.bytes``).
``decisions.jsonl`` is the readable copy: after the checkpoint is replaced (the one atomic
write), the tail is appended to it. Loading a checkpoint first cuts ``decisions.jsonl`` back
to ``journal.bytes`` and appends the tail again, so whatever moment a kill strikes (between
a decision and its commit, during the append) the journal holds every committed decision
once and nothing else: a decision not committed is redone, with the same client order ids.

A live decision's line (``"v": 2``) also keeps what ``regime-engine paper-report``
(:mod:`engine.live.paper_report`) replays and compares: ``prices`` (the bar's closes),
``scale`` (broker shares per engine share), ``book`` (the broker's ``cash``, ``equity`` and
``positions`` the orders were planned on), ``orders`` (each planned order: ``symbol``,
signed ``qty``, ``client_order_id``, ``leg``, ``status``: submitted, known, refused,
rejected or skipped) and, on each process's first decision, ``start`` (the run's config,
its folder and the strategy). The broker's fills (``ts``, ``order_id``, ``client_order_id``,
``symbol``, ``side``, ``qty``, ``price``, ``commission``) ride on the next committed line
(``fills``). Lines without them (version 1) are still read by the loop; paper-report refuses
them with one line.

The checkpoint is signed (HMAC-SHA256) with a per-install secret, ``checkpoint.key`` beside
it: 32 random bytes (hex), created on the first run with mode 0600 and refused when anyone
else may read or write it or it belongs to another user. A checkpoint without its key, or
not signed with it, is refused (one line, exit 2): a file written by anyone else cannot
reach the compiled step. What the checkpoint holds is then checked against the run
(:func:`engine.live.trader.check_checkpoint`) before any compiled code sees it.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
import tempfile
from pathlib import Path
from typing import Any

import structlog

from engine.config import ConfigError
from engine.core import checkpoint as ckpt
from engine.core.checkpoint import CheckpointError

log = structlog.get_logger("regime-engine.paper")


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder + replace)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Journal:
    """Checkpoint + decisions of one strategy in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir)
        self.checkpoint_path = self.dir / "checkpoint.json"
        self.decisions_path = self.dir / "decisions.jsonl"
        self.key_path = self.dir / "checkpoint.key"
        self.pending: list[dict[str, Any]] = []
        self._key: bytes | None = None

    def key(self, create: bool) -> bytes:
        """The install's secret (``checkpoint.key``, 0600), created when ``create``."""
        if self._key is not None:
            return self._key
        path = self.key_path
        if not path.exists():
            if not create:
                raise CheckpointError(
                    f"{self.checkpoint_path}: no {path.name} beside it (written by another "
                    "install?); refused: remove the checkpoint to start afresh"
                )
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(32))
                f.flush()
                os.fsync(f.fileno())
        st = path.stat()
        if stat.S_IMODE(st.st_mode) & 0o077 or st.st_uid != os.getuid():
            raise CheckpointError(
                f"{path}: the checkpoint key must be the owner's alone (mode 0600, owned by "
                f"uid {os.getuid()}); it is {stat.S_IMODE(st.st_mode):o}, uid {st.st_uid}"
            )
        try:
            self._key = bytes.fromhex(path.read_text().strip())
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{path}: unreadable checkpoint key ({exc})") from None
        if len(self._key) < 16:
            raise CheckpointError(f"{path}: checkpoint key too short")
        return self._key

    def record(self, line: dict[str, Any]) -> None:
        """One decision line, written at the next :meth:`commit`."""
        self.pending.append(line)

    def load(self, strategy: str, symbols: tuple[str, ...]) -> dict[str, Any] | None:
        """The last committed state of ``strategy`` on ``symbols`` (``None``: none yet); the
        journal is made to match it. A checkpoint of another run is a ConfigError."""
        if not self.checkpoint_path.exists():
            if self.decisions_path.exists() and self.decisions_path.stat().st_size:
                aside = self.decisions_path.with_suffix(".uncommitted.jsonl")
                os.replace(self.decisions_path, aside)  # lines of a run that never committed
                log.warning("journal.uncommitted", moved_to=str(aside))
            return None
        # CheckpointError: one line naming the file (unsigned, edited, unreadable)
        state = ckpt.load(self.checkpoint_path, self.key(create=False))
        symbols_ck = state.get("symbols")
        if (
            state.get("strategy") != strategy
            or not isinstance(symbols_ck, list)
            or tuple(symbols_ck) != symbols
        ):
            raise ConfigError(
                f"{self.checkpoint_path}: checkpoint is for another strategy/symbols; "
                "use another paper.state_dir"
            )
        jr = state.get("journal")
        if not isinstance(jr, dict) or set(jr) != {"bytes", "tail"}:
            raise CheckpointError(f"{self.checkpoint_path}: bad journal field")
        size, tail = jr["bytes"], jr["tail"]
        if (
            not isinstance(size, int)
            or isinstance(size, bool)
            or size < 0
            or not isinstance(tail, list)
            or not all(isinstance(x, dict) for x in tail)
        ):
            raise CheckpointError(f"{self.checkpoint_path}: bad journal field")
        self._materialise(size, tail)
        return state

    def commit(self, state: dict[str, Any]) -> None:
        """Checkpoint ``state`` with the pending lines (one atomic write), then append them."""
        size = self.decisions_path.stat().st_size if self.decisions_path.exists() else 0
        tail, self.pending = self.pending, []
        doc = {**state, "journal": {"bytes": size, "tail": tail}}
        atomic_write(self.checkpoint_path, ckpt.dumps(doc, self.key(create=True)))
        self._append(tail)

    def _materialise(self, size: int, tail: list[dict[str, Any]]) -> None:
        """Cut the journal to ``size`` bytes and append ``tail`` (idempotent)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        with self.decisions_path.open("ab") as f:
            have = f.tell()
            if have < size:
                log.warning("journal.short", have=have, committed=size)
            f.truncate(min(size, have))
        self._append(tail)

    def _append(self, lines: list[dict[str, Any]]) -> None:
        if not lines:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        with self.decisions_path.open("ab") as f:
            f.write("".join(json.dumps(x) + "\n" for x in lines).encode())
            f.flush()
            os.fsync(f.fileno())


__all__ = ["Journal", "atomic_write"]

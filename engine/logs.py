"""Structured logs (structlog): a readable console by default, JSON lines with a flag.

Logs go to stderr so the CLI's tables on stdout stay clean. Secrets never reach a log:
processors drop any key that looks like a credential.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

SECRET_MARKERS = ("secret", "password", "api_key", "key_id", "token")


def _drop_secrets(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if any(m in key.lower() for m in SECRET_MARKERS):
            event[key] = "***"
    return event


class _Stderr:
    """Writes to whatever ``sys.stderr`` is at the time (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def configure(json: bool = False, level: str = "INFO") -> None:
    """Configure structlog for the process (idempotent)."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _drop_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


COMPILE_NOTICE = "compiling kernels (once per machine, ~30 s; later runs start at once)..."
_compile_listener: Any = None


def announce_cold_cache(stream: Any = None) -> None:
    """Print :data:`COMPILE_NOTICE` once on stderr when numba first has to compile.

    Listens to numba's ``numba:compile`` event, which fires only on a cache miss (a kernel
    loaded from the on-disk cache does not trigger it), so warm runs stay silent.
    """
    global _compile_listener
    if _compile_listener is not None:
        return
    from numba.core import event

    class _Notice(event.Listener):  # type: ignore[misc]
        said = False

        def on_start(self, ev: Any) -> None:
            if not self.said:
                self.said = True
                out = stream if stream is not None else sys.stderr
                print(COMPILE_NOTICE, file=out, flush=True)

        def on_end(self, ev: Any) -> None:
            pass

    _compile_listener = _Notice()
    event.register("numba:compile", _compile_listener)

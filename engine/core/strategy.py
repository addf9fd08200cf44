"""Moved to :mod:`engine.plugins.strategy` (this path re-exports it)."""

from engine.plugins.strategy import (
    CompiledStrategy,
    Context,
    PythonStrategy,
    Targets,
    targets_array,
)

__all__ = ["CompiledStrategy", "Context", "PythonStrategy", "Targets", "targets_array"]

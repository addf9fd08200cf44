"""Moved to :mod:`engine.ground.bars` (this path re-exports it)."""

from engine.ground.bars import FIELDS, BarPanel, DataError

__all__ = ["FIELDS", "BarPanel", "DataError"]

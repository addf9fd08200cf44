"""Moved to :mod:`engine.ground.layout` (this path re-exports it)."""

from engine.ground.layout import *  # noqa: F403

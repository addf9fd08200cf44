"""``ast.parse`` of a source file for the tests that read the code's structure.

CPython 3.11.7 (these machines) tracks the AST validator's recursion depth in global
state, so a parse that overlaps another thread's compile (an import in a thread a paper
test left winding down) can fail with ``SystemError: AST constructor recursion depth
mismatch`` (CPython gh-106905, fixed in 3.11.8). That error says nothing about the file:
the parse is repeated, and a file that does not parse still fails.
"""

from __future__ import annotations

import ast
from pathlib import Path


def parse_file(path: Path) -> ast.Module:
    """The module's AST (the parse repeated after CPython's gh-106905 race)."""
    text = path.read_text()
    for _ in range(4):
        try:
            return ast.parse(text)
        except SystemError as exc:
            if "recursion depth mismatch" not in str(exc):
                raise
    return ast.parse(text)

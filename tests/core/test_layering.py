"""Imports run one way: ground <- plugins <- features, regimes <- core <- the rest.

``engine.ground`` (layouts, bars, settings) imports no other part of the engine;
``engine.plugins`` (the protocols users implement) only the ground; ``engine.features``
and ``engine.regimes`` never the core, which runs them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = {
    "ground": {"ground"},
    "plugins": {"ground", "plugins"},
    "features": {"ground", "plugins", "features"},
    "regimes": {"ground", "plugins", "features", "regimes"},
    "core": {"ground", "plugins", "features", "regimes", "core"},
}


def engine_imports(path: Path) -> set[str]:
    """Second-level engine packages imported by a module (``engine.X``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        mods = []
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods = [node.module]
            if node.module == "engine":
                mods = [f"engine.{a.name}" for a in node.names]
        for m in mods:
            parts = m.split(".")
            if parts[0] == "engine" and len(parts) > 1:
                out.add(parts[1].removesuffix(".py"))
    return out


@pytest.mark.parametrize("layer", list(ALLOWED))
def test_layer_imports_only_layers_below(layer: str) -> None:
    files = list((ROOT / "engine" / layer).rglob("*.py"))
    assert files
    for path in files:
        bad = engine_imports(path) - ALLOWED[layer]
        assert not bad, f"{path.relative_to(ROOT)} imports engine.{sorted(bad)}"


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("from engine.core.step_nb import step_nb\nimport engine.api\n")
    assert engine_imports(f) == {"core", "api"}

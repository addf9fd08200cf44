"""Imports run one way: ground <- plugins <- features, regimes <- core <- the rest.

``engine.ground`` (layouts, bars, settings) imports no other part of the engine;
``engine.plugins`` (the protocols users implement) only the ground; ``engine.features``
and ``engine.regimes`` never the core, which runs them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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


def top_imports(path: Path) -> set[str]:
    """Top-level packages a module imports anywhere in it (lazy imports included)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0])
    return out


def test_only_the_composition_root_imports_plugins_and_data() -> None:
    """Inside ``engine``, only ``engine/assemble.py`` imports ``data_feeds`` and
    ``strategies``: every command builds its run there (one way, no drift)."""
    for path in (ROOT / "engine").rglob("*.py"):
        if path.name == "assemble.py" and path.parent.name == "engine":
            continue
        bad = top_imports(path) & {"data_feeds", "strategies", "brokers"}
        if path.name == "cli.py" and path.parent.name == "engine":
            bad -= {"brokers"}  # the CLI picks the venue
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_kernel_files_import_only_numpy_numba_and_kernels() -> None:
    """``*_nb.py`` files import only numpy, numba, ``math``/``typing``/``collections``, other
    kernel files and the ground layouts (lazy imports included): no Python-level engine
    module and no other library can reach into a kernel."""
    for path in [*(ROOT / "engine").rglob("*_nb.py"), *(ROOT / "strategies").rglob("*_nb.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module]
            for m in mods:
                ok = (
                    m.split(".")[0] in ("numpy", "numba", "math", "__future__", "typing")
                    or m in ("collections",)  # namedtuple for the kernels' records
                    or m.endswith("_nb")
                    or m.startswith("engine.ground")
                )
                assert ok, f"{path.relative_to(ROOT)} imports {m}"

"""The import contract of the whole tree, lazy and TYPE_CHECKING imports included.

Imports run one way: ground <- plugins <- features, regimes <- core <- the rest.

``engine.ground`` (layouts, bars, settings) imports no other part of the engine;
``engine.plugins`` (the protocols users implement) only the ground; ``engine.features``
and ``engine.regimes`` never the core, which runs them."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from tests.source_ast import parse_file

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
    return {m.split(".")[1] for m in modules(path) if m.startswith("engine.")}


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
    return {m.split(".")[0] for m in modules(path)}


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
        for node in ast.walk(parse_file(path)):
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


# ---------------------------------------------------------------- the live loop and venues
TREES = ("engine", "brokers", "data_feeds", "strategies")


def modules(path: Path) -> set[str]:
    """Every module a file imports (lazy and TYPE_CHECKING imports included)."""
    out: set[str] = set()
    for node in ast.walk(parse_file(path)):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            if node.module == "engine":  # from engine import fmt -> engine.fmt
                out |= {f"engine.{a.name}" for a in node.names}
    return out


def files(*parts: str) -> list[Path]:
    return sorted(ROOT.joinpath(*parts).rglob("*.py"))


def test_the_live_loop_imports_no_venue() -> None:
    found = files("engine", "live")
    assert len(found) >= 10
    for path in found:
        bad = {m for m in modules(path) if m.split(".")[0] in ("brokers", "data_feeds", "alpaca")}
        bad |= {m for m in modules(path) if m.split(".")[0] == "strategies"}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_only_the_alpaca_venue_imports_alpaca() -> None:
    for tree in TREES:
        for path in files(tree):
            if ROOT / "brokers" / "alpaca" in path.parents:
                continue
            bad = {m for m in modules(path) if m.split(".")[0] == "alpaca"}
            assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_history_sources_are_reached_by_name() -> None:
    """``[data] source = "alpaca"``: the composition root reaches a venue's history client
    only through the registry ``brokers.history`` (by name, lazily); the data layer (the
    Parquet cache) imports no venue; the registry itself no SDK."""
    root = {m for m in modules(ROOT / "engine" / "assemble.py") if m.split(".")[0] == "brokers"}
    assert root <= {"brokers.history"}, root
    for path in files("data_feeds"):
        bad = {m for m in modules(path) if m.split(".")[0] in ("brokers", "alpaca")}
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"
    reg = modules(ROOT / "brokers" / "history.py")
    assert not {m for m in reg if m.split(".")[0] in ("alpaca", "data_feeds")}, reg


def test_a_venue_imports_no_other_venue() -> None:
    venues = ("brokers.alpaca", "brokers.local_exchange")
    for venue in venues:
        for path in files(*venue.split(".")):
            for m in modules(path):
                other = m.startswith("brokers.") and not m.startswith(venue)
                assert not other, f"{path.relative_to(ROOT)} imports {m}"
                assert not m.startswith(("data_feeds", "strategies")), path


def test_no_slot_constants_outside_the_kernel() -> None:
    slot = re.compile(r"\bL\.[PG]_[A-Z]")
    for tree in TREES:
        for path in files(tree):
            rel = path.relative_to(ROOT)
            if rel.parts[:2] in (("engine", "core"), ("engine", "ground")) or path.stem.endswith(
                "_nb"
            ):
                continue
            assert not slot.search(path.read_text()), f"{rel} reads a state slot"


# ---------------------------------------------------------------- no module cycles
def module_graph() -> dict[str, set[str]]:
    """Project module -> the project modules it imports (a package's own parents aside)."""
    paths = {}
    for tree in TREES:
        for p in files(tree):
            parts = list(p.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            paths[".".join(parts)] = p

    def resolve(name: str) -> str | None:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for mod, path in paths.items():
        out = set()
        for node in ast.walk(parse_file(path)):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for n in names:
                r = resolve(n)
                if r and r != mod and not mod.startswith(r + "."):
                    out.add(r)
        graph[mod] = out
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    assert cycles(module_graph()) == []


def test_the_cycle_finder_sees_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]

"""The live loop's import contract (lazy imports included): ``engine/live`` imports the engine
and never a venue; only ``brokers/alpaca`` imports alpaca-py; a venue never imports another;
nothing outside the kernel reads the state's slot constants."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TREES = ("engine", "brokers", "data_feeds", "strategies")


def modules(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
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

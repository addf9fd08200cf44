"""The public façade: every name it lists resolves, lazily (``import engine`` alone does not
import the API, numba's kernels or the data feeds)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import engine


@pytest.mark.parametrize("name", engine.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(engine, name) is not None


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        engine.nope  # noqa: B018


def test_import_engine_is_light() -> None:
    heavy = "('engine.api', 'numba', 'data_feeds')"
    code = f"import sys, engine; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_engine_assemble_is_callable_after_the_submodule_is_imported() -> None:
    """Importing ``engine.api`` imports the submodule ``engine.assemble``, which then shadows
    the façade's function of that name; ``engine.assemble(cfg)`` must still build the run."""
    code = (
        "import engine.api, engine\n"
        "run = engine.assemble(engine.load_config('configs/default.toml'))\n"
        "print(type(run).__name__, run is not None)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "Run True"

"""Checkpoints: JSON with schema + checksum; a crafted file cannot run code, a corrupted
one is a one-line error; the paper loop refuses both."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.core import checkpoint as ckpt

ROOT = Path(__file__).resolve().parents[2]


class _Evil:
    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def test_round_trip_is_exact() -> None:
    rng = np.random.default_rng(0)
    data = {
        "a": rng.normal(size=(3, 4)),
        "i": np.arange(5, dtype=np.int64),
        "b": np.array([True, False]),
        "nested": [{"x": np.array([np.nan, np.inf, -0.0])}, None, 3, 2.5, "s"],
    }
    back = ckpt.loads(ckpt.dumps(data))
    np.testing.assert_array_equal(back["a"], data["a"])
    assert back["a"].dtype == np.float64 and back["a"].flags.writeable
    np.testing.assert_array_equal(back["i"], data["i"])
    assert back["i"].dtype == np.int64
    np.testing.assert_array_equal(back["nested"][0]["x"], data["nested"][0]["x"])
    assert back["nested"][1:] == [None, 3, 2.5, "s"]


def test_driver_state_round_trips(panel) -> None:  # type: ignore[no-untyped-def]
    """A streaming driver resumed from a JSON checkpoint continues bit-identically."""
    from brokers.cli import paper_node
    from engine.config import parse_config
    from tests.paper.conftest import BASE

    a = paper_node(parse_config(BASE)).trader.driver
    b = paper_node(parse_config(BASE)).trader.driver
    p = panel
    for t in range(120):
        a.on_bar(int(p.timestamps_ns[t]), p.open[t], p.close[t], p.volume[t], p.exog[t])
    b_state = ckpt.loads(ckpt.dumps(a.checkpoint()))
    b.resume(b_state)
    for t in range(120, 200):
        oa = a.on_bar(int(p.timestamps_ns[t]), p.open[t], p.close[t], p.volume[t], p.exog[t])
        ob = b.on_bar(int(p.timestamps_ns[t]), p.open[t], p.close[t], p.volume[t], p.exog[t])
        np.testing.assert_array_equal(oa.orders, ob.orders)
        assert oa.equity == ob.equity


def test_crafted_pickle_cannot_run_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = marker  # type: ignore[attr-defined]
    path = tmp_path / "checkpoint.json"
    path.write_bytes(pickle.dumps({"driver": evil}))
    with pytest.raises(ckpt.CheckpointError, match="not a JSON checkpoint") as err:
        ckpt.load(path)
    assert not marker.exists()
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_crafted_json_with_valid_checksum_stays_data(tmp_path: Path) -> None:
    """Whatever a JSON checkpoint says, loading it only builds dicts/lists/arrays."""
    payload = {"__reduce__": "os.system", "x": {"__ndarray__": "object", "shape": [1], "data": ""}}
    doc = ckpt.dumps({"ok": 1})
    d = json.loads(doc)
    d["payload"] = payload
    d["sha256"] = __import__("hashlib").sha256(ckpt._canonical(payload)).hexdigest()
    with pytest.raises(ckpt.CheckpointError, match="unsupported array dtype"):
        ckpt.loads(json.dumps(d).encode(), "c.json")


@pytest.mark.parametrize(
    "mangle, message",
    [
        (lambda b: b[: len(b) // 2], "not a JSON checkpoint"),
        (lambda b: b.replace(b'"schema":1', b'"schema":9'), "schema 9"),
        (lambda b: b.replace(b"AAAA", b"AAAB", 1), "checksum mismatch"),
        (lambda b: b"{}", "not a regime-engine checkpoint"),
    ],
)
def test_corrupted_checkpoint_is_one_line(mangle, message) -> None:  # type: ignore[no-untyped-def]
    good = ckpt.dumps({"a": np.zeros(10)})
    with pytest.raises(ckpt.CheckpointError, match=message) as err:
        ckpt.loads(mangle(good), "state/checkpoint.json")
    assert "\n" not in str(err.value) and "state/checkpoint.json" in str(err.value)


def test_paper_cli_refuses_a_crafted_checkpoint(tmp_path: Path) -> None:
    """`regime-engine paper` with a pickle in place of its checkpoint: one line, exit 2,
    no code run (the checkpoint is read before any broker is contacted)."""
    from tests.paper.conftest import BASE

    marker = tmp_path / "pwned"
    evil = _Evil()
    evil.marker = marker  # type: ignore[attr-defined]
    state = tmp_path / "state"
    (state / "regime_aware").mkdir(parents=True)
    (state / "regime_aware/checkpoint.json").write_bytes(pickle.dumps(evil))
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        toml_of({**BASE, "paper": {"state_dir": str(state), "url": "http://127.0.0.1:9"}})
    )
    r = run_paper_cli(cfg)
    assert r.returncode == 2, r.stderr
    assert not marker.exists()
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert lines[-1].startswith("error: ") and "checkpoint" in lines[-1]
    assert "Traceback" not in r.stderr


def run_paper_cli(cfg: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``regime-engine paper CFG`` in a subprocess (this checkout on PYTHONPATH)."""
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "paper", str(cfg)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def toml_of(d: dict, prefix: str = "") -> str:
    """A tiny TOML writer for test configs (tables, arrays of tables, inline maps)."""

    def val(v):  # type: ignore[no-untyped-def]
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {val(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)

    lines = [
        f"{k} = {val(v)}"
        for k, v in d.items()
        if not isinstance(v, dict) and not (isinstance(v, list) and v and isinstance(v[0], dict))
    ]
    out = "\n".join(lines) + "\n"
    for k, v in d.items():
        if isinstance(v, dict):
            out += f"\n[{prefix}{k}]\n" + toml_of(v, f"{prefix}{k}.")
        elif isinstance(v, list) and v and isinstance(v[0], dict):
            for x in v:
                out += (
                    f"\n[[{prefix}{k}]]\n"
                    + "\n".join(f"{a} = {val(b)}" for a, b in x.items())
                    + "\n"
                )
    return out

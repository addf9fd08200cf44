"""Checkpoints that cannot hurt: signed with a per-install key (``checkpoint.key``, 0600,
created on the first run) and checked field by field against the run before any compiled
code sees them. Whatever a checkpoint holds, ``paper`` ends with exit 2 and one line: never
a crash, never an order (a hypothesis fuzz over its fields, and the crafted wrong-shape
state array that used to read and write out of bounds, submit orders and segfault)."""

from __future__ import annotations

import argparse
import copy
import os
import shutil
import stat
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as hs

from brokers.local_exchange import build_exchange
from brokers.local_exchange.settings import ExchangeSettings
from engine.config import parse_config
from engine.core import checkpoint as ckpt
from engine.live.cli import build_node, cmd_paper
from engine.live.testing import fake_venue
from tests.paper.conftest import BASE
from tests.paper.test_checkpoint import run_paper_cli, toml_of

HISTORY = 320
STRATEGY = "regime_aware"


@pytest.fixture(scope="module")
def saved(panel: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state folder after one live decision on the in-memory venue (checkpoint + key)."""
    state = tmp_path_factory.mktemp("saved")
    v = fake_venue(panel, HISTORY)
    n = build_node(parse_config({**BASE, "paper": {"state_dir": str(state)}}), None, lambda r: v)
    n.resume()
    n.connect()
    n.poll()
    return state


def key_of(state: Path) -> bytes:
    return bytes.fromhex((state / STRATEGY / "checkpoint.key").read_text())


def payload(state: Path) -> dict[str, Any]:
    return ckpt.load(state / STRATEGY / "checkpoint.json", key_of(state))


def write(state: Path, doc: dict[str, Any], key: bytes | None) -> None:
    (state / STRATEGY / "checkpoint.json").write_bytes(ckpt.dumps(doc, key))


def run_in_process(panel: Any, state: Path, capsys: Any) -> tuple[int, list[str], Any]:
    """``paper`` (the CLI's handler) on a fresh in-memory venue: (rc, stderr lines, broker)."""
    import structlog

    structlog.reset_defaults()  # log lines on stdout whatever an earlier test configured
    v = fake_venue(panel, HISTORY + 5)
    cfg = state / "c.toml"
    cfg.write_text(toml_of({**BASE, "paper": {"state_dir": str(state), "max_bars": 2}}))
    capsys.readouterr()
    rc = cmd_paper(argparse.Namespace(config=str(cfg)), lambda req: v)
    return rc, capsys.readouterr().err.strip().splitlines(), v.broker


def test_key_is_created_0600_on_the_first_run(saved: Path) -> None:
    key = saved / STRATEGY / "checkpoint.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(key_of(saved)) == 32
    doc = __import__("json").loads((saved / STRATEGY / "checkpoint.json").read_bytes())
    assert len(doc["hmac"]) == 64


def test_resume_with_the_key_works(saved: Path, tmp_path: Path, panel, capsys) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "s"
    shutil.copytree(saved, state)
    rc, err, _ = run_in_process(panel, state, capsys)
    assert rc == 0, err


@pytest.mark.parametrize("how", ["sha256 only", "another key", "key missing", "key readable"])
def test_a_file_written_by_anyone_else_is_refused(saved, tmp_path, panel, capsys, how) -> None:  # type: ignore[no-untyped-def]
    state = tmp_path / "s"
    shutil.copytree(saved, state)
    doc = payload(state)
    if how == "sha256 only":  # re-hashed by someone without the key
        write(state, doc, None)
    elif how == "another key":
        write(state, doc, os.urandom(32))
    elif how == "key missing":
        (state / STRATEGY / "checkpoint.key").unlink()
    else:
        os.chmod(state / STRATEGY / "checkpoint.key", 0o644)
    rc, err, broker = run_in_process(panel, state, capsys)
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: "), err
    assert broker.submissions == []


# ---------------------------------------------------------------------- the fuzz
ARRAYS = [
    ("driver", "state", "port"),
    ("driver", "state", "fstate"),
    ("driver", "state", "dstate"),
    ("driver", "state", "rstate"),
    ("driver", "state", "sstate"),
    ("driver", "state", "post"),
    ("driver", "state", "work"),
    ("driver", "fit_bar"),
    ("driver", "feat_hist"),
    ("driver", "exog_hist"),
]
SCALARS = [
    ("bars",),
    ("last_ts",),
    ("regime",),
    ("trade_from",),
    ("k_eq",),
    ("driver", "t"),
    ("driver", "last_key"),
    ("driver", "last_ts"),
    ("driver", "fit_rows"),
    ("driver",),
    ("driver", "state"),
    ("journal",),
    ("symbols",),
    ("fingerprint",),
]


def same(a: Any, b: Any) -> bool:
    """Structural equality of checkpoint values (lists and dicts of arrays included)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and bool(np.array_equal(a, b))
        )
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and bool(a == b)


def still_valid(path: tuple[str, ...], value: Any, current: Any) -> bool:
    """A replacement that is a legitimate state (the same value, another period key, account
    scale or start time): not a broken checkpoint, so not fuzzed."""
    if same(value, current):
        return True
    if path == ("driver", "last_key"):
        return value is None or (isinstance(value, int) and not isinstance(value, bool))
    if path == ("k_eq",):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return value is None or (number and 0 < value < 1e12)
    if path == ("trade_from",) and isinstance(value, str):
        try:
            datetime.fromisoformat(value)
            return True
        except ValueError:
            return False
    return False


def get(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


def put(doc: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    get(doc, path[:-1])[path[-1]] = value


def broken_array(a: np.ndarray, how: int, rng: np.random.Generator) -> np.ndarray:
    """An array this run's step must never see: wrong shape, dtype, or non-finite."""
    if how == 0:  # one value more
        return np.concatenate([a.ravel(), [1.0]]).astype(a.dtype)
    if how == 1:  # one value less (or an empty one)
        return a.ravel()[:-1].copy() if a.size else np.zeros(3, dtype=a.dtype)
    if how == 2:  # one dimension more
        return a.reshape((1, *a.shape))
    if how == 3:  # another dtype
        return (a != 0) if a.dtype != np.bool_ else a.astype(np.float64)[None]
    if how == 4 and a.dtype == np.float64 and a.size:  # a NaN / inf somewhere
        b = a.copy()
        b.flat[int(rng.integers(a.size))] = [np.nan, np.inf, -np.inf][int(rng.integers(3))]
        return b
    return np.zeros((len(a) + 7, 5), dtype=np.float64)  # wildly wrong


JUNK = hs.one_of(
    hs.none(),
    hs.booleans(),
    hs.integers(-(2**63), 2**63 - 1),
    hs.floats(allow_nan=True, allow_infinity=True),
    hs.text(max_size=8),
    hs.lists(hs.integers(-5, 5), max_size=4),
    hs.dictionaries(hs.text(max_size=3), hs.integers(), max_size=2),
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    target=hs.one_of(
        hs.tuples(hs.just("array"), hs.sampled_from(ARRAYS), hs.integers(0, 5)),
        hs.tuples(
            hs.just("slot"),
            hs.sampled_from(["raw", "smoothed", "cand", "fit"]),
            hs.sampled_from([3.0, 7.0, -2.0, 0.5, 1e9, -1e9]),
        ),
        hs.tuples(hs.just("row"), hs.integers(0, 7), hs.sampled_from([-1.0, 4.0, 99.0, 0.5])),
        hs.tuples(hs.just("scalar"), hs.sampled_from(SCALARS), JUNK),
    ),
    signed=hs.booleans(),
    seed=hs.integers(0, 2**32 - 1),
)
@example(target=("scalar", ("k_eq",), True), signed=True, seed=0)  # JSON true is no scale
@example(target=("scalar", ("driver", "fit_rows"), [0]), signed=True, seed=0)  # a list of arrays
def test_fuzzed_checkpoint_is_exit_2_one_line_no_order(  # type: ignore[no-untyped-def]
    saved, tmp_path, panel, capsys, target, signed, seed
) -> None:
    """A checkpoint with one field broken, signed with this install's key (the guard must
    refuse it) or not (the HMAC must): exit 2, one line, no order, no crash."""
    state = tmp_path / f"s{seed}"
    shutil.rmtree(state, ignore_errors=True)
    shutil.copytree(saved, state)
    doc = copy.deepcopy(payload(state))
    kind, what, how = target
    rng = np.random.default_rng(seed)
    if kind == "array":
        put(doc, what, broken_array(get(doc, what), how, rng))
    elif kind == "slot":
        slot = {"raw": 0, "smoothed": 1, "cand": 5, "fit": 4}[what]
        doc["driver"]["state"]["rstate"][slot] = how
    elif kind == "row":
        row = doc["driver"]["fit_rows"][0]
        row[what] = how if row[what] != how else how + 1
    else:
        assume(not still_valid(what, how, get(doc, what)))
        put(doc, what, how)
    write(state, doc, key_of(state) if signed else None)
    rc, err, broker = run_in_process(panel, state, capsys)
    assert rc == 2, (target, err)
    assert len(err) == 1 and err[0].startswith("error: ") and "unexpected" not in err[0], err
    assert broker.submissions == []
    shutil.rmtree(state, ignore_errors=True)


# ---------------------------------------------------------------------- the crafted case
def test_crafted_wrong_shape_state_is_exit_2_no_order_no_crash(
    saved: Path, tmp_path, panel
) -> None:  # type: ignore[no-untyped-def]
    """The issue's case, through the real command against the local exchange: a valid
    checksum *and* a valid HMAC (the install's own key), a state array of the wrong shape:
    exit 2, one line naming the field, no order at the exchange, no segfault."""
    state = tmp_path / "s"
    shutil.copytree(saved, state)
    doc = payload(state)
    doc["driver"]["state"]["post"] = np.full(2, 0.5)  # 2 regimes where the run has 3
    doc["driver"]["state"]["port"] = np.zeros(3)  # a portfolio of 3 slots, not 12
    write(state, doc, key_of(state))
    s = ExchangeSettings(port=0, ws_port=0, mode="stepped", history_bars=HISTORY + 5)
    with build_exchange(parse_config(BASE), panel, s) as ex:
        cfg = tmp_path / "c.toml"
        paper = {"url": ex.url, "stream_url": ex.ws_url, "state_dir": str(state), "max_bars": 2}
        cfg.write_text(toml_of({**BASE, "paper": paper}))
        r = run_paper_cli(cfg)
        assert ex.submissions == [] and ex.rest_calls == 0  # refused before any contact
    assert r.returncode == 2, (r.returncode, r.stderr[-500:])
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "driver.state." in err[0] and "shape" in err[0], err
    assert "Traceback" not in r.stderr + r.stdout

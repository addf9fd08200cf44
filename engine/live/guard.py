"""A checkpoint's contents checked against the run before any compiled code sees them.

The compiled step trusts its arrays: a state array of the wrong length, a regime index past
the posterior, a detector row whose columns point outside the features would be read and
written out of bounds. :func:`check_checkpoint` compares what a checkpoint holds with a
fresh driver of the same run (its own checkpoint is the reference: every array's dtype and
shape, the history's width) and checks the values the kernels use as indices or counts
(regime slots, the detector's parameter rows, fit bars) and that every float is finite.
Anything else is a :class:`~engine.core.checkpoint.CheckpointError` naming the field.
The HMAC of :mod:`engine.live.journal` keeps out files written by anyone else; this keeps
out what this install's code would never have written for this run (another config, a bug).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np

from engine.config import ConfigError
from engine.core.checkpoint import CheckpointError
from engine.core.state import check_state_slots, smoothed_regime
from engine.ground import layout as L

MAX_ROWS = 1 << 22  # bars of feature history, parameter rows, fit bars
DX_KINDS = frozenset(
    {L.DET_HMM, L.DET_GMM, L.DET_KMEANS, L.DET_JUMP, L.DET_LOGIT, L.DET_BOCPD, L.DET_GRU}
)


# the parameter-row kind each built-in detector writes (engine/regimes/*.py), by class name
KIND_OF = {
    "GaussianHMMDetector": L.DET_HMM,
    "GMMDetector": L.DET_GMM,
    "KMeansDetector": L.DET_KMEANS,
    "JumpModelDetector": L.DET_JUMP,
    "SupervisedDetector": L.DET_LOGIT,
    "BOCPDDetector": L.DET_BOCPD,
    "GRUDetector": L.DET_GRU,
    "RuleDetector": L.DET_RULE,
    "NoDetector": L.DET_NONE,
    "ExternalPosterior": L.DET_EXTERNAL,
    "UserFilterDetector": L.DET_USER,
}


def _fail(field: str, why: str) -> CheckpointError:
    return CheckpointError(f"checkpoint field {field}: {why}")


def _int(x: Any, field: str, lo: int | None = None, hi: int | None = None) -> int:
    if isinstance(x, bool) or not isinstance(x, int):
        raise _fail(field, f"expected an integer, found {type(x).__name__}")
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise _fail(field, f"{x} out of range [{lo}, {hi}]")
    return x


def _opt_int(x: Any, field: str, lo: int | None = None, hi: int | None = None) -> int | None:
    return None if x is None else _int(x, field, lo, hi)


def _array(x: Any, field: str, dtype: str, ndim: int) -> np.ndarray:
    if not isinstance(x, np.ndarray):
        raise _fail(field, f"expected an array, found {type(x).__name__}")
    if x.dtype != np.dtype(dtype) or x.ndim != ndim:
        raise _fail(field, f"expected {ndim}-d {dtype}, found {x.ndim}-d {x.dtype}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise _fail(field, "non-finite values")
    return x


def _index(v: float, field: str, lo: int, hi: int) -> int:
    """A float slot holding an integer index in ``[lo, hi)``."""
    if v != np.floor(v) or not lo <= v < hi:
        raise _fail(field, f"{v!r} is not an index in [{lo}, {hi})")
    return int(v)


def check_checkpoint(ck: Any, ref: dict[str, Any], detector: Any, n_assets: int) -> None:
    """Check a trader checkpoint ``ck`` against ``ref`` (a fresh trader's checkpoint of the
    same run); :class:`CheckpointError` naming the first field that does not fit."""
    if not isinstance(ck, dict):
        raise _fail("(root)", "not an object")
    missing = sorted(set(ref) - set(ck))
    if missing:
        raise _fail(missing[0], "missing")
    bars = _int(ck["bars"], "bars", 0, MAX_ROWS)
    d, r = ck["driver"], ref["driver"]
    if not isinstance(d, dict) or set(d) != set(r):
        raise _fail("driver", f"expected the fields {sorted(r)}")
    st, rst = d["state"], r["state"]
    if not isinstance(st, dict) or set(st) != set(rst):
        raise _fail("driver.state", f"expected the arrays {sorted(rst)}")
    for name, want in rst.items():
        a = _array(st[name], f"driver.state.{name}", "float64", want.ndim)
        if a.shape != want.shape:
            raise _fail(f"driver.state.{name}", f"shape {a.shape}, this run needs {want.shape}")
    k = int(rst["post"].shape[0])
    post = st["post"]
    if (post < 0).any() or (post > 1 + 1e-9).any():
        raise _fail("driver.state.post", "probabilities outside [0, 1]")
    t = _int(d["t"], "driver.t", 0, MAX_ROWS)
    if bars != t:
        raise _fail("bars", f"{bars} bars but the driver has seen {t}")
    last_ts = _opt_int(ck["last_ts"], "last_ts")
    if _opt_int(d["last_ts"], "driver.last_ts") != last_ts:
        raise _fail("driver.last_ts", "differs from last_ts")
    _opt_int(d["last_key"], "driver.last_key")
    regime = _opt_int(ck["regime"], "regime", 0, k - 1)
    smoothed = smoothed_regime(st)
    if (regime is None) != (smoothed < 0) or (regime is not None and regime != smoothed):
        raise _fail("regime", f"{regime!r} differs from the state's ({smoothed:g})")

    # the detector's parameter rows (indices into features, exogenous inputs, assets)
    rows = d["fit_rows"]
    if not isinstance(rows, list) or len(rows) > MAX_ROWS:
        raise _fail("driver.fit_rows", "expected a list of parameter rows")
    n_feat = int(r["feat_hist"].shape[1])
    n_in = int(r["exog_hist"].shape[1])
    for i, row in enumerate(rows):
        row = _array(row, f"driver.fit_rows[{i}]", "float64", 1)
        _check_row(row, i, k, detector, (n_feat, n_in, n_assets), rows[0])
    if r["fit_rows"] and len(rows) != len(r["fit_rows"]):
        raise _fail("driver.fit_rows", f"{len(rows)} rows, this run fits {len(r['fit_rows'])}")
    fit_bar = _array(d["fit_bar"], "driver.fit_bar", "int64", 1)
    if r["fit_rows"]:  # fits computed ahead: the run's own schedule
        want = r["fit_bar"]
    else:  # online refits: one row per fit bar of the schedule so far
        try:
            want = np.asarray(detector.fit_bars(t), dtype=np.int64) if t else np.zeros(0, int)
        except Exception:  # a user detector that cannot say: the rows' own count
            want = fit_bar
        if len(rows) != len(want):
            raise _fail("driver.fit_rows", f"{len(rows)} rows, the schedule has {len(want)}")
    if fit_bar.shape != want.shape or (fit_bar != want).any():
        raise _fail("driver.fit_bar", "differs from this run's fit schedule")
    if fit_bar.size and ((np.diff(fit_bar) < 0).any() or fit_bar[0] < 0):
        raise _fail("driver.fit_bar", "not ascending from 0")
    if not r["fit_rows"] and fit_bar.size and fit_bar[-1] > t:
        raise _fail("driver.fit_bar", f"a fit at bar {int(fit_bar[-1])} after bar {t}")

    # the state slots the step uses as indices and counts (engine.core.state knows them)
    try:
        check_state_slots(st, k, len(rows), kind_is_rule(rows), MAX_ROWS)
    except ValueError as exc:
        raise _fail("driver.state", str(exc)) from None

    # the trailing history the online refits read
    fh = _array(d["feat_hist"], "driver.feat_hist", "float64", 2)
    eh = _array(d["exog_hist"], "driver.exog_hist", "float64", 2)
    if fh.shape[1] != n_feat or eh.shape[1] != n_in:
        raise _fail("driver.feat_hist", f"widths {fh.shape[1]}/{eh.shape[1]}, need {n_feat}/{n_in}")
    if fh.shape[0] != eh.shape[0] or fh.shape[0] > t:
        raise _fail("driver.feat_hist", f"{fh.shape[0]}/{eh.shape[0]} rows after {t} bars")


def kind_is_rule(rows: list[np.ndarray]) -> bool:
    return bool(rows) and int(rows[0][L.D_KIND]) == L.DET_RULE


def _check_row(
    row: np.ndarray,
    i: int,
    k: int,
    detector: Any,
    sizes: tuple[int, int, int],
    first: np.ndarray,
) -> None:
    n_feat, n_in, n_assets = sizes
    field = f"driver.fit_rows[{i}]"
    if row.shape[0] < 2 or row.shape[0] > MAX_ROWS:
        raise _fail(field, f"length {row.shape[0]}")
    kind = int(row[L.D_KIND])
    want_kind = KIND_OF.get(type(detector).__name__, int(first[L.D_KIND]))
    if row[L.D_KIND] != kind or kind != want_kind or kind > L.DET_USER or kind < 0:
        raise _fail(field, f"detector kind {row[L.D_KIND]!r} is not this run's")
    if row[L.D_N_STATES] != k:
        raise _fail(field, f"{row[L.D_N_STATES]!r} states, this run has {k}")
    params = getattr(detector, "params", None)
    if kind == L.DET_RULE:  # a rule has no fitted values: its row is its settings
        want = np.asarray(params() if callable(params) else (), dtype=np.float64)
        if want.shape != row.shape or (want != row).any():
            raise _fail(field, "differs from this run's rule settings")
        _index(float(row[L.DR_ASSET]), field, 0, n_assets)
    elif kind == L.DET_EXTERNAL:
        _index(float(row[L.DE_COL]), field, 0, max(n_in, 1))
    elif kind in DX_KINDS:
        m = _index(float(row[L.DX_N_IN]), field, 0, n_feat + n_in + 1)
        if row.shape[0] < L.DX_INPUTS + L.DX_IN_STRIDE * m:
            raise _fail(field, f"too short for {m} inputs")
        for j in range(m):
            src = float(row[L.DX_INPUTS + L.DX_IN_STRIDE * j + L.DXI_SRC])
            _index(src, f"{field} input {j}", -n_in, n_feat)


__all__ = ["check_checkpoint"]


def read_checkpoint(
    journal: Any, name: str, symbols: Any, fingerprint: Any, trader: Any
) -> tuple[datetime, float | None] | None:
    """The checkpoint's ``(trade_from, k_eq)`` after the trader took its state back (every
    field checked against this run first), or None when there is none. A bad file is one
    line (:class:`ConfigError` / :class:`CheckpointError`), never a crash."""
    path = journal.checkpoint_path
    try:
        ck = journal.load(name, symbols)
        if ck is None:
            return None
        if ck.get("fingerprint") != fingerprint:
            raise ConfigError(
                f"{path}: checkpoint written for another configuration of this strategy "
                "(symbols, features, detector or strategy changed); use another "
                "paper.state_dir"
            )
        trade_from = datetime.fromisoformat(ck["trade_from"])
        k_eq = ck["k_eq"]
        number = isinstance(k_eq, float | int) and not isinstance(k_eq, bool)
        if k_eq is not None and not (number and 0 < k_eq < 1e12):
            raise ValueError(f"k_eq {k_eq!r} out of range")
        trader.resume(ck)  # checked against this run before the driver sees it
    except (ConfigError, CheckpointError):
        raise
    except Exception as exc:  # whatever a file holds: one line, never a crash
        raise ConfigError(f"{path}: checkpoint field missing or bad ({exc})") from None
    return trade_from, None if k_eq is None else float(k_eq)

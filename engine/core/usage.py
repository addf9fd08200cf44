"""What a run uses: which built-in feature blocks, which user features, which names.

Only features something reads are computed: the built-in block of an asset when the
detector reads one of its features or a strategy may read the feature row, and user
features when a detector input or a strategy names them.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from engine.ground import layout as L
from engine.ground.bars import DataError
from engine.plugins.features import UserFeature, lookup
from engine.plugins.names import BUILTIN_FEATURES, Names


@functools.lru_cache(maxsize=256)
def _arity(fn: Any) -> int:
    try:
        return len(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return -1


def params_arity(fn: Any) -> int:
    """Number of arguments ``fn`` (a strategy's ``params``) takes; the signature of a
    method's function is inspected once (cached). 2 when it can't be inspected."""
    base = getattr(fn, "__func__", None)
    try:
        n = _arity(base) - 1 if base is not None else _arity(fn)
    except TypeError:  # unhashable callable
        n = _arity.__wrapped__(fn)
    return 2 if n < 0 else n


def strategy_params(strategy: Any, names: Names) -> np.ndarray:
    """A compiled strategy's parameter vector; ``params(symbols, labels, names)`` when
    its ``params`` takes the :class:`Names` too."""
    fn = strategy.params
    if params_arity(fn) < 3:
        return np.asarray(fn(names.symbols, names.labels), dtype=np.float64)
    names = dataclasses.replace(names)  # its own record of the built-ins resolved
    out = np.asarray(fn(names.symbols, names.labels, names), dtype=np.float64)
    if names.builtin_read and not getattr(strategy, "uses_builtin_features", True):
        raise DataError(
            f"strategy {strategy.name!r} reads the built-in feature {names.builtin_read[0]} "
            "but says uses_builtin_features = False, so the engine does not compute it (the "
            "policy would read values that are not the feature); set "
            "uses_builtin_features = True"
        )
    return out


def as_features(items: Iterable[Any], where: str) -> list[UserFeature]:
    """User features from objects or registered names (errors name ``where``)."""
    out: list[UserFeature] = []
    for it in items:
        if isinstance(it, str):
            f = lookup(it)
            if f is None:
                raise DataError(f"{where}: unknown user feature {it!r} (register it first)")
            it = f
        if not isinstance(it, UserFeature):
            raise DataError(f"{where}: {it!r} is not a user feature")
        if all(it.name != o.name for o in out):
            out.append(it)
    return out


def features_named_by(input_names: Sequence[str], exog_names: Sequence[str]) -> list[UserFeature]:
    """Registered user features that detector input names refer to (``"SYM.name"``,
    ``"name"``, optionally ``log_``-prefixed); built-ins and exogenous series excluded."""
    out: list[UserFeature] = []
    for name in input_names:
        owner, _, leaf = name.rpartition(".")
        base = leaf[4:] if leaf.startswith("log_") else leaf
        if owner == "exog" or base in BUILTIN_FEATURES or base in exog_names:
            continue
        f = lookup(base)
        if f is not None and all(f.name != o.name for o in out):
            out.append(f)
    return out


def strategy_features(strategy: Any) -> list[UserFeature]:
    """The user features a strategy declares in its optional ``features`` attribute."""
    return as_features(getattr(strategy, "features", ()) or (), f"strategy {strategy.name!r}")


def detector_assets(detector: Any, n_assets: int) -> np.ndarray:
    """Bool per asset: does the detector read that asset's built-in features?"""
    detector = getattr(detector, "inner", detector)  # an estimator run as DET_EXTERNAL
    used = np.zeros(n_assets, dtype=np.bool_)
    kind = type(detector).__name__
    if (
        getattr(detector, "labeler", None) is not None
        and getattr(detector, "market_col", None) is None
    ):
        return ~used  # its labels may read any feature
    if kind == "NoDetector":
        return used
    cols: list[int] = []
    inputs = getattr(detector, "inputs", None)
    src = getattr(inputs, "src", None)
    if src is None and kind != "RuleDetector":
        return ~used  # an unknown detector may read any feature
    if src is not None:
        cols.extend(int(s) for s in src if int(s) >= 0)
    if getattr(detector, "market_col", None) is not None:
        cols.append(int(detector.market_col))
    if kind == "RuleDetector":
        used[int(detector.market)] = True
    for c in cols:
        used[c // L.N_FEAT_ASSET] = True
    return used


def strategy_assets(strategy: Any, n_assets: int) -> np.ndarray:
    """Bool per asset: may the strategy read that asset's built-in features? (All unless
    it says ``uses_builtin_features = False``.)"""
    flag = bool(getattr(strategy, "uses_builtin_features", True))
    return np.full(n_assets, flag, dtype=np.bool_)

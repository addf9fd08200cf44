"""``regime-engine list``: the strategy kinds, detector kinds and features a config can
name, one line each: the built-in ones and the user's (``--config``: the config's
``[plugins] modules`` are imported, so the features they register appear, and its
``custom`` detector and strategy targets are listed with their first doc line)."""

from __future__ import annotations

import argparse
import importlib
import typing
from collections.abc import Iterator
from typing import Any

WIDTH = 100


def _doc(obj: object) -> str:
    """The first sentence of ``obj``'s docstring, reST quotes dropped, at most
    :data:`WIDTH` characters ('' when it has none)."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    first = " ".join(doc.split("\n\n")[0].split()).replace("``", "")
    cut = first.find(". ")
    first = first[: cut + 1] if cut >= 0 else first
    return first if len(first) <= WIDTH else first[: WIDTH - 3].rstrip() + "..."


def _kinds(union: Any) -> Iterator[tuple[str, str]]:
    """``(kind, first doc line)`` of each model of a discriminated config union."""
    for model in typing.get_args(typing.get_args(union)[0]):
        kind = typing.get_args(model.model_fields["kind"].annotation)[0]
        yield str(kind), _doc(model)


def _target(target: str) -> str:
    """A ``module:name`` target's first doc line, or why it cannot be imported."""
    mod, _, attr = target.partition(":")
    try:
        return _doc(getattr(importlib.import_module(mod), attr)) or "(no docstring)"
    except (ImportError, AttributeError) as exc:
        return f"(cannot import: {exc})"


def _user_feature(feature: Any) -> str:
    """One line for a registered user feature: its kind, window and function's doc."""
    fn = getattr(feature, "fn", None) or getattr(feature, "update", None)
    what = type(feature).__name__
    window = getattr(feature, "window", None)
    size = f", {window} bars" if window is not None else ""
    scope = "per asset" if getattr(feature, "per_asset", True) else "across assets"
    module = getattr(fn, "__module__", "?")
    doc = _doc(fn) or _doc(feature) if fn is not None else _doc(feature)
    return f"user {what} ({scope}{size}, from {module})" + (f": {doc}" if doc else "")


def catalog(cfg: Any = None) -> list[tuple[str, str, str]]:
    """``(section, name, description)`` rows: strategies, detectors, features; with a
    config (its plug-ins imported first), its custom targets and registered features."""
    from engine.config import StrategyConfig
    from engine.plugins.features import REGISTRY, UserFeature
    from engine.plugins.names import BUILTIN_FEATURE_DOCS
    from engine.regimes.config import DetectorConfig

    rows = [("strategy", k, d) for k, d in _kinds(StrategyConfig)]
    if cfg is not None:
        for s in cfg.strategies:
            if s.kind == "custom":
                rows.append(("strategy", f"custom {s.target}", f"({s.name}) {_target(s.target)}"))
    rows += [("detector", k, d) for k, d in _kinds(DetectorConfig)]
    if cfg is not None and cfg.detector.kind == "custom":
        target = cfg.detector.target
        rows.append(("detector", f"custom {target}", _target(target)))
    for name, feature in REGISTRY.items():
        if isinstance(feature, UserFeature):
            rows.append(("feature", name, _user_feature(feature)))
        else:
            rows.append(("feature", name, f"built-in: {BUILTIN_FEATURE_DOCS.get(name, '')}"))
    rows += FEATURE_FORMS
    return rows


#: How detector inputs name more than the listed features (engine/regimes/inputs.py).
FEATURE_FORMS: list[tuple[str, str, str]] = [
    ("feature", "log_NAME", 'the log of a feature, e.g. "log_vol_fast" (also "SPX.log_vol_fast")'),
    (
        "feature",
        "exog.NAME",
        'an exogenous series: the bundled panel\'s ("exog.VIX", "exog.SLOPE_10Y_2Y", ...) '
        'or a [[data.exog]] column; "exog.log_VIX" its log',
    ),
]


def cmd_list(args: argparse.Namespace) -> int:
    """Print the catalog, one line per entry, grouped by section."""
    cfg = None
    if args.config is not None:
        from engine.assemble import import_plugins
        from engine.config import load_config

        cfg = load_config(args.config)
        import_plugins(cfg)
    rows = catalog(cfg)
    wanted = {"strategies": "strategy", "detectors": "detector", "features": "feature"}
    only = wanted.get(args.what) if args.what else None
    width = max(len(name) for _, name, _ in rows)
    heads = {
        "strategy": "strategies ([[strategies]] kind = ...):",
        "detector": "detectors ([detector] kind = ...):",
        "feature": "features ([detector] features, SYMBOL.name; strategies by name):",
    }
    for section, head in heads.items():
        if only is not None and section != only:
            continue
        print(head)
        for sec, name, desc in rows:
            if sec == section:
                print(f"  {name:<{width}}  {desc}".rstrip())
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "list", help="list strategy kinds, detector kinds and features (yours included)"
    )
    p.add_argument(
        "what", nargs="?", choices=("strategies", "detectors", "features"), help="one section"
    )
    p.add_argument("--config", default=None, help="TOML config whose [plugins] to import")
    p.set_defaults(handler=cmd_list)


__all__ = ["catalog", "cmd_list", "register"]

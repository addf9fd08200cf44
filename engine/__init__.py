"""regime-engine: event-driven backtesting and paper trading with online regime detection.

The public façade (imported on first use, so ``import engine`` stays cheap)::

    import engine

    result = engine.run_backtest("configs/default.toml")   # or a dict, a RunConfig, None
    run = engine.assemble(engine.load_config("configs/default.toml"))  # what every command runs
    engine.run_validation(run.cfg)                          # walk-forward, CV, significance
    engine.run_sweep(cfg)                                   # a parameter grid

Plug-ins: :class:`CompiledStrategy` / :class:`PythonStrategy` (strategies),
:func:`register` with :class:`WindowFeature` / :class:`IncrementalFeature` (user features),
:func:`add_exog` (exogenous series from a file). Bad input raises :class:`DataError` or
:class:`ConfigError` with one line naming the file, field or bar. See ARCHITECTURE.md.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "run_backtest": "engine.api",
    "run_backtest_chunked": "engine.api_chunked",
    "assemble": "engine.assemble",
    "Run": "engine.assemble",
    "load_panel": "engine.assemble",
    "load_config": "engine.config",
    "parse_config": "engine.config",
    "RunConfig": "engine.config",
    "ConfigError": "engine.config",
    "run_validation": "engine.validate",
    "run_sweep": "engine.sweep",
    "BarPanel": "engine.ground.bars",
    "DataError": "engine.ground.bars",
    "CompiledStrategy": "engine.plugins.strategy",
    "PythonStrategy": "engine.plugins.strategy",
    "Context": "engine.plugins.strategy",
    "register": "engine.plugins.features",
    "WindowFeature": "engine.plugins.features",
    "IncrementalFeature": "engine.plugins.features",
    "add_exog": "engine.features.exog",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})

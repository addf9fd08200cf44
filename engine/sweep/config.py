"""The ``[sweep]`` section: which parameters to vary, and the combinations it expands to.

Example::

    [sweep]
    mode = "grid"                 # or "random" (n_samples draws, seeded)
    strategy_name = "regime_aware"  # the [[strategies]] entry to vary (default: the first)
    [sweep.detector]              # keys of [detector]; dotted keys reach nested tables
    n_states = [2, 3]
    "smoothing.min_dwell" = [0, 5]
    [sweep.strategy]              # keys of that strategy
    rebalance = ["M", "Q"]
    [sweep.costs]                 # keys of [costs]
    commission_bps = [1.0, 5.0]
    [sweep.execution]             # keys of [execution]
    trade_band = [0.0, 0.02]

Grid mode takes every value list's cartesian product; random mode draws ``n_samples``
combinations, each key from its list or from a range ``{ low = 1, high = 10, log = false,
integer = false }``. Every distinct section is validated with the run config's own model,
so a bad key or value is an error naming it (``sweep.costs.comission_bps: unknown key``).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from engine.config import (
    ConfigError,
    CostsConfig,
    ExecutionConfig,
    FeaturesConfig,
    RunConfig,
    Section,
    StrategyConfig,
    first_error,
)
from engine.regimes.config import DetectorConfig

SECTIONS: tuple[str, ...] = ("detector", "features", "strategy", "costs", "execution")


class Range(BaseModel):
    """A continuous (or integer) range for random sampling."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    low: float
    high: float
    log: bool = False
    integer: bool = False

    def draw(self, rng: np.random.Generator) -> float | int:
        lo, hi = (np.log(self.low), np.log(self.high)) if self.log else (self.low, self.high)
        x = float(rng.uniform(lo, hi))
        x = float(np.exp(x)) if self.log else x
        return round(x) if self.integer else x


Axis = list[Any] | Range


class SweepConfig(Section):
    """Validated ``[sweep]`` section (unknown keys are errors)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["grid", "random"] = "grid"
    n_samples: int = Field(100, ge=1)
    seed: int = 0
    strategy_name: str | None = None
    chunk_size: int = Field(0, ge=0)  # combinations per task (0: automatic)
    workers: int = Field(0, ge=0)  # local processes (0: all cores)
    fit_cache: str | None = None  # folder for the on-disk detector fit cache
    detector: dict[str, Axis] = Field(default_factory=dict)
    features: dict[str, Axis] = Field(default_factory=dict)
    strategy: dict[str, Axis] = Field(default_factory=dict)
    costs: dict[str, Axis] = Field(default_factory=dict)
    execution: dict[str, Axis] = Field(default_factory=dict)


def parse_sweep(raw: dict[str, Any], source: str = "<config>") -> SweepConfig:
    """Validate the raw ``[sweep]`` mapping; errors name the key (``sweep.mode: ...``)."""
    try:
        cfg = SweepConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(f"{source}: sweep.{first_error(exc)}") from None
    for sec, keys in axes(cfg).items():
        for key, axis in keys.items():
            if isinstance(axis, list) and not axis:
                raise ConfigError(f"{source}: sweep.{sec}.{key}: empty list of values")
            if cfg.mode == "grid" and isinstance(axis, Range):
                raise ConfigError(f'{source}: sweep.{sec}.{key}: ranges need mode = "random"')
    return cfg


def axes(cfg: SweepConfig) -> dict[str, dict[str, Axis]]:
    """Section name -> {key: axis}, with the strategy section named ``strategy``."""
    return {
        "detector": cfg.detector,
        "features": cfg.features,
        "strategy": cfg.strategy,
        "costs": cfg.costs,
        "execution": cfg.execution,
    }


def set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    """``d["a"]["b"] = value`` for ``key = "a.b"`` (creating tables on the way)."""
    parts = key.split(".")
    for p in parts[:-1]:
        nxt = d.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            d[p] = nxt
        d = nxt
    d[parts[-1]] = value


def canonical(obj: Any) -> str:
    """A stable JSON text (sorted keys) used as a dictionary key."""
    return json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))


@dataclass(frozen=True)
class Plan:
    """The expanded sweep: distinct validated sections and combinations of their indices.

    ``combos[i]`` = ``(detector, features, strategy, costs, execution)`` indices into the
    matching ``*_configs`` list; ``params[i]`` = the swept values of combination ``i``
    (``"section.key" -> value``) for the results table.
    """

    base: RunConfig
    strategy_name: str
    detectors: list[Any]
    features: list[FeaturesConfig]
    strategies: list[Any]
    costs: list[CostsConfig]
    executions: list[ExecutionConfig]
    combos: np.ndarray  # (n, 5) int64
    params: list[dict[str, Any]]
    sweep: SweepConfig

    @property
    def n_combos(self) -> int:
        return int(self.combos.shape[0])


_DETECTOR = TypeAdapter(DetectorConfig)
_STRATEGY = TypeAdapter(StrategyConfig)


def _validate(section: str, data: dict[str, Any], source: str) -> Any:
    try:
        if section == "detector":
            return _DETECTOR.validate_python(data)
        if section == "strategy":
            return _STRATEGY.validate_python(data)
        if section == "features":
            return FeaturesConfig.model_validate(data)
        if section == "costs":
            return CostsConfig.model_validate(data)
        return ExecutionConfig.model_validate(data)
    except ValidationError as exc:
        err = first_error(exc)
        # drop the union tag pydantic puts in front of discriminated-union locations
        kind = data.get("kind")
        if kind and err.startswith(f"{kind}."):
            err = err[len(kind) + 1 :]
        raise ConfigError(f"{source}: sweep.{section}.{err}") from None


def _draws(cfg: SweepConfig) -> list[dict[str, dict[str, Any]]]:
    """One ``{section: {key: value}}`` per combination."""
    ax = axes(cfg)
    flat = [(sec, key, axis) for sec, keys in ax.items() for key, axis in keys.items()]
    out: list[dict[str, dict[str, Any]]] = []
    if cfg.mode == "grid":
        lists = [axis for _, _, axis in flat]
        for values in itertools.product(*lists):  # type: ignore[arg-type]
            d: dict[str, dict[str, Any]] = {s: {} for s in ax}
            for (sec, key, _), v in zip(flat, values):
                d[sec][key] = v
            out.append(d)
        return out
    rng = np.random.default_rng(cfg.seed)
    for _ in range(cfg.n_samples):
        d = {s: {} for s in ax}
        for sec, key, axis in flat:
            if isinstance(axis, Range):
                d[sec][key] = axis.draw(rng)
            else:
                d[sec][key] = axis[int(rng.integers(len(axis)))]
        out.append(d)
    return out


def base_sections(run: RunConfig, strategy_name: str) -> dict[str, dict[str, Any]]:
    """The run config's sections as plain dicts (the starting point of every combo)."""
    strat = next(s for s in run.strategies if s.name == strategy_name)
    return {
        "detector": run.detector.model_dump(mode="json"),
        "features": run.features.model_dump(mode="json"),
        "strategy": strat.model_dump(mode="json"),
        "costs": run.costs.model_dump(mode="json"),
        "execution": run.execution.model_dump(mode="json"),
    }


def check_sweep(run: RunConfig, source: str = "<config>") -> tuple[SweepConfig, str]:
    """``[sweep]`` validated and the name of the strategy it varies (one of ``run``'s)."""
    cfg = parse_sweep(run.sweep, source)
    names = [s.name for s in run.strategies]
    strategy_name = cfg.strategy_name or names[0]
    if strategy_name not in names:
        raise ConfigError(
            f"{source}: sweep.strategy_name: {strategy_name!r} is not one of the strategies "
            f"({', '.join(names)})"
        )
    return cfg, strategy_name


def build_plan(run: RunConfig, source: str = "<config>") -> Plan:
    """Expand ``run.sweep`` into validated, de-duplicated sections and combinations."""
    cfg, strategy_name = check_sweep(run, source)
    base = base_sections(run, strategy_name)
    draws = _draws(cfg)
    distinct: dict[str, dict[str, int]] = {s: {} for s in SECTIONS}
    configs: dict[str, list[Any]] = {s: [] for s in SECTIONS}
    combos = np.empty((len(draws), len(SECTIONS)), dtype=np.int64)
    params: list[dict[str, Any]] = []
    for i, d in enumerate(draws):
        row: dict[str, Any] = {}
        for j, sec in enumerate(SECTIONS):
            over = d[sec]
            key = canonical(over)
            idx = distinct[sec].get(key)
            if idx is None:
                data = json.loads(json.dumps(base[sec]))
                if sec == "detector" and "kind" in over and over["kind"] != data.get("kind"):
                    data = {"kind": over["kind"]}
                for k, v in over.items():
                    set_dotted(data, k, v)
                configs[sec].append(_validate(sec, data, source))
                idx = len(configs[sec]) - 1
                distinct[sec][key] = idx
            combos[i, j] = idx
            for k, v in over.items():
                row[f"{sec}.{k}"] = v
        params.append(row)
    return Plan(
        base=run,
        strategy_name=strategy_name,
        detectors=configs["detector"],
        features=configs["features"],
        strategies=configs["strategy"],
        costs=configs["costs"],
        executions=configs["execution"],
        combos=combos,
        params=params,
        sweep=cfg,
    )

"""The ``[validation]`` table of a config: its schema and :func:`parse_validation`.

Apart from :mod:`engine.validate` (which runs it) so that every command checks the table
when it reads a config (:mod:`engine.config_check`) without importing the validation run.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, ValidationError

from engine.analysis.costs import DEFAULT_BPS
from engine.config import ConfigError, RunConfig, Section, first_error
from engine.regimes.config import SmoothingConfig

Weights = dict[str, float] | Literal["equal"]


class _Section(Section):
    """The config's rules: unknown keys refused, booleans ``true`` / ``false`` only."""


class CVConfig(_Section):
    """Purged/embargoed CV inside each training window (off with ``enabled = false``)."""

    enabled: bool = True
    n_splits: int = Field(4, ge=2, le=20)
    purge_bars: int = Field(21, ge=0)
    embargo_bars: int = Field(21, ge=0)
    # "per_split": refit the detector on each split's purged training rows (strict);
    # "per_fold": reuse the fold's walk-forward fit (fast for slow detectors, e.g. HMM)
    detector_fits: Literal["per_split", "per_fold"] = "per_fold"


class CandidateConfig(_Section):
    """A candidate parameter set: overrides of the candidate strategy's table / warm-up and of
    the detector's smoothing (keys given here replace the configured ones)."""

    name: str
    smoothing: SmoothingConfig | None = None
    table: dict[str, Weights] | None = None
    warmup: Weights | None = None


class MonteCarloConfig(_Section):
    """Simulated regime paths. Each path refits the configured detector on its own
    history (about 40 s a path with the default HMM on 2 cores), so it is off unless
    asked for: ``n_paths = 50`` here or ``--mc-paths 50``."""

    n_paths: int = Field(0, ge=0)
    years: float = Field(10.0, gt=0)
    warmup_years: float = Field(1.0, ge=0)
    n_states: int = Field(3, ge=2, le=6)
    seed: int = 0


class ValidationConfig(_Section):
    """The ``[validation]`` table."""

    train_years: float = Field(5.0, gt=0)
    test_years: float = Field(1.0, gt=0)
    window: Literal["expanding", "rolling"] = "expanding"
    window_years: float | None = Field(None, gt=0)
    candidate: str | None = None  # default: the first "regime" strategy
    benchmark: str | None = None  # default: the first "static" strategy
    cost_bps: list[float] = Field(default_factory=lambda: list(DEFAULT_BPS))
    # static baselines that isolate the detector: the candidate's average weights, and the
    # benchmark's mix scaled (with cash) to the candidate's volatility
    baselines: bool = True
    bootstrap_reps: int = Field(1000, ge=10)
    level: float = Field(0.95, gt=0.5, lt=1.0)
    seed: int = 12345
    cv: CVConfig = CVConfig()
    candidates: list[CandidateConfig] | None = None
    montecarlo: MonteCarloConfig = MonteCarloConfig()


def parse_validation(cfg: RunConfig, source: str = "<config>") -> ValidationConfig:
    """The config's ``[validation]`` table, validated (errors name ``validation.KEY``)."""
    try:
        v = ValidationConfig.model_validate(cfg.validation)
    except ValidationError as exc:
        raise ConfigError(f"{source}: validation.{first_error(exc)}") from None
    if any(b < 0 or not math.isfinite(b) for b in v.cost_bps):
        raise ConfigError(f"{source}: validation.cost_bps: costs must be finite and >= 0")
    names = [c.name for c in v.candidates or []]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: validation.candidates: names must be unique")
    have = [s.name for s in cfg.strategies]
    for key in ("candidate", "benchmark"):
        val = getattr(v, key)
        if val is not None and val not in have:
            raise ConfigError(f"{source}: validation.{key}: unknown strategy {val!r}; have {have}")
    return v

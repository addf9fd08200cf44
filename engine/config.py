"""TOML run configuration -> typed, frozen, validated settings.

Unknown keys and wrong types are errors naming the key (``costs.comission_bps: unknown
key``). Every section has defaults; an empty file runs the default backtest. See
``configs/default.toml`` for a commented example of every key.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from engine.core.spec import CALENDAR_FREQS, CostModel, Execution, Features
from engine.regimes.config import DetectorConfig, HMMDetectorConfig


class ConfigError(ValueError):
    """A bad configuration: one line naming the file and the key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Freq = Literal["D", "W", "M", "Q", "Y"] | None


class DataConfig(Section):
    """Where bars come from. ``source = "bundled"`` is the shipped real panel."""

    source: str | list[str] = "bundled"
    format: Literal["auto", "csv", "parquet"] = "auto"
    symbols: list[str] | None = ["SPX", "RUT", "DAX", "N225", "UST10", "CASH"]
    start: str | None = None
    end: str | None = None
    fill: Literal["none", "ffill"] = "none"
    ohlc_from_close: bool = False


class ExecutionConfig(Section):
    initial_cash: float = Field(1_000_000.0, gt=0)
    fill_at: Literal["next_open", "next_close"] = "next_open"
    allow_leverage: bool = False
    max_gross: float = Field(1.0, gt=0)
    trade_band: float = Field(0.0, ge=0)
    min_trade_value: float = Field(0.0, ge=0)

    def build(self) -> Execution:
        return Execution(**self.model_dump())


class CostConfig(Section):
    commission_bps: float = Field(0.0, ge=0)
    commission_per_share: float = Field(0.0, ge=0)
    commission_min: float = Field(0.0, ge=0)
    half_spread_bps: float = Field(0.0, ge=0)
    slippage_bps: float = Field(0.0, ge=0)
    impact_coef: float = Field(0.0, ge=0)
    participation: float = Field(0.0, ge=0, le=1)
    lot_size: float = Field(0.0, ge=0)

    def build(self) -> CostModel:
        return CostModel(**self.model_dump())


class CostsConfig(CostConfig):
    """Default cost model for every asset, with ``[costs.symbols.SYM]`` overrides (each
    override starts from the defaults)."""

    symbols: dict[str, dict[str, float]] = {}

    def per_symbol(self) -> dict[str, CostModel]:
        base = self.model_dump(exclude={"symbols"})
        out = {}
        for sym, over in self.symbols.items():
            try:
                out[sym] = CostConfig(**{**base, **over}).build()
            except ValidationError as exc:
                raise ConfigError(f"costs.symbols.{sym}: {first_error(exc)}") from None
        return out

    def default(self) -> CostModel:
        return CostConfig(**self.model_dump(exclude={"symbols"})).build()


class FeaturesConfig(Section):
    hl_fast: float = Field(10.0, gt=0)
    hl_slow: float = Field(63.0, gt=0)
    ma_window: int = Field(200, ge=2)
    rsi_window: int = Field(14, ge=2)

    def build(self) -> Features:
        return Features(**self.model_dump())


Weights = dict[str, float] | Literal["equal"]


class StaticConfig(Section):
    kind: Literal["static"]
    name: str
    weights: Weights
    rebalance: Freq = "M"
    drift: float = Field(0.0, ge=0)


class InverseVolConfig(Section):
    kind: Literal["inverse_vol"]
    name: str
    weights: Weights = "equal"
    rebalance: Freq = "M"
    drift: float = Field(0.0, ge=0)


class RegimeConfig(Section):
    kind: Literal["regime"]
    name: str
    table: dict[str, Weights]
    warmup: Weights
    rebalance: Freq = None
    on_change: bool = True
    blend: bool = False
    drift: float = Field(0.0, ge=0)


class CustomConfig(Section):
    """A user strategy: ``target = "package.module:ClassName"`` built with ``params``."""

    kind: Literal["custom"]
    name: str
    target: str
    params: dict[str, Any] = {}

    @field_validator("target")
    @classmethod
    def _has_colon(cls, v: str) -> str:
        if ":" not in v:
            raise ValueError("must look like 'package.module:ClassName'")
        return v


StrategyConfig = Annotated[
    StaticConfig | InverseVolConfig | RegimeConfig | CustomConfig, Field(discriminator="kind")
]


def default_strategies() -> list[StrategyConfig]:
    return [
        StaticConfig(kind="static", name="static_60_40", weights={"SPX": 0.6, "UST10": 0.4}),
        StaticConfig(kind="static", name="equal_weight", weights="equal"),
        RegimeConfig(
            kind="regime",
            name="regime_aware",
            table={
                "calm": {"SPX": 0.5, "RUT": 0.1, "DAX": 0.05, "N225": 0.05, "UST10": 0.3},
                "volatile": {
                    "SPX": 0.25,
                    "RUT": 0.05,
                    "DAX": 0.025,
                    "N225": 0.025,
                    "UST10": 0.5,
                    "CASH": 0.15,
                },
                "crisis": {"SPX": 0.05, "UST10": 0.6, "CASH": 0.35},
            },
            warmup={"SPX": 0.6, "UST10": 0.4},
            rebalance="M",
        ),
    ]


class ReportConfig(Section):
    html: bool = True
    benchmark: str | None = None  # strategy or symbol (default: the first equity symbol)


class RunConfig(Section):
    """A whole run: data, execution, costs, features, detector, strategies, report."""

    name: str = "default"
    data: DataConfig = DataConfig()
    execution: ExecutionConfig = ExecutionConfig()
    costs: CostsConfig = CostsConfig(commission_bps=5.0)
    features: FeaturesConfig = FeaturesConfig()
    detector: DetectorConfig = HMMDetectorConfig()
    strategies: list[StrategyConfig] = Field(default_factory=default_strategies)
    report: ReportConfig = ReportConfig()
    sweep: dict[str, Any] = {}  # validated by the sweep command's own model
    paper: dict[str, Any] = {}  # validated by the paper-trading command's own model
    validation: dict[str, Any] = {}  # validated by the validate command's own model
    advise: dict[str, Any] = {}  # validated by the advise command's own model

    @model_validator(mode="before")
    @classmethod
    def _detector_kind_default(cls, data: Any) -> Any:
        det = data.get("detector") if isinstance(data, dict) else None
        if isinstance(det, dict) and "kind" not in det:
            data = {**data, "detector": {"kind": default_detector_kind(), **det}}
        return data

    @field_validator("strategies")
    @classmethod
    def _unique_names(cls, v: list[StrategyConfig]) -> list[StrategyConfig]:
        names = [s.name for s in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"strategy names must be unique: {', '.join(dup)}")
        if not v:
            raise ValueError("at least one strategy is needed")
        return v


def default_detector_kind() -> str:
    """The detector kind used when ``[detector]`` gives none (the built-in default's)."""
    return str(RunConfig.model_fields["detector"].default.kind)


def first_error(exc: ValidationError) -> str:
    """One line for the first validation error: ``a.b.c: what is wrong``."""
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        return f"{loc}: unknown key"
    if err["type"] == "missing":
        return f"{loc}: missing required key"
    if err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        tags = err.get("ctx", {}).get("expected_tags", "")
        return f"{loc}: unknown kind {err.get('input', {}).get('kind')!r} (expected one of {tags})"
    msg = err["msg"]
    got = err.get("input")
    if err["type"] not in ("union_tag_invalid",) and not isinstance(got, dict | list):
        msg = f"{msg} (got {got!r})"
    return f"{loc}: {msg}" if loc else msg


def parse_config(data: dict[str, Any], source: str = "<config>") -> RunConfig:
    """Validate a config mapping; raises :class:`ConfigError` naming the key."""
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {first_error(exc)}") from None


def load_config(path: str | Path | None = None) -> RunConfig:
    """Read a TOML config (``None``: the built-in defaults = ``configs/default.toml``)."""
    if path is None:
        return RunConfig()
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    cfg = parse_config(data, str(p))
    return cfg


__all__ = [
    "CALENDAR_FREQS",
    "ConfigError",
    "RunConfig",
    "load_config",
    "parse_config",
]

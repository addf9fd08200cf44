"""TOML run configuration -> typed, frozen, validated settings.

Unknown keys and wrong types are errors naming the key (``costs.comission_bps: unknown
key``). Every section has defaults; an empty file runs the default backtest. See
``configs/default.toml`` for a commented example of every key.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from engine.core.spec import CALENDAR_FREQS, CostModel, Execution, Features
from engine.regimes.config import DetectorConfig, HMMDetectorConfig

if TYPE_CHECKING:
    from engine.ground.frequency import Frequency
    from engine.weights import WeightRules


class ConfigError(ValueError):
    """A bad configuration: one line naming the file and the key."""


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _true_or_false(cls, data: Any) -> Any:
        """A ``bool`` key takes TOML's ``true`` / ``false`` only: pydantic's lax mode read
        ``allow_short = "yes"`` (or ``"off"``, ``1``) as a boolean without a word."""
        if isinstance(data, dict):
            for key, v in data.items():
                field = cls.model_fields.get(key)
                if field is not None and field.annotation is bool and not isinstance(v, bool):
                    raise ValueError(f"{key}: expected true or false (got {v!r})")
        return data


def _no_calendar(value: Any) -> Any:
    """``rebalance = "none"`` (TOML has no null): no calendar rebalancing; another string
    must be a calendar (the error lists ``"none"`` with them)."""
    if isinstance(value, str) and value.strip().lower() == "none":
        return None
    if isinstance(value, str) and value not in CALENDARS:
        raise ValueError(
            f"expected one of {', '.join(map(repr, CALENDARS))} or 'none' (got {value!r})"
        )
    return value


CALENDARS = ("D", "W", "M", "Q", "Y")


Freq = Annotated[Literal["D", "W", "M", "Q", "Y"] | None, BeforeValidator(_no_calendar)]
"""A rebalancing calendar, or ``"none"``: static weights are bought once and held (they
drift with prices; a ``drift`` band still rebalances), a regime table trades only when
the regime changes."""

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2}(\.\d+)?)?)?$")


def parse_date(value: Any) -> str | None:
    """A config date -> ISO string. Accepts TOML dates/datetimes and ``YYYY-MM-DD[ HH:MM[:SS]]``
    strings; anything else ("yesterday", "2015-02-30") is a ``ValueError`` saying why."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if not isinstance(value, str):
        raise ValueError(f"expected a date like 2015-06-01, got {value!r}")
    text = value.strip()
    if not _ISO_DATE.match(text):
        raise ValueError(f"{value!r} is not a date (expected YYYY-MM-DD)")
    try:
        dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid date ({exc})") from None
    return text


BROKER_SOURCES = ("alpaca",)  # [data] source names served by a broker's history


def _one_parquet(source: str | list[str], fmt: str) -> bool:
    paths = [source] if isinstance(source, str) else source
    ext = str(paths[0]).lower().endswith((".parquet", ".pq")) if len(paths) == 1 else False
    return len(paths) == 1 and (fmt == "parquet" or (fmt == "auto" and ext))


class ExogConfig(Section):
    """One ``[[data.exog]]`` table: an exogenous series file joined as-of onto the bars
    (:mod:`engine.features.exog`). ``path``: a CSV/Parquet file with a timestamp column
    (relative paths are read from the config file's folder); ``columns``: the value
    columns to use (default: all); ``names``: what to call them (default: the column
    names; detector inputs read them as ``exog.NAME``); ``lag``: when a value becomes known
    after its timestamp, in time (``"0d"``, ``"1d"``, ``"14d"``, ``"1mo"``; ``"1m"`` is
    refused as ambiguous and a bare number as unitless). ``lag`` is required: a monthly
    figure dated at month start but published weeks later would otherwise be seen early."""

    path: str = Field(min_length=1)
    columns: list[str] | None = None
    names: list[str] | None = None
    lag: str

    @field_validator("lag", mode="before")
    @classmethod
    def _lag(cls, v: Any) -> str:
        from engine.ground.frequency import parse_lag

        parse_lag(v)  # a ValueError saying what to write
        return str(v)

    @field_validator("columns", "names")
    @classmethod
    def _nonempty(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and not v:
            raise ValueError("an empty list; leave it out to use every column of the file")
        if v is not None:
            dup = sorted({c for c in v if v.count(c) > 1})
            if dup:
                raise ValueError(f"{dup[0]!r} is listed twice")
        return v

    @model_validator(mode="after")
    def _names_fit(self) -> ExogConfig:
        if self.names is not None and self.columns is None:
            raise ValueError("names: give columns too (one name per column, in order)")
        if self.names is not None and self.columns is not None:
            if len(self.names) != len(self.columns):
                raise ValueError(f"names: {len(self.names)} names for {len(self.columns)} columns")
        return self


class DataConfig(Section):
    """Where bars come from. ``source = "bundled"`` is the shipped real panel.

    ``symbols`` defaults to every symbol in the files. ``periods_per_year`` overrides the
    bar frequency inferred from the timestamps. ``calendar`` (an exchange code such as
    ``"XNYS"``) reports sessions missing from the data; ``timezone`` is the zone the bar
    times are shown and grouped in (sessions, days, months): time-zone-aware timestamps are
    converted to it, naive ones are taken to be in it. ``max_jump``: a close moving by this
    factor or more in one bar (x1.9 up, /1.9 down: a 2:1 split is /2) is refused as an
    unadjusted split, naming the symbol and the dates (``inf`` turns the check off).
    ``exog``: ``[[data.exog]]`` tables of exogenous series files (:class:`ExogConfig`).
    """

    source: str | list[str] = "bundled"
    format: Literal["auto", "csv", "parquet"] = "auto"
    symbols: list[str] | None = None
    start: str | None = None
    end: str | None = None
    fill: Literal["none", "ffill"] = "none"
    ohlc_from_close: bool = False
    periods_per_year: float | None = Field(None, gt=0)
    calendar: str | None = None
    timezone: str | None = None
    chunk_bars: int | None = Field(None, ge=1)  # Parquet only: engine.api_chunked
    max_jump: float = Field(1.9, gt=1)  # a one-bar close factor refused (unadjusted splits)
    exog: list[ExogConfig] = []
    # source = "alpaca": the broker's history (brokers.history), cached as Parquet under
    # cache_dir and extended incrementally (data_feeds.broker_cache); keys from the
    # environment; url (else $APCA_API_DATA_URL, else Alpaca's) e.g. a local exchange
    timeframe: str = "1Day"
    feed: Literal["iex", "sip"] = "iex"
    adjustment: Literal["raw", "split", "dividend", "all"] = "all"
    url: str | None = None
    cache_dir: str = "data/cache"
    proxies: dict[str, str] = {}  # SYMBOL = "bundled:SPX": spliced before its first bar
    asset_classes: dict[str, str] = {}  # SYMBOL = "equity" | "bond" | "cash" | ...

    @field_validator("start", "end", mode="before")
    @classmethod
    def _date(cls, v: Any) -> str | None:
        return parse_date(v)

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("an empty list; leave it out to use every symbol in the files")
        dup = sorted({s for s in v if v.count(s) > 1})
        if dup:
            raise ValueError(f"{dup[0]!r} is listed twice")
        return v

    @field_validator("calendar")
    @classmethod
    def _calendar(cls, v: str | None) -> str | None:
        if v is None:
            return v
        import exchange_calendars as xcals

        if v not in xcals.get_calendar_names(include_aliases=True):
            raise ValueError(f"unknown exchange calendar {v!r} (e.g. XNYS, XNAS, XLON, XTKS, 24/7)")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            msg = f"unknown time zone {v!r} (use an IANA name like 'America/New_York')"
            raise ValueError(msg) from None
        return v

    @model_validator(mode="after")
    def _order(self) -> DataConfig:
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        if self.chunk_bars is not None and not _one_parquet(self.source, self.format):
            raise ValueError(f"chunk_bars needs one Parquet file as source, got {self.source!r}")
        if self.chunk_bars is not None and self.exog:
            raise ValueError("exog: exogenous files are not read in chunks; drop chunk_bars")
        if self.source in BROKER_SOURCES:
            if not self.symbols:
                raise ValueError(f"source = {self.source!r} needs symbols (what to download)")
            extra = sorted(set(self.proxies) - set(self.symbols))
            if extra:
                raise ValueError(f"proxies.{extra[0]}: not one of the symbols")
        elif self.proxies:
            raise ValueError('proxies: only with a broker source (source = "alpaca")')
        return self


class ExecutionConfig(Section):
    """Order sizing. Target weights mean what they say: a negative weight is an error unless
    ``allow_short``; weights summing above 1 are an error unless ``allow_leverage`` (then up
    to ``max_gross``); a sum below 1 leaves the rest in cash.

    Leverage borrows cash, and borrowed cash is not free: with ``allow_leverage`` the
    annual ``financing_rate`` (a fraction: 0.05 is 5 %; 0 to borrow for free, said in the
    config) is required, and negative cash pays ``financing_rate + financing_spread_bps``
    every bar (``rate / periods_per_year`` of the loan, like ``costs.borrow_bps``)."""

    initial_cash: float = Field(1_000_000.0, gt=0)
    fill_at: Literal["next_open", "next_close"] = "next_open"
    allow_leverage: bool = False
    allow_short: bool = False
    max_gross: float = Field(1.0, gt=0)
    trade_band: float = Field(0.0, ge=0)
    min_trade_value: float = Field(0.0, ge=0)
    financing_rate: float | None = Field(None, gt=-0.5, lt=1.0)
    financing_spread_bps: float = Field(0.0, ge=0, lt=10_000)

    @model_validator(mode="after")
    def _leverage_is_financed(self) -> ExecutionConfig:
        if self.allow_leverage and self.financing_rate is None:
            raise ValueError(
                "financing_rate: leverage borrows cash; set the annual rate it pays "
                "(e.g. financing_rate = 0.05, or 0 to borrow for free)"
            )
        return self

    def build(self, periods_per_year: float = 252.0) -> Execution:
        """Kernel settings; ``periods_per_year`` (the data's) accrues borrow fees and
        financing per bar."""
        rate = (self.financing_rate or 0.0) + self.financing_spread_bps / 10_000.0
        return Execution(
            **self.model_dump(exclude={"allow_short", "financing_rate", "financing_spread_bps"}),
            periods_per_year=periods_per_year,
            financing_rate=rate if self.allow_leverage else 0.0,
        )

    def weight_rules(self) -> WeightRules:
        """The rules target weights are checked against."""
        from engine.weights import WeightRules

        return WeightRules(
            allow_short=self.allow_short,
            max_gross=self.max_gross if self.allow_leverage else 1.0,
        )


MAX_PRICE_BPS = 10_000
"""A per-trade cost in bps of the price must stay below this (100%): at 20,000 bps a sell
would be priced below zero and never happen (issue 23)."""


class CostConfig(Section):
    commission_bps: float = Field(0.0, ge=0)
    commission_per_share: float = Field(0.0, ge=0)
    commission_min: float = Field(0.0, ge=0)
    half_spread_bps: float = Field(0.0, ge=0)
    slippage_bps: float = Field(0.0, ge=0)
    impact_coef: float = Field(0.0, ge=0)
    participation: float = Field(0.0, ge=0, le=1)
    lot_size: float = Field(0.0, ge=0)
    borrow_bps: float = Field(0.0, ge=0)

    @field_validator("commission_bps", "half_spread_bps", "slippage_bps")
    @classmethod
    def _below_whole_price(cls, v: float) -> float:
        if v >= MAX_PRICE_BPS:
            raise ValueError(
                f"{v:g} bps is {v / 100:g}% of the price; a cost per trade must be below "
                f"{MAX_PRICE_BPS:,} bps (100%): 5 means 0.05%"
            )
        return v

    def build(self) -> CostModel:
        return CostModel(**self.model_dump())


class CostsConfig(CostConfig):
    """Default cost model for every asset, with ``[costs.symbols.SYM]`` overrides (each
    override starts from the defaults)."""

    symbols: dict[str, dict[str, float]] = {}

    def per_symbol(self) -> dict[str, CostModel]:
        if not self.symbols:
            return {}
        base = self.model_dump(exclude={"symbols"})
        out = {}
        for sym, over in self.symbols.items():
            try:
                out[sym] = CostConfig(**{**base, **over}).build()
            except ValidationError as exc:
                raise ConfigError(f"costs.symbols.{sym}.{first_error(exc)}") from None
        return out

    def default(self) -> CostModel:
        return CostModel(**self.model_dump(exclude={"symbols"}))  # fields validated already


BarsOrTime = float | str


class FeaturesConfig(Section):
    """Half-lives and windows of the causal features, in bars (numbers) or in time
    (``"2w"``, ``"3m"``, ``"1y"``, ``"4h"``: converted with the data's bar frequency, so
    ``"3m"`` is 63 daily bars or 16,380 one-minute bars of 390-minute sessions)."""

    hl_fast: BarsOrTime = 10.0
    hl_slow: BarsOrTime = 63.0
    ma_window: int | str = 200
    rsi_window: int | str = 14

    @field_validator("hl_fast", "hl_slow", "ma_window", "rsi_window")
    @classmethod
    def _positive_or_time(cls, v: float | str) -> float | str:
        if isinstance(v, str):
            from engine.ground.frequency import parse_window

            parse_window(v)
        elif not v > 0:
            raise ValueError(f"must be > 0 (got {v!r})")
        return v

    def build(self, freq: Frequency | None = None) -> Features:
        """The kernel's feature settings; time strings need the data's ``freq``."""
        from engine.ground.frequency import window_bars

        vals: dict[str, float] = {}
        for k, v in self.model_dump().items():
            if isinstance(v, str):
                if freq is None:
                    raise ConfigError(
                        f"features.{k} = {v!r}: a window in time needs the data's bar "
                        "frequency here; give a number of bars"
                    )
                v = window_bars(v, freq)
            vals[k] = float(v) if k.startswith("hl_") else max(2, round(v))
        return Features(**vals)  # type: ignore[arg-type]

    def describe(self, freq: Frequency) -> dict[str, str]:
        """Each setting in bars and in time, e.g. ``{"hl_slow": "63 bars (~3.0 months)"}``."""
        f = self.build(freq)
        return {k: freq.describe_bars(getattr(f, k)) for k in type(self).model_fields}


Weights = dict[str, float] | Literal["equal"]


class StaticConfig(Section):
    """Fixed weights (a table or "equal") rebalanced on a calendar, a drift band, or held."""

    kind: Literal["static"]
    name: str
    weights: Weights
    rebalance: Freq = "M"
    drift: float = Field(0.0, ge=0)
    normalize: bool = False


class InverseVolConfig(Section):
    """Naive risk parity: weights proportional to 1/EWMA volatility over the weights' support."""

    kind: Literal["inverse_vol"]
    name: str
    weights: Weights = "equal"
    rebalance: Freq = "M"
    drift: float = Field(0.0, ge=0)
    normalize: bool = False

    @model_validator(mode="after")
    def _resizes(self) -> InverseVolConfig:
        if self.rebalance is None and self.drift == 0.0:
            raise ValueError(
                'rebalance: "none" would fix the inverse-vol weights on the first bar, before '
                'any volatility is measured; use kind = "static" for buy-and-hold, or a '
                "calendar (D, W, M, Q, Y) or a drift band"
            )
        return self


class RegimeConfig(Section):
    """A weight table per regime label, switched when the smoothed regime changes."""

    kind: Literal["regime"]
    name: str
    table: dict[str, Weights]
    warmup: Weights
    rebalance: Freq = None
    on_change: bool = True
    blend: bool = False
    drift: float = Field(0.0, ge=0)
    normalize: bool = False

    @model_validator(mode="after")
    def _leaves_warmup(self) -> RegimeConfig:
        if self.rebalance is None and not self.on_change and self.drift == 0.0:
            raise ValueError(
                'rebalance: "none" with on_change = false never trades after the warm-up '
                "weights; set on_change = true or a calendar (D, W, M, Q, Y)"
            )
        return self


class GroupLimit(Section):
    """A group limit of an ``optimized`` strategy: ``min <= sum of members <= max``."""

    assets: list[str] = Field(min_length=1)
    min: float = Field(0.0, ge=0)
    max: float = Field(1.0, ge=0)


_GROUP_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
OPT_WITH_RETURN = ("max_sharpe", "max_utility", "min_cvar")
OPT_WITH_TURNOVER = ("min_variance", "max_utility", "min_cvar")
OPT_WITH_SHORTS = ("min_variance", "max_sharpe", "max_utility", "min_cvar")


Objective = Literal[
    "min_variance",
    "max_sharpe",
    "max_utility",
    "risk_parity",
    "min_cvar",
    "hierarchical_risk_parity",
]
"""The objectives of ``kind = "optimized"`` (the one list: ``strategies.optimized`` reads it)."""


class OptimizedConfig(Section):
    """Regime-conditional moments into an optimiser (``strategies/optimized.py``).

    Windows in bars. Long-only: weights within ``[min_weight, max_weight]`` (a number or
    ``{SYMBOL = x, "*" = default}``), summing to ``budget`` (< 1 leaves cash), group
    limits, a total one-way ``turnover`` limit per rebalance, ``cost_bps`` per unit of
    turnover (amortised over ``cost_horizon`` bars) in the return term. Bounds that no
    weights can meet are a config error before the run."""

    kind: Literal["optimized"]
    name: str
    objective: Objective = "min_variance"
    assets: list[str] | None = None  # default: every symbol except one named CASH
    conditional: bool = True
    compare_unconditional: bool = True  # validate: the unconditional twin runs beside it
    window: int = Field(756, ge=20)
    min_history: int = Field(252, ge=20)
    half_life: float = Field(126.0, ge=0)
    shrinkage: Literal["none", "ledoit_wolf"] | Annotated[float, Field(ge=0, le=1)] = "ledoit_wolf"
    transition: Literal["empirical", "none"] = "empirical"
    transition_prior: float = Field(1.0, ge=0)
    min_state_obs: float = Field(20.0, ge=1)
    min_weight: Annotated[float, Field(ge=-1, le=1)] | dict[str, float] = 0.0
    max_weight: Annotated[float, Field(gt=0, le=1)] | dict[str, float] = 1.0
    budget: float = Field(1.0, gt=0, le=1)
    max_short: float = Field(0.0, ge=0, le=1)  # total short weight (negative min_weight)
    groups: dict[str, GroupLimit] = {}
    turnover: float | None = Field(None, gt=0)
    cost_bps: float = Field(0.0, ge=0)
    cost_horizon: float = Field(21.0, gt=0)
    risk_aversion: float = Field(1.0, gt=0)
    cvar_beta: float = Field(0.95, gt=0, lt=1)
    warmup: Weights = "equal"
    rebalance: Literal["D", "W", "M", "Q", "Y"] = "M"

    @field_validator("rebalance", mode="before")
    @classmethod
    def _calendar(cls, v: Any) -> Any:
        if _no_calendar(v) is None:
            raise ValueError(
                '"none" is not available for kind optimized (its weights are '
                "solved again on a calendar: D, W, M, Q or Y; for buy-and-hold use kind = "
                '"static")'
            )
        return v

    @field_validator("min_weight", "max_weight")
    @classmethod
    def _bounds(cls, v: float | dict[str, float], info: ValidationInfo) -> float | dict[str, float]:
        lo = -1.0 if info.field_name == "min_weight" else 0.0
        if isinstance(v, dict):
            for k, x in v.items():
                if not lo <= x <= 1.0:
                    raise ValueError(f"{k}: {x} is outside [{lo:g}, 1]")
        return v

    @field_validator("groups")
    @classmethod
    def _group_names(cls, v: dict[str, GroupLimit]) -> dict[str, GroupLimit]:
        for name, g in v.items():
            if not _GROUP_RE.match(name) or name.startswith("not_"):
                raise ValueError(f"{name!r}: a group name is letters, digits and '_'")
            if g.min > g.max:
                raise ValueError(f"{name}: min {g.min} is above max {g.max}")
        return v

    @model_validator(mode="after")
    def _fits_objective(self) -> OptimizedConfig:
        if self.cost_bps > 0 and self.objective not in OPT_WITH_RETURN:
            raise ValueError(
                f"cost_bps: {self.objective} has no return term for costs to enter "
                f"(use it with {', '.join(OPT_WITH_RETURN)}); limit turnover instead"
            )
        if self.turnover is not None and self.objective not in OPT_WITH_TURNOVER:
            raise ValueError(
                f"turnover: not available with {self.objective} (one of "
                f"{', '.join(OPT_WITH_TURNOVER)})"
            )
        lows = self.min_weight.values() if isinstance(self.min_weight, dict) else [self.min_weight]
        shorts = any(x < 0 for x in lows)
        if shorts and self.objective not in OPT_WITH_SHORTS:
            raise ValueError(
                f"min_weight: {self.objective} takes long-only weights (shorts with "
                f"{', '.join(OPT_WITH_SHORTS)})"
            )
        if shorts != (self.max_short > 0):
            raise ValueError(
                "max_short: shorts need both a negative min_weight and max_short > 0 (the "
                "total short weight)"
            )
        if self.groups and self.objective == "hierarchical_risk_parity":
            raise ValueError(
                "groups: not available with hierarchical_risk_parity (its bisection takes "
                "per-asset bounds only)"
            )
        return self


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
    StaticConfig | InverseVolConfig | RegimeConfig | OptimizedConfig | CustomConfig,
    Field(discriminator="kind"),
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


class MetricsConfig(Section):
    """Risk-free series for Sharpe, Sortino and the bootstrap differences: ``"auto"`` (the
    panel's cash asset: asset class ``cash`` or a symbol named ``CASH``; 0 when none),
    ``"none"``, a symbol, an annual rate (``0.02``) or ``"file:rates.csv"`` (columns
    ``timestamp, rate``). The rf = 0 figures are reported too (``sharpe_rf0``)."""

    risk_free: str | float = "auto"

    @field_validator("risk_free")
    @classmethod
    def _rf(cls, v: str | float) -> str | float:
        if isinstance(v, str) and v.lower().startswith("file:") and len(v) <= 5:
            raise ValueError("'file:' needs a path, e.g. 'file:rates.csv'")
        if isinstance(v, float | int) and not -0.5 < float(v) < 1.0:
            raise ValueError(f"annual risk-free rate {v} is out of range (a fraction, e.g. 0.02)")
        return v


_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class PluginsConfig(Section):
    """``[plugins] modules = ["my_plugins"]``: Python modules imported before the run is
    built, so the features and detectors they register can be named in the config. They
    are looked up in the config file's folder first, then on the Python path."""

    modules: list[str] = []

    @field_validator("modules")
    @classmethod
    def _module_names(cls, v: list[str]) -> list[str]:
        for i, m in enumerate(v):
            if m.endswith(".py"):
                raise ValueError(f"{i}: {m!r} is not a module name (drop '.py': {m[:-3]!r})")
            if not _MODULE_RE.match(m):
                raise ValueError(f"{i}: {m!r} is not a module name (e.g. 'my_plugins')")
        return v


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class RunConfig(Section):
    """A whole run: data, execution, costs, features, detector, strategies, report."""

    name: str = "default"
    data: DataConfig = DataConfig()
    metrics: MetricsConfig = MetricsConfig()
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
    plugins: PluginsConfig = PluginsConfig()
    _folder: Path | None = PrivateAttr(None)  # the config file's folder (load_config)

    @property
    def folder(self) -> Path | None:
        """The folder of the TOML file this config was read from (None when built in
        Python): plug-in modules are imported from it; relative data paths were resolved
        against it when the file was read."""
        return self._folder

    def state_aware(self) -> list[str]:
        """Names of the strategies that act on the detector's regimes (``kind = "regime"``
        or ``"optimized"``), in config order: the default candidate of ``validate`` and
        ``advise`` and the strategies ``backtest`` compares with the static baselines."""
        return [s.name for s in self.strategies if s.kind in ("regime", "optimized")]

    def default_benchmark(self) -> str | None:
        """The first static strategy: the benchmark when ``validation.benchmark`` is unset."""
        return next((s.name for s in self.strategies if s.kind == "static"), None)

    @model_validator(mode="before")
    @classmethod
    def _detector_kind_default(cls, data: Any) -> Any:
        det = data.get("detector") if isinstance(data, dict) else None
        if isinstance(det, dict) and "kind" not in det:
            data = {**data, "detector": {"kind": default_detector_kind(), **det}}
        return data

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not _NAME_RE.match(v) or ".." in v:
            raise ValueError(
                f"{v!r} cannot name a folder under runs/ (letters, digits, '.', '_', '-'; "
                "no '/' or '..')"
            )
        return v

    @model_validator(mode="after")
    def _weights_mean_what_they_say(self) -> RunConfig:
        from engine.weights import check_weight_spec

        rules = self.execution.weight_rules()
        for i, s in enumerate(self.strategies):
            specs: list[tuple[str, Any]] = []
            if isinstance(s, StaticConfig | InverseVolConfig):
                specs = [("weights", s.weights)]
            elif isinstance(s, RegimeConfig):
                specs = [("warmup", s.warmup)] + [(f"table.{k}", w) for k, w in s.table.items()]
            elif isinstance(s, OptimizedConfig):
                specs = [("warmup", s.warmup)]
            for where, spec in specs:
                if not getattr(s, "normalize", False):
                    check_weight_spec(spec, rules, f"strategies.{i}.{where} ({s.name})", s.kind)
        return self

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


_MEMBER_TAG = re.compile(
    r"(str|int|float|bool|bytes|none|constrained-[a-z]+|(literal|list|dict|tuple|set|"
    r"frozenset|function-[a-z]+|tagged-union|nullable|is-instance|lax-or-strict|"
    r"json-or-python|chain|union|default|model)\[.*\])"
)


def _member_tag(part: object) -> bool:
    """Whether a ``loc`` part is pydantic's tag of a union member (``str``,
    ``constrained-int``, ``literal['none','ledoit_wolf']``, ``dict[str,float]``), not a key."""
    return isinstance(part, str) and _MEMBER_TAG.fullmatch(part) is not None


def _union_member_error(errors: list[Any]) -> Any:
    """The first error, its ``loc`` without pydantic's union-member tags. A value that fails
    every member of a union is one error per member: the one that speaks is the member the
    value's type was meant for (one that looked inside the value, else one whose failure
    is not "wrong type")."""
    first = errors[0]
    raw = list(first["loc"])
    at = next((k for k, p in enumerate(raw) if _member_tag(p)), None)
    if at is None:
        return first

    def key(e: Any) -> tuple[Any, ...]:
        return tuple(p for p in e["loc"] if not _member_tag(p))

    base = tuple(raw[:at])
    group = [e for e in errors if key(e)[: len(base)] == base]
    got = first.get("input") if len(key(first)) == len(base) else None

    def wrong_type(e: Any) -> bool:  # the member is for another type than the value's
        t = str(e["type"])
        if t == "literal_error":
            return not isinstance(got, str)
        return t.endswith(("_type", "_parsing"))

    deeper = [e for e in group if len(key(e)) > len(base)]
    chosen = (deeper or [e for e in group if not wrong_type(e)] or [first])[0]
    return {**chosen, "loc": key(chosen)}


def first_error(exc: ValidationError) -> str:
    """One line for the first validation error: ``a.b.c: what is wrong``.

    A value that fails every member of a union (``shrinkage``: ``"none"``, ``"ledoit_wolf"``
    or a number in [0, 1]; ``min_train``: an int or a time string) is one error per member,
    each ``loc`` ending in pydantic's member tag (``constrained-float``, ``literal[...]``):
    the tag is dropped and the member the value's type was meant for speaks."""
    errors = exc.errors()
    err = _union_member_error(errors)
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
    if err["type"] == "value_error":
        msg = msg.removeprefix("Value error, ")
    elif err["type"] not in ("union_tag_invalid",) and not isinstance(got, dict | list):
        msg = f"{msg} (got {got!r})"
    return f"{loc}: {msg}" if loc else msg


def parse_config(
    data: dict[str, Any], source: str = "<config>", folder: str | Path | None = None
) -> RunConfig:
    """Validate a config mapping; raises :class:`ConfigError` naming the key. With
    ``folder`` (the config file's), relative paths (``data.source``, ``data.exog`` paths,
    ``metrics.risk_free = "file:..."``) are read from it and the config remembers it
    (:attr:`RunConfig.folder`: plug-in modules are imported from there)."""
    if folder is not None:
        data = anchored(data, Path(folder))
    try:
        cfg = RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {first_error(exc)}") from None
    if folder is not None:
        cfg._folder = Path(folder).resolve()
    return cfg


def _anchor(path: Any, folder: Path) -> Any:
    if not isinstance(path, str) or not path.strip():
        return path
    p = Path(path).expanduser()
    return path if p.is_absolute() else str(folder / p)


def anchored(data: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``data`` with its relative file paths read from ``folder`` (left as they are when
    they are not strings: validation then names the key)."""
    folder = folder.resolve()
    out = dict(data)
    d = out.get("data")
    if isinstance(d, dict):
        d = dict(d)
        src = d.get("source")
        if isinstance(src, str) and src.partition(":")[0] not in ("bundled", *BROKER_SOURCES):
            d["source"] = _anchor(src, folder)
        elif isinstance(src, list):
            d["source"] = [_anchor(s, folder) for s in src]
        if isinstance(d.get("exog"), list):
            d["exog"] = [
                {**e, "path": _anchor(e.get("path"), folder)} if isinstance(e, dict) else e
                for e in d["exog"]
            ]
        out["data"] = d
    m = out.get("metrics")
    if isinstance(m, dict) and isinstance(m.get("risk_free"), str):
        rf = m["risk_free"]
        if rf.lower().startswith("file:") and len(rf) > 5:
            out["metrics"] = {**m, "risk_free": "file:" + _anchor(rf[5:], folder)}
    return out


def load_config(path: str | Path | None = None) -> RunConfig:
    """Read a TOML config (``None``: the built-in defaults = ``configs/default.toml``)."""
    if path is None:
        return RunConfig()
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{p}: is a folder, expected a TOML config file")
    if not p.is_file():
        raise ConfigError(f"{p}: config file not found")
    try:
        data = tomllib.loads(p.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read config: {exc}") from None
    return parse_config(data, str(p), folder=p.parent)


__all__ = [
    "CALENDAR_FREQS",
    "ConfigError",
    "ExogConfig",
    "PluginsConfig",
    "RunConfig",
    "load_config",
    "parse_config",
]


EQUITY_CLASSES = ("equity", "stock", "etf", "index")
NOT_EQUITY_CLASSES = ("cash", "bond", "rates", "commodity", "fx", "crypto", "volatility")


def equity_like_symbol(symbols: tuple[str, ...], asset_classes: tuple[str, ...]) -> str:
    """The default ``detector.market``: the first symbol whose asset class is equity-like,
    else the first whose class is unknown and not cash-like by name, else the first."""
    for s, c in zip(symbols, asset_classes):
        if c.lower() in EQUITY_CLASSES:
            return s
    for s, c in zip(symbols, asset_classes):
        if c.lower() not in NOT_EQUITY_CLASSES and s.upper() not in ("CASH", "BIL", "SHV"):
            return s
    return symbols[0]

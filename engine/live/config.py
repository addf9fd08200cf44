"""The ``[paper]`` section of a run config (:class:`PaperConfig`).

The venue's own settings stay in its hands: ``[paper.exchange]`` (the local exchange) is kept
as given here and validated by the venue that reads it (errors name ``paper.exchange.KEY``).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, ValidationError, field_validator

from engine.bus.zmq_bus import DEFAULT_BARS
from engine.config import ConfigError, RunConfig, Section, first_error


class PaperConfig(Section):
    """Settings of ``regime-engine paper`` (all optional; defaults trade the local exchange)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str | None = None  # default: the config's first strategy
    broker: Literal["local", "alpaca"] = "local"  # the venue, by name (the CLI opens it)
    live: bool = False  # Alpaca's live endpoint: needs --live AND url = the live endpoint
    url: str | None = None  # REST base; default: the local exchange / Alpaca paper
    stream_url: str | None = None  # websocket base (market data: {base}/v2/{feed})
    feed: Literal["iex", "sip"] = "iex"
    adjustment: Literal["raw", "split", "dividend", "all"] = "all"
    history: Literal["broker", "data"] = "broker"  # warm-up bars: broker REST or [data]
    history_days: int = Field(1100, ge=1)  # calendar days of broker history to warm up on
    trade_from: str | None = None  # ISO time; default: the broker clock at the first start
    bars: Literal["stream", "zmq"] = "stream"
    zmq_bars: str = DEFAULT_BARS
    events: str | None = None  # ZeroMQ PUB address for engine events (None: off)
    allow_remote: bool = False  # non-loopback ZeroMQ addresses (then CURVE is required)
    curve_dir: str | None = None  # CURVE certificates (see engine.bus.security)
    state_dir: str = "runs/paper"
    long_only: bool = True
    cash_buffer: float = Field(0.02, ge=0, lt=1)  # equity share kept in cash at the broker
    min_notional: float = Field(1.0, ge=0)  # Alpaca's minimum for fractional orders
    gap_tolerance: float = Field(0.002, ge=0)  # |broker - engine| / equity logged as a gap
    poll_s: float = Field(1.0, gt=0)  # clock/order polling (the streams wake it sooner)
    http_timeout_s: float = Field(10.0, gt=0)  # every HTTP call
    start_timeout_s: float = Field(15.0, gt=0)  # broker down or hung at start: exit within
    outage_limit_s: float = Field(300.0, gt=0)  # mid-run outage: exit (checkpointed) after
    sell_fill_timeout_s: float = Field(60.0, gt=0)  # after the open, for sells to fill
    cancel_timeout_s: float = Field(10.0, gt=0)
    max_bars: int | None = Field(None, ge=1)  # stop after this many new bars
    idle_exit_s: float | None = Field(None, gt=0)  # stop when no new bar for this long
    exog_from_stream: bool = True  # exogenous series arrive as data-only symbols
    # [[data.exog]] files: stale when a bar is after the used release + cadence + lag + this
    exog_grace: str = "7d"
    start_exchange: bool = True  # broker = "local": start one in-process if none listens
    exchange: dict[str, Any] = Field(default_factory=dict)  # the local exchange's settings

    @field_validator("exog_grace", mode="before")
    @classmethod
    def _grace(cls, v: Any) -> str:
        from engine.ground.frequency import parse_lag

        parse_lag(v)  # a ValueError saying what to write (units as data.exog lag)
        return str(v)


def parse_paper(data: dict[str, Any], source: str | None = None) -> PaperConfig:
    """Validate ``[paper]``; errors name the key (``paper.poll_s: ...``), after the file
    when ``source`` is given."""
    where = f"{source}: " if source else ""
    try:
        return PaperConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{where}paper.{first_error(exc)}") from None


def check_paper_strategy(p: PaperConfig, cfg: RunConfig, source: str | None = None) -> None:
    """``paper.strategy`` (or ``--strategy``), when given, names one of the config's."""
    names = [s.name for s in cfg.strategies]
    if p.strategy is not None and p.strategy not in names:
        where = f"{source}: " if source else ""
        raise ConfigError(
            f"{where}paper.strategy: unknown strategy {p.strategy!r} "
            f"(config has {', '.join(names)})"
        )


def check_paper(cfg: RunConfig, source: str | None = None) -> PaperConfig:
    """The config's ``[paper]`` table, validated (:func:`parse_paper`, the strategy)."""
    p = parse_paper(cfg.paper, source)
    check_paper_strategy(p, cfg, source)
    return p


__all__ = ["PaperConfig", "check_paper", "check_paper_strategy", "parse_paper"]

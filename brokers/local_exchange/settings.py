"""Settings of the local Alpaca-like exchange: the TOML section ``[paper.exchange]``.

Read by the exchange (``brokers.local_exchange``) and by the ``local`` venue of the paper loop
(``brokers/cli.py``), which only needs ``host``/``port``/``ws_port`` to find it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FaultSettings(_Frozen):
    """Seeded, reproducible faults (``[paper.exchange.faults]``); all off by default.

    Rates are probabilities per submitted order (reject, partial fill) or per REST call
    (429). ``requests_per_minute`` > 0 also answers 429 past that many REST calls in the last
    60 s, as Alpaca's trading API does (200 per minute). ``error_burst_every`` = N answers
    every N-th REST call and the ``error_burst_len - 1`` calls after it with HTTP 500.
    ``drop_socket_every_s`` closes every websocket (market data and trade updates) that
    often. ``hang`` accepts TCP connections on both ports and never answers (``/_sim/`` still
    does). ``cancel_delay_s`` is how long an order stays ``pending_cancel`` before it is
    ``canceled`` (a fill in that window wins).
    """

    reject_rate: float = Field(0.0, ge=0, le=1)
    partial_fill_rate: float = Field(0.0, ge=0, le=1)
    rate_limit_rate: float = Field(0.0, ge=0, le=1)
    error_burst_every: int = Field(0, ge=0)
    error_burst_len: int = Field(0, ge=0)
    drop_socket_every_s: float = Field(0.0, ge=0)
    hang: bool = False
    cancel_delay_s: float = Field(0.05, ge=0)
    partial_fill_fraction: float = Field(0.5, gt=0, lt=1)
    retry_after_s: int = Field(0, ge=0)  # 0: no Retry-After header (assumed Alpaca default)
    requests_per_minute: int = Field(0, ge=0)  # Alpaca's 200/min limit when set; 0: off
    # the account's state (``/v2/account``); an account that may not trade refuses orders
    account_status: str = "ACTIVE"  # alpaca-py AccountStatus: ACTIVE, ACCOUNT_CLOSED, ...
    trading_blocked: bool = False
    account_blocked: bool = False
    trade_suspended_by_user: bool = False
    # orders' statuses and trade events as reported (e.g. {"filled": "calculated"},
    # {"new": "stopped"}; event names: {"fill": "calculated"} also sends that event after
    # the fill): statuses and events Alpaca uses that alpaca-py cannot always parse
    status_alias: dict[str, str] = Field(default_factory=dict)
    extra_events: dict[str, str] = Field(default_factory=dict)


class ExchangeSettings(_Frozen):
    """Where the local exchange listens and how it simulates Alpaca's market.

    ``mode = "stepped"``: time moves only on ``POST /_sim/step`` (deterministic, for CI);
    ``"realtime"``: one trading-session cycle every ``seconds_per_session`` wall seconds, the
    overnight part of it being ``overnight_fraction``. The first ``history_bars`` panel rows are
    complete sessions at start. ``interval_s`` is the pre-contract knob, kept for old configs:
    0 means stepped, > 0 realtime with that many seconds per session.
    """

    host: str = "127.0.0.1"
    allow_remote: bool = False  # bind a host that is not loopback (resolved): off by default
    port: int = Field(8765, ge=0, le=65535)
    ws_port: int = Field(8766, ge=0, le=65535)
    mode: Literal["realtime", "stepped"] = "realtime"
    seconds_per_session: float = Field(0.5, gt=0)
    overnight_fraction: float = Field(0.5, gt=0, lt=1)
    minute_bars_per_session: int = Field(4, ge=1, le=390)
    history_bars: int = Field(300, ge=0)
    seed: int = 0
    fractional: bool = True
    non_fractionable: list[str] = Field(default_factory=list)
    min_notional: float = Field(1.0, ge=0)
    sip_allowed: bool = False
    # most bars in one page of GET /v2/stocks/bars whatever ``limit`` asks (Alpaca: 10,000);
    # smaller to exercise a client's paging
    bars_page_limit: int = Field(10_000, ge=1, le=10_000)
    md_connection_limit: int = Field(0, ge=0)  # free plan: 1 (406 beyond it); 0: no limit
    shorting: bool = (
        False  # a cash account: short sells are rejected (Alpaca's default paper: margin)
    )
    initial_cash: float | None = Field(None, gt=0)  # default: the config's execution.initial_cash
    faults: FaultSettings = FaultSettings()
    interval_s: float | None = Field(None, ge=0)  # legacy: 0 stepped, > 0 seconds per session

    @model_validator(mode="after")
    def _legacy_interval(self) -> ExchangeSettings:
        if self.interval_s is None:
            return self
        mode = "stepped" if self.interval_s == 0 else "realtime"
        object.__setattr__(self, "mode", mode)
        if self.interval_s > 0:
            object.__setattr__(self, "seconds_per_session", self.interval_s)
        return self


__all__ = ["ExchangeSettings", "FaultSettings"]

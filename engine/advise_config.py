"""The ``[advise]`` table of a config: its schema and :func:`parse_advise`.

Apart from :mod:`engine.advise` so that every command checks the table when it reads a
config (:mod:`engine.config_check`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, ValidationError

from engine.config import ConfigError, RunConfig, Section, first_error


class AdviseConfig(Section):
    """The ``[advise]`` table.

    ``strategy``: name of the strategy whose targets are advised (default: the first
    ``kind = "regime"`` or ``"optimized"`` strategy, as validate's candidate, else the
    first). ``alert_states``: regime labels whose
    summed posterior drives the warning (default: the highest-volatility state).
    ``changepoint``: ``"bocpd"`` | ``"posterior_jump"`` | ``"none"``; a BOCPD alarm counts
    when ``P(change in the last bocpd_window bars) >= changepoint_threshold`` and the
    market's fast EWMA volatility exceeds its slow one; a posterior jump counts when the
    alert probability rose by ``>= jump_threshold`` over ``jump_bars`` bars.
    ``levels``: VaR/CVaR confidence levels. ``min_regime_bars``: fewer historical bars in
    the current regime than this and all bars are used instead (flagged).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: str | None = None
    alert_states: tuple[str, ...] | None = None
    threshold: float = Field(0.5, gt=0.0, le=1.0)
    changepoint: Literal["bocpd", "posterior_jump", "none"] = "bocpd"
    changepoint_threshold: float = Field(0.5, gt=0.0, le=1.0)
    bocpd_window: int = Field(5, ge=1)
    bocpd_expected_run: float = Field(250.0, gt=1.0)
    jump_threshold: float = Field(0.4, gt=0.0, le=1.0)
    jump_bars: int = Field(5, ge=1)
    levels: tuple[float, ...] = (0.95, 0.99)
    horizon: int = Field(10, ge=2)
    min_regime_bars: int = Field(60, ge=10)
    min_windows: int = Field(60, ge=10)
    publish_wait_s: float = Field(0.5, ge=0.0)


def parse_advise(cfg: RunConfig, source: str = "<config>") -> AdviseConfig:
    """The config's ``[advise]`` table, validated; ``advise.strategy``, when given, names
    one of the config's strategies."""
    try:
        adv = AdviseConfig.model_validate(cfg.advise)
    except ValidationError as exc:
        raise ConfigError(f"{source}: advise.{first_error(exc)}") from None
    names = [s.name for s in cfg.strategies]
    if adv.strategy is not None and adv.strategy not in names:
        raise ConfigError(
            f"{source}: advise.strategy: no strategy named {adv.strategy!r} ({', '.join(names)})"
        )
    return adv

"""Detector settings from the TOML config: one model per detector kind.

``DetectorConfig`` is a union discriminated by ``kind``; each model's ``build`` returns a
:class:`~engine.regimes.base.Detector` for a given panel (symbols resolved to columns).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from engine.core.bars import BarPanel
from engine.core.spec import Smoothing
from engine.regimes.base import Detector
from engine.regimes.rule import RuleDetector


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class SmoothingConfig(Strict):
    """Trading hysteresis: probability threshold, minimum dwell, confirmation bars."""

    prob_threshold: float = Field(0.0, ge=0.0, le=1.0)
    min_dwell: int = Field(0, ge=0)
    confirm: int = Field(1, ge=1)

    def build(self) -> Smoothing:
        return Smoothing(self.prob_threshold, self.min_dwell, self.confirm)


class RuleDetectorConfig(Strict):
    """Baseline: EWMA-vol percentile within its trailing history + trend vs moving average."""

    kind: Literal["rule"] = "rule"
    market: str = "SPX"
    use_slow_vol: bool = False
    history: int = Field(756, ge=20)
    min_history: int = Field(252, ge=1)
    high_pct: float = Field(0.75, gt=0.0, lt=1.0)
    crisis_pct: float = Field(0.90, gt=0.0, le=1.0)
    smoothing: SmoothingConfig = SmoothingConfig()

    def build(self, panel: BarPanel) -> Detector:
        return RuleDetector(
            market=panel.column(self.market),
            use_slow_vol=self.use_slow_vol,
            history=self.history,
            min_history=self.min_history,
            high_pct=self.high_pct,
            crisis_pct=self.crisis_pct,
        )


DetectorConfig = Annotated[RuleDetectorConfig, Field(discriminator="kind")]

"""What a validation run returns (:func:`engine.validate.run_validation`): its tables and
verdict, and how they are saved. Its own module so the report reads it without importing
the validation command (no import cycle)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.core.result import BacktestResult


def _num(v: Any) -> float | str | None:
    if isinstance(v, int | float | np.number):
        f = float(v)
        return f if math.isfinite(f) else ("inf" if f == math.inf else None)
    return str(v)


@dataclass
class ValidationResult:
    """Tables and the verdict of one validation run."""

    candidate: str
    benchmark: str
    folds: pd.DataFrame
    oos_returns: pd.DataFrame
    summary: pd.DataFrame
    fold_results: pd.DataFrame
    cv_scores: pd.DataFrame
    cv_choices: pd.DataFrame
    bootstrap: pd.DataFrame
    bootstrap_cv: pd.DataFrame
    ci: pd.DataFrame
    significance: dict[str, float]
    costs: pd.DataFrame
    break_even: dict[str, float]
    mc_model: pd.DataFrame
    mc_paths: pd.DataFrame
    mc_quantiles: pd.DataFrame
    verdict: str
    oos_result: BacktestResult
    timings: dict[str, float] = field(default_factory=dict)
    verdict_lines: list[str] = field(default_factory=list)  # the verdict, one line a pair
    candidate_returns: pd.DataFrame = field(default_factory=pd.DataFrame)  # SPA's universe
    baselines: pd.DataFrame = field(default_factory=pd.DataFrame)  # one row per baseline
    bootstrap_baselines: dict[str, pd.DataFrame] = field(default_factory=dict)
    rf_label: str = "0"  # the risk-free series of every Sharpe in the result
    rf: pd.Series | float = 0.0  # its per-bar returns
    periods_per_year: int = 252  # the run's bars per year (annualises every figure)

    def save(self, out: Path) -> Path:
        """Write the tables (CSV) and ``verdict.json``."""
        out.mkdir(parents=True, exist_ok=True)
        tables = {
            "folds": self.folds,
            "oos_returns": self.oos_returns,
            "oos_summary": self.summary,
            "fold_results": self.fold_results,
            "cv_scores": self.cv_scores,
            "cv_choices": self.cv_choices,
            "bootstrap_diff": self.bootstrap,
            "bootstrap_diff_cv": self.bootstrap_cv,
            "bootstrap_ci": self.ci,
            "cost_sensitivity": self.costs,
            "montecarlo_model": self.mc_model,
            "montecarlo_paths": self.mc_paths,
            "montecarlo_quantiles": self.mc_quantiles,
            "candidate_oos_returns": self.candidate_returns,
            "baselines": self.baselines,
            **{f"bootstrap_diff_vs_{k}": v for k, v in self.bootstrap_baselines.items()},
        }
        for name, df in tables.items():
            df.to_csv(out / f"{name}.csv")
        payload = {
            "candidate": self.candidate,
            "benchmark": self.benchmark,
            "verdict": self.verdict,
            "rf": self.rf_label,
            "baselines": {
                str(k): {m: _num(v) for m, v in row.items()}
                for k, row in self.baselines.to_dict(orient="index").items()
            },
            "oos": {
                k: {m: _num(v) for m, v in row.items()}
                for k, row in self.summary.to_dict(orient="index").items()
            },
            "significance": {k: _num(v) for k, v in self.significance.items()},
            "break_even_bps": {k: _num(v) for k, v in self.break_even.items()},
            "oos_start": str(self.oos_returns.index[0].date()),
            "oos_end": str(self.oos_returns.index[-1].date()),
            "n_folds": len(self.folds),
            "timings_s": self.timings,
        }
        (out / "verdict.json").write_text(json.dumps(payload, indent=2))
        return out

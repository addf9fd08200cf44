"""Parameter sweeps: grid/random combinations of detector, strategy and cost settings,
detector fits cached per distinct configuration, every combination through the compiled
driver, locally on all cores or on a Dask cluster."""

from engine.sweep.config import Plan, SweepConfig, build_plan, parse_sweep
from engine.sweep.executors import DaskExecutor, LocalExecutor, SerialExecutor, make_executor
from engine.sweep.fitcache import FitCache
from engine.sweep.runner import SweepResult, run_sweep

__all__ = [
    "DaskExecutor",
    "FitCache",
    "LocalExecutor",
    "Plan",
    "SerialExecutor",
    "SweepConfig",
    "SweepResult",
    "build_plan",
    "make_executor",
    "parse_sweep",
    "run_sweep",
]

"""A config as every command reads it: :func:`load_checked`.

:func:`engine.config.load_config` validates the run's own sections; the commands' tables —
``[validation]``, ``[sweep]``, ``[advise]``, ``[paper]`` — have their schemas beside their
commands. Here each is checked with its command's parser (one rule each) whichever command
reads the file, so a typo or a bad value there, or a strategy they name that the config
does not have, is the same one-line error in backtest, validate, sweep, advise and paper,
before any data is read (it used to pass every command but the one reading it).
"""

from __future__ import annotations

from pathlib import Path

from engine.advise_config import parse_advise
from engine.config import RunConfig, load_config
from engine.live.config import check_paper
from engine.sweep.config import build_plan
from engine.validation_config import parse_validation


def check_command_sections(cfg: RunConfig, source: str = "<config>") -> None:
    """Every command's table of ``cfg`` checked by its command's parser."""
    parse_validation(cfg, source)
    build_plan(cfg, source)  # every axis value validated (distinct sections once each)
    parse_advise(cfg, source)
    check_paper(cfg, source)


def load_checked(path: str | Path | None = None) -> RunConfig:
    """:func:`engine.config.load_config` and :func:`check_command_sections`."""
    cfg = load_config(path)
    check_command_sections(cfg, str(path) if path is not None else "<defaults>")
    return cfg


__all__ = ["check_command_sections", "load_checked"]

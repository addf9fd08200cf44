"""The ``regime-engine`` command.

Subcommands: ``backtest`` (this module) and those registered by the modules named in
:data:`COMMAND_MODULES`, each exposing ``register(subparsers)``. Every known kind of bad
input ends in one ``error: ...`` line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import structlog

from engine import logs
from engine.config import ConfigError
from engine.core.bars import DataError

EXIT_BAD_INPUT = 2

COMMAND_MODULES: tuple[str, ...] = (
    "brokers.cli",
    "engine.bus.cli",
    "engine.sweep.cli",
    "engine.validate",
    "engine.advise",
)
"""Modules that add subcommands (``register(subparsers)``); imported lazily."""

Handler = Callable[[argparse.Namespace], int]


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run the config's strategies side by side, print metrics, write the run folder."""
    from engine.analysis.metrics import DEFAULT_COLUMNS, summary_table
    from engine.api import run_backtest
    from engine.fmt import text_table

    result = run_backtest(args.config)
    out = Path(args.out) if args.out else Path("runs") / str(result.config.get("name", "run"))
    result.save(out)
    table = summary_table(result)
    p = result.panel
    print(
        f"regime-engine backtest: {p.n_bars} bars x {p.n_assets} assets "
        f"({', '.join(p.symbols)}), {p.index[0].date()} -> {p.index[-1].date()}"
    )
    print(text_table(table, ["total_return", *DEFAULT_COLUMNS]))
    if result.config.get("report", {}).get("html", True) and not args.no_report:
        print(f"report: {write_html_report(result, out / 'report.html')}")
    print(f"results: {out}/ (equity.csv, fills.csv, weights.csv, regimes.csv, metrics.json)")
    return 0


def write_html_report(result: Any, path: Path) -> Path:
    """The HTML report, with bootstrap CIs of each strategy vs the first static one."""
    from engine.analysis.bootstrap import bootstrap_report
    from engine.report.html import write_report

    names = list(result.equity.columns)
    boot = None
    if len(names) >= 2:
        benchmark = names[0]
        candidate = next((n for n in names if "regime" in n), names[-1])
        boot = bootstrap_report(result.equity, candidate, benchmark)
    return write_report(
        result,
        path,
        bootstrap=boot,
        bootstrap_pair=(candidate, benchmark) if boot is not None else None,
    )


def cmd_report(args: argparse.Namespace) -> int:
    """Write report.html for a saved run folder."""
    from engine.report.saved_run import load_run

    run = load_run(args.run_dir)
    out = Path(args.out) if args.out else Path(args.run_dir) / "report.html"
    print(f"report: {write_html_report(run, out)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="regime-engine",
        description="Event-driven backtests and paper trading with online regime detection.",
    )
    parser.add_argument("--json-logs", action="store_true", help="log JSON lines to stderr")
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True)
    bt = sub.add_parser("backtest", help="run the configured strategies side by side")
    bt.add_argument("config", nargs="?", default=None, help="TOML config (default: built-in)")
    bt.add_argument("--out", default=None, help="output folder (default: runs/NAME)")
    bt.add_argument("--no-report", action="store_true", help="skip the HTML report")
    bt.set_defaults(handler=cmd_backtest)
    rp = sub.add_parser("report", help="write the self-contained HTML report of a run folder")
    rp.add_argument("run_dir", help="folder written by `backtest`")
    rp.add_argument("--out", default=None, help="HTML path (default: RUN_DIR/report.html)")
    rp.set_defaults(handler=cmd_report)
    for mod in COMMAND_MODULES:
        importlib.import_module(mod).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(json=args.json_logs, level=args.log_level)
    handler: Handler = args.handler
    try:
        return handler(args)
    except (ConfigError, DataError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        structlog.get_logger("regime-engine").debug("cli.error", error=str(exc))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def entry() -> None:
    """Console-script wrapper: exit with :func:`main`'s code."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    entry()

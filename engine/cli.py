"""The ``regime-engine`` command.

Subcommands: ``backtest``, ``report`` and ``init`` (this module) and those registered by
the modules named in :data:`LAZY_COMMANDS`, each exposing ``register(subparsers)``. Only
the module of the subcommand being run is imported, so ``regime-engine --help`` stays fast.

Every known kind of bad input ends in one ``error: ...`` line on stderr and exit code 2,
never a traceback; an unexpected failure is one ``error: internal error ...`` line and exit
code 1 (``--log-level DEBUG`` logs the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from engine.out_paths import UsageError, prepare_out_file, run_folder

EXIT_BAD_INPUT = 2
EXIT_INTERNAL = 1
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

LAZY_COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("engine.validate", "out-of-sample verdict: walk-forward, CV, bootstrap"),
    "advise": ("engine.advise", "current regime, target weights, trades, conditional risk"),
    "paper": ("brokers.cli", "paper-trade a strategy (local exchange or Alpaca)"),
    "paper-exchange": ("brokers.cli", "run the local Alpaca-compatible paper exchange"),
    "paper-report": ("engine.live.paper_report", "how paper tracked the backtest (gap split)"),
    "sweep": ("engine.sweep.cli", "run a parameter sweep (grid or random)"),
    "monitor": ("engine.bus.cli", "print the engine's events from the ZeroMQ bus"),
    "list": ("engine.catalog", "list strategy kinds, detector kinds and features (yours too)"),
}
"""Subcommand -> (module with ``register(subparsers)``, one-line help); imported lazily."""

COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(m for m, _ in LAZY_COMMANDS.values()))

Handler = Callable[[argparse.Namespace], int]


class OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one ``error:`` line (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"error: {self.prog}: {message} (see --help)\n")


def log_level(value: str) -> str:
    """argparse type for ``--log-level``: one of :data:`LOG_LEVELS`, any case."""
    up = value.upper()
    if up not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(
            f"invalid log level {value!r} (choose from {', '.join(LOG_LEVELS)})"
        )
    return up


def cmd_backtest(args: argparse.Namespace) -> int:
    """Run the config's strategies side by side, print metrics, write the run folder."""
    from engine import fmt
    from engine.analysis.baselines import after_warmup
    from engine.analysis.metrics import (
        DEFAULT_COLUMNS,
        _config_ppy,
        result_risk_free,
        summary_table,
    )
    from engine.api import run_backtest
    from engine.config_check import load_checked
    from engine.fmt import text_table

    cfg = load_checked(args.config)
    out = run_folder(cfg.name, args.out)
    if cfg.data.chunk_bars is not None:
        return backtest_chunked(cfg, out)
    from engine.core.run_folder import writing

    html = cfg.report.html and not args.no_report
    reps = 0  # --no-report: the baselines' point estimates (no bootstrap, no arch import)
    if html:  # the report's bootstrap settings: [validation] bootstrap_reps
        from engine.validation_config import parse_validation

        reps = parse_validation(cfg, str(args.config or "<defaults>")).bootstrap_reps
    result = run_backtest(cfg, baseline_reps=reps)
    with writing(out) as tmp:  # the previous run stays whole until this one is complete
        result.save(tmp)
        if html:
            write_html_report(result, tmp / "report.html")
    table = summary_table(result)
    print(run_header(result.panel, cfg.data.periods_per_year))
    view = after_warmup(result)
    if view is not None:  # the headline leaves out the detector's warm-up
        rf, label = result_risk_free(result)
        post = summary_table(view.equity, view.fills, _config_ppy(result), rf, label)
        n_warm = int((result.equity.index < view.start).sum())
        start = fmt.date(view.start, daily=False)  # an intraday start shows its time
        print(f"after the detector's warm-up (from {start}, {n_warm} bars left out):")
        print(text_table(post, ["total_return", *DEFAULT_COLUMNS]))
        print("whole period, warm-up included:")
    print(text_table(table, ["total_return", *DEFAULT_COLUMNS]))
    if result.baselines is not None:
        print(baselines_text(result.baselines))
    if html:
        print(f"report: {out / 'report.html'}")
    print(f"results: {out}/ (equity.csv, fills.csv, weights.csv, regimes.csv, metrics.json)")
    return 0


BASELINE_COLUMNS = ["sharpe", "cagr", "volatility", "max_drawdown", "sharpe_diff"]
BASELINE_CI = ["sharpe_diff_lower", "sharpe_diff_upper", "p_sharpe_diff_le_0"]


def baselines_table(b: Any) -> Any:
    """The baselines' table for the console and the report: one row per (strategy,
    baseline), the baseline's figures and the strategy's Sharpe difference against it."""
    t = b.table
    cols = BASELINE_COLUMNS + (BASELINE_CI if t["sharpe_diff_lower"].notna().any() else [])
    out = t[cols].copy()
    out.index = [f"{c} - {n}" for c, n in t.index]
    out.index.name = "strategy - baseline"
    out.attrs["rf_label"] = b.rf_label
    return out


def baselines_text(b: Any) -> str:
    """The console block: the baselines, what each is, and the verdict of each strategy."""
    from engine import fmt
    from engine.fmt import text_table

    t = b.table
    lines = [
        "",
        f"baselines after the detector's warm-up (from {fmt.date(b.start, daily=False)}; "
        f"Sharpe over rf = {b.rf_label}; sharpe_diff = strategy minus baseline):",
        text_table(baselines_table(b)),
    ]
    lines += [f"  {n}: {row['what']} ({row['weights']})" for (_, n), row in t.iterrows()]
    lines += [f"VERDICT: {v}" for v in b.verdicts.values()]
    return "\n".join(lines)


def backtest_chunked(cfg: Any, out: Path) -> int:
    """``[data] chunk_bars``: the run over the Parquet file chunk by chunk (memory flat in
    the number of bars); metrics at rf = 0, no HTML report (it needs the whole panel)."""
    import pandas as pd

    from engine.analysis.metrics import DEFAULT_COLUMNS
    from engine.api_chunked import run_backtest_chunked
    from engine.core.run_folder import writing
    from engine.fmt import text_table

    result = run_backtest_chunked(cfg)
    with writing(out) as tmp:
        result.save(tmp)
    idx = result.index
    fmt = "%Y-%m-%d" if (idx == idx.normalize()).all() else "%Y-%m-%d %H:%M"
    print(
        f"regime-engine backtest (chunked, {cfg.data.chunk_bars:,} bars at a time): "
        f"{len(idx)} bars x {len(result.symbols)} assets, "
        f"{idx[0].strftime(fmt)} -> {idx[-1].strftime(fmt)}"
    )
    table = pd.DataFrame.from_dict(result.metrics, orient="index")
    table.index.name = "strategy"
    table.attrs["rf_label"] = "0"
    print(text_table(table, ["total_return", *DEFAULT_COLUMNS]))
    print("no HTML report in chunked mode (it needs the whole panel); Sharpe at rf = 0")
    print(f"results: {out}/ (equity.csv, fills.csv, targets.csv, regimes.csv, metrics.json)")
    return 0


def run_header(panel: Any, periods_per_year: float | None = None) -> str:
    """``regime-engine backtest: 4589 daily bars (252/yr) x 4 assets (...), A -> B [tz]``."""
    from engine.ground.frequency import infer_frequency

    freq = infer_frequency(panel.index, periods_per_year)
    fmt = "%Y-%m-%d %H:%M" if freq.intraday else "%Y-%m-%d"
    tz = f" ({panel.tz})" if getattr(panel, "tz", None) else ""
    syms = ", ".join(panel.symbols[:8]) + (", ..." if panel.n_assets > 8 else "")
    head = (
        f"regime-engine backtest: {panel.n_bars} {freq.name} bars "
        f"({freq.periods_per_year:,.0f}/yr) x {panel.n_assets} assets ({syms}), "
        f"{panel.index[0].strftime(fmt)} -> {panel.index[-1].strftime(fmt)}{tz}"
    )
    return "\n".join([head, *(f"  {p}" for p in getattr(panel, "provenance", ()))])


def write_html_report(result: Any, path: Path) -> Path:
    """The HTML report, with bootstrap CIs of each strategy vs the first static one."""
    import pandas as pd

    from engine.analysis.baselines import after_warmup
    from engine.analysis.bootstrap import bootstrap_report
    from engine.analysis.metrics import price_panel, risk_free_returns
    from engine.report.common import candidate_name
    from engine.report.html import write_report

    names = list(result.equity.columns)
    boot = None
    if len(names) >= 2:
        benchmark = names[0]
        candidate = candidate_name(names)
        spec = (getattr(result, "config", None) or {}).get("metrics", {}).get("risk_free")
        rf, label = risk_free_returns(price_panel(result), "auto" if spec is None else spec)
        view = after_warmup(result)  # the bootstrap resamples post-warm-up bars only
        equity = result.equity if view is None else view.equity
        boot = bootstrap_report(equity, candidate, benchmark, rf=rf, rf_label=label)
    extra = {}
    b = getattr(result, "baselines", None)
    if b is not None:  # the verdict and the baselines' table (after the warm-up)
        verdict = pd.DataFrame({"verdict": list(b.verdicts.values())}, index=list(b.verdicts))
        verdict.index.name = "strategy"
        extra = {
            "Does the detector add value beyond de-risking?": verdict,
            f"Baselines after the warm-up (Sharpe over rf = {b.rf_label})": baselines_table(b),
        }
    return write_report(
        result,
        path,
        extra=extra,
        bootstrap=boot,
        bootstrap_pair=(candidate, benchmark) if boot is not None else None,
        periods_per_year=round(report_ppy(result)),
    )


def report_ppy(result: Any) -> float:
    """Bars per year of a run (config override, else inferred from its equity index): the
    report's annualisation and its rolling-1y window."""
    from engine.ground.frequency import infer_frequency

    cfg = getattr(result, "config", None) or {}
    given = (cfg.get("data") or {}).get("periods_per_year")
    return infer_frequency(result.equity.index, given).periods_per_year


def cmd_report(args: argparse.Namespace) -> int:
    """Write report.html for a saved run folder."""
    from engine.report.saved_run import load_run

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        what = "is not a folder" if run_dir.exists() else "folder not found"
        raise UsageError(f"{run_dir}: {what} (expected a run folder written by `backtest`)")
    out = prepare_out_file(args.out) if args.out else run_dir / "report.html"
    run = load_run(run_dir)
    print(f"report: {write_html_report(run, out)}")
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    """Write a starter config for the user's data files."""
    from engine.starter import starter_config

    out = Path(args.out)
    if out.exists() and not args.force:
        raise UsageError(f"{out}: already exists (pass --force to overwrite)")
    if out.is_dir():
        raise UsageError(f"{out}: is a folder, expected a .toml file path")
    notes: list[str] = []
    text = starter_config(
        args.files, name=args.name, folder=out.parent, notes=notes, max_jump=args.max_jump
    )
    prepare_out_file(out)
    out.write_text(text)
    for note in notes:
        print(f"note: {note}")
    print(f"wrote {out}; run it with: regime-engine backtest {out}")
    return 0


def _add_builtin(sub: Any) -> None:
    bt = sub.add_parser("backtest", help="run the configured strategies side by side")
    bt.add_argument("config", nargs="?", default=None, help="TOML config (default: built-in)")
    bt.add_argument("--out", default=None, help="output folder (default: runs/NAME)")
    bt.add_argument("--no-report", action="store_true", help="skip the HTML report")
    bt.set_defaults(handler=cmd_backtest)
    rp = sub.add_parser("report", help="write the self-contained HTML report of a run folder")
    rp.add_argument("run_dir", help="folder written by `backtest`")
    rp.add_argument("--out", default=None, help="HTML path (default: RUN_DIR/report.html)")
    rp.set_defaults(handler=cmd_report)
    it = sub.add_parser("init", help="write a starter config for your own CSV/Parquet files")
    it.add_argument("files", nargs="+", help="data files (CSV or Parquet, any layout)")
    it.add_argument("--out", default="regime-engine.toml", help="config path to write")
    it.add_argument("--name", default=None, help="run name (default: the first file's stem)")
    it.add_argument("--force", action="store_true", help="overwrite an existing config")
    it.add_argument(
        "--max-jump",
        type=float,
        default=None,
        help="data.max_jump for these files (a real one-day crash beyond 1.9x, e.g. 2.5; inf: off)",
    )
    it.set_defaults(handler=cmd_init)


def _chosen_command(argv: Sequence[str]) -> str | None:
    for tok in argv:
        if tok in LAZY_COMMANDS or tok in ("backtest", "report", "init"):
            return tok
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser. With ``argv``, only the chosen subcommand's module is imported
    (the others get a one-line placeholder); without, every module is imported."""
    parser = OneLineParser(
        prog="regime-engine",
        description="Event-driven backtests and paper trading with online regime detection.",
    )
    parser.add_argument("--json-logs", action="store_true", help="log JSON lines to stderr")
    parser.add_argument(
        "--log-level", default="WARNING", type=log_level, help="DEBUG, INFO, WARNING, ERROR"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_builtin(sub)
    chosen = None if argv is None else _chosen_command(argv)
    wanted = (
        set(COMMAND_MODULES)
        if argv is None
        else ({LAZY_COMMANDS[chosen][0]} if chosen in LAZY_COMMANDS else set())
    )
    done: set[str] = set()
    for cmd, (mod, help_) in LAZY_COMMANDS.items():
        if mod in wanted:
            if mod not in done:
                importlib.import_module(mod).register(sub)
                done.add(mod)
        else:
            sub.add_parser(cmd, help=help_, add_help=False)
    return parser


def _known_errors() -> tuple[type[BaseException], ...]:
    from engine.config import ConfigError
    from engine.ground.bars import DataError

    errs: list[type[BaseException]] = [ConfigError, DataError, UsageError, OverflowError]
    if "engine.live.ports" in sys.modules:  # a venue's one-line errors
        errs.append(sys.modules["engine.live.ports"].BrokerError)
    if "zmq" in sys.modules:  # a bad bus address (monitor --address, paper events)
        errs.append(sys.modules["zmq"].ZMQError)
    return tuple(errs)


def _one_line(exc: object) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text


GLOBAL_FLAGS = ("--json-logs",)
GLOBAL_OPTIONS = ("--log-level",)


def hoist_global_options(argv: Sequence[str]) -> list[str]:
    """``argv`` with ``--log-level X`` / ``--log-level=X`` / ``--json-logs`` given after the
    subcommand moved before it (``regime-engine backtest cfg.toml --log-level INFO``)."""
    out = list(argv)
    cmd = next((i for i, tok in enumerate(out) if _chosen_command([tok])), None)
    if cmd is None:
        return out
    front: list[str] = []
    rest: list[str] = []
    i = cmd + 1
    while i < len(out):
        tok = out[i]
        if tok == "--":
            rest.extend(out[i:])
            break
        if tok in GLOBAL_FLAGS or (tok.partition("=")[0] in GLOBAL_OPTIONS and "=" in tok):
            front.append(tok)
        elif tok in GLOBAL_OPTIONS and i + 1 < len(out):
            front.extend(out[i : i + 2])
            i += 1
        else:
            rest.append(tok)
        i += 1
    return out[:cmd] + front + [out[cmd]] + rest


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    argv = hoist_global_options(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_BAD_INPUT
    from engine import logs

    logs.configure(json=args.json_logs, level=args.log_level)
    logs.announce_cold_cache()
    handler: Handler = args.handler
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        known = _known_errors()
        if isinstance(exc, known):
            print(f"error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_BAD_INPUT
        if isinstance(exc, OSError):  # a file the user named: missing, unreadable, a folder
            text = f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else exc
            print(f"error: {_one_line(text)}", file=sys.stderr)  # type: ignore[arg-type]
            return EXIT_BAD_INPUT
        import structlog

        structlog.get_logger("regime-engine").debug("cli.internal_error", exc_info=True)
        print(
            f"error: internal error ({type(exc).__name__}: {_one_line(exc)}); "
            "rerun with --log-level DEBUG for details",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def entry() -> None:
    """Console-script wrapper: exit with :func:`main`'s code."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    # `python -m engine.cli`: run the imported module's main, not this `__main__` copy, so
    # the UsageError a subcommand raises through `from engine.cli import ...` is the class
    # main catches (else a bad --out/--html was "internal error", exit 1)
    from engine.cli import entry as _entry

    _entry()

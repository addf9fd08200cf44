"""Bad input ends in one clear error line naming the file/key/row and a non-zero exit."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from engine.config import ConfigError, RunConfig, parse_config

ROOT = Path(__file__).resolve().parents[2]


def run_cli(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def write(tmp_path: Path, text: str) -> str:
    p = tmp_path / "run.toml"
    p.write_text(text)
    return str(p)


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ("[costs]\ncomission_bps = 5\n", "costs.comission_bps: unknown key"),
        (
            "[costs]\ncommission_bps = 'five'\n",
            "costs.commission_bps: Input should be a valid number",
        ),
        ("[execution]\nfill_at = 'tomorrow'\n", "execution.fill_at"),
        (
            "[[strategies]]\nkind = 'static'\nname = 'x'\n",
            "strategies.0.static.weights: missing required key",
        ),
        ("[[strategies]]\nkind = 'statik'\nname = 'x'\n", "strategies.0"),
        ("[detector]\nkind = 'rule'\nmarket = 'NOPE'\n", "detector: unknown symbol 'NOPE'"),
        ("[data]\nsymbols = ['SPX', 'NOPE']\n", "unknown symbol 'NOPE'"),
        ("[data]\nstart = '2030-01-01'\n", "empty date range"),
        ("[[strategies]]\nkind='static'\nname='x'\nweights={ZZZ=1.0}\n", "unknown symbol 'ZZZ'"),
        ("name = [\n", "invalid TOML"),
        (
            "[data]\nstart = '2008-01-01'\nend = '2008-06-30'\n",
            "detector.min_train: the first fit needs 504 bars (~2.0 years) and the data has "
            "125 bars",
        ),
    ],
)
def test_bad_config_is_one_line_error(tmp_path, capsys, toml, needle):
    path = write(tmp_path, toml)
    code, err = run_cli(["backtest", path, "--out", str(tmp_path / "out"), "--no-report"], capsys)
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    assert needle in err[0]
    if "run.toml" not in err[0]:
        assert (
            "detector" in err[0] or "symbol" in err[0] or "range" in err[0] or "strateg" in err[0]
        )


def write_csv(tmp_path: Path, mutate) -> Path:
    idx = pd.bdate_range("2020-01-01", periods=30)
    close = 100 + np.arange(30.0)
    df = pd.DataFrame(
        {
            "timestamp": idx,
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": close,
            "volume": 1e5,
        }
    )
    mutate(df)
    p = tmp_path / "spx.csv"
    df.to_csv(p, index=False)
    return p


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda df: df.loc.__setitem__((5, "close"), np.nan), "row 6"),
        (lambda df: df.loc.__setitem__((3, "close"), -1.0), "row 4"),
        (lambda df: df.loc.__setitem__((7, "high"), 1.0), "row 8"),
        (lambda df: df.pop("close"), "close"),
        (lambda df: df.loc.__setitem__((9, "timestamp"), df.loc[8, "timestamp"]), "duplicate"),
        (lambda df: df.loc.__setitem__((2, "timestamp"), pd.Timestamp("2021-01-01")), "row"),
    ],
)
def test_bad_data_is_one_line_error(tmp_path, capsys, mutate, needle):
    csv = write_csv(tmp_path, mutate)
    cfg = write(
        tmp_path,
        f"[data]\nsource = '{csv}'\nsymbols = ['spx']\n[detector]\nmarket = 'spx'\n"
        "[[strategies]]\nkind='static'\nname='x'\nweights={spx=1.0}\n",
    )
    code, err = run_cli(["backtest", cfg, "--out", str(tmp_path / "o"), "--no-report"], capsys)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ")
    assert "spx.csv" in err[0] and needle in err[0], err[0]


def test_default_toml_equals_builtin_defaults():
    from data_feeds.bundled_panel import PANEL_DEFAULT_SYMBOLS, bundled_panel_name

    data = tomllib.loads((ROOT / "configs" / "default.toml").read_text())
    shipped = parse_config(data, "default.toml")
    panel_default = list(PANEL_DEFAULT_SYMBOLS[bundled_panel_name(str(shipped.data.source))])
    if shipped.data.symbols == panel_default:  # the bundled panel's default selection
        shipped = shipped.model_copy(
            update={"data": shipped.data.model_copy(update={"symbols": None})}
        )
    assert shipped == RunConfig()


def test_every_shipped_config_parses():
    for path in sorted((ROOT / "configs").glob("*.toml")):
        parse_config(tomllib.loads(path.read_text()), str(path))


def test_layering_core_imports_no_plugins():
    """engine.core/features/regimes/analysis never import strategies, brokers, data_feeds."""
    import ast

    from tests.source_ast import parse_file

    for sub in ("core", "features", "regimes", "analysis"):
        for path in (ROOT / "engine" / sub).rglob("*.py"):
            tree = parse_file(path)
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                for n in names:
                    assert n.split(".")[0] not in ("strategies", "brokers", "data_feeds"), (path, n)


def test_backtest_then_report_from_run_folder(tmp_path, capsys):
    """backtest writes the run folder; report rebuilds the HTML from it alone."""
    cfg = write(tmp_path, "[data]\nstart = '2006-01-01'\nend = '2009-12-31'\n")
    out = tmp_path / "run"
    assert main(["backtest", cfg, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for name in ("static_60_40", "equal_weight", "regime_aware", "sharpe", "max_drawdown"):
        assert name in printed
    for f in (
        "equity.csv",
        "fills.csv",
        "weights.csv",
        "regimes.csv",
        "metrics.json",
        "report.html",
    ):
        assert (out / f).stat().st_size > 0
    fills = pd.read_csv(out / "fills.csv")
    assert list(fills.columns[:8]) == [
        "timestamp",
        "strategy",
        "symbol",
        "side",
        "qty",
        "price",
        "commission",
        "spread",
    ]
    assert main(["report", str(out), "--out", str(tmp_path / "again.html")]) == 0
    html = (tmp_path / "again.html").read_text()
    assert html.count('class="chart"') >= 5  # interactive charts (plotly specs)
    assert main(["report", str(tmp_path)]) == 2  # not a run folder: one-line error


# ------------------------------------------------------------------ the command walk
# Every subcommand x every bad input -> exit code 2, exactly one `error:` line, no traceback.

CONFIG_COMMANDS = ("backtest", "validate", "advise", "paper", "sweep")

BAD_CONFIG_DIR = Path(__file__).parent / "bad_configs"
"""The corpus of bad configs: one TOML file each, headed by ``# expect: FRAGMENT`` (in the
one error line), optionally ``# commands: ...`` (default: all five; a key only one command
reads) and ``# why: ...`` (what went wrong before)."""


def _corpus() -> list[tuple[str, Path, str, tuple[str, ...]]]:
    out = []
    for path in sorted(BAD_CONFIG_DIR.glob("*.toml")):
        head = dict(
            line[2:].split(": ", 1)
            for line in path.read_text().splitlines()
            if line.startswith("# ") and ": " in line
        )
        cmds = tuple(head.get("commands", " ".join(CONFIG_COMMANDS)).split())
        out.append((path.stem, path, head["expect"], cmds))
    return out


BAD_CONFIGS = _corpus()


def _one_error_line(err: list[str]) -> str:
    from engine.logs import COMPILE_NOTICE

    lines = [e for e in err if e and e != COMPILE_NOTICE]
    assert not any("Traceback" in e for e in err), err
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), lines
    return lines[0]


def _walk(args: list[str], capsys) -> str:
    code = main(args)
    captured = capsys.readouterr()
    assert code == 2, (args, code, captured.err)
    return _one_error_line(captured.err.strip().splitlines())


@pytest.fixture
def no_computation(monkeypatch):
    """A bad config must be refused before any fit, run or paper loop starts."""
    import engine.assemble
    import engine.live.node
    import engine.sweep.runner

    def boom(*a, **k):  # pragma: no cover - must not run
        raise AssertionError("a computation started before the config was refused")

    monkeypatch.setattr(sys.modules["engine.assemble"], "prepare", boom)
    monkeypatch.setattr(engine.sweep.runner, "fit_all", boom)
    monkeypatch.setattr(engine.live.node.Node, "run", boom)


def test_the_corpus_is_large_and_well_formed():
    assert len(BAD_CONFIGS) >= 50
    for case, _, needle, cmds in BAD_CONFIGS:
        assert needle and set(cmds) <= set(CONFIG_COMMANDS), case


@pytest.mark.parametrize(
    ("case", "path", "needle", "commands"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS]
)
def test_walk_bad_configs(tmp_path, capsys, no_computation, case, path, needle, commands):
    """Each bad config: one ``error:`` line naming the key/file, exit code 2, before any
    computation, and the same line from every command that reads the key."""
    lines = {}
    for command in commands:
        extra = {
            "backtest": ["--no-report", "--out", str(tmp_path / "out")],
            "paper": ["--state-dir", str(tmp_path / "paper")],
        }.get(command, [])
        args = ["--log-level", "ERROR", command, str(path), *extra]  # warnings are not errors
        lines[command] = _walk(args, capsys)
        assert needle in lines[command], (command, lines[command])
    assert len(set(lines.values())) == 1, lines


@pytest.mark.parametrize("command", CONFIG_COMMANDS)
def test_walk_config_path_is_a_folder_or_missing(tmp_path, capsys, command):
    assert "is a folder" in _walk([command, str(tmp_path)], capsys)
    assert "not found" in _walk([command, str(tmp_path / "nope.toml")], capsys)


@pytest.mark.parametrize("command", ("backtest", "validate", "advise", "sweep"))
def test_walk_data_source_is_a_folder(tmp_path, capsys, command):
    data = tmp_path / "data"
    data.mkdir()
    path = write(tmp_path, f"[data]\nsource = '{data}'\n[sweep]\n[sweep.grid]\n")
    line = _walk([command, path], capsys)
    assert "is a folder" in line or "sweep" in line, line


@pytest.mark.parametrize("command", ("backtest", "advise"))
@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ("{ equity = 'SPY' }", "strategies.tilt.params.equity: 'SPY' is not a symbol"),
        ("{ equty = 'SPX' }", "strategies.tilt.params: "),
    ],
)
def test_walk_custom_strategy_parameter_errors(tmp_path, capsys, command, params, needle):
    toml = (
        "[data]\nstart = '2004-01-01'\nend = '2008-12-31'\n"
        "[[strategies]]\nkind = 'custom'\nname = 'tilt'\n"
        f"target = 'strategies.example:CompiledTilt'\nparams = {params}\n"
    )
    line = _walk([command, write(tmp_path, toml)], capsys)
    assert needle in line, line
    if "equty" in params:
        assert "equty" in line  # the unknown parameter is named


def test_walk_paper_section_errors(tmp_path, capsys):
    line = _walk(["paper", write(tmp_path, "[paper]\nbrokr = 'local'\n")], capsys)
    assert "paper.brokr: unknown key" in line
    line = _walk(["paper", write(tmp_path, "[paper]\nbar_timeout_s = -1\n")], capsys)
    assert "paper.bar_timeout_s" in line


def test_walk_validate_and_advise_sections(tmp_path, capsys):
    line = _walk(["validate", write(tmp_path, "[validation]\ntrain_yers = 5\n")], capsys)
    assert "train_yers" in line
    line = _walk(["advise", write(tmp_path, "[advise]\nthreshhold = 0.5\n")], capsys)
    assert "threshhold" in line


def test_walk_command_line_errors(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    cases = [
        (["--log-level", "verbose", "backtest"], "invalid log level 'verbose'"),
        (["frobnicate"], "invalid choice"),
        (["backtest", "--out", str(f)], "exists and is not a folder"),
        (["backtest", "--out", "/proc/regime-engine-x"], "cannot write there"),
        (["backtest", "--frob"], "unrecognized arguments"),
        (["backtest", "--out", ""], "--out: empty path"),
        (["report", str(f)], "is not a folder"),
        (["report", str(tmp_path / "missing")], "folder not found"),
        (["report", str(tmp_path)], "not a run folder"),
        (["sweep"], "required"),
        (["monitor", "--count", "many"], "invalid int value"),
        (["monitor", "--kinds", "bogus"], "invalid choice: 'bogus'"),
        (["monitor", "--address", "nonsense", "--seconds", "0.1"], "not a loopback address"),
        (["paper-exchange", "--port", "-5", "--interval", "0"], "port"),
        (["validate", "--frob"], "unrecognized arguments"),
        (["advise", "--cash", "lots"], "invalid float value"),
        (["paper", "--max-bars", "x"], "invalid int value"),
        (["init"], "required"),
        (["init", str(tmp_path / "missing.csv")], "file not found"),
        (["init", str(tmp_path)], "is a folder"),
        (["init", str(f), "--out", str(f)], "already exists"),
    ]
    for args, needle in cases:
        line = _walk(args, capsys)
        assert needle in line, (args, line)


def test_out_is_checked_before_the_run(tmp_path, capsys, monkeypatch):
    """An unwritable --out fails at once: the backtest itself is never started."""
    import engine.api

    def boom(*a, **k):  # pragma: no cover - must not run
        raise AssertionError("the run started before --out was checked")

    monkeypatch.setattr(engine.api, "run_backtest", boom)
    f = tmp_path / "file"
    f.write_text("")
    assert "not a folder" in _walk(["backtest", "--out", str(f)], capsys)


def test_advise_refuses_negative_cash_and_unallowed_shorts(tmp_path, capsys):
    assert "cash is -5" in _walk(["advise", "--cash", "-5"], capsys)
    pos = tmp_path / "pos.toml"
    pos.write_text("cash = 1000.0\n[positions]\nSPX = -3\n")
    line = _walk(["advise", "--positions", str(pos)], capsys)
    assert "SPX quantity is -3 (a short)" in line and "allow_short" in line


def test_run_name_cannot_leave_runs(tmp_path):
    for bad in ("../../x", "/etc/x", "a/b", "..", ".hidden"):
        with pytest.raises(ConfigError, match="cannot name a folder"):
            parse_config({"name": bad})
    assert parse_config({"name": "my-run_2.v1"}).name == "my-run_2.v1"


def test_toml_dates_and_datetimes_are_accepted():
    cfg = parse_config(tomllib.loads("[data]\nstart = 2015-06-01\nend = 2016-01-02T10:30:00\n"))
    assert cfg.data.start == "2015-06-01" and cfg.data.end == "2016-01-02T10:30:00"


def test_help_is_fast_and_lazy():
    """--help imports none of the heavy modules (numba, scipy, arch, the engine's core)."""
    import subprocess
    import sys

    code = (
        "import sys\nfrom engine.cli import main\nrc = main(['--help'])\n"
        "heavy = [m for m in ('numba', 'scipy', 'arch', 'engine.core', 'pandas') "
        "if m in sys.modules]\nprint('HEAVY', heavy, rc)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    assert "HEAVY [] 0" in out, out

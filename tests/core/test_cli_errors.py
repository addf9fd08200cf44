"""Bad input ends in one clear error line naming the file/key/row and a non-zero exit."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from engine.config import RunConfig, parse_config

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
            "detector: detector 'hmm': history too short",
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
    from engine.config import BUNDLED_DEFAULT_SYMBOLS

    data = tomllib.loads((ROOT / "configs" / "default.toml").read_text())
    shipped = parse_config(data, "default.toml")
    if shipped.data.symbols == BUNDLED_DEFAULT_SYMBOLS:  # the bundled source's default list
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

    for sub in ("core", "features", "regimes", "analysis"):
        for path in (ROOT / "engine" / sub).rglob("*.py"):
            tree = ast.parse(path.read_text())
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
    assert html.count("data:image/png;base64,") >= 5
    assert main(["report", str(tmp_path)]) == 2  # not a run folder: one-line error

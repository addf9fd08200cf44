"""Your own data, features, detector and series from the config alone (issue 23): a TOML
config with ``[[data.exog]]`` and ``[plugins]``, no Python besides the plug-in module,
run by ``python -m engine.cli backtest CONFIG`` in a fresh process; and its no-look-ahead
test (prices and exogenous releases after a cutoff replaced by noise: nothing at or
before the cutoff changes)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.assemble import import_plugins, load_panel
from engine.config import ConfigError, PluginsConfig, load_config, parse_config

ROOT = Path(__file__).resolve().parents[2]
N_BARS = 700
SYMS = ("AAA", "BBB")

PLUGIN = '''
"""User plug-ins: a momentum feature and a two-state detector of a user estimator."""
import numpy as np
from sklearn.base import BaseEstimator

from engine.plugins.features import WindowFeature, register
from engine.regimes.estimator import SklearnDetector
from engine.regimes.inputs import Schedule, resolve_inputs


def _momentum(window):
    return float(np.log(window[-1] / window[0]))


register(WindowFeature(name="mom20", fn=_momentum, window=21))


class ScoreSplit(BaseEstimator):
    """High state when the sum of the inputs' z-scores (training window) is above its
    median."""

    def fit(self, x, y=None):
        self.mu_ = x.mean(axis=0)
        self.sd_ = x.std(axis=0) + 1e-12
        self.cut_ = float(np.median(self._score(x)))
        return self

    def _score(self, x):
        return ((x - self.mu_) / self.sd_).sum(axis=1)

    def predict_proba(self, x):
        hi = (self._score(x) > self.cut_).astype(float)
        return np.column_stack([1.0 - hi, hi])


def make_detector(panel, market, inputs, min_train=250, refit_every=100):
    return SklearnDetector(
        estimator=ScoreSplit(),
        inputs=resolve_inputs(panel, market, inputs),
        n_states=2,
        schedule=Schedule(min_train=min_train, refit_every=refit_every, skip=25),
        name="score_split",
        labels=("calm", "stress"),
    )
'''

CONFIG = """
name = "mine"

[plugins]
modules = ["{module}"]

[data]
source = "bars.csv"
ohlc_from_close = true

[[data.exog]]
path = "macro/macro.csv"
columns = ["MACRO"]
lag = "1mo"

[detector]
kind = "custom"
target = "{module}:make_detector"
market = "AAA"
features = ["AAA.mom20"]
params = {{ market = "AAA", inputs = ["log_vol_fast", "AAA.mom20", "exog.MACRO"] }}

[costs]
commission_bps = 2.0

[[strategies]]
kind = "static"
name = "equal"
weights = "equal"

[[strategies]]
kind = "regime"
name = "mine_regimes"
table = {{ calm = {{ AAA = 0.8, BBB = 0.2 }}, stress = {{ AAA = 0.2, BBB = 0.8 }} }}
warmup = {{ AAA = 0.5, BBB = 0.5 }}
"""


def _bars(rng: np.random.Generator) -> pd.DataFrame:
    idx = pd.bdate_range("2015-01-01", periods=N_BARS)
    vol = np.where((np.arange(N_BARS) // 120) % 2 == 0, 0.008, 0.025)
    rets = rng.normal(0.0002, 1.0, (N_BARS, 2)) * vol[:, None]
    px = 100.0 * np.exp(np.cumsum(rets, axis=0))
    return pd.DataFrame(px, index=idx, columns=list(SYMS))


def _macro(bars: pd.DataFrame) -> pd.Series:
    """A monthly figure dated at each month end."""
    months = pd.date_range(bars.index[0] - pd.offsets.MonthEnd(1), bars.index[-1], freq="ME")
    return pd.Series(np.sin(np.arange(len(months)) / 2.0) * 3.0 + 5.0, index=months)


def _write(folder: Path, bars: pd.DataFrame, macro: pd.Series, module: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    out = bars.copy()
    out.insert(0, "date", out.index.strftime("%Y-%m-%d"))
    out.to_csv(folder / "bars.csv", index=False)
    (folder / "macro").mkdir(exist_ok=True)
    pd.DataFrame({"date": macro.index.strftime("%Y-%m-%d"), "MACRO": macro.to_numpy()}).to_csv(
        folder / "macro" / "macro.csv", index=False
    )
    (folder / f"{module}.py").write_text(textwrap.dedent(PLUGIN))
    cfg = folder / "run.toml"
    cfg.write_text(CONFIG.format(module=module))
    return cfg


def _backtest(cfg: Path, out: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m engine.cli backtest CONFIG`` from another folder than the config's."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", "backtest", str(cfg), "--out", str(out)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _outputs(out: Path) -> dict[str, pd.DataFrame]:
    return {
        n: pd.read_csv(out / f"{n}.csv", index_col=0, parse_dates=True)
        for n in ("equity", "weights", "regimes")
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """The config run as is, and with prices and releases after a cutoff made noise."""
    base = tmp_path_factory.mktemp("plugins_cfg")
    rng = np.random.default_rng(23)
    bars, macro = _bars(rng), _macro(_bars(np.random.default_rng(23)))
    module = "user_plugins_issue23"
    # the cutoff two bars before a month end: a join reading a release even days before
    # it is known would move bars at or before the cutoff
    months = bars.index.to_period("M")
    last = np.flatnonzero(months[:-1] != months[1:])  # each month's last bar
    cut = int(last[last > 470][0]) - 2
    cutoff = bars.index[cut]
    noisy_bars = bars.copy()
    late = bars.index > cutoff
    noise = np.random.default_rng(7).normal(0.0, 0.05, (int(late.sum()), 2))
    noisy_bars.loc[late] = bars.iloc[cut].to_numpy() * np.exp(np.cumsum(noise, axis=0))
    noisy_macro = macro.copy()
    later = macro.index > cutoff
    noisy_macro[later] = np.random.default_rng(8).normal(0.0, 50.0, int(later.sum()))
    elsewhere = base / "cwd"
    elsewhere.mkdir()
    out: dict[str, object] = {"cut": cut, "bars": bars, "macro": macro}
    for key, (b, m) in {"clean": (bars, macro), "noisy": (noisy_bars, noisy_macro)}.items():
        cfg = _write(base / key, b, m, module)
        proc = _backtest(cfg, base / f"out_{key}", elsewhere)
        assert proc.returncode == 0, proc.stderr[-3000:]
        out[key] = _outputs(base / f"out_{key}")
        out[f"{key}_cfg"] = cfg
        out[f"{key}_stdout"] = proc.stdout
    return out


def test_user_feature_detector_and_monthly_exog_from_the_config_alone(runs):
    res = runs["clean"]
    assert isinstance(res, dict)
    regimes, weights = res["regimes"], res["weights"]
    assert len(regimes) == N_BARS
    labels = set(regimes["label"].dropna().unique())
    assert {"calm", "stress"} <= labels, labels
    assert (regimes["state"] >= 0).sum() > 300  # the user detector spoke after min_train
    # the regime strategy follows the user detector's states: both rows of its table held
    mine = weights[weights["strategy"] == "mine_regimes"].pivot(columns="symbol", values="weight")
    held = {tuple(r) for r in mine.round(2).to_numpy()}
    assert {(0.8, 0.2), (0.2, 0.8)} <= held, held
    assert "mine_regimes" in str(runs["clean_stdout"])
    # the exogenous series as joined: a value dated at a month end is known one calendar
    # month later (Jan 31 -> Feb 28), never before
    cfg = load_config(runs["clean_cfg"])  # type: ignore[arg-type]
    assert cfg.folder == Path(runs["clean_cfg"]).parent.resolve()  # type: ignore[arg-type]
    assert Path(cfg.data.exog[0].path).is_absolute()
    panel = load_panel(cfg.model_copy(update={"plugins": PluginsConfig()}))
    seen = pd.Series(panel.exog[:, panel.exog_names.index("MACRO")], index=panel.index)
    macro = runs["macro"]
    assert isinstance(macro, pd.Series)
    for stamp, value in macro.iloc[2:8].items():
        known = stamp + pd.DateOffset(months=1)
        at = panel.index.searchsorted(known)  # first bar at or after the release is known
        assert seen.iloc[at] == value
        assert seen.iloc[at - 1] != value


def test_the_config_run_has_no_look_ahead(runs):
    cut = runs["cut"]
    assert isinstance(cut, int)
    clean, noisy = runs["clean"], runs["noisy"]
    assert isinstance(clean, dict) and isinstance(noisy, dict)
    bars = runs["bars"]
    assert isinstance(bars, pd.DataFrame)
    cutoff = bars.index[cut]
    for name in ("equity", "weights", "regimes"):
        a, b = clean[name], noisy[name]
        assert (a.index <= cutoff).sum() >= cut + 1
        pd.testing.assert_frame_equal(a[a.index <= cutoff], b[b.index <= cutoff], check_exact=True)
    # not vacuous: the noise after the cutoff moved what came after it
    assert not clean["equity"].iloc[cut + 2 :].equals(noisy["equity"].iloc[cut + 2 :])
    assert not clean["regimes"].iloc[cut + 1 :].equals(noisy["regimes"].iloc[cut + 1 :])


# ------------------------------------------------------------------ errors name the key


def _exog_cfg(tmp_path: Path, **exog: object) -> dict:
    return {"data": {"source": "bundled", "exog": [{"path": "m.csv", "lag": "1d", **exog}]}}


@pytest.mark.parametrize(
    ("exog", "msg"),
    [
        ({"lag": "1m"}, "data.exog.0.lag: lag '1m' is ambiguous: write '1min' for minutes or"),
        ({"lag": 30}, "data.exog.0.lag: lag 30: a number has no unit"),
        ({"columns": []}, "data.exog.0.columns: an empty list"),
        ({"names": ["X"]}, "data.exog.0: names: give columns too"),
        ({"colums": ["X"]}, "data.exog.0.colums: unknown key"),
    ],
)
def test_bad_exog_tables_name_the_key(tmp_path, exog, msg):
    with pytest.raises(ConfigError) as err:
        parse_config(_exog_cfg(tmp_path, **exog))
    assert str(err.value).startswith(f"<config>: {msg}"), str(err.value)


def test_exog_lag_is_required(tmp_path):
    raw = {"data": {"exog": [{"path": "m.csv"}]}}
    with pytest.raises(ConfigError, match=r"^<config>: data.exog.0.lag: missing required key$"):
        parse_config(raw)


def test_exog_files_are_read_from_the_config_folder_and_errors_name_the_key(tmp_path):
    (tmp_path / "m.csv").write_text("date,X\n2004-01-30,1.0\n2004-02-27,2.0\n")
    toml = tmp_path / "c.toml"
    base = '[data]\nsymbols = ["SPX", "UST10"]\nstart = 2004-01-01\nend = 2004-06-30\n'
    toml.write_text(base + '[[data.exog]]\npath = "m.csv"\nlag = "1d"\n')
    panel = load_panel(load_config(toml))
    assert panel.exog_names[-1] == "X"  # after the bundled panel's own series
    x = pd.Series(panel.exog[:, -1], index=panel.index)
    assert np.isnan(x.loc[:"2004-01-30"]).all() and x.loc["2004-02-02"] == 1.0
    toml.write_text(base + '[[data.exog]]\npath = "nope.csv"\nlag = "1d"\n')
    with pytest.raises(ConfigError, match=r"^data.exog.0.path: .*nope.csv: exogenous file not"):
        load_panel(load_config(toml))
    toml.write_text(base + '[[data.exog]]\npath = "m.csv"\ncolumns = ["Y"]\nlag = "1d"\n')
    with pytest.raises(ConfigError, match=r"^data.exog.0.columns: 'Y' is not a column .*has X"):
        load_panel(load_config(toml))
    two = '[[data.exog]]\npath = "m.csv"\nlag = "1d"\n'
    toml.write_text(base + two + two)
    with pytest.raises(ConfigError, match=r"^data.exog.1.columns: series 'X' is already"):
        load_panel(load_config(toml))


def test_a_missing_plugin_module_names_the_key_and_the_folder(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('[plugins]\nmodules = ["no_such_plugin_mod23"]\n')
    cfg = load_config(toml)
    with pytest.raises(ConfigError) as err:
        import_plugins(cfg)
    assert str(err.value) == (
        f"plugins.modules.0: no module 'no_such_plugin_mod23': put no_such_plugin_mod23.py "
        f"(or a package folder) in {tmp_path.resolve()} (the config's folder) or install it"
    )
    (tmp_path / "broken_plugin_mod23.py").write_text("raise RuntimeError('boom')\n")
    toml.write_text('[plugins]\nmodules = ["broken_plugin_mod23"]\n')
    with pytest.raises(ConfigError, match=r"^plugins.modules.0: importing 'broken_plugin_mod23' "):
        import_plugins(load_config(toml))
    with pytest.raises(ConfigError, match=r"plugins.modules: 0: 'my.py' is not a module name"):
        parse_config({"plugins": {"modules": ["my.py"]}})


# ------------------------------------------------------------------ --log-level anywhere


def test_log_level_is_accepted_after_the_subcommand(tmp_path, capsys):
    from engine.cli import hoist_global_options, main

    assert hoist_global_options(["backtest", "c.toml", "--log-level", "info", "--out", "x"]) == [
        "--log-level",
        "info",
        "backtest",
        "c.toml",
        "--out",
        "x",
    ]
    assert hoist_global_options(["init", "a.csv", "--log-level=ERROR", "--json-logs"]) == [
        "--log-level=ERROR",
        "--json-logs",
        "init",
        "a.csv",
    ]
    toml = tmp_path / "c.toml"
    toml.write_text('[data]\nsource = "missing.csv"\n')
    # WARNING: the default level (a global setting that stays for later tests in the process)
    assert main(["backtest", str(toml), "--log-level", "warning"]) == 2
    err = capsys.readouterr().err
    assert "missing.csv" in err and "unrecognized arguments" not in err
    assert main(["backtest", str(toml), "--log-level", "LOUD"]) == 2
    assert "invalid log level 'LOUD'" in capsys.readouterr().err


def test_named_sources_are_not_read_as_paths_from_the_config_folder(tmp_path: Path) -> None:
    """``bundled:*`` and broker sources (``alpaca``) are names, not files beside the config."""
    from engine.config import load_config

    for src in ("bundled:classic", "alpaca"):
        cfg = tmp_path / "c.toml"
        extra = '\nsymbols = ["SPY"]' if src == "alpaca" else ""
        cfg.write_text(f'[data]\nsource = "{src}"{extra}\n')
        assert load_config(cfg).data.source == src
    cfg.write_text('[data]\nsource = "bars.csv"\n')
    assert load_config(cfg).data.source == str(tmp_path.resolve() / "bars.csv")

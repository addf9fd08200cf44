"""No silent wrong answer, round 2 (issue 23): each bad input is a one-line error saying
what to change, or documented handling giving the hand-computed right number."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from structlog.testing import capture_logs

from engine.api import run_backtest
from engine.cli import main
from engine.config import ConfigError, parse_config
from engine.features.exog import asof_join, read_series
from engine.ground.bars import BarPanel, DataError
from tests.conftest import random_panel


def _cfg(strategies: list[dict], **over: object) -> dict:
    return {
        "detector": {"kind": "none"},
        "costs": {"commission_bps": 0.0},
        "strategies": strategies,
        **over,
    }


def _static(weights: object, **kw: object) -> dict:
    return {"kind": "static", "name": "s", "weights": weights, **kw}


def _panel(close: np.ndarray, start: str = "2001-01-01", symbols=None) -> BarPanel:
    close = np.asarray(close, dtype=float)
    if close.ndim == 1:
        close = close[:, None]
    syms = symbols or tuple(f"A{j}" for j in range(close.shape[1]))
    idx = pd.bdate_range(start, periods=close.shape[0])
    return BarPanel(idx, tuple(syms), close, close, close, close, np.full_like(close, 1e9))


# ------------------------------------------------------------------ costs


def test_slippage_of_a_whole_price_or_more_is_refused():
    with pytest.raises(ConfigError) as err:
        parse_config(_cfg([_static({"A0": 1.0})], costs={"slippage_bps": 20000}))
    assert str(err.value) == (
        "<config>: costs.slippage_bps: 20000 bps is 200% of the price; a cost per trade must "
        "be below 10,000 bps (100%): 5 means 0.05%"
    )
    cfg = parse_config(
        _cfg([_static({"A0": 1.0})], costs={"symbols": {"A0": {"half_spread_bps": 1e4}}})
    )
    with pytest.raises(ConfigError, match=r"costs.symbols.A0.half_spread_bps: 10000 bps is 100%"):
        cfg.costs.per_symbol()
    parse_config(_cfg([_static({"A0": 1.0})], costs={"slippage_bps": 9999}))  # allowed


# ------------------------------------------------------------------ never traded


@pytest.mark.parametrize(
    ("over", "key"),
    [
        ({"costs": {"lot_size": 100000}}, "lot_size = 100000"),
        (
            {"execution": {"initial_cash": 0.01}, "costs": {"commission_min": 1.0}},
            "initial_cash = 0.01",
        ),
    ],
)
def test_a_strategy_that_never_trades_is_flagged_and_said(over, key):
    cfg = _cfg([_static({"A0": 1.0})], **over)
    cfg["costs"] = {"commission_bps": 0.0, **over.get("costs", {})}
    with capture_logs() as logs:
        res = run_backtest(cfg, panel=random_panel(60, 2))
    m = res.metrics["s"]
    assert m["n_trades"] == 0 and m["total_return"] == 0.0
    assert m["never_traded"] == 1.0
    warn = [e for e in logs if e["event"] == "strategy.never_traded"]
    assert len(warn) == 1 and warn[0]["strategy"] == "s" and key in warn[0]["note"]


def test_an_all_cash_strategy_is_not_flagged():
    res = run_backtest(_cfg([_static({"A0": 0.0})]), panel=random_panel(60, 2))
    assert "never_traded" not in res.metrics["s"]


# ------------------------------------------------------------------ Sharpe of float noise


def test_all_cash_sharpe_against_a_constant_rate_cash_index_is_nan():
    t = np.arange(300)
    cash = 100.0 * (1.0 + 0.02 / 252) ** t  # a constant-rate cash index
    rng = np.random.default_rng(1)
    a0 = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    panel = _panel(np.column_stack([a0, cash]), symbols=("A0", "CASH"))
    res = run_backtest(_cfg([_static({"A0": 0.0}), _static({"A0": 1.0}, name="eq")]), panel=panel)
    m = res.metrics["s"]
    assert np.isnan(m["sharpe"]) and np.isnan(m["sharpe_rf0"])  # was -2.53e13
    # a strategy that moves keeps its Sharpe over the CASH returns (hand formula)
    r = res.runs["eq"].equity.pct_change().dropna()
    ex = r - pd.Series(cash, index=panel.index).pct_change().dropna()
    want = ex.mean() / ex.std(ddof=1) * np.sqrt(252)
    assert res.metrics["eq"]["sharpe"] == pytest.approx(want, rel=1e-9)


# ------------------------------------------------------------------ rate files


def _rates(tmp_path: Path, text: str) -> str:
    f = tmp_path / "rates.csv"
    f.write_text(text)
    return f"file:{f}"


def test_a_rate_file_in_percent_is_refused_with_the_hint(tmp_path):
    spec = _rates(tmp_path, "timestamp,rate\n2000-12-29,2.5\n2001-02-01,2.75\n")
    with pytest.raises(ConfigError) as err:
        run_backtest(
            _cfg([_static({"A0": 1.0})], metrics={"risk_free": spec}), panel=random_panel(60, 2)
        )
    assert str(err.value) == (
        f"metrics.risk_free: {spec[5:]}: rate 2.5 on 2000-12-29 is out of range (-0.5, 1); "
        "it looks like a percentage: divide the column by 100 (2.5% is 0.025)"
    )


def test_a_rate_file_starting_after_the_run_is_refused(tmp_path):
    spec = _rates(tmp_path, "timestamp,rate\n2001-02-01,0.02\n")
    with pytest.raises(ConfigError) as err:
        run_backtest(
            _cfg([_static({"A0": 1.0})], metrics={"risk_free": spec}), panel=random_panel(60, 2)
        )
    assert str(err.value) == (
        f"metrics.risk_free: {spec[5:]}: the first rate is on 2001-02-01, after the run starts "
        "(2001-01-01); give rates from the start (or set data.start = 2001-02-01)"
    )


def test_a_rate_file_in_fractions_gives_the_hand_computed_sharpe(tmp_path):
    spec = _rates(tmp_path, "timestamp,rate\n2001-01-01,0.02\n")
    panel = random_panel(60, 2)
    res = run_backtest(_cfg([_static({"A0": 1.0})], metrics={"risk_free": spec}), panel=panel)
    r = res.runs["s"].equity.pct_change().dropna()
    ex = r - (1.02 ** (1 / 252) - 1)
    assert res.metrics["s"]["sharpe"] == pytest.approx(ex.mean() / ex.std(ddof=1) * np.sqrt(252))


# ------------------------------------------------------------------ strategies


def test_inverse_vol_with_a_zero_vol_asset_is_refused():
    rng = np.random.default_rng(2)
    a0 = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 80)))
    panel = _panel(np.column_stack([a0, np.full(80, 50.0)]))
    cfg = _cfg([{"kind": "inverse_vol", "name": "iv", "weights": "equal"}])
    with pytest.raises(ConfigError) as err:
        run_backtest(cfg, panel=panel)
    assert str(err.value) == (
        f"strategies.iv: inverse_vol: A1 has zero volatility (close 50 on every bar from "
        f"2001-01-01 to {panel.index[-1].date()}), so 1/vol is undefined; leave A1 out of "
        'weights or use kind = "static" for it'
    )


def test_all_zero_weights_with_normalize_exit_2(tmp_path, capsys):
    with pytest.raises(ConfigError) as err:
        run_backtest(
            _cfg([_static({"A0": 0.0, "A1": 0.0}, normalize=True)]), panel=random_panel(40, 2)
        )
    assert str(err.value) == (
        "strategies.s: normalize = true: every weight is 0, nothing to rescale to a sum of 1 "
        "(give a non-zero weight, or normalize = false to hold cash)"
    )
    p = tmp_path / "z.toml"
    p.write_text(
        '[detector]\nkind = "none"\n[[strategies]]\nkind = "static"\nname = "s"\n'
        "normalize = true\nweights = { SPX = 0.0 }\n"
    )
    assert main(["backtest", str(p), "--out", str(tmp_path / "o"), "--no-report"]) == 2
    err_lines = capsys.readouterr().err.strip().splitlines()
    assert err_lines[-1].startswith("error: strategies.s: normalize = true: every weight is 0")


# ------------------------------------------------------------------ exogenous lags


def _monthly(tmp_path: Path) -> pd.DataFrame:
    f = tmp_path / "macro.csv"
    f.write_text("date,CPI\n2020-01-31,1.0\n2020-02-29,2.0\n2020-03-31,3.0\n")
    return read_series(f)


@pytest.mark.parametrize(
    ("lag", "msg"),
    [
        ("1m", "exogenous lag '1m' is ambiguous: write '1min' for minutes or '1mo' for months"),
        ("1M", "exogenous lag '1M' is ambiguous: write '1min' for minutes or '1mo' for months"),
        (
            30,
            "exogenous lag 30: a number has no unit; write it in time, e.g. '1d', '1mo' "
            "(units: y, q, mo (months), w, d, h, min, s)",
        ),
    ],
)
def test_ambiguous_or_unitless_lags_are_refused(tmp_path, lag, msg):
    idx = pd.date_range("2020-01-30", "2020-05-20", freq="D")
    with pytest.raises(DataError) as err:
        asof_join(idx, _monthly(tmp_path), lag=lag)
    assert str(err.value) == msg


def test_a_one_month_lag_is_a_calendar_month(tmp_path):
    idx = pd.date_range("2020-01-30", "2020-05-20", freq="D")
    s = pd.Series(asof_join(idx, _monthly(tmp_path), lag="1mo")[:, 0], index=idx)
    assert np.isnan(s["2020-02-28"]) and s["2020-02-29"] == 1.0  # Jan 31 + 1 month
    assert s["2020-03-28"] == 1.0 and s["2020-03-29"] == 2.0  # Feb 29 + 1 month
    assert s["2020-04-29"] == 2.0 and s["2020-04-30"] == 3.0  # Mar 31 + 1 month


# ------------------------------------------------------------------ detector inputs


def test_a_constant_market_price_is_refused_at_fit():
    rng = np.random.default_rng(3)
    a1 = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.01, 200)))
    panel = _panel(np.column_stack([np.full(200, 100.0), a1]))
    cfg = _cfg(
        [_static({"A0": 0.5})],
        detector={"kind": "hmm", "market": "A0", "min_train": 60, "skip": 5},
    )
    with pytest.raises(ConfigError) as err:
        run_backtest(cfg, panel=panel)
    idx = panel.index
    assert str(err.value) == (
        f"detector: input 'logret' is constant from {idx[5].date()} to {idx[59].date()} "
        "(the training window, bars 5 to 59): nothing to fit; use a market whose price "
        "moves (detector.market) or other detector.features"
    )


# ------------------------------------------------------------------ leverage financing


def test_leverage_needs_a_financing_rate():
    with pytest.raises(ConfigError) as err:
        parse_config(
            _cfg([_static({"A0": 2.0})], execution={"allow_leverage": True, "max_gross": 2.0})
        )
    assert str(err.value) == (
        "<config>: execution: financing_rate: leverage borrows cash; set the annual rate it "
        "pays (e.g. financing_rate = 0.05, or 0 to borrow for free)"
    )


@pytest.mark.parametrize(
    ("rate", "spread", "annual"), [(0.05, 0.0, 0.05), (0.04, 100.0, 0.05), (0.0, 0.0, 0.0)]
)
def test_negative_cash_pays_the_financing_rate(rate, spread, annual):
    t_len = 60
    panel = _panel(np.full(t_len, 100.0))  # a constant price: only financing moves equity
    cfg = _cfg(
        [_static({"A0": 2.0}, rebalance=None)],
        execution={
            "allow_leverage": True,
            "max_gross": 2.0,
            "financing_rate": rate,
            "financing_spread_bps": spread,
        },
    )
    run = run_backtest(cfg, panel=panel).runs["s"]
    # bar 0 decides 20,000 shares (2 x 1,000,000 / 100), bar 1 fills them: cash -1,000,000;
    # every later bar the loan grows by annual / 252
    cash = -1_000_000.0 * (1.0 + annual / 252) ** (t_len - 2)
    assert run.cash.iloc[-1] == pytest.approx(cash, rel=1e-12)
    assert run.equity.iloc[-1] == pytest.approx(2_000_000.0 + cash, rel=1e-12)


# ------------------------------------------------------------------ compiled policies


class ReadsVolFlagOff:
    """A compiled policy resolving a built-in feature while saying it reads none."""

    rebalance = "M"
    uses_builtin_features = False

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def policy(self):
        from strategies.static import StaticAllocation

        return StaticAllocation("x").policy

    def params(self, symbols, labels, names):
        names.feature("A0", "vol_slow")
        return StaticAllocation_params(symbols)

    def state_size(self) -> int:
        from engine.core.policy_nb import N_POLICY_STATE

        return N_POLICY_STATE


def StaticAllocation_params(symbols):
    from strategies.static import StaticAllocation

    return StaticAllocation("x", {"A0": 1.0}).params(symbols, ())


def test_a_compiled_policy_reading_builtins_with_the_flag_off_is_refused():
    cfg = _cfg(
        [{"kind": "custom", "name": "f", "target": "tests.app.test_inputs_round2:ReadsVolFlagOff"}]
    )
    with pytest.raises(ConfigError) as err:
        run_backtest(cfg, panel=random_panel(60, 2))
    assert str(err.value) == (
        "strategies.f: strategy 'f' reads the built-in feature A0.vol_slow but says "
        "uses_builtin_features = False, so the engine does not compute it (the policy would "
        "read values that are not the feature); set uses_builtin_features = True"
    )


# ------------------------------------------------------------------ data


def _split_csv(tmp_path: Path, adj: bool) -> Path:
    idx = pd.bdate_range("2020-08-24", periods=10)
    close = np.array([480.0, 490, 495, 500, 499.23, 129.04, 130, 131, 129, 128])
    df = pd.DataFrame({"date": idx.strftime("%Y-%m-%d"), "open": close, "high": close * 1.01})
    df["low"], df["close"] = close * 0.99, close
    if adj:
        df["Adj Close"] = np.where(np.arange(10) < 5, close / 4.0, close)
    f = tmp_path / "AAPL.csv"
    df.to_csv(f, index=False)
    return f


def test_an_unadjusted_split_is_refused_with_the_symbol_and_dates(tmp_path, capsys):
    f = _split_csv(tmp_path, adj=False)
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'[data]\nsource = "{f}"\n[detector]\nkind = "none"\n'
        '[[strategies]]\nkind = "static"\nname = "s"\nweights = "equal"\n'
    )
    assert main(["backtest", str(toml), "--out", str(tmp_path / "o"), "--no-report"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        f"error: {f}: symbol AAPL: close moves -74.2% from 2020-08-28 (499.23) to 2020-08-31 "
        "(129.04), a factor beyond data.max_jump = 1.9: usually an unadjusted split; give "
        "split-adjusted prices (an 'Adj Close' column is used when present) or raise "
        "data.max_jump"
    )


def test_adj_close_is_used_when_present_and_said(tmp_path):
    import data_feeds

    f = _split_csv(tmp_path, adj=True)
    with capture_logs() as logs:
        p = data_feeds.load_csv(f, max_jump=1.9)
    close = np.array([480.0, 490, 495, 500, 499.23, 129.04, 130, 131, 129, 128])
    adj = np.where(np.arange(10) < 5, close / 4.0, close)
    np.testing.assert_allclose(p.close[:, 0], adj)
    np.testing.assert_allclose(p.open[:, 0], adj)  # open = close here, scaled alike
    np.testing.assert_allclose(p.high[:, 0], adj * 1.01)
    assert any(e["event"] == "data.adjusted_prices" and e["column"] == "Adj Close" for e in logs)


def test_daily_bars_with_a_utc_offset_are_their_local_dates(tmp_path):
    import data_feeds
    from engine.ground.frequency import infer_frequency

    idx = pd.bdate_range("2020-01-06", periods=300)
    close = 100 * np.exp(np.cumsum(np.random.default_rng(4).normal(0, 0.01, 300)))
    f = tmp_path / "x.csv"
    pd.DataFrame(
        {"timestamp": [d.strftime("%Y-%m-%dT00:00:00+01:00") for d in idx], "close": close}
    ).to_csv(f, index=False)
    p = data_feeds.load_csv(f, ohlc_from_close=True)
    assert list(p.index) == list(idx)  # Mondays stay Mondays
    assert p.tz is None
    assert infer_frequency(p.index).periods_per_year == 252.0


def test_missing_sessions_annualise_on_the_real_calendar_span():
    rng = np.random.default_rng(5)
    full = pd.bdate_range("2010-01-01", periods=3 * 261)
    keep = np.sort(rng.choice(len(full), size=int(0.7 * len(full)), replace=False))
    keep[0], keep[-1] = 0, len(full) - 1
    keep = np.unique(keep)
    idx = full[keep]
    close = 100 * np.exp(np.cumsum(rng.normal(-0.0003, 0.01, len(idx))))
    c = close[:, None]
    panel = BarPanel(idx, ("A0",), c, c, c, c, np.full_like(c, 1e9))
    with capture_logs() as logs:
        res = run_backtest(_cfg([_static({"A0": 1.0}, rebalance=None)]), panel=panel)
    eq = res.runs["s"].equity
    years = (idx[-1] - idx[0]).days / 365.25
    assert res.metrics["s"]["cagr"] == pytest.approx((eq.iloc[-1] / eq.iloc[0]) ** (1 / years) - 1)
    ppy = (len(idx) - 1) / years
    r = eq.pct_change().dropna()
    assert res.metrics["s"]["volatility"] == pytest.approx(r.std(ddof=1) * np.sqrt(ppy))
    assert any(e["event"] == "data.sessions_missing" for e in logs)


# ------------------------------------------------------------------ run folders


def _run_toml(tmp_path: Path, weights: str = '"equal"') -> str:
    panel = random_panel(80, 2, seed=7)
    df = pd.DataFrame({"date": panel.index.strftime("%Y-%m-%d")})
    for j, s in enumerate(panel.symbols):
        df[s] = panel.close[:, j]
    f = tmp_path / "wide.csv"
    df.to_csv(f, index=False)
    toml = tmp_path / "run.toml"
    toml.write_text(
        f'[data]\nsource = "{f}"\nohlc_from_close = true\n[detector]\nkind = "none"\n'
        f'[[strategies]]\nkind = "static"\nname = "a"\nweights = {weights}\n'
        '[[strategies]]\nkind = "static"\nname = "b"\nweights = { A0 = 1.0 }\n'
    )
    return str(toml)


def _backtest(toml: str, out: Path, *extra: str) -> int:
    return main(["backtest", toml, "--out", str(out), *extra])


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def test_a_sigint_during_save_leaves_the_previous_run_intact(tmp_path, capsys, monkeypatch):
    import os
    import signal

    from engine.core.result import BacktestResult

    out = tmp_path / "run"
    assert _backtest(_run_toml(tmp_path), out, "--no-report") == 0
    before = _snapshot(out)
    original = BacktestResult.save

    def save_then_sigint(self, where):
        original(self, where)  # every new file written (into the temporary folder) ...
        os.kill(os.getpid(), signal.SIGINT)  # ... and the user presses Ctrl-C

    monkeypatch.setattr(BacktestResult, "save", save_then_sigint)
    toml2 = _run_toml(tmp_path, weights="{ A1 = 1.0 }")
    # Python's own Ctrl-C handler, whatever the test runner set (pytest-xdist's workers
    # ignore SIGINT so that Ctrl-C reaches only the controlling process)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert _backtest(toml2, out, "--no-report") == 130
    finally:
        signal.signal(signal.SIGINT, previous)
    assert _snapshot(out) == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".run")) == []


def test_a_new_run_removes_the_stale_report(tmp_path, capsys):
    out = tmp_path / "run"
    toml = _run_toml(tmp_path)
    assert _backtest(toml, out) == 0 and (out / "report.html").is_file()
    (out / "notes.txt").write_text("mine")
    assert _backtest(toml, out, "--no-report") == 0
    assert not (out / "report.html").exists()  # not left beside results it doesn't show
    assert (out / "notes.txt").read_text() == "mine"  # files the engine didn't write: kept


def _report_error(out: Path, capsys) -> tuple[int, list[str]]:
    code = main(["report", str(out)])
    return code, capsys.readouterr().err.strip().splitlines()


def test_report_refuses_a_truncated_or_mixed_run_folder(tmp_path, capsys):
    toml = _run_toml(tmp_path)
    out, other = tmp_path / "run", tmp_path / "other"
    assert _backtest(toml, out, "--no-report") == 0
    assert _backtest(_run_toml(tmp_path, weights="{ A1 = 0.5 }"), other, "--no-report") == 0
    capsys.readouterr()
    eq = (out / "equity.csv").read_bytes()
    (out / "equity.csv").write_bytes(eq[: len(eq) // 2])  # cut mid-number
    code, err = _report_error(out, capsys)
    assert code == 2 and len(err) == 1
    assert err[0] == (
        f"error: {out}: equity.csv is {len(eq) // 2:,} bytes, the run wrote {len(eq):,} "
        "(cut short or from another run); rerun the backtest"
    )
    (out / "equity.csv").write_bytes(eq)
    (out / "manifest.json").unlink()  # a folder from before manifests: the tables checked
    (out / "equity.csv").write_bytes(eq[: len(eq) // 2])
    code, err = _report_error(out, capsys)
    assert code == 2 and len(err) == 1 and "rerun the backtest" in err[0]
    (out / "equity.csv").write_bytes(eq)
    w = pd.read_csv(other / "weights.csv")
    w["strategy"] = w["strategy"].replace({"a": "c"})
    w.to_csv(out / "weights.csv", index=False)
    code, err = _report_error(out, capsys)
    assert code == 2 and err == [
        f"error: {out}: weights.csv is not from the run of equity.csv (strategies b, c vs a, "
        "b, 80 vs 80 bars); rerun the backtest"
    ]


@pytest.mark.parametrize(
    ("name", "text", "what"),
    [
        ("meta.json", "{not json", "meta.json: unreadable (JSONDecodeError"),
        ("fills.csv", "", "fills.csv: unreadable (EmptyDataError"),
        ("regimes.csv", "timestamp,regime\n", "regimes.csv has 0 bars, equity.csv 80"),
    ],
)
def test_report_on_a_damaged_folder_is_exit_2(tmp_path, capsys, name, text, what):
    out = tmp_path / "run"
    assert _backtest(_run_toml(tmp_path), out, "--no-report") == 0
    capsys.readouterr()
    (out / "manifest.json").unlink()
    (out / name).write_text(text)
    code, err = _report_error(out, capsys)
    assert code == 2 and len(err) == 1 and what in err[0], err


# ------------------------------------------------------------------ advise


def _advise_config(tmp_path: Path) -> str:
    t = np.arange(400)
    rng = np.random.default_rng(8)
    a0 = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, 400)))
    cash = 10.0 * (1 + 0.02 / 252) ** t
    idx = pd.bdate_range("2020-01-01", periods=400)
    f = tmp_path / "px.csv"
    pd.DataFrame({"date": idx.strftime("%Y-%m-%d"), "A0": a0, "CASH": cash}).to_csv(f, index=False)
    toml = tmp_path / "adv.toml"
    toml.write_text(
        f'[data]\nsource = "{f}"\nohlc_from_close = true\n[detector]\nkind = "none"\n'
        '[[strategies]]\nkind = "static"\nname = "s"\nweights = { A0 = 0.5 }\n'
    )
    return str(toml)


def test_advise_cash_rows_duplicates_and_the_assumed_portfolio(tmp_path, capsys):
    toml = _advise_config(tmp_path)
    pos = tmp_path / "pos.csv"
    pos.write_text("symbol,qty\nA0,10\nCASH,5000\n")
    args = ["advise", toml, "--as-of", "2021-07-01", "--positions", str(pos)]
    assert main(args) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: positions: the CSV row CASH,5000 is ambiguous: the data has a symbol CASH (a "
        "CSV 'cash' row is currency, a TOML [positions] CASH is units of it); write currency "
        "as the row currency,5000 (or --cash 5000), units of CASH in a TOML file: "
        "[positions] CASH = 5000"
    )
    pos.write_text("symbol,qty\nA0,10\nA0,5\n")
    assert main(args) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {pos}: row 3: A0 is listed twice (also row 2); give one row per symbol"
    )
    pos.write_text("symbol,qty\nA0,10\ncurrency,5000\n")
    assert main([*args, "--json"]) in (0, 3)
    import json

    a = json.loads(capsys.readouterr().out)
    assert a["cash"] == 5000.0 and a["portfolio_assumed"] is False
    assert a["portfolio_value"] == pytest.approx(5000.0 + 10 * a["prices"]["A0"])
    assert main(["advise", toml, "--as-of", "2021-07-01"]) in (0, 3)
    out = capsys.readouterr().out
    assert (
        "portfolio value 1,000,000.00 (uninvested cash 1,000,000.00) - ASSUMED: all cash at "
        "execution.initial_cash; give --positions or --cash"
    ) in out


# ------------------------------------------------------------------ init on your own files


def test_init_on_a_wide_close_only_csv_then_backtest_equals_a_pandas_replica(tmp_path, capsys):
    rng = np.random.default_rng(9)
    idx = pd.bdate_range("2018-01-01", periods=700)
    syms = ["AAPL", "JPM", "XOM"]
    px = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.015, (700, 3)), axis=0))
    f = tmp_path / "stocks.csv"
    pd.DataFrame(px, columns=syms).assign(date=idx.strftime("%Y-%m-%d"))[["date", *syms]].to_csv(
        f, index=False
    )
    toml = tmp_path / "cfg.toml"
    assert main(["init", str(f), "--out", str(toml)]) == 0
    out = tmp_path / "run"
    assert main(["backtest", str(toml), "--out", str(out), "--no-report"]) == 0
    equity = pd.read_csv(out / "equity.csv", index_col=0, parse_dates=True)["equal_weight"]
    # replica: equal weights decided at a month's first close (and the first bar), filled at
    # the next bar's open (= close here), the default 5 bps commission, sells first, buys
    # scaled down to the cash left (no leverage)
    close = pd.DataFrame(px, index=idx, columns=syms).to_numpy()
    c = 5e-4
    cash, qty = 1_000_000.0, np.zeros(3)
    pending = None
    values = []
    month = None
    for t in range(len(idx)):
        p = close[t]
        if pending is not None:
            trade = pending - qty
            sells = np.minimum(trade, 0.0)
            cash += -(sells @ p) * (1 - c)
            qty = qty + sells
            buys = np.maximum(trade, 0.0)
            need = (buys @ p) * (1 + c)
            if need > cash:
                buys = buys * (cash / need * (1 - 1e-9))
            cash -= (buys @ p) * (1 + c)
            qty = qty + buys
            pending = None
        value = cash + qty @ p
        values.append(value)
        if month != idx[t].month:
            month = idx[t].month
            pending = value / 3 / p
    np.testing.assert_allclose(equity.to_numpy(), np.array(values), rtol=1e-9)

"""A chunked compiled run equals the whole-panel run bit for bit, and refuses what it can't do."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numba as nb
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.backtest import prepare, run_strategy_raw
from engine.core.chunked import period_flags, run_chunked
from engine.core.spec import CostModel, Execution, Smoothing, cost_table, new_period_flags
from engine.ground import layout as L
from engine.ground.bars import BarPanel, DataError
from engine.regimes.clustering import KMeansDetector
from engine.regimes.hmm import GaussianHMMDetector
from engine.regimes.inputs import Inputs, Schedule, resolve_inputs
from engine.regimes.rule import NoDetector, RuleDetector
from strategies.regime_switching import RegimeSwitching
from strategies.static import StaticAllocation
from tests.conftest import random_panel

T_LEN = 311
PANEL = random_panel(T_LEN, 4, seed=3, volume=2e4)  # thin volume: partial fills carry over
RULE = RuleDetector(market=0, history=60, min_history=20)
COSTS = cost_table(
    PANEL.symbols,
    CostModel(commission_bps=2.0, half_spread_bps=1.0, slippage_bps=1.0, participation=0.05),
)
EXECUTION = Execution(periods_per_year=252.0)
SMOOTH = Smoothing(0.0, 2, 2)
REGIME = RegimeSwitching(
    "regime",
    table={
        "calm": {"A0": 0.7, "A1": 0.3},
        "volatile": {"A0": 0.3, "A1": 0.5, "A2": 0.2},
        "crisis": {"A1": 0.4, "A3": 0.6},
    },
    warmup={"A0": 0.5, "A1": 0.5},
    rebalance="W",
    on_change=True,
)
STATIC = StaticAllocation("static", {"A0": 0.4, "A1": 0.3, "A2": 0.2, "A3": 0.1}, "M")
DRIFT = StaticAllocation("drift", {"A0": 0.5, "A3": 0.5}, None, drift=0.02)
INVVOL = StaticAllocation("invvol", "equal", "Q", inverse_vol=True)


def chunks_of(panel: BarPanel, size: int) -> list[BarPanel]:
    return [
        panel.take(np.arange(a, min(a + size, panel.n_bars))) for a in range(0, panel.n_bars, size)
    ]


def whole(panel: BarPanel, detector, strategy) -> tuple:
    prep = prepare(panel, detector, COSTS, EXECUTION, smoothing=SMOOTH)
    return run_strategy_raw(prep, strategy)


def assert_same(res, name: str, ref) -> None:
    """Every output of a chunked run equals the whole-panel run's (a RawRun), bit for bit."""
    run = res.runs[name]
    assert np.array_equal(run.equity, ref.equity)
    assert np.array_equal(run.cash, ref.cash)
    assert np.array_equal(run.costs, ref.costs)
    assert np.array_equal(run.fills, ref.fills)
    assert np.array_equal(res.post, ref.post)
    assert np.array_equal(res.raw, ref.raw)
    assert np.array_equal(res.smoothed, ref.smoothed)
    assert np.array_equal(run.decision_bars, ref.decision_bars)
    assert np.array_equal(run.targets, ref.targets)
    assert np.array_equal(run.orders, ref.orders)


REFS = {(RULE.name, s.name): whole(PANEL, RULE, s) for s in (REGIME, STATIC, DRIFT, INVVOL)}
REFS.update({("none", s.name): whole(PANEL, NoDetector(), s) for s in (STATIC, DRIFT)})


@pytest.mark.parametrize("size", [1, 2, 13, 97, T_LEN - 1, T_LEN, 10 * T_LEN])
def test_chunked_equals_whole_bit_for_bit(size):
    res = run_chunked(
        chunks_of(PANEL, size),
        RULE,
        COSTS,
        [REGIME, STATIC, DRIFT, INVVOL],
        EXECUTION,
        smoothing=SMOOTH,
    )
    assert res.n_chunks == -(-T_LEN // size)
    assert res.index.equals(PANEL.index)
    for s in (REGIME, STATIC, DRIFT, INVVOL):
        assert_same(res, s.name, REFS[(RULE.name, s.name)])


def test_the_reference_run_trades_partially_and_changes_regime():
    """The parity above covers what matters: carried-over partial fills, several regimes,
    decisions on calendar, regime-change and drift triggers."""
    ref = REFS[(RULE.name, REGIME.name)]
    smoothed, fills = ref.smoothed, ref.fills
    assert len(np.unique(smoothed[smoothed >= 0])) >= 2
    assert len(fills) > 20
    n_fills_per_bar = np.bincount(fills[:, L.R_BAR].astype(int), minlength=T_LEN)
    placed = (np.abs(ref.orders).sum(axis=1) > 0).sum()
    assert (n_fills_per_bar[1:] > 0).sum() > placed  # partial fills carried to later bars
    assert len(REFS[(RULE.name, DRIFT.name)].decision_bars) > 2


@settings(max_examples=25, deadline=None)
@given(
    cuts=st.lists(st.integers(1, T_LEN - 1), max_size=8, unique=True),
    det=st.sampled_from(["rule", "none"]),
    strat=st.sampled_from([REGIME, STATIC, DRIFT]),
)
def test_chunked_parity_at_any_cuts(cuts, det, strat):
    bounds = [0, *sorted(cuts), T_LEN]
    chunks = [PANEL.take(np.arange(a, b)) for a, b in itertools.pairwise(bounds)]
    detector = RULE if det == "rule" else NoDetector()
    if det == "none" and strat is REGIME:
        strat = DRIFT
    res = run_chunked(iter(chunks), detector, COSTS, strat, EXECUTION, smoothing=SMOOTH)
    assert_same(res, strat.name, REFS[(detector.name, strat.name)])


@settings(max_examples=40, deadline=None)
@given(
    gaps=st.lists(st.integers(1, 40 * 3600), min_size=3, max_size=60),
    cut=st.integers(1, 59),
    freq=st.sampled_from(["D", "W", "M", "Q", "Y", None]),
)
def test_period_flags_at_joins_match_the_whole_history(gaps, cut, freq):
    ts = (np.cumsum(gaps) * 10**9 * 3600).astype(np.int64)  # up to 40 days apart
    cut = min(cut, len(ts) - 1)
    ref = new_period_flags(ts, freq)
    a = period_flags(ts[:cut], freq, None)
    prev = None if freq is None else int(np.asarray(pd.DatetimeIndex(ts[cut - 1 : cut]).asi8)[0])
    from engine.core.spec import period_keys

    key = None if prev is None else int(period_keys(np.array([prev]), freq)[0])
    b = period_flags(ts[cut:], freq, key)
    assert np.array_equal(np.concatenate([a, b]), ref)


def test_output_is_o_t_not_t_by_n():
    res = run_chunked(chunks_of(PANEL, 50), NoDetector(), COSTS, STATIC, EXECUTION)
    run = res.runs["static"]
    assert run.targets.shape[0] == len(run.decision_bars) < T_LEN // 10
    assert res.equity.shape == (T_LEN, 1)
    fills = res.fills
    assert len(fills) == len(run.fills) and set(fills["symbol"]) <= set(PANEL.symbols)
    assert (fills["timestamp"].to_numpy() == PANEL.index[run.fills[:, L.R_BAR].astype(int)]).all()
    assert list(res.regimes["label"].unique()) == ["all"]


HMM_ONCE = GaussianHMMDetector(
    inputs=resolve_inputs(PANEL, "A0", ("logret", "log_vol_fast")),
    n_states=2,
    schedule=Schedule(min_train=150, refit_every=0, skip=21),
    n_restarts=1,
    n_iter=20,
)
HMM_REGIME = RegimeSwitching(
    "hmm_regime",
    table={"calm": {"A0": 0.8, "A1": 0.2}, "volatile": {"A1": 0.7, "A3": 0.3}},
    warmup={"A0": 0.5, "A1": 0.5},
    rebalance="M",
)


@pytest.mark.parametrize("size", [1, 37, 149, 150, 151, 400])
def test_detector_fitted_once_equals_whole_bit_for_bit(size):
    """An HMM fitted once at bar 150 (hmmlearn, on rows 21..149), then filtered online:
    the chunks up to the fit bar are held for the fit, the rest streams."""
    ref = whole(PANEL, HMM_ONCE, HMM_REGIME)
    assert len(np.unique(ref.smoothed[ref.smoothed >= 0])) == 2  # both states after the fit
    res = run_chunked(
        chunks_of(PANEL, size), HMM_ONCE, COSTS, HMM_REGIME, EXECUTION, smoothing=SMOOTH
    )
    assert_same(res, HMM_REGIME.name, ref)
    assert (res.raw[:150] == -1).all() and (res.raw[150:] >= 0).all()


HMM_ROLLING = replace(
    HMM_ONCE, schedule=Schedule(min_train=120, refit_every=45, window=80, skip=21)
)
KMEANS_ROLLING = KMeansDetector(
    inputs=resolve_inputs(PANEL, "A0", ("logret", "A2.log_vol_fast")),
    n_states=2,
    schedule=Schedule(min_train=100, refit_every=30, window=60, skip=21),
)


@pytest.mark.parametrize("detector", [HMM_ROLLING, KMEANS_ROLLING], ids=["hmm", "kmeans"])
@pytest.mark.parametrize("size", [1, 29, 45, 120, 121, 1000])
def test_trailing_window_refits_equal_whole_bit_for_bit(detector, size):
    """Refits every 30-45 bars on the last 60-80 rows: the run keeps those rows in a ring
    and splits chunks at the fit bars; parameters, posteriors and trades are the whole
    run's, bit for bit (fit bars inside chunks, at their first bar, after a chunk of 1)."""
    whole_prep = prepare(PANEL, detector, COSTS, EXECUTION, smoothing=SMOOTH)
    assert len(whole_prep.fit_bars) >= 5
    assert not np.allclose(whole_prep.dparams[1], whole_prep.dparams[-1])  # refits differ
    ref = run_strategy_raw(whole_prep, HMM_REGIME)
    res = run_chunked(
        chunks_of(PANEL, size), detector, COSTS, HMM_REGIME, EXECUTION, smoothing=SMOOTH
    )
    assert_same(res, HMM_REGIME.name, ref)


def test_history_shorter_than_the_fit_is_the_whole_runs_error():
    short = PANEL.head(120)
    with pytest.raises(ValueError, match="history too short for its first fit"):
        prepare(short, HMM_ONCE, COSTS)
    with pytest.raises(ValueError, match="history too short for its first fit"):
        run_chunked(chunks_of(short, 50), HMM_ONCE, COSTS, HMM_REGIME)


def test_refitted_detector_is_refused_in_one_line():
    hmm = GaussianHMMDetector(inputs=Inputs((0,), (False,), ("logret",)), schedule=Schedule())
    with pytest.raises(ValueError, match="refitted on an expanding window") as err:
        run_chunked(chunks_of(PANEL, 50), hmm, COSTS, STATIC)
    assert "\n" not in str(err.value)


def test_chunks_with_other_symbols_or_going_back_are_refused():
    a, b = PANEL.take(np.arange(0, 50)), PANEL.take(np.arange(50, 100))
    with pytest.raises(DataError, match="differ from the first chunk"):
        run_chunked([a, b.select(["A1", "A0", "A2", "A3"])], NoDetector(), COSTS, STATIC)
    with pytest.raises(DataError, match="not after the previous chunk"):
        run_chunked([b, a], NoDetector(), COSTS, STATIC)
    with pytest.raises(DataError, match="no bars"):
        run_chunked([], NoDetector(), COSTS, STATIC)


def api_config(path, chunk_bars=None, **detector):
    return {
        "data": {"source": str(path), "chunk_bars": chunk_bars, "periods_per_year": 252},
        "costs": {"commission_bps": 3.0, "half_spread_bps": 1.0},
        "detector": {"kind": "rule", "market": "A0", "history": 60, "min_history": 20, **detector},
        "strategies": [
            {
                "kind": "static",
                "name": "static",
                "weights": {"A0": 0.6, "A1": 0.4},
                "rebalance": "M",
            },
            {
                "kind": "regime",
                "name": "regime",
                "rebalance": "W",
                "warmup": {"A0": 0.5, "A1": 0.5},
                "table": {
                    "calm": {"A0": 0.8, "A2": 0.2},
                    "volatile": {"A1": 0.6, "A3": 0.4},
                    "crisis": {"A1": 1.0},
                },
            },
        ],
    }


@pytest.fixture(scope="module")
def parquet_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "bars.parquet"
    long = PANEL.to_long().sort_values(["timestamp", "symbol"], kind="stable")
    long.to_parquet(path, row_group_size=50, index=False)
    return path


@pytest.mark.parametrize("chunk_bars", [1, 29, 10_000])
def test_api_chunked_equals_run_backtest(parquet_file, chunk_bars):
    from engine.api import run_backtest
    from engine.api_chunked import run_backtest_chunked

    ref = run_backtest({k: v for k, v in api_config(parquet_file).items()}, progress=False)
    res = run_backtest_chunked(api_config(parquet_file, chunk_bars))
    assert res.n_chunks == -(-T_LEN // chunk_bars)
    assert res.equity.equals(ref.equity)
    for name, run in ref.runs.items():
        assert np.array_equal(res.runs[name].fills, run.raw_fills)
        assert np.array_equal(res.runs[name].costs, run.costs.to_numpy())
        assert res.targets_of(name).equals(run.decisions)
    assert res.fills.equals(ref.fills)
    assert res.regimes.equals(ref.regimes)
    assert res.metrics.keys() == ref.metrics.keys()
    for name, full in ref.metrics.items():
        # the regime strategy's baseline differences need the whole panel: not chunked
        row = {k: v for k, v in full.items() if "_vs_" not in k}
        assert (row != full) == (name == "regime")
        assert res.metrics[name].keys() == row.keys()
        for key, val in row.items():  # turnover and costs: sums over fills in another order
            assert res.metrics[name][key] == pytest.approx(val, rel=1e-12, nan_ok=True), key
    assert res.metrics["regime"]["n_trades"] == len(ref.runs["regime"].fills) > 0


def test_api_chunked_refusals_are_one_line(parquet_file, tmp_path):
    from engine.api_chunked import run_backtest_chunked
    from engine.config import ConfigError

    cfg = api_config(parquet_file, 50)
    cfg["detector"] = {"kind": "hmm", "market": "A0"}
    with pytest.raises(
        ConfigError, match=r"data\.chunk_bars: detector 'hmm' is refitted on an expanding window"
    ):
        run_backtest_chunked(cfg)
    with pytest.raises(ConfigError, match="not set"):
        run_backtest_chunked(api_config(parquet_file))
    csv = api_config(tmp_path / "bars.csv", 50)
    with pytest.raises(ConfigError, match="chunk_bars needs one Parquet file"):
        run_backtest_chunked(csv)
    cfg = api_config(parquet_file, 50)
    cfg["data"]["fill"] = "ffill"
    with pytest.raises(DataError, match="fill='ffill' is not possible in chunks"):
        run_backtest_chunked(cfg)
    cfg = api_config(parquet_file, 50)
    cfg["strategies"][0]["weights"] = {"A0": 0.6, "ZZZ": 0.4}
    with pytest.raises(ValueError, match="ZZZ") as err:
        run_backtest_chunked(cfg)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "fits",
    [{"refit_every": 0}, {"refit_every": 40, "window": "rolling", "window_length": 100}],
    ids=["once", "rolling"],
)
def test_api_chunked_hmm_equals_run_backtest(parquet_file, fits):
    from engine.api import run_backtest
    from engine.api_chunked import run_backtest_chunked

    def cfg(chunk_bars):
        c = api_config(parquet_file, chunk_bars)
        c["detector"] = {
            "kind": "hmm",
            "market": "A0",
            "n_states": 2,
            "min_train": 150,
            "n_restarts": 1,
            **fits,
        }
        c["strategies"][1]["table"] = {"calm": {"A0": 0.8, "A2": 0.2}, "volatile": {"A1": 1.0}}
        return c

    ref = run_backtest(cfg(None), progress=False)
    res = run_backtest_chunked(cfg(61))
    assert res.equity.equals(ref.equity)
    assert res.regimes.equals(ref.regimes)
    assert res.fills.equals(ref.fills)
    assert res.regimes["state"].iloc[150:].nunique() == 2


def test_optimized_strategy_is_refused_in_a_chunked_run(parquet_file):
    """kind = optimized decides from trailing windows of the whole history: api_chunked
    refuses it with one line before reading past the first chunk."""
    from engine.api_chunked import run_backtest_chunked
    from engine.config import ConfigError

    c = api_config(parquet_file, 50)
    c["strategies"].append({"kind": "optimized", "name": "opt", "assets": ["A0", "A1", "A2"]})
    with pytest.raises(ConfigError) as err:
        run_backtest_chunked(c)
    msg = str(err.value)
    assert msg.startswith("data.chunk_bars: strategy 'opt' decides its targets ahead of the loop")
    assert "run it without chunk_bars" in msg and "\n" not in msg


def test_user_policy_reading_history_is_refused():
    from strategies.momentum import CompiledTrend

    trend = CompiledTrend("trend", equity="A0", bond="A1", lookback=20, ma=10)
    with pytest.raises(ValueError, match=r"'trend': a user policy may read ctx\.hist"):
        run_chunked(chunks_of(PANEL, 50), NoDetector(), COSTS, trend)


@nb.njit
def every_37_bars_nb(t, ctx, sparams, sstate, target):
    """Rebalances on bars 0, 37, 74, ... of the run: reads the bar number ``t``."""
    target[:] = sparams[0] / target.shape[0]
    return t % 37 == 0


class Every37:
    name = "user_every_37"
    rebalance = None
    reads_history = False
    policy = every_37_bars_nb

    def params(self, symbols, labels):
        return np.array([0.9])

    def state_size(self):
        return 1


@pytest.mark.parametrize("size", [23, 37])
def test_user_policy_sees_the_runs_bar_numbers(size):
    """A user policy (generic compiled driver) that reads ``t``: each chunk is driven from
    its first bar of the whole run, so the decisions land on the same bars."""
    ref = whole(PANEL, NoDetector(), Every37())
    res = run_chunked(
        chunks_of(PANEL, size), NoDetector(), COSTS, Every37(), EXECUTION, smoothing=SMOOTH
    )
    assert_same(res, "user_every_37", ref)
    assert list(res.runs["user_every_37"].decision_bars) == list(range(0, T_LEN, 37))


def test_saved_run_folder_reads_back(tmp_path):
    res = run_chunked(
        chunks_of(PANEL, 40), RULE, COSTS, [REGIME, STATIC], EXECUTION, smoothing=SMOOTH
    )
    out = res.save(tmp_path / "run")
    eq = pd.read_csv(out / "equity.csv", index_col=0, parse_dates=True)
    assert np.array_equal(eq.to_numpy(), res.equity.to_numpy())
    fills = pd.read_csv(out / "fills.csv")
    assert len(fills) == sum(len(r.fills) for r in res.runs.values())
    targets = pd.read_csv(out / "targets.csv")
    run = res.runs["regime"]
    mine = targets[targets["strategy"] == "regime"]
    assert len(mine) == run.targets.size
    wide = mine.pivot(index="timestamp", columns="symbol", values="weight")
    assert np.array_equal(wide[list(PANEL.symbols)].to_numpy(), run.targets)
    regimes = pd.read_csv(out / "regimes.csv", index_col=0)
    assert (regimes["smoothed_state"].to_numpy() == res.smoothed).all()


@pytest.mark.acceptance
@pytest.mark.timeout(900)  # about a minute idle; child processes
def test_memory_flat_in_history_length(tmp_path):
    """Peak memory beyond outputs of a chunked run over 10x the bars grows by less than
    16 MB (median of 3 child processes); a whole-panel run's grows by hundreds of MB.
    Slow (about a minute): ``pytest -m acceptance``; figures in ``benchmarks/memory.py``."""
    from benchmarks.memory import measure, write_parquet

    warm = tmp_path / "warm.parquet"
    write_parquet(warm, 100, 2_007, seed=1)
    files = {n: tmp_path / f"b{n}.parquet" for n in (5_000, 50_000)}
    for n, path in files.items():
        write_parquet(path, 100, n)

    def extra(mode: str, n: int, reps: int) -> float:
        runs = [measure(mode, files[n], warm, 1_000, "mmap", "rule") for _ in range(reps)]
        return float(np.median([(r["peak"] - r["base"] - r["out"]) / 2**20 for r in runs]))

    chunked = extra("chunked", 50_000, 3) - extra("chunked", 5_000, 3)
    whole = extra("whole", 50_000, 1) - extra("whole", 5_000, 1)
    assert chunked < 16.0, chunked
    assert whole > 200.0, whole


def test_cli_backtest_runs_chunked_when_chunk_bars_is_set(parquet_file, tmp_path, capsys):
    """``regime-engine backtest`` with ``[data] chunk_bars``: the chunked run (not the whole
    panel quietly), same equity as without, said on the console."""
    import json

    import pandas as pd

    from engine.cli import main

    def run(chunk_bars: int | None, out: str) -> pd.DataFrame:
        chunk = "" if chunk_bars is None else f"chunk_bars = {chunk_bars}\n"
        path = tmp_path / f"{out}.toml"
        path.write_text(
            f'[data]\nsource = "{parquet_file}"\nperiods_per_year = 252\n{chunk}'
            "[report]\nhtml = false\n"
            '[detector]\nkind = "rule"\nmarket = "A0"\nhistory = 60\nmin_history = 20\n'
            '[[strategies]]\nkind = "static"\nname = "static"\nrebalance = "M"\n'
            "weights = { A0 = 0.6, A1 = 0.4 }\n"
            '[[strategies]]\nkind = "static"\nname = "ew"\nweights = "equal"\n'
        )
        assert main(["backtest", str(path), "--out", str(tmp_path / out)]) == 0
        return pd.read_csv(tmp_path / out / "equity.csv", index_col=0)

    whole = run(None, "whole")
    chunked = run(17, "chunked")
    text = capsys.readouterr().out
    assert "chunked, 17 bars at a time" in text and "targets.csv" in text
    pd.testing.assert_frame_equal(chunked, whole)
    metrics = json.loads((tmp_path / "chunked" / "metrics.json").read_text())
    assert set(metrics) == {"static", "ew"}

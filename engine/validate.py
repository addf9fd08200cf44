"""``regime-engine validate [CONFIG]``: is the regime-aware strategy better out of sample?

Runs, on the config's data, detector and strategies:

1. walk-forward folds (detector refitted only on each fold's training rows; strategies run
   continuously; every figure from test bars only, stitched);
2. purged/embargoed CV inside each training window to choose among candidate parameter sets
   (smoothing / regime table); the chosen set is scored on the fold's test span only;
3. significance: paired stationary-bootstrap CIs of the Sharpe/CAGR/max-drawdown
   difference (candidate - benchmark) with a p-value, deflated Sharpe of the CV-selected
   series, Hansen's SPA over every candidate tried;
4. cost sensitivity at several commission levels and the break-even commission (Sharpe
   edge = 0, by bisection);
5. Monte Carlo of regime paths from a Gaussian HMM fitted on the asset returns.

Settings come from the config's ``[validation]`` table (:class:`ValidationConfig`).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.analysis import baselines as bl
from engine.analysis import bootstrap as bs
from engine.analysis.costs import break_even_cost, cost_sensitivity
from engine.analysis.cv import Candidate, choose, cv_scores
from engine.analysis.metrics import risk_free_returns
from engine.analysis.montecarlo import fit_return_hmm, mc_quantiles, monte_carlo
from engine.analysis.solve_failures import bound_counts, failures_line, with_fold_failures
from engine.analysis.walkforward import (
    FitMemo,
    Fold,
    ScheduledDetector,
    fold_table,
    folds_frame,
    make_folds,
    oos_mask,
    oos_returns,
    oos_summary,
)
from engine.config import ConfigError, RegimeConfig, RunConfig
from engine.core.backtest import Prepared, run_strategies, run_strategy_raw
from engine.core.result import BacktestResult, StrategyRun, strategy_run
from engine.ground.bars import BarPanel
from engine.plugins.strategy import CompiledStrategy
from engine.validation_config import (
    CandidateConfig,
    ValidationConfig,
    parse_validation,
)
from engine.validation_result import ValidationResult


def _cell(df: pd.DataFrame, row: str, col: str) -> float:
    """One cell as a float."""
    return float(df[col].to_dict()[row])


# ------------------------------------------------------------------ wiring
def _pick(cfg: RunConfig, v: ValidationConfig) -> tuple[str, str]:
    names = [s.name for s in cfg.strategies]
    cand = v.candidate or next(iter(cfg.state_aware()), None)
    bench = v.benchmark or cfg.default_benchmark()
    for key, val in (("candidate", cand), ("benchmark", bench)):
        if val is None:  # a name given is one of them (parse_validation)
            raise ConfigError(f"validation.{key}: no default strategy; name one of {names}")
    assert cand is not None and bench is not None
    return cand, bench


def _candidates(cfg: RunConfig, v: ValidationConfig, cand_name: str) -> list[Candidate]:
    """Candidate parameter sets (default presets: configured, min_dwell 5/21, confirm 3)."""
    from engine.assemble import build_strategy

    scfg = next(s for s in cfg.strategies if s.name == cand_name)
    base_smooth = cfg.detector.smoothing
    specs = v.candidates
    if specs is None:
        specs = [
            CandidateConfig(name="as_configured"),
            CandidateConfig(
                name="dwell_5", smoothing=base_smooth.model_copy(update={"min_dwell": 5})
            ),
            CandidateConfig(
                name="dwell_21", smoothing=base_smooth.model_copy(update={"min_dwell": 21})
            ),
            CandidateConfig(
                name="confirm_3", smoothing=base_smooth.model_copy(update={"confirm": 3})
            ),
        ]
    out = []
    for c in specs:
        update: dict[str, Any] = {"name": f"{cand_name}[{c.name}]"}
        if c.table is not None or c.warmup is not None:
            if not isinstance(scfg, RegimeConfig):
                raise ConfigError(
                    f"validation.candidates.{c.name}: table/warmup need a 'regime' candidate"
                )
            if c.table is not None:
                update["table"] = c.table
            if c.warmup is not None:
                update["warmup"] = c.warmup
        strat = build_strategy(scfg.model_copy(update=update))
        if not isinstance(strat, CompiledStrategy):
            raise ConfigError(f"validation.candidate: {cand_name!r} must be a compiled strategy")
        over = c.smoothing.model_dump(exclude_unset=True) if c.smoothing else {}
        smooth = base_smooth.model_copy(update=over).build()
        out.append(Candidate(c.name, strat, smooth))
    return out


def _unconditional_twin(cfg: RunConfig, cand: Any, taken: set[str]) -> Any:
    """The candidate's optimiser on unconditional moments (``kind = "optimized"`` with
    ``compare_unconditional``), or None."""
    scfg = next(s for s in cfg.strategies if s.name == cand.name)
    twin = getattr(cand, "unconditional", None)
    if not getattr(scfg, "compare_unconditional", False) or not getattr(scfg, "conditional", 0):
        return None
    if not callable(twin) or f"{cand.name}_unconditional" in taken:
        return None
    return twin()


def _uncond_verdict(cand: str, base: str, boot: pd.DataFrame, p: float, level: float) -> str:
    d = boot.loc["sharpe_diff"]
    ci = f"{level:.0%} CI [{d['lower']:+.3f}, {d['upper']:+.3f}]"
    word = (
        "regime-conditional moments BEAT unconditional ones, significantly"
        if d["lower"] > 0
        else (
            "regime-conditional moments did worse than unconditional ones, significantly"
            if d["upper"] < 0
            else "no significant difference between conditional and unconditional moments"
        )
    )
    head = f"{cand} vs {base}: OOS Sharpe difference {d['estimate']:+.3f}"
    return f"{head} ({ci}, p={p:.3f}): {word}."


def _fold_fit(prep: Prepared, fold: Fold) -> np.ndarray:
    """The walk-forward detector parameters in force during ``fold``'s test span."""
    k = int(np.searchsorted(prep.fit_bars, fold.test_start, side="right")) - 1
    return np.asarray(prep.dparams[max(k, 0)])


def _slice_result(result: BacktestResult, lo: int, hi: int) -> BacktestResult:
    """The bars ``[lo, hi)`` of a result (the OOS stretch), for the report."""
    rows = np.arange(lo, hi)
    panel = result.panel.take(rows)
    t0, t1 = panel.index[0], panel.index[-1]
    runs = {}
    for name, r in result.runs.items():
        fills = r.fills
        if len(fills):
            ts = pd.to_datetime(fills["timestamp"])
            fills = fills.loc[(ts >= t0) & (ts <= t1)].reset_index(drop=True)
        runs[name] = StrategyRun(
            name=name,
            equity=r.equity.iloc[lo:hi],
            cash=r.cash.iloc[lo:hi],
            weights=r.weights.iloc[lo:hi],
            targets=r.targets.iloc[lo:hi],
            orders=r.orders.iloc[lo:hi],
            costs=r.costs.iloc[lo:hi],
            fills=fills,
            raw_fills=r.raw_fills,
        )
    return BacktestResult(
        panel=panel,
        runs=runs,
        regimes=result.regimes.iloc[lo:hi],
        regime_labels=result.regime_labels,
        config=result.config,
    )


AVG_MIX, VOL_MIX, VOL_MIX_IS = bl.AVG_MIX, bl.VOL_MIX, bl.VOL_MIX_IS


def _baselines(
    cfg: RunConfig, prep: Prepared, result: BacktestResult, folds: list[Fold], cand: str, bench: str
) -> bl.BaselineSet:
    """The static baselines of ``cand`` (module :mod:`engine.analysis.baselines`): its
    average held weights over the OOS bars, and ``bench``'s mix scaled with the cash asset
    to ``cand``'s volatility, ``k`` re-chosen at each fold's test start from earlier bars
    only (same bars, costs and rebalancing calendars)."""
    panel = prep.panel
    oos = oos_mask(folds, panel.n_bars)
    scfgs = {s.name: s for s in cfg.strategies}
    base = bl.benchmark_mix(scfgs[bench], panel.symbols, result.runs[bench].weights.loc[oos])
    ex = cfg.execution
    return bl.build_baselines(
        prep,
        cand,
        result.runs[cand].weights,
        result.runs[cand].equity,
        bench,
        base,
        oos,
        [f.test_start for f in folds],
        (getattr(scfgs[cand], "rebalance", None), getattr(scfgs[bench], "rebalance", None)),
        ex.max_gross if ex.allow_leverage else 1.0,
        "OOS",
        in_sample=True,
    )


def _with_benchmark_row(
    desc: pd.DataFrame, cfg: RunConfig, panel: BarPanel, bench: str, result: BacktestResult
) -> pd.DataFrame:
    """``desc`` with the benchmark's row (baseline (c): the strategy the user named)."""
    scfg = next(s for s in cfg.strategies if s.name == bench)
    mix = bl.benchmark_mix(scfg, panel.symbols, result.runs[bench].weights)
    row = pd.DataFrame(
        {
            "what": [f"the benchmark you named ({bench}, validation.benchmark)"],
            "scale": [np.nan],
            "weights": [bl.mix_text(mix)],
        },
        index=pd.Index([bench], name="baseline"),
    )
    return pd.concat([desc, row])


def _folds_with_scales(folds: pd.DataFrame, scales: np.ndarray | None) -> pd.DataFrame:
    """The folds table with the volatility-matched baseline's ``k`` of each fold."""
    if scales is None:
        return folds
    return folds.assign(vol_matched_scale=scales)


_diff_text = bl.diff_text


def _verdict(
    cand: str,
    bench: str,
    boot: pd.DataFrame,
    p: float,
    level: float,
    be: float | None,
    tag: str = "",
    rf: str = "0",
) -> str:
    d = boot.loc["sharpe_diff"]
    head = f"{cand}{tag} vs {bench}: OOS Sharpe (rf = {rf}) difference {_diff_text(boot, p, level)}"
    if d["lower"] > 0:
        word = f"BEATS {bench} out of sample, significantly"
    elif d["estimate"] > 0:
        word = (
            f"has a higher OOS Sharpe than {bench} but NOT significantly (the interval includes 0)"
        )
    else:
        word = f"does NOT beat {bench} out of sample"
    if be is None:
        return f"{head}: {word}."
    be_txt = (
        "no Sharpe edge even at 0 bps commission"
        if be <= 0
        else (
            "the Sharpe edge survives every commission tried"
            if math.isinf(be)
            else f"break-even commission {be:.1f} bps"
        )
    )
    return f"{head}: {word}; {be_txt}."


def _note_after(note: str) -> str:
    """``"; note"``, or nothing for no note."""
    return f"; {note}" if note else ""


def _bottom_line(
    cand: str,
    bench: str,
    summary: pd.DataFrame,
    boot: pd.DataFrame,
    p: float,
    boot_base: dict[str, pd.DataFrame],
    p_base: dict[str, float],
    desc: pd.DataFrame,
    level: float,
    be: float,
    rf: str,
) -> str:
    """One paragraph: the edge over the benchmark, the return/risk trade-off, and what the
    edge is and is NOT explained by (the two static baselines)."""
    sm = summary
    c, b = sm.loc[cand], sm.loc[bench]
    dd = boot.loc["max_drawdown_diff"]
    trade = (
        f"CAGR {c['cagr']:.2%} vs {b['cagr']:.2%}, volatility {c['volatility']:.2%} vs "
        f"{b['volatility']:.2%}, max drawdown {c['max_drawdown']:.1%} vs "
        f"{b['max_drawdown']:.1%} (difference {dd['estimate']:+.1%}, {level:.0%} CI "
        f"[{dd['lower']:+.1%}, {dd['upper']:+.1%}]"
        + _note_after(bs.outside_note(*dd[["estimate", "lower", "upper"]].to_numpy(dtype=float)))
        + ")"
    )
    be_txt = "no edge at zero cost" if be <= 0 else "never" if math.isinf(be) else f"{be:.1f} bps"
    parts = [
        f"BOTTOM LINE (Sharpe over rf = {rf}): {cand} vs {bench} "
        f"{_diff_text(boot, p, level)}; {trade}; break-even commission {be_txt}."
    ]
    vol, avg = boot_base.get(VOL_MIX), boot_base.get(AVG_MIX)
    if vol is not None:
        k = _cell(desc, VOL_MIX, "scale")
        dv = vol.loc["sharpe_diff"]
        sig_v = dv["lower"] > 0
        text = (
            f"Against {bench}'s mix de-risked to its volatility ({VOL_MIX}, x{k:.2f} with "
            "cash on average, k chosen before each fold from earlier bars) the difference "
            f"is {_diff_text(vol, p_base[VOL_MIX], level)}"
        )
        if sig_v:
            text += ": the edge is NOT explained by holding less risk (significant)"
        elif dv["estimate"] > 0:
            text += (
                ": higher, but NOT significantly, so holding less risk is not ruled out as "
                f"the explanation of the edge over {bench}"
            )
        else:
            text += (
                f": the edge over {bench} is explained by holding less risk (a static mix "
                "at the same volatility does as well)"
            )
        parts.append(text + ".")
    if avg is not None:
        da = avg.loc["sharpe_diff"]
        text = (
            f"Against a static mix at its own average weights ({AVG_MIX}) the difference "
            f"is {_diff_text(avg, p_base[AVG_MIX], level)}"
        )
        if da["lower"] > 0:
            text += ": the detector's timing adds value, significantly"
        elif da["estimate"] > 0:
            text += ": timing helps on the point estimate, NOT significantly"
        else:
            text += ": timing adds nothing over holding the average mix"
        parts.append(text + ".")
    if VOL_MIX_IS in boot_base:
        parts.append(
            f"With k fitted on the OOS bars themselves ({VOL_MIX_IS}, x"
            f"{_cell(desc, VOL_MIX_IS, 'scale'):.2f}, conservative: it keeps {bench}'s Sharpe) "
            f"the difference is {_diff_text(boot_base[VOL_MIX_IS], p_base[VOL_MIX_IS], level)}."
        )
    names = (VOL_MIX, VOL_MIX_IS, AVG_MIX)
    rows = {n: (boot_base[n], p_base[n]) for n in names if n in boot_base}
    parts.append("Verdict: " + bl.derisking_verdict(cand, rows, level, rf))
    return " ".join(x for x in parts if x)


def run_validation(
    cfg: RunConfig,
    v: ValidationConfig | None = None,
    *,
    panel: BarPanel | None = None,
    mc_paths: int | None = None,
    log: Any = None,
    fit_memo: FitMemo | None = None,
) -> ValidationResult:
    """Walk-forward + CV + significance + cost sensitivity (+ Monte Carlo) for ``cfg``.

    ``fit_memo``: walk-forward fits reused across calls that share data, detector and
    folds (:class:`~engine.analysis.walkforward.FitMemo`; the same results)."""
    from engine.assemble import assemble

    v = v or parse_validation(cfg)
    say = log or (lambda msg: None)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()
    run = assemble(cfg, panel)  # the backtest's run: every fold and path is built from it
    run.check_history()  # the backtest's line for a first fit beyond the data, before folds
    panel = run.panel
    ppy = run.periods_per_year  # years of training and test spans in this data's bars
    cand_name, bench_name = _pick(cfg, v)
    train_bars = round(v.train_years * ppy)
    folds = make_folds(
        panel.n_bars,
        train_bars,
        round(v.test_years * ppy),
        v.window,
        round(v.window_years * ppy) if v.window_years else None,
    )
    if not folds:
        raise ConfigError(
            f"validation.train_years: {panel.n_bars} bars leave no test span after "
            f"{train_bars} training bars"
        )
    # 1. walk-forward: one continuous run per strategy, detector refits at fold starts only
    t = time.perf_counter()
    prep = run.prepare(ScheduledDetector(run.detector, folds, memo=fit_memo))
    timings["walkforward_fits_s"] = time.perf_counter() - t
    strategies = {s.name: s for s in run.strategies if isinstance(s, CompiledStrategy)}
    for name in (cand_name, bench_name):
        if name not in strategies:
            raise ConfigError(f"validation: strategy {name!r} must be a compiled strategy")
    baseline = _unconditional_twin(cfg, strategies[cand_name], set(strategies))
    if baseline is not None:  # the same optimiser on unconditional moments, beside it
        strategies[baseline.name] = baseline
    t = time.perf_counter()
    try:
        result = run_strategies(prep, list(strategies.values()), cfg.model_dump(mode="json"))
    except ValueError as exc:
        raise ConfigError(f"strategies: {exc}") from None
    timings["walkforward_runs_s"] = time.perf_counter() - t
    bound = bound_counts(prep, strategies.values())  # optimisers: solves, failed bars
    say(f"walk-forward: {len(folds)} folds, {len(strategies)} strategies")
    # the static baselines, run on the same prepared bars and costs
    t = time.perf_counter()
    base_s: list[bl.ScheduledMix] = []
    base_desc = pd.DataFrame()
    fold_scales = None
    if v.baselines:
        bset = _baselines(cfg, prep, result, folds, cand_name, bench_name)
        base_s, base_desc, fold_scales = list(bset.strategies), bset.table, bset.scales
        for s in base_s:
            if s.name in result.runs:
                raise ConfigError(f"strategies: the name {s.name!r} is reserved by validate")
            result.runs[s.name] = strategy_run(s.name, panel, run_strategy_raw(prep, s))
    timings["baselines_s"] = time.perf_counter() - t
    equity = result.equity
    rets = oos_returns(equity, folds)
    per_fold = fold_table(equity, folds, ppy)

    # 2. purged CV in each training window among candidates; stitch the chosen one's returns
    t = time.perf_counter()
    cands = _candidates(cfg, v, cand_name)
    cand_eq = {
        c.name: np.asarray(
            run_strategy_raw(replace(prep, smooth=c.smoothing.array()), c.strategy)[0]
        )
        for c in cands
    }
    cand_rets = oos_returns(pd.DataFrame(cand_eq, index=panel.index), folds)
    cv_name = f"{cand_name}_cv"
    score_rows, choice_rows = [], []
    selected = pd.Series(np.nan, index=rets.index, name=cv_name)
    selecting = v.cv.enabled and len(cands) > 1  # else no selection: cands[0] in every fold
    for f in folds:
        if selecting:
            sc = cv_scores(
                prep,
                run.detector,
                cands,
                f.train_start,
                f.train_end,
                v.cv.n_splits,
                v.cv.purge_bars,
                v.cv.embargo_bars,
                ppy,
                _fold_fit(prep, f) if v.cv.detector_fits == "per_fold" else None,
            )
            chosen = choose(sc)
            mean = sc.mean(axis=0)
            score_rows.append(sc.assign(fold=f.k).reset_index().set_index(["fold", "split"]))
        else:
            chosen = cands[0].name
            mean = pd.Series(np.nan, index=[c.name for c in cands])
        in_test = (rets.index >= panel.index[f.test_start]) & (
            rets.index <= panel.index[f.test_end - 1]
        )
        selected[in_test] = cand_rets.loc[in_test, chosen]
        test_r = cand_rets.loc[in_test, chosen].to_numpy()
        sd = float(np.std(test_r, ddof=1)) if test_r.size > 1 else 0.0
        choice_rows.append(
            {
                "fold": f.k,
                "chosen": chosen,
                **{f"cv_sharpe_{k}": float(x) for k, x in mean.items()},
                "test_sharpe_chosen": float(np.mean(test_r) / sd * np.sqrt(ppy))
                if sd > 0
                else float("nan"),
            }
        )
    cv_scores_df = pd.concat(score_rows) if score_rows else pd.DataFrame()
    cv_choices = pd.DataFrame(choice_rows).set_index("fold")
    rets[cv_name] = selected
    timings["cv_s"] = time.perf_counter() - t
    say(
        f"cv: {len(cands)} candidates x {len(folds)} folds"
        if selecting
        else f"cv: no selection (validation.cv disabled or one candidate): {cv_name} is "
        f"{cands[0].name} in every fold"
    )

    # 3. significance
    t = time.perf_counter()
    rf, rf_label = risk_free_returns(panel, cfg.metrics.risk_free)  # every Sharpe over rf
    summary = oos_summary(rets, ppy, rf, rf_label)
    summary.attrs.update(diff_rf_label=rf_label)
    # one resampling for the candidate against its benchmark, its static baselines and
    # its unconditional twin: the rows of one table are draws of one experiment
    others = {bench_name: rets[bench_name], **{x.name: rets[x.name] for x in base_s}}
    if baseline is not None:
        others[baseline.name] = rets[baseline.name]
    pairs = bs.paired_bootstraps(
        rets[cand_name], others, v.bootstrap_reps, v.level, seed=v.seed, periods_per_year=ppy, rf=rf
    )
    boot, p = pairs[bench_name]
    boot_cv, p_cv = bs.paired_bootstrap(
        rets[cv_name],
        rets[bench_name],
        v.bootstrap_reps,
        v.level,
        seed=v.seed,
        periods_per_year=ppy,
        rf=rf,
    )
    boot_base = {x.name: pairs[x.name][0] for x in base_s}
    p_base = {x.name: pairs[x.name][1] for x in base_s}
    for bb in boot_base.values():
        bb.attrs["rf_label"] = rf_label
    boot.attrs["rf_label"] = boot_cv.attrs["rf_label"] = rf_label
    ci = pd.concat(
        {
            n: bs.bootstrap_ci(
                rets[n], v.bootstrap_reps, v.level, seed=v.seed, periods_per_year=ppy, rf=rf
            )
            for n in rets.columns
        },
        names=["strategy"],
    )
    ci.attrs["rf_label"] = rf_label
    boot_unc, p_unc = pairs[baseline.name] if baseline is not None else (None, float("nan"))
    cand_sharpes = oos_summary(cand_rets, ppy)["sharpe"]
    n_trials = len(cands) if selecting else 1  # deflate only for a selection that took place
    dsr = bs.deflated_sharpe_ratio(
        rets[cv_name],
        n_trials,
        float(np.var(cand_sharpes, ddof=1)) if n_trials > 1 else 0.0,
        ppy,
    )
    spa = bs.spa_test(rets[bench_name], cand_rets, v.bootstrap_reps, seed=v.seed)
    timings["significance_s"] = time.perf_counter() - t

    # 4. costs
    t = time.perf_counter()
    cand_s, bench_s = strategies[cand_name], strategies[bench_name]
    costs = cost_sensitivity(prep, cand_s, bench_s, folds, v.cost_bps, ppy, rf, base_s, rf_label)
    be_sharpe = break_even_cost(prep, cand_s, bench_s, folds, "sharpe", periods_per_year=ppy, rf=rf)
    be_cagr = break_even_cost(prep, cand_s, bench_s, folds, "cagr", periods_per_year=ppy)
    be_base = {
        s.name: break_even_cost(prep, cand_s, s, folds, "sharpe", periods_per_year=ppy, rf=rf)
        for s in base_s
    }
    timings["costs_s"] = time.perf_counter() - t
    say("cost sensitivity done")
    if base_s:  # (c) the benchmark the user named: the third row of the baselines' table
        base_desc = _with_benchmark_row(base_desc, cfg, panel, bench_name, result)
        boot_base[bench_name], p_base[bench_name] = boot, p
        be_base[bench_name] = be_sharpe

    # 5. Monte Carlo
    t = time.perf_counter()
    n_paths = v.montecarlo.n_paths if mc_paths is None else mc_paths
    mc_model, mc_paths_df, mc_q = pd.DataFrame(), pd.DataFrame(), pd.DataFrame()
    if n_paths > 0:
        mc_model_fit = fit_return_hmm(panel, v.montecarlo.n_states, v.montecarlo.seed)
        mc_model = mc_model_fit.describe(ppy)
        pair = [cand_s, bench_s]

        def runner(sim: BarPanel) -> dict[str, np.ndarray]:
            sp = assemble(cfg, sim, pair).prepare()
            return {s.name: np.asarray(run_strategy_raw(sp, s)[0]) for s in pair}

        skip = round(v.montecarlo.warmup_years * ppy)
        mc_paths_df = monte_carlo(
            mc_model_fit,
            runner,
            cand_name,
            bench_name,
            n_paths,
            skip + round(v.montecarlo.years * ppy),
            v.montecarlo.seed,
            skip,
            panel.asset_classes,
            ppy,
        )
        mc_q = mc_quantiles(mc_paths_df)
    timings["montecarlo_s"] = time.perf_counter() - t

    significance = {
        "sharpe_diff": _cell(boot, "sharpe_diff", "estimate"),
        "sharpe_diff_lower": _cell(boot, "sharpe_diff", "lower"),
        "sharpe_diff_upper": _cell(boot, "sharpe_diff", "upper"),
        "p_sharpe_diff_le_0": p,
        "cv_sharpe_diff": _cell(boot_cv, "sharpe_diff", "estimate"),
        "cv_sharpe_diff_lower": _cell(boot_cv, "sharpe_diff", "lower"),
        "cv_sharpe_diff_upper": _cell(boot_cv, "sharpe_diff", "upper"),
        "cv_p_sharpe_diff_le_0": p_cv,
        "cv_deflated_sharpe": dsr["dsr"],
        "cv_psr": dsr["psr"],
        "cv_sr0": dsr["sr0"],
        "n_trials": float(n_trials),
        "spa_p_consistent": float(spa["consistent"]),
        "spa_p_lower": float(spa["lower"]),
        "spa_p_upper": float(spa["upper"]),
        "level": v.level,
        "bootstrap_reps": float(v.bootstrap_reps),
    }
    for key in ("cagr", "max_drawdown"):
        for col, tag in (("estimate", ""), ("lower", "_lower"), ("upper", "_upper")):
            significance[f"{key}_diff{tag}"] = _cell(boot, f"{key}_diff", col)
    for name, b in boot_base.items():
        significance[f"sharpe_diff_vs_{name}"] = _cell(b, "sharpe_diff", "estimate")
        significance[f"sharpe_diff_vs_{name}_lower"] = _cell(b, "sharpe_diff", "lower")
        significance[f"sharpe_diff_vs_{name}_upper"] = _cell(b, "sharpe_diff", "upper")
        significance[f"p_sharpe_diff_vs_{name}_le_0"] = p_base[name]
    verdict_lines = [
        _verdict(cand_name, bench_name, boot, p, v.level, be_sharpe, rf=rf_label),
        *[
            _verdict(
                cand_name,
                s.name,
                boot_base[s.name],
                p_base[s.name],
                v.level,
                be_base[s.name],
                rf=rf_label,
            )
            for s in base_s
        ],
        _verdict(cand_name, bench_name, boot_cv, p_cv, v.level, None, "_cv", rf=rf_label),
    ]
    if base_s:
        verdict_lines.insert(
            0,
            _bottom_line(
                cand_name,
                bench_name,
                summary,
                boot,
                p,
                boot_base,
                p_base,
                base_desc,
                v.level,
                be_sharpe,
                rf_label,
            ),
        )
    if baseline is not None and boot_unc is not None:
        significance.update(
            {
                "uncond_sharpe_diff": _cell(boot_unc, "sharpe_diff", "estimate"),
                "uncond_sharpe_diff_lower": _cell(boot_unc, "sharpe_diff", "lower"),
                "uncond_sharpe_diff_upper": _cell(boot_unc, "sharpe_diff", "upper"),
                "uncond_p_sharpe_diff_le_0": p_unc,
            }
        )
        verdict_lines.append(_uncond_verdict(cand_name, baseline.name, boot_unc, p_unc, v.level))
    verdict = " ".join(verdict_lines)
    lo = max(folds[0].test_start - 1, 0)
    timings["total_s"] = time.perf_counter() - t_all
    return ValidationResult(
        candidate=cand_name,
        benchmark=bench_name,
        periods_per_year=round(ppy),
        folds=with_fold_failures(
            _folds_with_scales(folds_frame(folds, panel.index), fold_scales), folds, bound
        ),
        oos_returns=rets,
        summary=summary,
        fold_results=per_fold,
        cv_scores=cv_scores_df,
        cv_choices=cv_choices,
        bootstrap=boot,
        bootstrap_cv=boot_cv,
        ci=ci,
        significance=significance,
        costs=costs,
        break_even={
            "sharpe": be_sharpe,
            "cagr": be_cagr,
            **{f"sharpe_vs_{k}": x for k, x in be_base.items()},
        },
        mc_model=mc_model,
        mc_paths=mc_paths_df,
        mc_quantiles=mc_q,
        verdict=verdict,
        oos_result=_slice_result(result, lo, folds[-1].test_end),
        timings=timings,
        verdict_lines=verdict_lines,
        candidate_returns=cand_rets,
        baselines=base_desc,
        bootstrap_baselines=boot_base,
        rf_label=rf_label,
        rf=rf,
    )


# ------------------------------------------------------------------ output
def verdict_table(res: ValidationResult) -> str:
    """The CLI verdict: OOS table, Sharpe difference CI and p, break-even, verdict line."""
    s, g = res.summary, res.significance
    from engine.fmt import text_table

    rf_lab = s.attrs.get("diff_rf_label", "0")
    cols = ["sharpe", "sharpe_rf0", "cagr", "volatility", "max_drawdown", "total_return"]
    lines = [text_table(s, cols)]
    if len(res.baselines):
        lines.append("")
        lines.extend(
            f"{k}: {row['what']} ({row['weights']})" for k, row in res.baselines.iterrows()
        )
    lvl = f"{g['level']:.0%}"
    lines.append("")
    lines.append(
        f"Sharpe difference (rf = {rf_lab}) {res.candidate} - {res.benchmark}: "
        f"{g['sharpe_diff']:+.3f} "
        f"({lvl} CI [{g['sharpe_diff_lower']:+.3f}, {g['sharpe_diff_upper']:+.3f}], "
        f"p = {g['p_sharpe_diff_le_0']:.3f}, stationary bootstrap)"
    )
    lines.append(
        f"Sharpe difference (rf = {rf_lab}) {res.candidate}_cv - {res.benchmark}: "
        f"{g['cv_sharpe_diff']:+.3f} "
        f"({lvl} CI [{g['cv_sharpe_diff_lower']:+.3f}, {g['cv_sharpe_diff_upper']:+.3f}], "
        f"p = {g['cv_p_sharpe_diff_le_0']:.3f}); deflated Sharpe over "
        f"{int(g['n_trials'])} candidates = {g['cv_deflated_sharpe']:.3f}; "
        f"SPA p (consistent) = {g['spa_p_consistent']:.3f}"
    )
    be = res.break_even
    lines.append(
        f"Break-even commission (OOS Sharpe edge = 0): {_bps(be['sharpe'])}; "
        f"(CAGR edge = 0): {_bps(be['cagr'])}"
    )
    for k in res.baselines.index.drop(res.benchmark, errors="ignore"):
        lines.append(
            f"Sharpe difference (rf = {rf_lab}) {res.candidate} - {k}: "
            f"{g[f'sharpe_diff_vs_{k}']:+.3f} ({lvl} CI [{g[f'sharpe_diff_vs_{k}_lower']:+.3f}, "
            f"{g[f'sharpe_diff_vs_{k}_upper']:+.3f}], p = {g[f'p_sharpe_diff_vs_{k}_le_0']:.3f})"
        )
    if "max_drawdown_diff" in g:
        lines.append(
            f"Max drawdown difference {res.candidate} - {res.benchmark}: "
            f"{g['max_drawdown_diff']:+.1%} ({lvl} CI [{g['max_drawdown_diff_lower']:+.1%}, "
            f"{g['max_drawdown_diff_upper']:+.1%}]"
            + _note_after(
                bs.outside_note(
                    g["max_drawdown_diff"],
                    g["max_drawdown_diff_lower"],
                    g["max_drawdown_diff_upper"],
                )
            )
            + ")"
        )
    if "uncond_sharpe_diff" in g:
        lines.append(
            f"Sharpe difference (rf = {rf_lab}) {res.candidate} - {res.candidate}_unconditional: "
            f"{g['uncond_sharpe_diff']:+.3f} "
            f"({lvl} CI [{g['uncond_sharpe_diff_lower']:+.3f}, "
            f"{g['uncond_sharpe_diff_upper']:+.3f}], p = {g['uncond_p_sharpe_diff_le_0']:.3f})"
        )
    solves = failures_line(res.folds)
    if solves:
        lines.append(solves)
    lines.append("")
    verdict = res.verdict_lines or [res.verdict]
    lines.append("VERDICT: " + verdict[0])
    lines.extend("  " + x for x in verdict[1:])
    return "\n".join(lines)


def _bps(x: float) -> str:
    if math.isinf(x):
        return "> 1000 bps (edge never vanishes)"
    if x <= 0:
        return "0 bps (no edge at zero cost)"
    return f"{x:.1f} bps"


def write_validation_report(res: ValidationResult, path: Path) -> Path:
    """The HTML report: verdict, reading guide, OOS tearsheet of every series, tests."""
    from engine.report.validation import write_validation_report as write

    return write(res, path)


def cmd_validate(args: argparse.Namespace) -> int:
    """Run the validation of a config, print the verdict, write tables and the report."""
    from engine import fmt
    from engine.config_check import load_checked
    from engine.out_paths import run_folder

    cfg = load_checked(args.config)
    out = run_folder(f"{cfg.name}-validate", args.out)  # writable, before minutes of work
    v = parse_validation(cfg, str(args.config or "<defaults>"))
    if args.reps is not None:
        v = v.model_copy(update={"bootstrap_reps": max(10, args.reps)})

    def say(msg: str) -> None:
        print(f"  {msg}", file=sys.stderr)

    res = run_validation(cfg, v, mc_paths=args.mc_paths, log=say)
    res.save(out)
    r = res.oos_returns
    print(
        f"regime-engine validate: {len(res.folds)} walk-forward folds, OOS "
        f"{fmt.date(r.index[0], daily=False)} -> {fmt.date(r.index[-1], daily=False)} "
        f"({len(r)} bars)"
    )
    print(verdict_table(res))
    if not args.no_report and cfg.report.html:
        print(f"report: {write_validation_report(res, out / 'report.html')}")
    print(f"results: {out}/ (verdict.json, oos_summary.csv, cost_sensitivity.csv, ...)")
    print(f"time: {res.timings['total_s']:.1f}s")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``validate`` subcommand."""
    p = subparsers.add_parser(
        "validate", help="walk-forward + CV + significance + cost sensitivity: a verdict"
    )
    p.add_argument("config", nargs="?", default=None, help="TOML config (default: built-in)")
    p.add_argument("--out", default=None, help="output folder (default: runs/NAME-validate)")
    p.add_argument("--no-report", action="store_true", help="skip the HTML report")
    p.add_argument("--mc-paths", type=int, default=None, help="Monte Carlo paths (0: skip)")
    p.add_argument("--reps", type=int, default=None, help="bootstrap replications")
    p.set_defaults(handler=cmd_validate)

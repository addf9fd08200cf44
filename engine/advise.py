"""``regime-engine advise [CONFIG]``: what state are we in, what should I hold, what can I lose?

As of the last available bar (bundled data by default, the config's data otherwise;
``--as-of DATE`` cuts the data at that date, so nothing after it is read), it runs the
config's detector and regime-aware strategy through the compiled driver and prints:

* the filtered regime posterior and the current (smoothed) regime with how long it has
  lasted;
* the strategy's target weights for that regime and the trades from the user's holdings
  (``--positions`` TOML/CSV; default: all cash) to them, priced at the last close;
* the state-conditional 1-day and 10-day VaR/CVaR of the target portfolio (and of the
  current holdings when given), from historical returns of bars spent in the current
  regime (see :func:`conditional_var`);
* a risk early warning when the probability of the alert states (default: the
  highest-volatility state) is at or above ``threshold``, or when a changepoint fires while
  volatility is rising (BOCPD on the market's log return, ``changepoint = "bocpd"``; or a
  jump of the posterior toward the alert states, ``"posterior_jump"``).

Exit code 3 when a warning is active (0 otherwise), for cron/alerting. ``--json`` prints one
JSON object. ``--publish ADDRESS`` sends a ``regime`` message (schema fields plus
``warning``, ``reasons``, ``p_alert``) and a ``targets`` message on the ZeroMQ bus.

Settings: the config's ``[advise]`` table (:class:`AdviseConfig`).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine import fmt
from engine.advise_config import AdviseConfig, parse_advise
from engine.config import ConfigError, RunConfig
from engine.core.raw import RawRun
from engine.ground import layout as L
from engine.ground.bars import BarPanel, DataError

EXIT_WARNING = 3


@dataclass(frozen=True)
class Holdings:
    """The user's positions (quantities by symbol) and currency cash."""

    qty: dict[str, float]
    cash: float
    cash_row: str | None = None  # a CSV row giving currency cash (its symbol as written)


# ---------------------------------------------------------------- inputs
def split_config(path: str | Path | None) -> tuple[RunConfig, AdviseConfig]:
    """The run config (read as every command reads it) and its ``[advise]`` table."""
    from engine.config_check import load_checked

    cfg = load_checked(path)
    return cfg, parse_advise(cfg, str(path) if path is not None else "<defaults>")


def load_positions(path: str | Path, default_cash: float = 0.0) -> Holdings:
    """Positions from TOML (``cash = 1000.0`` and a ``[positions]`` table of quantities) or
    CSV (columns ``symbol,qty``, one row per symbol; a row ``currency,AMOUNT`` for currency
    cash; ``cash,AMOUNT`` too, refused by :func:`advise` when the data hold a symbol named
    cash: TOML ``[positions] CASH`` is units of that asset, so the row reads two ways)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: positions file not found")
    qty: dict[str, float] = {}
    cash = default_cash
    if p.suffix.lower() == ".toml":
        try:
            data = tomllib.loads(p.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise DataError(f"{p}: invalid TOML: {exc}") from None
        unknown = set(data) - {"cash", "positions"}
        if unknown:
            raise DataError(f"{p}: unknown key {sorted(unknown)[0]!r} (expected cash, positions)")
        cash = _number(data.get("cash", 0.0), p, "cash")
        for sym, q in dict(data.get("positions", {})).items():
            qty[str(sym)] = _number(q, p, f"positions.{sym}")
        return Holdings(qty, cash)
    with p.open(newline="") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or not {"symbol", "qty"} <= set(reader.fieldnames):
            raise DataError(f"{p}: CSV needs the columns symbol,qty")
        cash = 0.0
        seen: dict[str, int] = {}
        cash_row = None
        for i, row in enumerate(reader, start=2):
            sym = (row["symbol"] or "").strip()
            q = _number(row["qty"], p, f"row {i} qty")
            if not sym:
                continue
            if sym.lower() in seen:
                raise DataError(
                    f"{p}: row {i}: {sym} is listed twice (also row {seen[sym.lower()]}); "
                    "give one row per symbol"
                )
            seen[sym.lower()] = i
            if sym.lower() == "currency":  # currency cash, never a symbol's units
                cash = q
            elif sym.lower() == "cash":
                cash, cash_row = q, sym
            else:
                qty[sym] = q
    return Holdings(qty, cash, cash_row)


def check_holdings(h: Holdings, allow_short: bool, where: str = "positions") -> None:
    """Refuse advice on a negative portfolio: negative cash, or short positions unless
    ``execution.allow_short`` (a :class:`DataError` naming the offending entry)."""
    if not math.isfinite(h.cash) or h.cash < 0:
        raise DataError(f"{where}: cash is {h.cash:g}; it must be >= 0 (borrowing is not modelled)")
    for sym, q in h.qty.items():
        if not math.isfinite(q):
            raise DataError(f"{where}: {sym} quantity is {q}")
        if q < 0 and not allow_short:
            raise DataError(
                f"{where}: {sym} quantity is {q:g} (a short); short holdings need "
                "execution.allow_short = true"
            )


STALE_AFTER_DAYS = 5.0
"""Advice on data whose last bar is older than this (and than 3 bars) is flagged stale."""


def staleness(
    last_bar: pd.Timestamp, bar_days: float, now: pd.Timestamp | None = None
) -> float | None:
    """Age in days of the last bar when it is stale, else ``None``."""
    now = now if now is not None else pd.Timestamp.now(tz="UTC").tz_localize(None)
    age = (now - last_bar) / pd.Timedelta(days=1)
    return float(age) if age > max(STALE_AFTER_DAYS, 3 * bar_days) else None


def _number(v: Any, p: Path, where: str) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise DataError(f"{p}: {where}: not a number ({v!r})") from None
    if not math.isfinite(x):
        raise DataError(f"{p}: {where}: not finite ({v!r})")
    return x


def cut_panel(panel: BarPanel, as_of: str | None) -> BarPanel:
    """The bars up to and including ``as_of`` (no look-ahead)."""
    if as_of is None:
        return panel
    try:
        ts = pd.Timestamp(as_of)
    except ValueError:
        raise DataError(f"--as-of: not a date ({as_of!r})") from None
    n = int(np.searchsorted(panel.index.values, np.datetime64(ts.to_datetime64()), side="right"))
    if n < 2:
        raise DataError(f"--as-of {as_of}: before the data's second bar ({panel.index[0].date()})")
    return panel.head(n)


# ---------------------------------------------------------------- risk
def conditional_var(
    returns: np.ndarray,
    in_regime: np.ndarray,
    weights: np.ndarray,
    levels: tuple[float, ...],
    horizon: int,
    min_bars: int,
    min_windows: int,
) -> dict[str, Any]:
    """Historical state-conditional VaR/CVaR (positive numbers = loss fractions).

    ``returns``: (T, N) simple asset returns (bar t-1 -> t); ``in_regime[t]``: the regime
    known at the close of bar ``t - 1`` is the current one (the state one would have held
    over the bar). The portfolio's daily return is ``returns @ weights`` (weights held
    constant). 1-day figures: empirical quantile / tail mean of those returns. ``horizon``
    -day figures: overlapping ``horizon``-bar compounded returns whose bars all lie in the
    regime when at least ``min_windows`` exist (``method = "overlapping"``), else the 1-day
    figures times ``sqrt(horizon)`` (``method = "sqrt_time"``). With fewer than
    ``min_bars`` regime bars every bar is used (``conditioned = False``).
    """
    ok = np.all(np.isfinite(returns), axis=1)
    mask = in_regime & ok
    conditioned = int(mask.sum()) >= min_bars
    if not conditioned:
        mask = ok
    rp = returns @ weights
    daily = rp[mask]
    log1 = np.log1p(np.where(mask, rp, 0.0))
    c = np.concatenate([[0.0], np.cumsum(log1)])
    cm = np.concatenate([[0], np.cumsum(mask.astype(np.int64))])
    ends = np.arange(horizon, rp.shape[0] + 1)
    full = (cm[ends] - cm[ends - horizon]) == horizon
    multi = np.expm1(c[ends][full] - c[ends - horizon][full])
    method = "overlapping" if multi.shape[0] >= min_windows else "sqrt_time"
    out: dict[str, Any] = {
        "bars": int(daily.shape[0]),
        "conditioned": conditioned,
        f"method_{horizon}d": method,
        f"windows_{horizon}d": int(multi.shape[0]),
    }
    for lv in levels:
        tag = f"{round(100 * lv, 1):g}"
        v1, c1 = _var_cvar(daily, lv)
        if method == "overlapping":
            vh, ch = _var_cvar(multi, lv)
        else:
            vh, ch = v1 * math.sqrt(horizon), c1 * math.sqrt(horizon)
        out[f"var_1d_{tag}"] = v1
        out[f"cvar_1d_{tag}"] = c1
        out[f"var_{horizon}d_{tag}"] = vh
        out[f"cvar_{horizon}d_{tag}"] = ch
    return out


def _var_cvar(x: np.ndarray, level: float) -> tuple[float, float]:
    if x.size == 0:
        return float("nan"), float("nan")
    q = float(np.quantile(x, 1.0 - level))
    tail = x[x <= q]
    return -q, -float(tail.mean()) if tail.size else -q


# ---------------------------------------------------------------- the advice
def pick_strategy(cfg: RunConfig, adv: AdviseConfig) -> Any:
    if adv.strategy is not None:  # one of the config's (parse_advise)
        return next(s for s in cfg.strategies if s.name == adv.strategy)
    aware = cfg.state_aware()  # the same default candidate as validate
    return next((s for s in cfg.strategies if aware and s.name == aware[0]), cfg.strategies[0])


def target_weights(
    strat: Any,
    out: RawRun,
    close: np.ndarray,
    symbols: tuple[str, ...],
    labels: tuple[str, ...],
    state: int,
    post: np.ndarray,
) -> np.ndarray:
    """What the strategy holds now: its table row for the current regime (posterior mix
    when it blends, warm-up weights before the detector speaks); for other strategies the
    last targets it set (else its current weights)."""
    if hasattr(strat, "params") and hasattr(strat, "rows"):
        p = strat.params(symbols, labels)
        n = len(symbols)
        rows = p[L.SP_HEADER + n :].reshape(len(labels), n)
        if state < 0:
            return np.asarray(p[L.SP_HEADER : L.SP_HEADER + n], dtype=np.float64)
        if p[L.SP_BLEND] != 0.0:
            return np.asarray(post @ rows, dtype=np.float64)
        return np.asarray(rows[state], dtype=np.float64)
    targets = np.asarray(out.targets)
    set_rows = np.flatnonzero(np.all(np.isfinite(targets), axis=1))
    if set_rows.size:
        return np.asarray(targets[set_rows[-1]], dtype=np.float64)
    return np.asarray(out.weights(close)[-1], dtype=np.float64)


def changepoint_prob(
    market: str, adv: AdviseConfig, panel: BarPanel, feats: np.ndarray
) -> float | None:
    """P(change in the last ``bocpd_window`` bars) at the last bar (BOCPD on ``market``,
    causal); None when the history is too short or the market never moves."""
    from engine.regimes.base import fit_schedule
    from engine.regimes.config import BOCPDDetectorConfig
    from engine.regimes.inputs import ConstantInput
    from engine.regimes.online_nb import online_run_nb

    det = BOCPDDetectorConfig(
        market=market, window=adv.bocpd_window, expected_run=adv.bocpd_expected_run
    ).build(panel)
    exog = panel.exog if panel.exog.shape[1] else np.zeros((panel.n_bars, 1))
    if len(det.fit_bars(panel.n_bars)) == 0:
        return None
    try:
        params, bars = fit_schedule(det, feats, exog)
    except ConstantInput:  # a market that never moves (a cash index): no change to detect
        return None
    post = np.zeros((panel.n_bars, det.n_states))
    dstate = np.zeros(max(1, det.state_size(feats.shape[1])))
    online_run_nb(params, bars, feats, exog, dstate, post)
    return float(post[-1, 1])


def advise(
    cfg: RunConfig,
    adv: AdviseConfig,
    holdings: Holdings | None = None,
    as_of: str | None = None,
) -> dict[str, Any]:
    """The advice as a JSON-ready dict (see the module doc)."""
    from engine.assemble import assemble, build_strategy, load_panel
    from engine.core.backtest import run_strategy_raw
    from engine.core.streaming import StreamingDriver, replay
    from engine.plugins.strategy import CompiledStrategy

    panel = cut_panel(load_panel(cfg), as_of)
    scfg = pick_strategy(cfg, adv)
    strat = build_strategy(scfg)
    run = assemble(cfg, panel, [strat])
    prep = run.prepare()
    labels = prep.detector.labels
    try:
        if isinstance(strat, CompiledStrategy):
            out = run_strategy_raw(prep, strat)
        else:  # a Python strategy: replay it in the streaming driver
            from engine.core.streaming import outputs_to_run

            _, out = outputs_to_run(
                strat.name, panel, replay(StreamingDriver.from_prepared(prep, strat), panel)
            )
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        from engine.api import strategy_error

        raise ConfigError(strategy_error(scfg, panel, exc)) from None
    post_all = np.asarray(out.post)
    smoothed = np.asarray(out.smoothed).astype(np.int64)
    post = post_all[-1]
    state = int(smoothed[-1])
    # how long the current regime has lasted
    dur = 0
    while dur < smoothed.shape[0] and smoothed[-1 - dur] == state:
        dur += 1
    since = panel.index[-dur]
    # alert probability
    k = len(labels)
    alert = adv.alert_states or (labels[-1],)
    bad = [a for a in alert if a not in labels]
    if bad:
        raise ConfigError(f"advise.alert_states: {bad[0]!r} is not a regime ({', '.join(labels)})")
    idx = [labels.index(a) for a in alert]
    p_alert_all = post_all[:, idx].sum(axis=1)
    p_alert = float(p_alert_all[-1])
    reasons: list[str] = []
    if state >= 0 and p_alert >= adv.threshold:
        reasons.append(f"P({'+'.join(alert)}) = {p_alert:.2f} >= threshold {adv.threshold:.2f}")
    market = run.market or panel.symbols[0]
    mcol = panel.column(market)
    vol_fast = float(prep.features[-1, mcol * L.N_FEAT_ASSET + L.F_VOL_FAST])
    vol_slow = float(prep.features[-1, mcol * L.N_FEAT_ASSET + L.F_VOL_SLOW])
    rising = vol_fast > vol_slow
    cp: float | None = None
    if adv.changepoint == "bocpd":
        cp = changepoint_prob(market, adv, panel, prep.features)
        if cp is not None and cp >= adv.changepoint_threshold and rising:
            reasons.append(
                f"changepoint: P(change in last {adv.bocpd_window} bars) = {cp:.2f} "
                f"with volatility rising (fast {vol_fast:.4f} > slow {vol_slow:.4f})"
            )
    elif adv.changepoint == "posterior_jump" and panel.n_bars > adv.jump_bars:
        cp = float(p_alert - p_alert_all[-1 - adv.jump_bars])
        if cp >= adv.jump_threshold:
            reasons.append(f"posterior jump: P(alert) rose {cp:.2f} over {adv.jump_bars} bars")
    # targets and trades
    symbols = panel.symbols
    close = panel.close[-1]
    w = target_weights(strat, out, panel.close, symbols, labels, state, post)
    why = cfg.execution.weight_rules().problem(np.asarray(w, dtype=float), symbols, scfg.kind)
    if why:
        raise ConfigError(f"strategies.{scfg.name}: target at {panel.index[-1]}: {why}")
    assumed = holdings is None
    h = holdings or Holdings({}, cfg.execution.initial_cash)
    check_holdings(h, cfg.execution.allow_short)
    clash = [s for s in symbols if h.cash_row is not None and s.lower() == h.cash_row.lower()]
    if clash:
        raise DataError(
            f"positions: the CSV row {h.cash_row},{h.cash:g} is ambiguous: the data has a "
            f"symbol {clash[0]} (a CSV 'cash' row is currency, a TOML [positions] {clash[0]} "
            f"is units of it); write currency as the row currency,{h.cash:g} (or --cash "
            f"{h.cash:g}), units of {clash[0]} in a TOML file: [positions] {clash[0]} = "
            f"{h.cash:g}"
        )
    unknown = [s for s in h.qty if s not in symbols]
    if unknown:
        raise DataError(
            f"positions: {unknown[0]!r} is not in the data ({', '.join(symbols)}); "
            "it cannot be priced"
        )
    held = np.array([h.qty.get(s, 0.0) for s in symbols])
    value = float(h.cash + held @ close)
    target_qty = w * value / close
    trades = []
    for j, s in enumerate(symbols):
        dq = float(target_qty[j] - held[j])
        if abs(dq * close[j]) > 1e-9 * max(abs(value), 1.0):
            trades.append(
                {"symbol": s, "qty": dq, "price": float(close[j]), "value": dq * float(close[j])}
            )
    # state-conditional risk (regime known at the previous close, bars <= as_of only)
    rets = np.vstack([np.full((1, len(symbols)), np.nan), panel.close[1:] / panel.close[:-1] - 1])
    prev_state = np.concatenate([[-1], smoothed[:-1]])
    in_regime = prev_state == state if state >= 0 else prev_state >= -1
    risk_args = (adv.levels, adv.horizon, adv.min_regime_bars, adv.min_windows)
    risk: dict[str, Any] = {"target": conditional_var(rets, in_regime, w, *risk_args)}
    if holdings is not None and value != 0.0:
        w_now = held * close / value
        risk["current"] = conditional_var(rets, in_regime, w_now, *risk_args)
        risk["current_weights"] = {s: float(x) for s, x in zip(symbols, w_now)}
    for part in ("target", "current"):
        if part in risk:
            r = risk[part]
            for key in [x for x in r if x.startswith(("var_", "cvar_"))]:
                r[
                    key.replace("var_", "var_value_", 1)
                    if key.startswith("var_")
                    else key.replace("cvar_", "cvar_value_", 1)
                ] = r[key] * value
    label = labels[state] if 0 <= state < k else "warmup"
    bar_days = (
        float(np.median(np.diff(panel.index.asi8[-50:]))) / 86.4e12 if panel.n_bars > 1 else 1.0
    )
    stale = None if as_of is not None else staleness(panel.index[-1], bar_days)
    return {
        "as_of": str(panel.index[-1].date()),
        "stale_days": stale,
        "config": cfg.name,
        "detector": prep.detector.name,
        "strategy": scfg.name,
        "regime": {
            "state": state,
            "label": label,
            "raw_state": int(np.asarray(out.raw)[-1]),
            "probabilities": {lab: float(p) for lab, p in zip(labels, post)},
            "duration_bars": dur,
            "since": str(since.date()),
        },
        "portfolio_value": value,
        "portfolio_assumed": assumed,
        "cash": h.cash,
        "holdings": {s: float(q) for s, q in zip(symbols, held)},
        "target_weights": {s: float(x) for s, x in zip(symbols, w)},
        "target_cash_weight": float(1.0 - w.sum()),
        "trades": trades,
        "prices": {s: float(c) for s, c in zip(symbols, close)},
        "risk": risk,
        "warning": {
            "active": bool(reasons),
            "reasons": reasons,
            "alert_states": list(alert),
            "p_alert": p_alert,
            "threshold": adv.threshold,
            "changepoint": adv.changepoint,
            "changepoint_score": cp,
            "vol_rising": rising,
        },
    }


# ---------------------------------------------------------------- output
def format_advice(a: dict[str, Any]) -> str:
    """Human-readable advice."""
    r = a["regime"]
    lines = [
        f"regime-engine advise: as of {a['as_of']} (config {a['config']!r}, detector "
        f"{a['detector']}, strategy {a['strategy']!r})",
        *(
            [f"STALE DATA: the last bar is {a['stale_days']:,.0f} days old; not today's advice"]
            if a.get("stale_days") is not None
            else []
        ),
        "",
        f"regime: {r['label']} (state {r['state']}) for {r['duration_bars']} bars, "
        f"since {r['since']}",
        "probabilities: " + "  ".join(f"{k}={v:.3f}" for k, v in r["probabilities"].items()),
        "",
        f"portfolio value {fmt.money(a['portfolio_value'], 2)} "
        f"(uninvested cash {fmt.money(a['cash'], 2)})"
        + (
            " - ASSUMED: all cash at execution.initial_cash; give --positions or --cash"
            if a.get("portfolio_assumed")
            else ""
        ),
        f"{'symbol':<22}{'price':>12}{'held qty':>14}{'target w':>10}{'trade qty':>14}"
        f"{'trade value':>16}",
    ]
    tr = {t["symbol"]: t for t in a["trades"]}
    for s, w in a["target_weights"].items():
        t = tr.get(s)
        name = f"{s} (cash asset)" if s.lower() == "cash" else s
        lines.append(
            f"{name:<22}{fmt.money(a['prices'][s], 4):>12}{fmt.money(a['holdings'][s], 4):>14}"
            f"{fmt.pct(w, 1):>10}"
            + (
                f"{fmt.money(t['qty'], 4, signed=True):>14}"
                f"{fmt.money(t['value'], 2, signed=True):>16}"
                if t
                else f"{'-':>14}{'-':>16}"
            )
        )
    lines.append(
        f"{'uninvested cash':<22}{'':>12}{'':>14}{fmt.pct(a['target_cash_weight'], 1):>10}"
    )
    lines.append("")
    pv = a["portfolio_value"]
    for part, title in (("target", "target portfolio"), ("current", "current holdings")):
        if part not in a["risk"]:
            continue
        rk = a["risk"][part]
        hz = next(k for k in rk if k.startswith("method_"))
        cond = "in this regime" if rk["conditioned"] else "all bars (too few in this regime)"
        lines.append(
            f"risk of the {title}: {rk['bars']} daily returns {cond}; {hz[7:]} by {rk[hz]}; "
            "losses negative"
        )
        lines.append(f"  {'':<12}{'VaR':>9}{'VaR (money)':>16}{'CVaR':>10}{'CVaR (money)':>16}")
        for key in [k for k in rk if k.startswith("var_") and not k.startswith("var_value")]:
            v, cv = float(rk[key]), float(rk["c" + key])
            lines.append(
                f"  {key:<12}{fmt.value('var', v):>9}{fmt.money(-abs(v) * pv):>16}"
                f"{fmt.value('cvar', cv):>10}{fmt.money(-abs(cv) * pv):>16}"
            )
    lines.append("")
    wn = a["warning"]
    if wn["active"]:
        lines.append("RISK WARNING:")
        lines.extend(f"  - {x}" for x in wn["reasons"])
    else:
        lines.append(
            f"no warning: P({'+'.join(wn['alert_states'])}) = {wn['p_alert']:.2f} "
            f"< {wn['threshold']:.2f}"
            + (
                f"; changepoint score {wn['changepoint_score']:.2f}"
                if wn["changepoint_score"] is not None
                else ""
            )
        )
    return "\n".join(lines)


def publish(address: str, a: dict[str, Any], wait_s: float, bind: bool = True) -> None:
    """Send the advice on the bus: a ``regime`` message (+ warning fields) and ``targets``."""
    from engine.bus.zmq_bus import Publisher

    pub = Publisher(address, bind=bind)
    try:
        time.sleep(wait_s)  # let subscribers (re)connect: PUB drops messages sent before
        ts = int(pd.Timestamp(a["as_of"]).value)
        r = a["regime"]
        pub.publish(
            "regime",
            ts=ts,
            strategy=a["strategy"],
            bar=-1,
            regime=r["state"],
            state=r["raw_state"],
            label=r["label"],
            posterior=list(r["probabilities"].values()),
            warning=a["warning"]["active"],
            reasons=a["warning"]["reasons"],
            p_alert=a["warning"]["p_alert"],
            source="advise",
        )
        pub.publish(
            "targets",
            ts=ts,
            strategy=a["strategy"],
            bar=-1,
            weights=a["target_weights"],
            source="advise",
        )
        time.sleep(0.05)
    finally:
        pub.close()


def cmd_advise(args: argparse.Namespace) -> int:
    cfg, adv = split_config(args.config)
    holdings = None
    if args.positions:
        holdings = load_positions(args.positions)
    if args.cash is not None:
        h = holdings or Holdings({}, 0.0)
        holdings = Holdings(h.qty, float(args.cash))
    if holdings is not None:
        check_holdings(
            holdings,
            cfg.execution.allow_short,
            "--cash" if args.cash is not None and holdings.cash < 0 else "positions",
        )
    a = advise(cfg, adv, holdings, args.as_of)
    if a.get("stale_days") is not None:
        print(
            f"warning: the data end on {a['as_of']}, {a['stale_days']:,.0f} days ago: this is "
            "advice for that date, not for today (update the data or pass --as-of)",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(a, indent=2, default=_jsonable))
    else:
        print(format_advice(a))
    if args.publish:
        publish(args.publish, a, adv.publish_wait_s, bind=not args.publish_connect)
    return EXIT_WARNING if a["warning"]["active"] else 0


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(f"not JSON serialisable: {type(x)}")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "advise",
        help="current regime, target weights, trades, state-conditional VaR/CVaR, warning",
        description="Exit code 3 when a risk warning is active.",
    )
    p.add_argument("config", nargs="?", default=None, help="TOML config (default: built-in)")
    p.add_argument("--positions", default=None, help="holdings: TOML ([positions], cash) or CSV")
    p.add_argument("--cash", type=float, default=None, help="currency cash (overrides the file)")
    p.add_argument("--as-of", default=None, help="use data up to this date only (YYYY-MM-DD)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--publish", default=None, help="publish on the ZeroMQ bus at this address")
    p.add_argument(
        "--publish-connect",
        action="store_true",
        help="connect to a SUB that binds instead of binding the PUB",
    )
    p.set_defaults(handler=cmd_advise)


if __name__ == "__main__":  # pragma: no cover
    from engine.cli import main

    sys.exit(main(["advise", *sys.argv[1:]]))

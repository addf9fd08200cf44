"""Regime-conditional portfolio optimisation (``kind = "optimized"``).

At each rebalance bar ``t`` the strategy estimates, from bars ``<= t`` only:

* per regime ``k``, the mean and covariance of the trailing simple returns weighted by the
  filtered posterior ``p_k`` of the bar each return ends on and by an exponential decay
  (``half_life``), optionally shrunk (Ledoit–Wolf, or a fixed intensity);
* the predictive mixture for the next bar, from the current posterior ``p_t`` and a
  transition matrix ``A`` (``pi = p_t A``; ``mu = sum pi_k mu_k``,
  ``Sigma = sum pi_k (Sigma_k + mu_k mu_k') - mu mu'``);
* for CVaR, the trailing returns as scenarios with probabilities ``q_s = sum_k pi_k
  d_s p_{s,k} / sum_u d_u p_{u,k}`` (the same mixture, as a distribution);

then hands these to skfolio (``MeanRisk`` / ``RiskBudgeting`` on cvxpy + Clarabel) with
bounds, group limits, a budget (< 1 leaves cash), a turnover limit, transaction costs and
the previous targets as the starting point. ``conditional = false`` gives the same
optimiser with unconditional moments (every posterior = 1): the baseline.

How it runs in both drivers
---------------------------
A Python optimiser cannot run inside the compiled driver's njit loop. It does not need to:
the targets at bar ``t`` depend only on closes ``<= t``, the filtered posteriors ``<= t``
(the detector never reads the portfolio, so its pass is computed ahead of the loop) and
the previous *targets* (not the drifted holdings), which are themselves computable in
order. So :meth:`OptimizedStrategy.bind` runs the regime pass once, walks the rebalance
bars in order calling :func:`targets_at`, and returns a :class:`BoundTable`: a compiled
policy that reads row ``t`` of that table. The streaming driver (and paper trading) runs
:class:`OptimizedCallbacks`, which keeps the closes and posteriors it has seen and calls
the same :func:`targets_at` on the same arrays at the same bars: the targets agree bit for
bit (a test replays the bundled panel through both).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, get_args

import numba as nb
import numpy as np
import structlog

from engine.config import Objective
from engine.plugins.context_nb import BarContext
from engine.plugins.strategy import Context
from engine.weights import WeightSpec, weight_vector
from strategies.optimized_nb import (
    decay_weights_nb,
    ledoit_wolf_nb,
    mixture_nb,
    predict_nb,
    scenario_weights_nb,
    shrink_fixed_nb,
    simple_returns_nb,
    soft_transitions_nb,
    state_moments_nb,
)

log = structlog.get_logger(__name__)

OBJECTIVES: tuple[str, ...] = get_args(Objective)
#: objectives that take negative lower bounds (shorts, total bounded by max_short)
WITH_SHORTS = ("min_variance", "max_sharpe", "max_utility", "min_cvar")
#: objectives whose weights sum to 1 by construction: scaled to the budget afterwards
SCALE_FREE = ("risk_parity", "hierarchical_risk_parity")
#: objectives whose objective has a return term (transaction costs enter it)
WITH_RETURN = ("max_sharpe", "max_utility", "min_cvar")
#: objectives that take a total-turnover constraint (not homogeneous: not in the ratio)
WITH_TURNOVER = ("min_variance", "max_utility", "min_cvar")
WEIGHT_TOL = 1e-9
#: Clarabel's tolerances, tighter than its defaults: weights accurate to ~1e-8 on the
#: scaled problem (see :func:`scaled`)
SOLVER_PARAMS = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12}


@dataclass(frozen=True)
class Group:
    """A group limit: ``min <= sum of the members' weights <= max``."""

    assets: tuple[str, ...]
    min: float = 0.0
    max: float = 1.0


@dataclass(frozen=True)
class Settings:
    """The optimiser's settings (all windows in bars). See ``OptimizedConfig``."""

    objective: str = "min_variance"
    assets: tuple[str, ...] | None = None  # None: every symbol except one named CASH
    conditional: bool = True
    window: int = 756
    min_history: int = 252
    half_life: float = 126.0  # 0: equal weights
    shrinkage: str | float = "ledoit_wolf"  # "none", "ledoit_wolf" or an intensity
    transition: str = "empirical"  # "empirical" (soft counts) or "none" (pi = p_t)
    transition_prior: float = 1.0
    min_state_obs: float = 20.0  # effective observations below which a state is pooled
    min_weight: float | Mapping[str, float] = 0.0  # < 0: a short, with max_short > 0
    max_weight: float | Mapping[str, float] = 1.0
    budget: float = 1.0  # the net sum of the weights
    max_short: float = 0.0  # total short weight (sum of |w| over w < 0)
    groups: Mapping[str, Group] = field(default_factory=dict)
    turnover: float | None = None  # total one-way sum |w - w_prev|
    cost_bps: float = 0.0
    cost_horizon: float = 21.0  # bars a rebalance is held: amortises the cost
    risk_aversion: float = 1.0
    cvar_beta: float = 0.95


class InfeasibleError(ValueError):
    """Constraints no weights can meet (a config error before the run)."""


# ------------------------------------------------------------------ resolved constraints
@dataclass(frozen=True)
class Resolved:
    """Settings resolved on a panel's symbols: indices and bound vectors."""

    idx: np.ndarray  # (M,) columns of the optimised assets
    lo: np.ndarray  # (M,)
    hi: np.ndarray  # (M,)
    groups: tuple[tuple[str, np.ndarray, float, float], ...]  # (name, member mask, lo, hi)


def _bound(spec: float | Mapping[str, float], assets: Sequence[str], what: str) -> np.ndarray:
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - set(assets) - {"*"})
        if unknown:
            raise InfeasibleError(f"{what}: {unknown[0]!r} is not an optimised asset")
        default = float(spec.get("*", 0.0 if what == "min_weight" else 1.0))
        return np.array([float(spec.get(a, default)) for a in assets])
    return np.full(len(assets), float(spec))


def resolve(s: Settings, symbols: Sequence[str]) -> Resolved:
    """Indices and bounds on ``symbols``; :class:`InfeasibleError` (one line, naming the
    key) when no weights can meet the bounds, groups and budget together."""
    syms = list(symbols)
    assets = list(s.assets) if s.assets is not None else [a for a in syms if a.upper() != "CASH"]
    missing = [a for a in assets if a not in syms]
    if missing:
        raise InfeasibleError(f"assets: {missing[0]!r} is not a symbol of the data ({syms})")
    if not assets:
        raise InfeasibleError("assets: nothing to optimise")
    lo = _bound(s.min_weight, assets, "min_weight")
    hi = _bound(s.max_weight, assets, "max_weight")
    if (lo < 0.0).any():
        if s.objective in SCALE_FREE:
            raise InfeasibleError(
                f"min_weight: {s.objective} takes long-only weights (no negative lower bound)"
            )
        if s.max_short <= 0.0:
            raise InfeasibleError(
                "min_weight: a negative lower bound (a short) needs max_short > 0 (the total "
                "short weight)"
            )
    for a, x, y in zip(assets, lo, hi):
        if x > y:
            raise InfeasibleError(f"min_weight {x:g} of {a} is above its max_weight {y:g}")
    if lo.sum() > s.budget + WEIGHT_TOL:
        raise InfeasibleError(
            f"min_weight: the lower bounds sum to {lo.sum():g}, above the budget {s.budget:g}"
        )
    if hi.sum() < s.budget - WEIGHT_TOL and s.objective != "risk_parity":
        raise InfeasibleError(
            f"max_weight: the upper bounds sum to {hi.sum():g}, below the budget {s.budget:g}"
        )
    groups = []
    for name, g in s.groups.items():
        unknown = [a for a in g.assets if a not in assets]
        if unknown:
            raise InfeasibleError(f"groups.{name}: {unknown[0]!r} is not an optimised asset")
        mask = np.array([a in g.assets for a in assets])
        if g.min > g.max:
            raise InfeasibleError(f"groups.{name}: min {g.min:g} is above max {g.max:g}")
        if g.min > hi[mask].sum() + WEIGHT_TOL:
            raise InfeasibleError(
                f"groups.{name}: min {g.min:g} is above its members' max_weight sum "
                f"{hi[mask].sum():g}"
            )
        if g.max < lo[mask].sum() - WEIGHT_TOL:
            raise InfeasibleError(
                f"groups.{name}: max {g.max:g} is below its members' min_weight sum "
                f"{lo[mask].sum():g}"
            )
        # the rest of the budget must fit outside the group
        out_hi = hi[~mask].sum() + g.max
        if out_hi < s.budget - WEIGHT_TOL and s.objective != "risk_parity":
            raise InfeasibleError(
                f"groups.{name}: max {g.max:g} plus the other assets' max_weight sum "
                f"{hi[~mask].sum():g} is below the budget {s.budget:g}"
            )
        if lo[~mask].sum() + g.min > s.budget + WEIGHT_TOL:
            raise InfeasibleError(
                f"groups.{name}: min {g.min:g} plus the other assets' min_weight sum "
                f"{lo[~mask].sum():g} is above the budget {s.budget:g}"
            )
        groups.append((name, mask, float(g.min), float(g.max)))
    idx = np.array([syms.index(a) for a in assets], dtype=np.int64)
    return Resolved(idx, lo, hi, tuple(groups))


# ------------------------------------------------------------------ moments
@dataclass(frozen=True)
class Moments:
    """What the optimiser is fed at one bar."""

    mu: np.ndarray  # (M,) predictive mean
    cov: np.ndarray  # (M, M) predictive covariance
    returns: np.ndarray  # (n, M) trailing returns (scenarios)
    weights: np.ndarray  # (n,) scenario probabilities
    pi: np.ndarray  # (K,) predicted state probabilities
    state_mu: np.ndarray  # (K, M)
    state_cov: np.ndarray  # (K, M, M) (shrunk when asked)
    scale: float = 1.0  # returns are in units of 1 / scale (see :func:`scaled`)


def moments(close: np.ndarray, post: np.ndarray, s: Settings) -> Moments:
    """Regime-conditional predictive moments from ``close`` (n + 1, M) and ``post``
    (n, K): the posterior of the bar each return ends on, the last row the current one.
    ``s.conditional = False`` (or K = 1) gives the unconditional moments of the same
    window and decay."""
    R = simple_returns_nb(np.ascontiguousarray(close, dtype=np.float64))
    n = R.shape[0]
    P = np.ascontiguousarray(post, dtype=np.float64)
    if not s.conditional:
        P = np.ones((n, 1))
    d = decay_weights_nb(n, float(s.half_life))
    mu_k, cov_k, mass, ess = state_moments_nb(R, P, d)
    weak = ess < s.min_state_obs
    if weak.any() and P.shape[1] > 1:  # too few observations: pool the state
        P = P.copy()
        P[:, weak] = 1.0
        mu_k, cov_k, mass, ess = state_moments_nb(R, P, d)
    K = P.shape[1]
    if s.shrinkage == "ledoit_wolf":
        for k in range(K):
            cov_k[k] = ledoit_wolf_nb(R, np.ascontiguousarray(d * P[:, k]), mu_k[k], cov_k[k])[0]
    elif not isinstance(s.shrinkage, str) and s.shrinkage > 0.0:
        for k in range(K):
            cov_k[k] = shrink_fixed_nb(cov_k[k], float(s.shrinkage))
    if K == 1:
        pi = np.ones(1)
    else:
        p_now = np.ascontiguousarray(P[-1])
        if s.transition == "empirical":
            pi = predict_nb(p_now, soft_transitions_nb(P, d, float(s.transition_prior)))
        else:
            pi = p_now.copy()
    mu, cov = mixture_nb(pi, mu_k, cov_k)
    q = scenario_weights_nb(P, d, pi, mass)
    return Moments(mu, cov, R, q, pi, mu_k, cov_k)


# ------------------------------------------------------------------ the optimiser
def _fixed_prior(m: Moments) -> Any:
    """A skfolio prior that returns the given moments (and scenario weights)."""
    from skfolio.prior import BasePrior, ReturnDistribution

    class FixedPrior(BasePrior):  # type: ignore[misc]
        def __init__(self) -> None:
            pass

        def fit(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
            self.return_distribution_ = ReturnDistribution(
                mu=m.mu, covariance=m.cov, returns=m.returns, sample_weight=m.weights
            )
            return self

    return FixedPrior()


def scaled(m: Moments) -> Moments:
    """The moments in units where the average variance is 1 (returns times ``c``, the
    covariance times ``c**2``: ``c = 1 / mean asset volatility``). Every objective's
    optimal weights are unchanged (variance, CVaR, utility with costs scaled alike, the
    Sharpe ratio and risk budgets are all homogeneous), but the solver's absolute
    tolerances now mean ~1e-8 in the weights instead of ~1e-4 on daily variances."""
    M = m.cov.shape[0]
    tr = 0.0
    for i in range(M):
        tr += float(m.cov[i, i])
    c = 1.0 / math.sqrt(tr / M) if tr > 0.0 else 1.0
    return replace(m, mu=m.mu * c, cov=m.cov * (c * c), returns=m.returns * c, scale=c)


def skfolio_model(m: Moments, s: Settings, r: Resolved, prev: np.ndarray | None) -> Any:
    """The skfolio estimator for these moments and constraints (``prev``: the previous
    targets of the optimised assets, None at the first solve)."""
    import cvxpy as cp
    from skfolio import RiskMeasure
    from skfolio.optimization import MeanRisk, ObjectiveFunction, RiskBudgeting

    kw: dict[str, Any] = {
        "prior_estimator": _fixed_prior(m),
        "min_weights": r.lo,
        "max_weights": r.hi,
        "solver": "CLARABEL",
        "solver_params": dict(SOLVER_PARAMS),
    }
    if (r.lo < 0.0).any():  # shorts: their total bounded (gross <= budget + 2 max_short)
        kw["max_short"] = float(s.max_short)
    if r.groups:
        kw["groups"] = np.array([np.where(g[1], g[0], f"not_{g[0]}") for g in r.groups])
        lin = []
        for name, _mask, g_lo, g_hi in r.groups:
            if g_lo > 0.0:
                lin.append(f"{name} >= {g_lo!r}")
            lin.append(f"{name} <= {g_hi!r}")
        kw["linear_constraints"] = lin
    cost = s.cost_bps * 1e-4 / s.cost_horizon * m.scale
    if prev is not None:
        kw["previous_weights"] = prev
        if cost > 0.0 and s.objective in ("max_sharpe", "max_utility"):
            kw["transaction_costs"] = cost
    extra: list[Any] = []
    if prev is not None and s.turnover is not None and s.objective in WITH_TURNOVER:
        tau, p0 = float(s.turnover), prev.copy()
        extra.append(lambda w: cp.norm1(w - p0) <= tau)
    if extra:
        kw["add_constraints"] = lambda w: [f(w) for f in extra]
    if prev is not None and cost > 0.0 and s.objective == "min_cvar":
        p1 = prev.copy()
        kw["add_objective"] = lambda w: cost * cp.norm1(w - p1)
    if s.objective == "risk_parity":
        return RiskBudgeting(risk_measure=RiskMeasure.VARIANCE, **kw)
    if s.objective == "hierarchical_risk_parity":
        return hrp_model(m, r, s.budget)
    kw["budget"] = s.budget
    if s.objective == "min_variance":
        return MeanRisk(risk_measure=RiskMeasure.VARIANCE, **kw)
    if s.objective == "max_sharpe":
        return MeanRisk(
            objective_function=ObjectiveFunction.MAXIMIZE_RATIO,
            risk_measure=RiskMeasure.STANDARD_DEVIATION,
            **kw,
        )
    if s.objective == "max_utility":
        return MeanRisk(
            objective_function=ObjectiveFunction.MAXIMIZE_UTILITY,
            risk_measure=RiskMeasure.VARIANCE,
            risk_aversion=s.risk_aversion,
            **kw,
        )
    if s.objective == "min_cvar":
        return MeanRisk(risk_measure=RiskMeasure.CVAR, cvar_beta=s.cvar_beta, **kw)
    raise ValueError(f"objective: unknown {s.objective!r} (one of {', '.join(OBJECTIVES)})")


def hrp_model(m: Moments, r: Resolved, budget: float) -> Any:
    """skfolio's hierarchical risk parity on these moments: the clustering distance and
    the bisection's cluster variances both from the (conditional) covariance ``m.cov``;
    bounds divided by ``budget`` (its weights sum to 1, scaled to the budget after). No
    groups, turnover or costs (refused in the config)."""
    from skfolio import RiskMeasure
    from skfolio.distance import CovarianceDistance
    from skfolio.optimization import HierarchicalRiskParity

    return HierarchicalRiskParity(
        risk_measure=RiskMeasure.VARIANCE,
        prior_estimator=_fixed_prior(m),
        distance_estimator=CovarianceDistance(covariance_estimator="precomputed"),
        min_weights=r.lo / budget,
        max_weights=np.minimum(r.hi / budget, 1.0),
    )


def solve(m: Moments, s: Settings, r: Resolved, prev: np.ndarray | None) -> np.ndarray:
    """Optimal weights of the optimised assets (M,), cleaned to the bounds; raises on a
    failed solve (the caller keeps its previous targets)."""
    import warnings

    m = scaled(m)
    model = skfolio_model(m, s, r, prev)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(m.returns)
    w = np.asarray(model.weights_, dtype=np.float64)
    if w.shape != r.lo.shape or not np.isfinite(w).all():
        raise ValueError("the solver returned no finite weights")
    if s.objective in SCALE_FREE and s.budget != 1.0:
        w = w * s.budget  # risk budgets are scale-free: the rest stays in cash
    w = np.minimum(np.maximum(w, r.lo), r.hi)  # solver tolerance
    w[np.abs(w) < 1e-10] = 0.0
    total = float(w.sum())  # the net sum (shorts: longs - shorts = budget)
    if total > s.budget:
        w = w * (s.budget / total)
    return w


# ------------------------------------------------------------------ one bar, both drivers
@dataclass
class Tracker:
    """The sequential state of the optimiser (the same in both drivers): the previous
    targets, whether an optimised solve happened yet, and the failure count."""

    prev: np.ndarray
    solved: bool = False
    failures: int = 0
    solves: int = 0
    failed_bars: list[int] = field(default_factory=list)


def targets_at(
    t: int,
    close: np.ndarray,
    post: np.ndarray,
    s: Settings,
    r: Resolved,
    tr: Tracker,
) -> np.ndarray | None:
    """The targets (N,) decided at rebalance bar ``t``, or None to hold (a failed solve:
    logged and counted). ``close`` is the trailing window of closes ending at ``t``
    ((n + 1, N)) and ``post`` the posteriors of its last n bars. Updates ``tr``."""
    sub_close = np.ascontiguousarray(close[:, r.idx])
    try:
        m = moments(sub_close, post, s)
        w = solve(m, s, r, tr.prev[r.idx] if tr.solved else None)
    except Exception as exc:  # a failed or infeasible solve: keep the previous targets
        tr.failures += 1
        tr.failed_bars.append(t)
        log.warning("optimized.solve_failed", bar=t, error=str(exc)[:200], kept="previous")
        return None
    tr.solves += 1
    out = np.zeros_like(tr.prev)
    out[r.idx] = w
    tr.prev = out
    tr.solved = True
    return out


def ready(t: int, raw_seen: bool, s: Settings) -> bool:
    """Enough history to optimise (and, when conditional, the detector has spoken)."""
    return t >= s.min_history and (raw_seen or not s.conditional)


# ------------------------------------------------------------------ the compiled form
@nb.njit(cache=True)
def table_policy_nb(
    t: int, ctx: BarContext, sparams: np.ndarray, sstate: np.ndarray, target: np.ndarray
) -> bool:
    """Targets decided ahead of the loop: ``sparams = [T, go (T), table (T * N)]``;
    rebalance to row ``t`` where ``go[t]``."""
    T = int(sparams[0])
    if t >= T or sparams[1 + t] == 0.0:
        return False
    n = target.shape[0]
    base = 1 + T + t * n
    for j in range(n):
        target[j] = sparams[base + j]
    return True


@dataclass(frozen=True)
class BoundTable:
    """An optimised strategy bound to one prepared run: its decisions as a table."""

    name: str
    go: np.ndarray  # (T,) bool
    table: np.ndarray  # (T, N)
    rebalance: str | None
    failures: int = 0
    solves: int = 0
    failed_bars: tuple[int, ...] = ()
    uses_builtin_features: bool = False

    @property
    def policy(self) -> Any:
        return table_policy_nb

    def params(self, symbols: tuple[str, ...], labels: tuple[str, ...]) -> np.ndarray:
        T = self.go.shape[0]
        return np.concatenate(([float(T)], self.go.astype(np.float64), self.table.ravel()))

    def state_size(self) -> int:
        return 1


def decisions(
    close: np.ndarray,
    post: np.ndarray,
    raw: np.ndarray,
    new_period: np.ndarray,
    s: Settings,
    r: Resolved,
    warmup: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, Tracker]:
    """The whole history's decisions, in order, exactly as the streaming callbacks take
    them bar by bar: ``(go (T,), targets (T, N), tracker)``."""
    T, N = close.shape
    go = np.zeros(T, dtype=np.bool_)
    table = np.zeros((T, N))
    tr = Tracker(prev=warmup.copy())
    seen = False
    for t in range(T):
        seen = seen or raw[t] >= 0
        out = decide(t, t == 0, bool(new_period[t]), seen, close, post, s, r, tr, warmup)
        if out is not None:
            go[t] = True
            table[t] = out
    return go, table, tr


def decide(
    t: int,
    first: bool,
    new_period: bool,
    raw_seen: bool,
    close: np.ndarray,
    post: np.ndarray,
    s: Settings,
    r: Resolved,
    tr: Tracker,
    warmup: np.ndarray,
) -> np.ndarray | None:
    """One bar's decision from the arrays of bars ``0..t`` (or longer: only rows
    ``<= t`` are read). The first bar holds ``warmup``; rebalance bars optimise once
    :func:`ready`, else hold ``warmup``."""
    if first:
        return warmup.copy()
    if not new_period:
        return None
    if not ready(t, raw_seen, s):
        return warmup.copy() if not tr.solved else None
    lo = max(0, t - s.window)
    return targets_at(t, close[lo : t + 1], post[lo + 1 : t + 1], s, r, tr)


# ------------------------------------------------------------------ the plug-in
_CACHE: dict[tuple[Any, ...], BoundTable] = {}
_CACHE_MAX = 64


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class OptimizedStrategy:
    """``kind = "optimized"``: regime-conditional moments into skfolio, rebalanced on a
    calendar. Compiled driver: :meth:`bind` (targets ahead of the loop); streaming driver
    and paper: :meth:`streaming` (the same decisions bar by bar)."""

    name: str
    settings: Settings = Settings()
    warmup: WeightSpec = "equal"
    rebalance: str | None = "M"
    uses_builtin_features: bool = False

    @property
    def policy(self) -> Any:
        return table_policy_nb

    def params(self, symbols: tuple[str, ...], labels: tuple[str, ...]) -> np.ndarray:
        raise ValueError(
            f"strategy {self.name!r} (kind optimized) decides its targets from the whole "
            "prepared run: it runs bound to one (bind), in backtest, validate, sweep, "
            "advise and paper, not in chunked backtests"
        )

    def state_size(self) -> int:
        return 1

    def check(self, symbols: Sequence[str]) -> None:
        """Refuse infeasible constraints on these symbols (:class:`InfeasibleError`)."""
        resolve(self.settings, symbols)
        self.warmup_vector(tuple(symbols))

    def check_rules(self, rules: Any) -> None:
        """Refuse shorts the execution's weight rules (:class:`engine.weights.WeightRules`)
        would refuse at the first short target: shorts need ``allow_short``, and the gross
        exposure ``budget + 2 max_short`` must fit ``max_gross`` (``allow_leverage``)."""
        s = self.settings
        if s.max_short <= 0.0:
            return
        if not rules.allow_short:
            raise InfeasibleError(
                "max_short: shorts need execution.allow_short = true (short positions pay "
                "costs.borrow_bps)"
            )
        gross = s.budget + 2.0 * s.max_short
        if gross > rules.max_gross + WEIGHT_TOL:
            raise InfeasibleError(
                f"max_short: the gross exposure can reach budget + 2 max_short = {gross:g}, "
                f"above the execution's max_gross {rules.max_gross:g} (set "
                f"execution.allow_leverage = true and max_gross >= {gross:g})"
            )

    def warmup_vector(self, symbols: tuple[str, ...]) -> np.ndarray:
        if self.warmup == "equal":
            r = resolve(self.settings, symbols)
            w = np.zeros(len(symbols))
            w[r.idx] = self.settings.budget / r.idx.shape[0]
            return w
        return weight_vector(self.warmup, symbols, f"strategy {self.name!r} warmup")

    def unconditional(self, name: str | None = None) -> OptimizedStrategy:
        """The same optimiser on unconditional moments (the baseline)."""
        return replace(
            self,
            name=name or f"{self.name}_unconditional",
            settings=replace(self.settings, conditional=False),
        )

    def bind(self, prep: Any) -> BoundTable:
        """The decisions over a prepared run, as a table the compiled policy reads."""
        from engine.core.backtest import run_strategy_raw
        from strategies.static import StaticAllocation

        # the regime pass: a strategy-free run (it never trades) gives the filtered
        # posterior and raw states the step computes, bit for bit
        hold = StaticAllocation(f"{self.name}:regimes", {}, None)
        pass_ = run_strategy_raw(prep, hold)
        return self.bind_regimes(prep.panel, pass_.post, pass_.raw)

    def bind_regimes(self, panel: Any, post: np.ndarray, raw: np.ndarray) -> BoundTable:
        """:meth:`bind` from a regime pass computed elsewhere (a sweep shares one pass
        per detector fit, features and smoothing): ``post`` (T, K) filtered posteriors,
        ``raw`` (T,) raw states of ``panel``'s bars."""
        from engine.core.backtest import period_flags

        symbols = tuple(panel.symbols)
        r = resolve(self.settings, symbols)
        warm = self.warmup_vector(symbols)
        post = np.ascontiguousarray(post)
        flags = period_flags(panel.index, self.rebalance)
        key: tuple[Any, ...] = (self.name, repr(self.settings), repr(self.warmup))
        key += (self.rebalance, symbols, _digest(panel.close, post, raw, flags))
        hit = _CACHE.get(key)
        if hit is not None:
            return hit
        go, table, tr = decisions(panel.close, post, raw, flags, self.settings, r, warm)
        if tr.failures:
            log.warning(
                "optimized.failures",
                strategy=self.name,
                failed=tr.failures,
                solves=tr.solves,
                first_bar=tr.failed_bars[0],
            )
        bound = BoundTable(
            self.name, go, table, self.rebalance, tr.failures, tr.solves, tuple(tr.failed_bars)
        )
        if len(_CACHE) >= _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = bound
        return bound

    def streaming(self) -> OptimizedCallbacks:
        """The callback form for the streaming driver (paper trading)."""
        return OptimizedCallbacks(self)


class OptimizedCallbacks:
    """The streaming form: keeps the closes and posteriors it has seen and decides at the
    same bars with the same function as the ahead-of-loop pass."""

    def __init__(self, strategy: OptimizedStrategy) -> None:
        self.spec = strategy
        self.name = strategy.name
        self.rebalance = strategy.rebalance
        self._r: Resolved | None = None
        self._tr: Tracker | None = None
        self._warm = np.zeros(0)
        self._close = np.zeros((0, 0))
        self._post = np.zeros((0, 0))
        self._n = 0
        self._seen = False

    @property
    def failures(self) -> int:
        return 0 if self._tr is None else self._tr.failures

    @property
    def solves(self) -> int:
        return 0 if self._tr is None else self._tr.solves

    def _grow(self, n_assets: int, k: int) -> None:
        if self._n < self._close.shape[0]:
            return
        size = max(512, 2 * self._close.shape[0])
        close, post = np.zeros((size, n_assets)), np.zeros((size, k))
        if self._n:
            close[: self._n] = self._close[: self._n]
            post[: self._n] = self._post[: self._n]
        self._close, self._post = close, post

    def on_regime_change(self, ctx: Context) -> None:
        return None

    def on_bar(self, ctx: Context) -> np.ndarray | None:
        if self._r is None:
            self._r = resolve(self.spec.settings, ctx.symbols)
            self._warm = self.spec.warmup_vector(ctx.symbols)
            self._tr = Tracker(prev=self._warm.copy())
        assert self._tr is not None
        self._grow(len(ctx.symbols), ctx.posterior.shape[0])
        t = self._n
        self._close[t] = ctx.close
        self._post[t] = ctx.posterior
        self._n += 1
        self._seen = self._seen or ctx.state >= 0
        return decide(
            t,
            t == 0,
            ctx.new_period,
            self._seen,
            self._close,
            self._post,
            self.spec.settings,
            self._r,
            self._tr,
            self._warm,
        )


def from_config(scfg: Any) -> OptimizedStrategy:
    """The strategy of an ``OptimizedConfig`` section (``kind = "optimized"``)."""
    from engine.weights import normalized

    groups = {n: Group(tuple(g.assets), float(g.min), float(g.max)) for n, g in scfg.groups.items()}
    settings = Settings(
        objective=scfg.objective,
        assets=tuple(scfg.assets) if scfg.assets is not None else None,
        conditional=scfg.conditional,
        window=scfg.window,
        min_history=scfg.min_history,
        half_life=scfg.half_life,
        shrinkage=scfg.shrinkage,
        transition=scfg.transition,
        transition_prior=scfg.transition_prior,
        min_state_obs=scfg.min_state_obs,
        min_weight=scfg.min_weight,
        max_weight=scfg.max_weight,
        budget=scfg.budget,
        max_short=scfg.max_short,
        groups=groups,
        turnover=scfg.turnover,
        cost_bps=scfg.cost_bps,
        cost_horizon=scfg.cost_horizon,
        risk_aversion=scfg.risk_aversion,
        cvar_beta=scfg.cvar_beta,
    )
    return OptimizedStrategy(scfg.name, settings, normalized(scfg.warmup, False), scfg.rebalance)

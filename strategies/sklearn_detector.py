"""Example: a scikit-learn random forest as a regime detector.

The forest is trained at each fit bar on the trailing window's inputs, with labels =
the market's realised-volatility bucket over the *next* 21 bars, built only from rows
whose 21 bars end before the fit bar; each bar's posterior is ``predict_proba`` of that
bar's inputs. Any estimator with ``fit`` and ``predict_proba`` (a ``Pipeline``, a
gradient-boosting classifier, a ``GaussianMixture`` without a labeler) plugs in the same
way through :class:`~engine.regimes.estimator.SklearnDetector`.
"""

from __future__ import annotations

from engine.ground import layout as L
from engine.ground.bars import BarPanel
from engine.regimes.estimator import SklearnDetector, forward_vol_labeler
from engine.regimes.inputs import Schedule, resolve_inputs


def random_forest_detector(
    panel: BarPanel,
    market: str = "SPX",
    inputs: tuple[str, ...] = ("logret", "log_vol_fast", "drawdown"),
    n_states: int = 3,
    schedule: Schedule | None = None,
    n_estimators: int = 50,
) -> SklearnDetector:
    """calm / volatile / crisis from a random forest of forward-volatility buckets."""
    from sklearn.ensemble import RandomForestClassifier

    market_col = panel.column(market) * L.N_FEAT_ASSET + L.F_LOGRET
    return SklearnDetector(
        estimator=RandomForestClassifier(
            n_estimators=n_estimators, max_depth=4, min_samples_leaf=20, random_state=0
        ),
        inputs=resolve_inputs(panel, market, inputs),
        n_states=n_states,
        schedule=schedule or Schedule(min_train=504, refit_every=252, skip=21),
        labeler=forward_vol_labeler(market_col, n_states, horizon=21),
        market_col=market_col,
        name="random_forest",
    )

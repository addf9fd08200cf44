"""Analysis of backtest results (pandas in, pandas out; no strategy/broker/feed imports).

Modules: :mod:`.metrics` (performance and tail risk), :mod:`.regime_risk` (risk by filtered
state, transitions, dwell), :mod:`.attribution` (asset and cost contributions, Carino
linking), :mod:`.bootstrap` (stationary-bootstrap CIs, deflated Sharpe, SPA) and
:mod:`.stress` (historical windows, hypothetical shocks); for the tearsheet
:mod:`.benchmark` (alpha, beta, information ratio, tracking error, capture),
:mod:`.drawdowns` (drawdown episodes) and :mod:`.tearsheet` (calendar returns, exposure,
turnover, trades, regime performance, detection lag, cost attribution).
"""

"""Slot layouts of the float64 parameter and state vectors shared by the njit kernels.

Kernels take plain arrays (numba compiles one signature for all configurations); these
constants name the slots so kernels and façades agree. Integers stored in float slots
are exact (they are small).
"""

from __future__ import annotations

# ---------------------------------------------------------------- per-asset cost table (N, C)
C_COMMISSION_BPS = 0  # commission as bps of traded notional
C_COMMISSION_PER_SHARE = 1  # currency per share
C_COMMISSION_MIN = 2  # minimum commission per fill (currency)
C_HALF_SPREAD_BPS = 3  # half the quoted spread, paid on every fill
C_SLIPPAGE_BPS = 4  # fixed slippage
C_IMPACT_COEF = 5  # square-root impact: frac = coef * sqrt(|qty| / bar volume)
C_PARTICIPATION = 6  # max fraction of the bar's volume filled per bar (0 = no cap)
C_LOT_SIZE = 7  # 0 = fractional shares, else orders rounded toward zero to this lot
C_BORROW_BPS = 8  # annual borrow fee on short positions, bps of their value
N_COST = 9

# ---------------------------------------------------------------- execution parameters
E_INITIAL_CASH = 0
E_FILL_AT_CLOSE = 1  # 0: fill at the next bar's open, 1: at the next bar's close
E_MAX_GROSS = 2  # max gross exposure / equity when leverage is allowed
E_ALLOW_LEVERAGE = 3  # 0: cash can't go negative
E_TRADE_BAND = 4  # no-trade band in weight units: skip assets with |dw| <= band
E_MIN_TRADE_VALUE = 5  # skip orders below this notional (currency)
E_PERIODS_PER_YEAR = 6  # bars per year (borrow fees accrue per bar)
E_FINANCING_RATE = 7  # annual rate negative cash pays (leverage), accrued per bar
N_EXEC = 8

# ---------------------------------------------------------------- portfolio state vector
# [cash, equity, n_bars_seen, last_decision_bar, pos(N), pending(N)]
P_CASH = 0
P_EQUITY = 1
P_BARS = 2
P_LAST_DECISION = 3
P_HEADER = 4


def portfolio_size(n_assets: int) -> int:
    return P_HEADER + 2 * n_assets


# ---------------------------------------------------------------- per-bar cost record (4,)
K_COMMISSION = 0
K_SPREAD = 1
K_SLIPPAGE = 2
K_IMPACT = 3
N_COST_KINDS = 4

# ---------------------------------------------------------------- fill record columns
R_BAR = 0
R_ASSET = 1
R_QTY = 2  # signed: + buy, - sell
R_PRICE = 3
R_COMMISSION = 4
R_SPREAD = 5
R_SLIPPAGE = 6
R_IMPACT = 7
N_FILL_FIELDS = 8

# ---------------------------------------------------------------- features, per asset block
F_LOGRET = 0
F_VOL_FAST = 1  # EWMA volatility (daily), fast half-life
F_VOL_SLOW = 2  # EWMA volatility (daily), slow half-life
F_MA_GAP = 3  # close / SMA(window) - 1 (0 until the window is full)
F_DRAWDOWN = 4  # close / running peak - 1 (<= 0)
F_RSI = 5  # Wilder RSI in [0, 100] (50 until warmed up)
N_FEAT_ASSET = 6

# feature parameters
FP_HL_FAST = 0
FP_HL_SLOW = 1
FP_MA_WINDOW = 2
FP_RSI_WINDOW = 3
FP_MASKED = 4  # 0: every asset's block is computed; 1: only assets flagged in the mask
N_FEAT_PARAMS = 5
# with FP_MASKED = 1, slot N_FEAT_PARAMS + j is 1.0 when asset j's block is used (else the
# block is skipped and its feature values stay 0): only features something reads are computed

# feature state per asset: header then a ring buffer of ma_window closes
FS_PREV_CLOSE = 0
FS_VAR_FAST = 1
FS_VAR_SLOW = 2
FS_PEAK = 3
FS_MA_SUM = 4
FS_COUNT = 5
FS_RSI_UP = 6
FS_RSI_DOWN = 7
FS_HEADER = 8

# ---------------------------------------------------------------- regime state vector
# [raw_state, smoothed_state, dwell, changed, fit_index, candidate, candidate_count]
G_RAW = 0
G_SMOOTHED = 1
G_DWELL = 2  # bars the smoothed state has been held
G_CHANGED = 3  # 1.0 on the bar the smoothed state changed
G_FIT = 4  # index of the parameter row in force (-1 before the first fit)
G_CAND = 5  # state the raw output has pointed to, waiting for confirmation
G_CAND_COUNT = 6  # consecutive bars it has done so
N_REGIME_STATE = 7

# smoothing parameters
S_PROB_THRESHOLD = 0  # switch only when the new state's posterior >= this
S_MIN_DWELL = 1  # and the current smoothed state has been held this many bars
S_CONFIRM = 2  # and the raw state has pointed to the new state this many bars in a row
N_SMOOTH = 3

# ---------------------------------------------------------------- detector kinds
DET_RULE = 0  # trailing-volatility percentile + trend rule (baseline, no fit)

# detector parameter vectors all start with [kind, n_states, ...]
D_KIND = 0
D_N_STATES = 1

# rule detector parameters
DR_ASSET = 2  # market asset column
DR_VOL_FEATURE = 3  # F_VOL_FAST or F_VOL_SLOW
DR_HIST = 4  # length of the trailing volatility history for the percentile
DR_MIN_HIST = 5  # bars of history needed before the rule speaks
DR_HIGH_PCT = 6  # percentile above which volatility is "high"
DR_CRISIS_PCT = 7  # percentile above which, with a downtrend, the state is crisis
N_RULE_PARAMS = 8

DET_HMM = 1  # Gaussian HMM: forward filter (hmmlearn fit)
DET_GMM = 2  # Gaussian mixture: per-bar posterior (scikit-learn fit; HMM kernel, iid rows)
DET_KMEANS = 3  # k-means: nearest centroid, soft posterior (scikit-learn fit; HMM kernel)
DET_JUMP = 4  # statistical jump model: online forward DP with a switching penalty
DET_LOGIT = 5  # supervised: multinomial logistic regression on forward-outcome labels
DET_BOCPD = 6  # Bayesian online changepoint detection (Adams & MacKay), 2 states
DET_GRU = 7  # deep: GRU classifier (torch fit, numba forward step; engine.regimes.deep_nb)
DET_NONE = 8  # no detection: one state, always known (static-only runs pay nothing)
DET_EXTERNAL = 9  # posterior computed outside the filter (e.g. a scikit-learn estimator's
#                  predict_proba), read from the inputs row: [kind, n_states, first column]
DE_COL = 2
DET_USER = 10  # a user's njit filter step (engine.regimes.user_filter), compiled per process

# fitted detectors share a header: [kind, n_states, n_inputs, cov_full, a, b, c, d], then
# per input (DX_IN_STRIDE slots): source column, log flag, standardization mean and scale;
# then the kind's body at offset DX_INPUTS + DX_IN_STRIDE * n_inputs.
DX_N_IN = 2
DX_COV_FULL = 3  # gaussian body: 1 = full (lower-triangular) precision factors, 0 = diagonal
DX_A = 4  # jump: switching penalty lambda; bocpd: hazard; gaussian: 1 = iid (no transitions)
DX_B = 5  # jump: posterior temperature; bocpd: truncation R (run lengths kept)
DX_C = 6  # bocpd: window w (posterior of "change" = P(run length < w))
DX_D = 7  # reserved
DX_INPUTS = 8
DX_IN_STRIDE = 4
DXI_SRC = 0  # >= 0: feature column; < 0: exogenous column -(src + 1)
DXI_LOG = 1  # 1: log(max(x, 1e-12)) before standardizing
DXI_MEAN = 2
DXI_SCALE = 3
# fitted detector state header: [initialised, last log normaliser], then the kind's state
DXS_INIT = 0
DXS_LOGNORM = 1
DXS_HEADER = 2

# ---------------------------------------------------------------- built-in policy parameters
# header, then warm-up weights (N), then the state -> weights table (K x N)
SP_KIND = 0
SP_ON_CHANGE = 1  # rebalance when the smoothed state changes
SP_ON_SCHEDULE = 2  # rebalance on the first bar of every calendar period
SP_DRIFT = 3  # rebalance when max |held - target| weight exceeds this (0 = off)
SP_BLEND = 4  # 1: targets = posterior-weighted mix of table rows
SP_N_STATES = 5
SP_VOL_TARGET = 6  # risk parity: weights proportional to 1/vol (ignores the table)
SP_HEADER = 8

POLICY_TABLE = 0  # static (one row) or regime table
POLICY_INVERSE_VOL = 1  # inverse trailing volatility over the warm-up weights' support
POLICY_SCHEDULE = 2  # fixed mixes by bar: SP_N_STATES rows, then each row's first bar

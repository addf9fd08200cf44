"""``regime-engine init FILES...``: a starter config for the user's own data files.

The files are loaded once (so a bad file fails here, with the usual one-line error), and the
config lists them, their symbols, the inferred bar frequency, the detector's market (the
first equity-like symbol) and three strategies over the user's symbols: equal weight,
inverse volatility and a regime-aware table that holds less risk in worse regimes (the rest
in cash).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path


def _toml_str(s: str) -> str:
    return json.dumps(s)


def _table(weights: dict[str, float]) -> str:
    return "{ " + ", ".join(f"{_toml_str(k)} = {v:.4g}" for k, v in weights.items()) + " }"


def _from_folder(file: str, folder: Path | None) -> str:
    """``file`` as a path read from ``folder`` (the config's: relative data paths are
    resolved against it); as given when no folder is known."""
    if folder is None:
        return str(Path(file))
    try:
        return os.path.relpath(Path(file).resolve(), folder.resolve())
    except ValueError:  # another drive
        return str(Path(file).resolve())


def starter_config(
    files: Sequence[str],
    name: str | None = None,
    folder: str | Path | None = None,
    notes: list[str] | None = None,
    max_jump: float | None = None,
) -> str:
    """TOML text of a starter config for ``files`` (see the module doc); ``folder``: where
    the config will be written (its data paths are written relative to it); ``notes``
    receives a line for each setting sized to the data (e.g. ``detector.min_train``)."""
    from engine.assemble import load_files
    from engine.config import equity_like_symbol, parse_config
    from engine.ground.frequency import infer_frequency
    from engine.regimes.config import HMMDetectorConfig, fitting_min_train

    panel, fmt, close_only = load_files(files, max_jump)
    syms = list(panel.symbols)
    market = equity_like_symbol(panel.symbols, panel.asset_classes)
    freq = infer_frequency(panel.index)
    run_name = name or Path(files[0]).name.split(".")[0] or "mydata"
    eq = 1.0 / len(syms)
    calm = {s: round(eq, 6) for s in syms}
    volatile = {s: round(eq * 0.6, 6) for s in syms}
    crisis = {s: round(eq * 0.2, 6) for s in syms}
    derived = "ohlc_from_close = true   # close-only files: open = high = low = close\n"
    derived = derived if close_only else ""
    jump = (
        ""
        if max_jump is None
        else f"max_jump = {max_jump:g}   # one-bar moves allowed (init --max-jump)\n"
    )
    train = ""
    default = int(HMMDetectorConfig.model_fields["min_train"].default)
    if panel.n_bars < 3 * default:  # the default first fit would take most of the data
        min_train = fitting_min_train(panel.n_bars)
        why = "is more than the data has" if default >= panel.n_bars else "would take most of it"
        said = (
            f"detector.min_train = {min_train}: the first fit after "
            f"{freq.describe_bars(min_train)} of your {panel.n_bars} bars (the default, "
            f"{default}, {why})"
        )
        train = f"min_train = {min_train}  # sized to the data: {said.partition(': ')[2]}\n"
        if notes is not None:
            notes.append(said)
    base = Path(folder) if folder is not None else None
    src = ", ".join(_toml_str(_from_folder(f, base)) for f in files)
    text = f"""# Starter config written by `regime-engine init` for {len(files)} file(s):
# {len(syms)} symbol(s), {panel.n_bars} bars of {freq.name} data
# ({panel.index[0]} -> {panel.index[-1]}, {freq.periods_per_year:,.0f} bars per year).
# Run it: regime-engine backtest THIS_FILE
name = {_toml_str(run_name)}

[data]
source = [{src}]
format = "{fmt}"
symbols = [{", ".join(_toml_str(s) for s in syms)}]
{derived}{jump}# start = 2015-01-01              # TOML dates or "YYYY-MM-DD" strings
# periods_per_year = {freq.periods_per_year:g}       # inferred from the timestamps
# fill = "ffill"                  # keep every timestamp; forward-fill gaps instead

[detector]
kind = "hmm"
market = {_toml_str(market)}      # the series whose regimes are detected
{train}
[metrics]
risk_free = "auto"                # your cash asset if any (class cash / named CASH), else 0

# Weights are fractions of equity: negative needs execution.allow_short, a sum above 1
# needs execution.allow_leverage, a sum below 1 is cash.
[[strategies]]
kind = "static"
name = "equal_weight"
weights = "equal"
rebalance = "M"

[[strategies]]
kind = "inverse_vol"
name = "inverse_vol"
weights = "equal"
rebalance = "M"

[[strategies]]
kind = "regime"
name = "regime_aware"
rebalance = "M"
warmup = {_table(calm)}
[strategies.table]
calm = {_table(calm)}
volatile = {_table(volatile)}
crisis = {_table(crisis)}
"""
    import tomllib

    parse_config(tomllib.loads(text), "init")  # the starter must itself be valid
    return text

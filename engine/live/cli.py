"""``regime-engine paper``, venue-free: build the loop from a config and run it.

The venue is opened by the ``open_venue`` callable the caller gives (``brokers/cli.py`` picks
it by ``paper.broker``): this package never imports a venue.

Exit codes: 0 done (summary printed), 2 bad input (config, checkpoint, keys, live guard),
3 venue unavailable (at start within ``start_timeout_s``, or an outage longer than
``outage_limit_s``; state checkpointed) or the account stopped being allowed to trade mid-run
(state checkpointed; an account that may not trade at start is 2) or an exogenous input file
went stale or malformed (state checkpointed, no order on it), 130 interrupted,
1 anything unexpected (one line).
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Callable
from typing import Any

from engine.bus.zmq_bus import Publisher
from engine.config import ConfigError, RunConfig
from engine.ground.bars import DataError
from engine.live.config import PaperConfig, check_paper_strategy, parse_paper
from engine.live.exog_inputs import ExogFileBars, exog_files, streamed_names
from engine.live.node import EXIT_UNAVAILABLE, Node
from engine.live.ports import (
    BrokerError,
    BrokerUnavailable,
    InputHalted,
    TradingHalted,
    Venue,
    VenueRequest,
)
from engine.live.sessions import PanelWarmup
from engine.live.trader import Trader

EXIT_BAD_INPUT = 2
OVERRIDES = ("strategy", "state_dir", "max_bars", "url", "stream_url", "idle_exit_s")
OpenVenue = Callable[[VenueRequest], Venue]


def build_node(cfg: RunConfig, pcfg: PaperConfig | None, open_venue: OpenVenue) -> Node:
    """The loop for one strategy of ``cfg``: its run built by the composition root (market,
    frequency, user features, costs and execution as in the backtest), online refits from the
    streamed history; the venue is opened when the loop connects."""
    from engine.assemble import assemble

    p = pcfg or parse_paper(cfg.paper)
    if p.live and p.broker != "alpaca":
        raise ConfigError('paper.live: the live endpoint needs broker = "alpaca"')
    check_paper_strategy(p, cfg)
    run = assemble(cfg)
    scfg, strategy = run.strategy(p.strategy)
    trader = Trader(
        run.streaming_driver(strategy), scfg.name, tuple(getattr(run.detector, "labels", ()))
    )
    exog = tuple(run.panel.exog_names)
    files = exog_files(cfg.data.exog)  # [[data.exog]]: served from the files, not the venue
    streamed = streamed_names(files, exog)
    req = VenueRequest(p, trader.symbols, streamed if p.exog_from_stream else (), cfg, run.panel)

    def venue() -> Venue:
        v = open_venue(req)
        if p.history == "data":
            v.bars = PanelWarmup(run.panel, v.bars)
        if files:
            v.bars = ExogFileBars(v.bars, files, streamed, p.exog_grace)
        return v

    def events() -> Publisher | None:
        if not p.events:
            return None
        from engine.bus.security import curve_from_dir

        curve = curve_from_dir(p.curve_dir, "server")
        return Publisher(p.events, allow_remote=p.allow_remote, curve=curve)

    return Node(
        cfg.name,
        trader,
        p,
        venue,
        events,
        panel=run.panel,
        fingerprint=fingerprint(cfg, scfg, trader.symbols + exog),
        meta={
            "config": cfg.model_dump(mode="json"),
            "folder": None if cfg.folder is None else str(cfg.folder),
            "strategy": scfg.name,
        },
    )


def fingerprint(cfg: RunConfig, scfg: Any, series: tuple[str, ...]) -> str:
    """What a checkpoint's arrays depend on: symbols, exogenous inputs, features, detector
    and the strategy (a checkpoint of another configuration is refused)."""
    import hashlib
    import json

    def dump(x: Any) -> Any:
        return x.model_dump(mode="json") if hasattr(x, "model_dump") else x

    parts = {
        "series": list(series),
        "features": dump(cfg.features),
        "detector": dump(cfg.detector),
        "strategy": dump(scfg),
    }
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


def paper_config(cfg: RunConfig, args: argparse.Namespace) -> PaperConfig:
    """``[paper]`` with the command line's overrides."""
    pcfg = parse_paper(cfg.paper)
    over: dict[str, Any] = {
        k: getattr(args, k) for k in OVERRIDES if getattr(args, k, None) is not None
    }
    if getattr(args, "live", False):
        over["live"] = True
    return parse_paper({**pcfg.model_dump(), **over}) if over else pcfg


def cmd_paper(
    args: argparse.Namespace,
    open_venue: OpenVenue,
    check_venue: Callable[[PaperConfig], None] | None = None,
) -> int:
    """Paper-trade the config's strategy against the venue of its ``[paper]`` section;
    ``check_venue`` refuses the venue's own settings before the loop starts."""
    from engine.bus.security import BusSecurityError
    from engine.config_check import load_checked
    from engine.core.checkpoint import CheckpointError

    try:
        cfg = load_checked(args.config)
        pcfg = paper_config(cfg, args)
        if check_venue is not None:
            check_venue(pcfg)
        summary = build_node(cfg, pcfg, open_venue).run()
    except (BrokerUnavailable, TradingHalted, InputHalted) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (BrokerError, ConfigError, DataError, CheckpointError, BusSecurityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("paper: interrupted (state checkpointed after the last bar)", file=sys.stderr)
        return 130
    except Exception as exc:  # never a bare traceback: one line, details in the log
        logging.getLogger("regime-engine.paper").debug(traceback.format_exc())
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(summary.line(), flush=True)
    return 0


__all__ = ["EXIT_BAD_INPUT", "OpenVenue", "build_node", "cmd_paper", "paper_config"]

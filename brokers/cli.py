"""``regime-engine paper`` and ``regime-engine paper-exchange`` (``register(subparsers)``)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from brokers.alpaca import BrokerError

EXIT_BAD_INPUT = 2


def cmd_paper(args: argparse.Namespace) -> int:
    """Paper-trade the config's strategy against the broker of its ``[paper]`` section."""
    from brokers.paper import PaperTrader, parse_paper
    from engine.config import load_config

    cfg = load_config(args.config)
    pcfg = parse_paper(cfg.paper)
    over: dict[str, Any] = {}
    if args.strategy:
        over["strategy"] = args.strategy
    if args.state_dir:
        over["state_dir"] = args.state_dir
    if args.max_bars:
        over["max_bars"] = args.max_bars
    if args.step:
        over["step_exchange"] = True
    if args.live:
        over["live"] = True
    if over:
        pcfg = parse_paper({**pcfg.model_dump(), **over})
    try:
        n = PaperTrader(cfg, pcfg).run()
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"regime-engine paper: {n} bars processed")
    return 0


def cmd_exchange(args: argparse.Namespace) -> int:
    """Serve the local Alpaca-compatible paper exchange until its bars run out."""
    from brokers.local_exchange import build_exchange
    from brokers.paper import parse_paper
    from engine.api import load_panel
    from engine.config import load_config

    cfg = load_config(args.config)
    ex_cfg = parse_paper(cfg.paper).exchange
    panel = load_panel(cfg)
    default = 0.0 if ex_cfg.mode == "stepped" else ex_cfg.seconds_per_session
    interval = default if args.interval is None else args.interval
    ex = build_exchange(
        cfg,
        panel,
        ex_cfg,
        host=args.host or ex_cfg.host,
        port=ex_cfg.port if args.port is None else args.port,
        ws_port=ex_cfg.ws_port if args.ws_port is None else args.ws_port,
        interval_s=interval,
    ).start()
    mode = f"one bar every {interval:g} s" if interval > 0 else "stepped (POST /_sim/step)"
    print(
        f"paper exchange: REST {ex.url}  websocket {ex.ws_url}  "
        f"{panel.n_bars} bars of {', '.join(panel.symbols)}, {mode}",
        flush=True,
    )
    try:
        while not (ex.done and interval > 0 and not args.keep_open):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        ex.stop()
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("paper", help="paper-trade a strategy (local exchange or Alpaca)")
    p.add_argument("config", nargs="?", default=None, help="TOML config (default: built-in)")
    p.add_argument("--strategy", default=None, help="strategy name (default: the first)")
    p.add_argument("--state-dir", default=None, help="checkpoint folder")
    p.add_argument("--max-bars", type=int, default=None, help="stop after N bars")
    p.add_argument("--step", action="store_true", help="drive a stepped local exchange")
    p.add_argument("--live", action="store_true", help="Alpaca LIVE endpoint (real money)")
    p.set_defaults(handler=cmd_paper)
    e = sub.add_parser("paper-exchange", help="run the local Alpaca-compatible paper exchange")
    e.add_argument("config", nargs="?", default=None, help="TOML config (data, costs, [paper])")
    e.add_argument("--host", default=None)
    e.add_argument("--port", type=int, default=None, help="REST port")
    e.add_argument("--ws-port", type=int, default=None, help="websocket port")
    e.add_argument("--interval", type=float, default=None, help="seconds per bar (0: stepped)")
    e.add_argument("--keep-open", action="store_true", help="keep serving after the last bar")
    e.set_defaults(handler=cmd_exchange)

"""``regime-engine paper`` and ``regime-engine paper-exchange`` (``register(subparsers)``)."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from brokers.alpaca import BrokerError

EXIT_BAD_INPUT = 2


def _listening(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def cmd_paper(args: argparse.Namespace) -> int:
    """Paper-trade the config's strategy against the broker of its ``[paper]`` section.

    Exit codes: 0 done (summary printed), 2 bad input (config, checkpoint, keys, live
    guard), 3 broker unavailable (at start within ``start_timeout_s``, or an outage longer
    than ``outage_limit_s``; state checkpointed), 1 anything unexpected (one line).
    """
    import logging
    import traceback

    from brokers.alpaca import BrokerUnavailable
    from brokers.paper import EXIT_UNAVAILABLE, PaperTrader
    from brokers.paper_config import parse_paper
    from engine.bus.security import BusSecurityError
    from engine.config import ConfigError, load_config
    from engine.core.checkpoint import CheckpointError

    ex = None
    trader = None
    try:
        cfg = load_config(args.config)
        pcfg = parse_paper(cfg.paper)
        over: dict[str, Any] = {}
        for key in ("strategy", "state_dir", "max_bars", "url", "idle_exit_s"):
            if getattr(args, key, None) is not None:
                over[key] = getattr(args, key)
        if args.live:
            over["live"] = True
        if over:
            pcfg = parse_paper({**pcfg.model_dump(), **over})
        trader = PaperTrader(cfg, pcfg)
        es = pcfg.exchange
        if (
            pcfg.broker == "local"
            and pcfg.url is None
            and pcfg.start_exchange
            and not _listening(es.host, es.port)
        ):
            from brokers.local_exchange import build_exchange

            ex = build_exchange(cfg, trader.panel, es).start()
            print(f"paper: started the local exchange in-process at {ex.url}", flush=True)
        summary = trader.run()
    except BrokerUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except (BrokerError, ConfigError, CheckpointError, BusSecurityError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("paper: interrupted (state checkpointed after the last bar)", file=sys.stderr)
        return 130
    except Exception as exc:  # never a bare traceback: one line, details in the log
        logging.getLogger("regime-engine.paper").debug(traceback.format_exc())
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    finally:
        if ex is not None:
            ex.stop()
    print(summary.line(), flush=True)
    return 0


def cmd_exchange(args: argparse.Namespace) -> int:
    """Serve the local Alpaca-compatible paper exchange until its bars run out."""
    from brokers.local_exchange import build_exchange
    from brokers.paper_config import parse_paper
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
    p.add_argument(
        "--max-bars", type=int, default=None, help="stop after N live bars (after warm-up)"
    )
    p.add_argument("--url", default=None, help="broker REST base URL (overrides paper.url)")
    p.add_argument("--idle-exit-s", type=float, default=None, help="stop after S s without a bar")
    p.add_argument(
        "--live", action="store_true", help="Alpaca LIVE endpoint (real money; needs paper.url)"
    )
    p.set_defaults(handler=cmd_paper)
    e = sub.add_parser("paper-exchange", help="run the local Alpaca-compatible paper exchange")
    e.add_argument("config", nargs="?", default=None, help="TOML config (data, costs, [paper])")
    e.add_argument("--host", default=None)
    e.add_argument("--port", type=int, default=None, help="REST port")
    e.add_argument("--ws-port", type=int, default=None, help="websocket port")
    e.add_argument("--interval", type=float, default=None, help="seconds per bar (0: stepped)")
    e.add_argument("--keep-open", action="store_true", help="keep serving after the last bar")
    e.set_defaults(handler=cmd_exchange)

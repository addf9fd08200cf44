"""``regime-engine paper`` and ``regime-engine paper-exchange`` (``register(subparsers)``)."""

from __future__ import annotations

import argparse
import sys
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


def exchange_settings(cfg: Any, args: argparse.Namespace) -> Any:
    """``[paper.exchange]`` of the config with the command-line overrides applied."""
    from pydantic import ValidationError

    from brokers.local_exchange.settings import ExchangeSettings
    from engine.config import ConfigError, first_error

    data = dict((cfg.paper or {}).get("exchange", {}) or {})
    for key in ("host", "port", "ws_port", "mode", "seconds_per_session", "history_bars", "seed"):
        value = getattr(args, key, None)
        if value is not None:
            data[key] = value
    if getattr(args, "interval", None) is not None:
        data["interval_s"] = args.interval
    try:
        return ExchangeSettings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"paper.exchange.{first_error(exc)}") from None


def cmd_exchange(args: argparse.Namespace) -> int:
    """Serve the local Alpaca-like exchange in the foreground until SIGINT/SIGTERM."""
    import signal
    import threading

    from brokers.local_exchange import build_exchange
    from engine.assemble import load_panel
    from engine.config import load_config

    cfg = load_config(args.config)
    settings = exchange_settings(cfg, args)
    panel = load_panel(cfg)
    try:
        ex = build_exchange(cfg, panel, settings).start()
    except OSError as exc:
        print(
            f"error: cannot listen on {settings.host}:{settings.port}/{settings.ws_port}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    stop = threading.Event()
    # SIGINT too, explicitly: a process started in the background by a script inherits
    # SIGINT ignored, and Python then raises no KeyboardInterrupt
    stop_signals = (signal.SIGTERM, signal.SIGINT)
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in stop_signals}
    mode = (
        "stepped (POST /_sim/step)"
        if settings.mode == "stepped"
        else f"realtime, {settings.seconds_per_session:g} s per session"
    )
    print(
        f"paper exchange: REST {ex.url}  market data {ex.ws_url}/v2/iex  "
        f"trade updates {ex.ws_url}/stream  {panel.n_bars} sessions of "
        f"{', '.join(panel.symbols)} ({settings.history_bars} complete), {mode}",
        flush=True,
    )
    try:
        while not stop.wait(0.2):
            if args.exit_when_done and ex.done:
                break
    finally:
        ex.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    print("paper exchange: stopped", flush=True)
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
    e = sub.add_parser("paper-exchange", help="run the local Alpaca-like paper exchange")
    e.add_argument("config", nargs="?", default=None, help="TOML config (data, costs, [paper])")
    e.add_argument("--host", default=None)
    e.add_argument("--port", type=int, default=None, help="REST port (0: any free port)")
    e.add_argument("--ws-port", type=int, default=None, help="websocket port")
    e.add_argument("--mode", choices=["realtime", "stepped"], default=None)
    e.add_argument("--seconds-per-session", type=float, default=None)
    e.add_argument("--history-bars", type=int, default=None, help="sessions complete at start")
    e.add_argument("--seed", type=int, default=None, help="seed of the injected faults")
    e.add_argument("--interval", type=float, default=None, help=argparse.SUPPRESS)
    e.add_argument(
        "--exit-when-done", action="store_true", help="exit after the last session closes"
    )
    e.set_defaults(handler=cmd_exchange)

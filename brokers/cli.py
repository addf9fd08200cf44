"""``regime-engine paper`` and ``regime-engine paper-exchange`` (``register(subparsers)``)."""

from __future__ import annotations

import argparse
import sys
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


def exchange_settings(cfg: Any, args: argparse.Namespace) -> Any:
    """``[paper.exchange]`` of the config with the command-line overrides applied."""
    from pydantic import ValidationError

    from brokers.exchange_settings import ExchangeSettings
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
    from engine.api import load_panel
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
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
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
    except KeyboardInterrupt:
        pass
    finally:
        ex.stop()
        signal.signal(signal.SIGTERM, previous)
    print("paper exchange: stopped", flush=True)
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

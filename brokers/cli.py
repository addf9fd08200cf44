"""``regime-engine paper`` and ``regime-engine paper-exchange`` (``register(subparsers)``).

The venue of ``paper`` is picked here and nowhere else: :data:`VENUES` maps
``[paper] broker`` to its opener (imported lazily), :func:`open_venue` adds what the config
asks on top of any venue (bars from ZeroMQ). ``engine/live`` runs the loop through its
ports and never imports a venue.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from engine.live.cli import EXIT_BAD_INPUT, build_node
from engine.live.cli import cmd_paper as run_paper
from engine.live.ports import Venue, VenueRequest

LOCAL_KEY = "local-paper"  # the local exchange accepts any non-empty key pair


def _listening(host: str, port: int) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _alpaca(req: VenueRequest) -> Venue:
    from brokers.alpaca import open_venue as alpaca_venue

    return alpaca_venue(req, url=req.paper.url, stream_url=req.paper.stream_url)


def _local(req: VenueRequest) -> Venue:
    """The local exchange through the Alpaca clients; started in-process if none listens."""
    from brokers.alpaca import open_venue as alpaca_venue

    p = req.paper
    es = validate_exchange(dict(p.exchange))
    os.environ.setdefault("APCA_API_KEY_ID", LOCAL_KEY)
    os.environ.setdefault("APCA_API_SECRET_KEY", LOCAL_KEY)
    ex = None
    if p.url is None and p.start_exchange and not _listening(es.host, es.port):
        from brokers.local_exchange import build_exchange

        ex = build_exchange(req.config, req.panel, es).start()
        print(f"paper: started the local exchange in-process at {ex.url}", flush=True)
    try:
        return alpaca_venue(
            req,
            url=p.url or f"http://{es.host}:{es.port}",
            stream_url=p.stream_url or f"ws://{es.host}:{es.ws_port}",
            sim_status=True,
            on_close=ex.stop if ex is not None else None,
        )
    except BaseException:
        if ex is not None:
            ex.stop()
        raise


VENUES: dict[str, Callable[[VenueRequest], Venue]] = {"alpaca": _alpaca, "local": _local}


def open_venue(req: VenueRequest) -> Venue:
    """The venue named by ``paper.broker``, with bars from ZeroMQ when ``paper.bars = "zmq"``."""
    p = req.paper
    venue = VENUES[p.broker](req)
    if p.bars == "zmq":
        from data_feeds.zmq_feed import ZmqBarFeed
        from engine.live.sessions import StreamBars

        exog = tuple(req.panel.exog_names)
        stream = ZmqBarFeed(
            req.symbols, exog, p.zmq_bars, allow_remote=p.allow_remote, curve_dir=p.curve_dir
        )
        venue.bars = StreamBars(stream, venue.bars)
    return venue


def paper_node(cfg: Any, pcfg: Any = None) -> Any:
    """The paper loop of ``cfg`` on its configured venue (connects only in ``run()``)."""
    return build_node(cfg, pcfg, open_venue)


def cmd_paper(args: argparse.Namespace) -> int:
    """Paper-trade the config's strategy (see :func:`engine.live.cli.cmd_paper`)."""
    return run_paper(args, open_venue, check_venue)


def check_venue(p: Any) -> None:
    """The venue's own settings, refused before the loop starts (``[paper.exchange]``
    was read only when the loop opened the venue, after the warm-up was built)."""
    if p.broker == "local":
        validate_exchange(dict(p.exchange))


def exchange_settings(cfg: Any, args: argparse.Namespace | None) -> Any:
    """``[paper.exchange]`` of the config with the command-line overrides applied."""
    data = dict((cfg.paper or {}).get("exchange", {}) or {})
    for key in ("host", "port", "ws_port", "mode", "seconds_per_session", "history_bars", "seed"):
        value = getattr(args, key, None)
        if value is not None:
            data[key] = value
    if getattr(args, "allow_remote", False):
        data["allow_remote"] = True
    if getattr(args, "interval", None) is not None:
        data["interval_s"] = getattr(args, "interval", None)
    return validate_exchange(data)


def validate_exchange(data: dict[str, Any]) -> Any:
    """``[paper.exchange]`` as the local exchange's settings (errors name the key)."""
    from pydantic import ValidationError

    from brokers.local_exchange.settings import ExchangeSettings
    from engine.config import ConfigError, first_error

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
    from engine.config_check import load_checked

    cfg = load_checked(args.config)
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
    p.add_argument(
        "--stream-url",
        default=None,
        help="broker websocket base URL (overrides paper.stream_url)",
    )
    p.add_argument("--idle-exit-s", type=float, default=None, help="stop after S s without a bar")
    p.add_argument(
        "--live", action="store_true", help="Alpaca LIVE endpoint (real money; needs paper.url)"
    )
    p.set_defaults(handler=cmd_paper)
    e = sub.add_parser("paper-exchange", help="run the local Alpaca-like paper exchange")
    e.add_argument("config", nargs="?", default=None, help="TOML config (data, costs, [paper])")
    e.add_argument("--host", default=None, help="bind address (loopback unless --allow-remote)")
    e.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a host that is not loopback (the exchange accepts any key)",
    )
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

"""``regime-engine monitor``: subscribe to the engine's events and print a live view."""

from __future__ import annotations

import argparse
import time
from typing import Any

from engine.bus.schema import Message
from engine.bus.zmq_bus import DEFAULT_EVENTS, Subscriber


def format_message(msg: Message) -> str:
    """One line per event."""
    b = msg.body
    ts = time.strftime("%Y-%m-%d", time.gmtime(int(b.get("ts", 0)) / 1e9))
    if msg.kind == "regime":
        return f"{ts} REGIME   {b['strategy']}: -> {b.get('label') or b['regime']}"
    if msg.kind == "targets":
        w = " ".join(f"{s}={v:.3f}" for s, v in b["weights"].items())
        return f"{ts} TARGETS  {b['strategy']}: {w}"
    if msg.kind == "order":
        why = f" ({b['reason']})" if b.get("reason") else ""
        return (
            f"{ts} ORDER    {b['strategy']}: {b['symbol']} {b['qty']:+.4f} "
            f"[{b['status']}]{why} {b['client_order_id']}"
        )
    if msg.kind == "status":
        t = b.get("targets")
        tgt = " ".join(f"{s}={w:.3f}" for s, w in t.items()) if t else "unchanged"
        eq = (
            f" equity engine {b['engine_equity']:,.0f} broker {b['broker_equity']:,.0f}"
            if b.get("broker_equity") is not None and b.get("engine_equity") is not None
            else ""
        )
        gap = f" gap {b['gap_frac'] * 100:.2f}%" if b.get("gap_frac") is not None else ""
        return (
            f"{ts} {b['phase']:<5} {b['strategy']}: regime={b['regime']} p={b['prob']:.2f} "
            f"targets {tgt} orders {b['sent']} sent / {b['fills']} fills{eq}{gap}"
        )
    if msg.kind == "reconcile":
        return f"{ts} GAP      {b['strategy']}: {b['gap_frac'] * 100:.2f}% of equity " + " ".join(
            f"{s}={q:+.4f}" for s, q in b["diff"].items()
        )
    if msg.kind == "fill":
        return (
            f"{ts} {b['event'].upper():<8} {b['symbol']} qty={b.get('qty')} "
            f"px={b.get('price')} pos={b.get('position_qty')}"
        )
    if msg.kind == "equity":
        return f"{ts} EQUITY   {b['strategy']}: {b['equity']:,.2f} (cash {b['cash']:,.2f})"
    if msg.kind == "bar":
        return f"{ts} BAR      " + " ".join(
            f"{s}={c:.4g}" for s, c in zip(b["symbols"], b["close"], strict=False)
        )
    return f"{ts} {msg.kind} {b}"


def cmd_monitor(args: argparse.Namespace) -> int:
    from engine.bus.security import BusSecurityError, curve_from_dir

    try:
        sub = Subscriber(
            args.address,
            args.kinds or (),
            allow_remote=args.allow_remote,
            curve=curve_from_dir(args.curve_dir, "client"),
        )
    except BusSecurityError as exc:
        import sys

        print(f"error: {exc}", file=sys.stderr)
        return 2
    deadline = None if args.seconds is None else time.monotonic() + args.seconds
    n = 0
    try:
        while deadline is None or time.monotonic() < deadline:
            msg = sub.recv(200)
            if msg is None:
                continue
            print(format_message(msg), flush=True)
            n += 1
            if args.count is not None and n >= args.count:
                break
    except KeyboardInterrupt:
        pass
    finally:
        sub.close()
    return 0


def register(sub: Any) -> None:
    m = sub.add_parser("monitor", help="print the engine's events from the ZeroMQ bus")
    m.add_argument("--address", default=DEFAULT_EVENTS, help=f"PUB address ({DEFAULT_EVENTS})")
    m.add_argument(
        "--kinds",
        nargs="*",
        choices=("status", "regime", "targets", "order", "fill", "equity", "reconcile", "bar"),
        help="status regime targets order fill equity reconcile bar",
    )
    m.add_argument("--allow-remote", action="store_true", help="non-loopback address (CURVE)")
    m.add_argument("--curve-dir", default=None, help="CURVE certificates (client keys)")
    m.add_argument("--count", type=int, default=None, help="stop after N messages")
    m.add_argument("--seconds", type=float, default=None, help="stop after S seconds")
    m.set_defaults(handler=cmd_monitor)

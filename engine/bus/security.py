"""Who may talk on the bus: loopback only, unless asked, and then CURVE.

A ZeroMQ address that is not loopback (``tcp://127.0.0.1``, ``tcp://localhost``,
``tcp://[::1]``, ``ipc://``, ``inproc://``) is refused unless ``allow_remote`` is set, and
then only with CURVE keys (:class:`Curve`): a socket that binds is the CURVE server and
only accepts clients whose public key is in its ``authorized`` folder (``zmq.auth``);
a socket that connects is the client and must know the server's public key.

Certificates are ZeroMQ's own files (``zmq.auth.create_certificates``). A ``curve_dir``
holds ``server.key_secret``, ``server.key`` (public), ``client.key_secret``,
``client.key`` and ``authorized/`` (client public keys the server accepts):
``regime-engine`` never creates or logs secret keys.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator


class BusSecurityError(ValueError):
    """An address or key set the bus refuses (one line)."""


def host_is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP literal or a name) is loopback *once resolved*: every address
    it resolves to must be a loopback address (``127.0.0.0/8``, ``::1``). A name is resolved
    as the socket would resolve it (libzmq and ``bind`` resolve names): "127.evil.example"
    is a name, not an address. Wildcards (``*``, ``0.0.0.0``, ``::``, "") and names that do
    not resolve are not loopback."""
    host = host.strip().strip("[]")
    if host in ("", "*"):
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addrs = {str(info[4][0]).split("%", 1)[0] for info in infos}
    return bool(addrs) and all(ipaddress.ip_address(a).is_loopback for a in addrs)


def is_loopback(address: str) -> bool:
    """Whether a ZeroMQ address stays on this machine (its host resolved)."""
    scheme, _, rest = address.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    if rest.startswith("["):
        host = rest[1:].split("]", 1)[0]
    else:
        host = rest.rsplit(":", 1)[0]
    if ";" in host:  # tcp://source;destination: both ends must stay here
        return all(host_is_loopback(h.rsplit(":", 1)[0]) for h in host.split(";"))
    return host_is_loopback(host)


@dataclass(frozen=True)
class Curve:
    """CURVE keys for one socket (``role`` server: binds; client: connects)."""

    role: Literal["server", "client"]
    public: bytes
    secret: bytes
    server_public: bytes | None = None  # client: the server's key
    authorized: str | None = None  # server: folder of accepted client public keys


def curve_from_dir(curve_dir: str | None, role: Literal["server", "client"]) -> Curve | None:
    """Load the ``role`` keys of a ``curve_dir`` (see module doc); ``None`` without one."""
    if curve_dir is None:
        return None
    d = Path(curve_dir)
    try:
        pub, sec = zmq.auth.load_certificate(d / f"{role}.key_secret")
        if role == "server":
            return Curve(role, pub, sec or b"", authorized=str(d / "authorized"))
        spub, _ = zmq.auth.load_certificate(d / "server.key")
        return Curve(role, pub, sec or b"", server_public=spub)
    except (OSError, ValueError) as exc:
        raise BusSecurityError(f"{curve_dir}: cannot load CURVE {role} keys ({exc})") from None


_auth: dict[int, ThreadAuthenticator] = {}


def secure(
    sock: zmq.Socket[Any],
    address: str,
    *,
    bind: bool,
    allow_remote: bool = False,
    curve: Curve | None = None,
) -> None:
    """Check ``address`` and set up CURVE on ``sock`` before it binds/connects."""
    if not is_loopback(address):
        if not allow_remote:
            raise BusSecurityError(
                f"{address}: not a loopback address; pass allow_remote (and CURVE keys) "
                "to listen or connect beyond this machine"
            )
        if curve is None:
            raise BusSecurityError(f"{address}: a non-loopback address needs CURVE keys")
    if curve is None:
        return
    if (curve.role == "server") != bind:
        raise BusSecurityError(
            f"{address}: a socket that {'binds' if bind else 'connects'} "
            f"needs {'server' if bind else 'client'} keys"
        )
    sock.curve_publickey = curve.public
    sock.curve_secretkey = curve.secret
    if bind:
        ctx = sock.context
        auth = _auth.get(id(ctx))
        if auth is None:
            auth = ThreadAuthenticator(ctx)
            auth.start()
            _auth[id(ctx)] = auth
        auth.configure_curve(domain="*", location=curve.authorized or zmq.auth.CURVE_ALLOW_ANY)
        sock.curve_server = True
    else:
        sock.curve_serverkey = curve.server_public


__all__ = [
    "BusSecurityError",
    "Curve",
    "curve_from_dir",
    "host_is_loopback",
    "is_loopback",
    "secure",
]

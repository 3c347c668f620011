"""The ``Host`` guard (``--allowed-host``): the collector answers only the names it is served as.

A hostile page can make a visitor's browser resolve ``evil.example`` to ``127.0.0.1``
(DNS rebinding) and then read the collector as if it were that page's own origin. The
browser still sends ``Host: evil.example``, so a request whose ``Host`` is not one of the
allowed names gets ``421 Misdirected Request``. ``GET /healthz`` is exempt (load balancers
probe by address), and ``*`` allows any name.

Example::

    app = HostGuard(app, allowed_hosts=("shop.example", "localhost", "127.0.0.1"))
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["HostGuard", "host_only", "LOOPBACK_NAMES", "is_loopback_address"]

LOOPBACK_NAMES = ("localhost", "127.0.0.1")
"""Always allowed, beside the bind address, unless ``--allowed-host`` names others."""


def host_only(host: str) -> str:
    """``host[:port]`` -> host, lower-cased (IPv6 literals lose their brackets)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def is_loopback_address(address: str) -> bool:
    """A client address on this machine: ``127.0.0.0/8`` or ``::1`` (IPv4-mapped too)."""
    address = address.lower()
    if address.startswith("::ffff:"):
        address = address[7:]
    return address.startswith("127.") or address == "::1"


class HostGuard:
    """421 for a request whose ``Host`` is not allowed.

    Args:
        app: the wrapped ASGI app.
        allowed_hosts: names without port (``shop.example``, ``127.0.0.1``, ``::1``);
            ``*`` allows any. Empty: no check.
    """

    def __init__(self, app: ASGIApp, allowed_hosts: Iterable[str] = ()) -> None:
        self.app = app
        names = frozenset(host_only(name) for name in allowed_hosts)
        self.allowed = None if not names or "*" in names else names

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.allowed is None or scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        host = None
        for key, value in scope["headers"]:
            if key == b"host":
                host = bytes(value).decode("latin-1")
                break
        if host is None or host_only(host) in self.allowed:  # no Host (HTTP/1.0): not a browser
            await self.app(scope, receive, send)
            return
        body = f"Host {host[:100]!r} is not served here (see --allowed-host)".encode()
        headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 421, "headers": headers})
        await send({"type": "http.response.body", "body": body})

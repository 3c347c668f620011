"""CORS for browser SDKs, as a small pure-ASGI middleware.

mixpanel-browser sends with ``withCredentials = true``, so the allowed origin is
echoed (never ``*``) with ``Access-Control-Allow-Credentials: true`` and
``Vary: Origin``; ``Retry-After`` is exposed so SDKs can honour it. With no
allow-list every origin is echoed (dev mode). The collector's own origin (pages
served with ``--site``) is always allowed. A request from an origin that is not
allowed gets 403 for anything but GET/HEAD; preflights are answered here.

Example::

    app = CORSMiddleware(app, allow_origins=("https://shop.example",))
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["CORSMiddleware", "ALLOW_METHODS", "ALLOW_HEADERS", "MAX_AGE_S"]

ALLOW_METHODS = "GET, POST, OPTIONS"
ALLOW_HEADERS = "Content-Type, Content-Encoding, Authorization, X-Requested-With"
MAX_AGE_S = "86400"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value).decode("latin-1")
    return None


class CORSMiddleware:
    """Echo allowed origins with credentials; answer preflights; refuse foreign writes.

    Args:
        app: the wrapped ASGI app.
        allow_origins: exact origins (``scheme://host[:port]``); empty allows any.
    """

    def __init__(self, app: ASGIApp, allow_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allow_origins = frozenset(o.rstrip("/") for o in allow_origins)

    def allowed(self, origin: str, host: str | None) -> bool:
        """Whether ``origin`` may read responses (and write)."""
        if not self.allow_origins or origin in self.allow_origins:
            return True
        # same origin: pages served by the collector itself (--site)
        return host is not None and origin.split("://", 1)[-1] == host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        method = scope["method"]
        if origin is None:
            if method == "OPTIONS":
                await _respond(send, 204, [(b"allow", ALLOW_METHODS.encode())])
                return
            await self.app(scope, receive, send)
            return
        ok = self.allowed(origin, _header(scope, b"host"))
        vary = [(b"vary", b"Origin")]
        if method == "OPTIONS":
            if not ok:
                await _respond(send, 403, vary, b"origin not allowed")
                return
            requested = _header(scope, b"access-control-request-headers")
            headers = (
                vary
                + _cors_headers(origin)
                + [
                    (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                    (b"access-control-allow-headers", (requested or ALLOW_HEADERS).encode("latin-1")),
                    (b"access-control-max-age", MAX_AGE_S.encode()),
                ]
            )
            await _respond(send, 204, headers)
            return
        if not ok:
            if method not in ("GET", "HEAD"):
                await _respond(send, 403, vary, b"origin not allowed")
                return
            await self.app(scope, receive, send)
            return
        extra = vary + _cors_headers(origin)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if not k.lower().startswith(b"access-control-") and k.lower() != b"vary"
                ] + extra
            await send(message)

        await self.app(scope, receive, send_with_cors)


def _cors_headers(origin: str) -> list[tuple[bytes, bytes]]:
    return [
        (b"access-control-allow-origin", origin.encode("latin-1")),
        (b"access-control-allow-credentials", b"true"),
        (b"access-control-expose-headers", b"Retry-After"),
    ]


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
    headers = headers + [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"text/plain; charset=utf-8"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

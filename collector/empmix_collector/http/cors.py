"""CORS for browser SDKs, as a small pure-ASGI middleware.

Ingestion endpoints: mixpanel-browser sends with ``withCredentials = true``, so the
allowed origin is echoed (never ``*``) with ``Access-Control-Allow-Credentials: true``;
``Retry-After`` is exposed so SDKs can honour it. With no allow-list every origin is
echoed (dev mode). The collector's own origin (same scheme, host and port: pages served
with ``--site``) is always allowed. A request from an origin that is not allowed gets
403 for anything but a GET/HEAD that reads.

The query API (``/api/...``) holds what visitors sent, emails included: only origins on
the allow-list get CORS headers there, and never ``Allow-Credentials``.

Every response carries ``Vary: Origin`` (a cache must not hand one origin's answer to
another). Preflights are answered here, on the collector's own routes only.

Example::

    app = CORSMiddleware(app, allow_origins=("https://shop.example",), is_route=lambda path: True)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

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
        allow_origins: exact origins (``scheme://host[:port]``); empty allows any on the
            ingestion endpoints, none on the query API.
        is_route: whether a path is one of the collector's routes (preflights elsewhere
            go to the app, which answers 404 or 405).
    """

    def __init__(
        self, app: ASGIApp, allow_origins: Iterable[str] = (), is_route: Callable[[str], bool] = lambda path: True
    ) -> None:
        self.app = app
        self.allow_origins = frozenset(o.rstrip("/") for o in allow_origins)
        self.is_route = is_route

    def allowed(self, origin: str, scope: Scope) -> bool:
        """Whether ``origin`` may read responses (and write)."""
        if scope["path"].startswith("/api/"):
            return origin in self.allow_origins
        if not self.allow_origins or origin in self.allow_origins:
            return True
        # same origin (scheme, host and port): pages served by the collector itself (--site)
        host = _header(scope, b"host")
        return host is not None and origin == f"{scope.get('scheme', 'http')}://{host}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        method = scope["method"]
        vary = [(b"vary", b"Origin")]
        if method == "OPTIONS" and not self.is_route(scope["path"]):
            await self.app(scope, receive, _with_headers(send, vary))
            return
        if origin is None:
            if method == "OPTIONS":
                await _respond(send, 204, vary + [(b"allow", ALLOW_METHODS.encode())])
                return
            await self.app(scope, receive, _with_headers(send, vary))
            return
        ok = self.allowed(origin, scope)
        credentials = not scope["path"].startswith("/api/")
        if method == "OPTIONS":
            if not ok:
                await _respond(send, 403, vary, b"origin not allowed")
                return
            requested = _header(scope, b"access-control-request-headers")
            headers = (
                vary
                + _cors_headers(origin, credentials)
                + [
                    (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                    (b"access-control-allow-headers", (requested or ALLOW_HEADERS).encode("latin-1")),
                    (b"access-control-max-age", MAX_AGE_S.encode()),
                ]
            )
            await _respond(send, 204, headers)
            return
        if not ok:
            path = scope["path"]
            ingests = self.is_route(path) and not path.startswith("/api/") and path != "/healthz"
            if method not in ("GET", "HEAD") or ingests:  # GET /track?data= writes too
                await _respond(send, 403, vary, b"origin not allowed")
                return
            await self.app(scope, receive, _with_headers(send, vary))
            return
        await self.app(scope, receive, _with_headers(send, vary + _cors_headers(origin, credentials)))


def _with_headers(send: Send, extra: list[tuple[bytes, bytes]]) -> Send:
    """``send`` with ``extra`` replacing the app's own CORS and ``Vary`` headers."""

    async def send_with(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [
                (k, v)
                for k, v in message.get("headers", [])
                if not k.lower().startswith(b"access-control-") and k.lower() != b"vary"
            ] + extra
        await send(message)

    return send_with


def _cors_headers(origin: str, credentials: bool = True) -> list[tuple[bytes, bytes]]:
    headers = [(b"access-control-allow-origin", origin.encode("latin-1"))]
    if credentials:
        headers.append((b"access-control-allow-credentials", b"true"))
    headers.append((b"access-control-expose-headers", b"Retry-After"))
    return headers


async def _respond(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes = b"") -> None:
    headers = headers + [(b"content-length", str(len(body)).encode())]
    if body:
        headers.append((b"content-type", b"text/plain; charset=utf-8"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})

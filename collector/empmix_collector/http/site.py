"""The optional static site (``--site DIR``): demo pages, Pyodide/PyScript assets, the wheel.

Pages and API then share one origin. Every site response carries
:func:`site_headers`: ``Cache-Control: no-cache`` plus the cross-origin
isolation headers a PyScript worker page needs (``crossOriginIsolated``) and a
Content-Security-Policy that allows what Pyodide needs and no more. Adjust the
policy here, in one place.

Example::

    app = SiteFiles(directory="build/www")
"""

from __future__ import annotations

import mimetypes
import os
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Message, Receive, Scope, Send

__all__ = ["CONTENT_SECURITY_POLICY", "MEDIA_TYPES", "site_headers", "media_type_for", "SiteFiles"]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; "
    "script-src 'self' 'wasm-unsafe-eval' 'unsafe-eval'; "
    "connect-src 'self'; "
    "img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; "
    "worker-src 'self' blob:; "
    "font-src 'self' data:; "
    "frame-ancestors 'self'"
)
"""Pyodide compiles WebAssembly ('wasm-unsafe-eval') and evaluates generated JS
('unsafe-eval'); PyScript starts workers from blob: URLs and injects styles. No other
site may frame the pages ('frame-ancestors', against clickjacking)."""

MEDIA_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".cjs": "text/javascript; charset=utf-8",
    ".wasm": "application/wasm",
    ".whl": "application/zip",
    ".zip": "application/zip",
    ".json": "application/json",
    ".map": "application/json",
    ".css": "text/css; charset=utf-8",
    ".toml": "text/plain; charset=utf-8",
    ".py": "text/plain; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".tar": "application/x-tar",
    ".gz": "application/gzip",
    ".data": "application/octet-stream",
}
"""Fixed by extension so the answer does not depend on the host's /etc/mime.types."""


def site_headers() -> dict[str, str]:
    """Headers added to every response of the static site (also its 404s)."""
    return {
        "Cache-Control": "no-cache",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cross-Origin-Embedder-Policy": "require-corp",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
    }


def media_type_for(path: str) -> str:
    """The Content-Type served for a file name."""
    ext = os.path.splitext(path)[1].lower()
    if ext in MEDIA_TYPES:
        return MEDIA_TYPES[ext]
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


class SiteFiles(StaticFiles):
    """Starlette's StaticFiles (``index.html`` for directories, ETag, Range, HEAD) with
    our media types and :func:`site_headers` on every response. Neither ``..`` nor a
    symlink leads out of the folder: a path is served only if its real path lies inside
    (symlinks between files of the folder still work). A directory URL without its
    trailing slash is redirected relatively (``./name/``): no ``Host`` goes into it."""

    def __init__(self, directory: str) -> None:
        super().__init__(directory=directory, html=True, follow_symlink=False)
        self._headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in site_headers().items()]

    def file_response(
        self, full_path: PathLike, stat_result: os.stat_result, scope: Scope, status_code: int = 200
    ) -> Response:
        """Serve one file with the media type from :data:`MEDIA_TYPES`."""
        response = super().file_response(full_path, stat_result, scope, status_code)
        if "content-type" in response.headers:
            response.headers["content-type"] = media_type_for(str(full_path))
        return response

    async def get_response(self, path: str, scope: Scope) -> Response:
        """Starlette's answer, with its directory redirect made relative."""
        response = await super().get_response(path, scope)
        if isinstance(response, RedirectResponse):
            last = scope["path"].rsplit("/", 1)[-1]
            query = scope.get("query_string", b"").decode("latin-1")
            target = "./" + quote(last, safe="") + "/" + ("?" + query if query else "")
            return RedirectResponse(target, status_code=response.status_code)
        return response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        extra = self._headers

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name for name, _ in extra}
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message["headers"] = headers + extra
            await send(message)

        try:
            await super().__call__(scope, receive, send_with_headers)
        except HTTPException as exc:  # 404/405 get the site headers too
            response = PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
            await response(scope, receive, send_with_headers)

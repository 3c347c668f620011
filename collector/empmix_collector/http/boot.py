"""``GET /empmix-boot.js``: the SDK's boot script, served from the installed ``empmix_web``.

The script is package data of the SDK the collector depends on, so the collector always serves
the boot script of the SDK version it was installed with: ``empmix_web/boot.min.js``, the
minified copy ``./build.sh setup`` makes of the one source ``empmix_web/boot.js`` (a wheel built
by ``build.sh`` carries both), else that readable source itself (a wheel built where no Node.js
minified it). It is read once, and sent gzip-compressed when the client accepts it, with an
``ETag`` (a revalidation is a 304) and an hour of caching.
"""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["BootScript", "BOOT_PATH", "boot_script"]

BOOT_PATH = "/empmix-boot.js"
CACHE_CONTROL = "public, max-age=3600"


def boot_script() -> bytes:
    """The boot script the installed ``empmix_web`` ships: its minified copy if it has one."""
    package = resources.files("empmix_web")
    minified = package.joinpath("boot.min.js")
    return (minified if minified.is_file() else package.joinpath("boot.js")).read_bytes()


class BootScript:
    """The endpoint; the script's bytes are read when it is built."""

    def __init__(self) -> None:
        self.body = boot_script()
        self.gzipped = gzip.compress(self.body, 9, mtime=0)
        self.etag = '"' + hashlib.sha256(self.body).hexdigest()[:20] + '"'

    async def __call__(self, request: Request) -> Response:
        headers = {
            "Cache-Control": CACHE_CONTROL,
            "ETag": self.etag,
            "Vary": "Accept-Encoding",
            # a page on another origin may load it, also a cross-origin-isolated (COEP) one
            "Cross-Origin-Resource-Policy": "cross-origin",
            "X-Content-Type-Options": "nosniff",
        }
        if self.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        body = self.body
        if "gzip" in request.headers.get("accept-encoding", ""):
            body, headers["Content-Encoding"] = self.gzipped, "gzip"
        return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)

"""``GET /empmix-boot.js``: the SDK's boot script, served from the installed ``empmix_web``.

The script is ``empmix_web/boot.js``, package data of the SDK the collector depends on, so the
collector always serves the boot script of the SDK version it was installed with. It is read
once, and sent gzip-compressed when the client accepts it, with an ``ETag`` (a revalidation is a
304) and an hour of caching: a site that wants it cached for longer serves its own copy
(``./build.sh setup`` writes a minified one to ``build/www/empmix-boot.js``).
"""

from __future__ import annotations

import gzip
import hashlib
from importlib import resources

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["BootScript", "BOOT_PATH"]

BOOT_PATH = "/empmix-boot.js"
CACHE_CONTROL = "public, max-age=3600"


class BootScript:
    """The endpoint; the script's bytes are read when it is built."""

    def __init__(self) -> None:
        self.body = resources.files("empmix_web").joinpath("boot.js").read_bytes()
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

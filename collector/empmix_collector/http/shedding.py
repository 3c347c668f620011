"""Load shedding before memory goes: bytes in flight and requests in flight are bounded.

A request holds its body, its decoded records and its validated batch until its write
has committed, so memory grows with the bytes of the requests in progress, not only with
the batches queued for the writer. This middleware reserves each request's declared
``Content-Length`` (its endpoint's body cap when the length is not declared) before the
app reads a byte, and releases it when the reply is sent. A request that would pass
``max_bytes``, or arrive while ``max_requests`` are in progress, is answered at once with
``503`` and ``Retry-After``, without reading its body: the SDKs retry it later. Nothing
of it was stored. ``GET /healthz`` is never shed.

The number of connections is bounded by uvicorn (``limit_concurrency``, see ``server``).

Example::

    app = LoadShedder(app, max_bytes=32 << 20, max_requests=512)
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from empmix_collector.domain.wire import MAX_BODY_BYTES, MAX_IMPORT_BODY_BYTES

__all__ = ["LoadShedder", "LoadGauges", "RETRY_AFTER_S"]

RETRY_AFTER_S = "1"


def _declared_length(scope: Scope) -> int | None:
    for key, value in scope["headers"]:
        if key == b"content-length":
            try:
                return max(int(value), 0)
            except ValueError:
                return None  # the endpoint answers 400
    return None


@dataclass
class LoadGauges:
    """What the shedder sees (``app.state.load``; observability and tests)."""

    inflight_bytes: int = 0
    inflight_requests: int = 0
    shed: int = 0
    """Requests answered 503 so far."""


class LoadShedder:
    """503 + ``Retry-After`` past ``max_bytes`` of bodies or ``max_requests`` requests in progress."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_requests: int, gauges: LoadGauges | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_requests = max_requests
        self.gauges = LoadGauges() if gauges is None else gauges

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/healthz":
            await self.app(scope, receive, send)
            return
        size = 0
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            declared = _declared_length(scope)
            cap = MAX_IMPORT_BODY_BYTES if scope["path"].startswith("/import") else MAX_BODY_BYTES
            size = min(declared, cap + 1) if declared is not None else cap
        elif scope.get("query_string"):
            size = len(scope["query_string"])  # GET /track?data=...
        gauges = self.gauges
        if gauges.inflight_requests >= self.max_requests or (
            gauges.inflight_bytes and gauges.inflight_bytes + size > self.max_bytes
        ):
            gauges.shed += 1
            await _busy(send)
            return
        gauges.inflight_bytes += size
        gauges.inflight_requests += 1
        try:
            await self.app(scope, receive, send)
        finally:
            gauges.inflight_bytes -= size
            gauges.inflight_requests -= 1


async def _busy(send: Send) -> None:
    body = b"collector busy: retry later"
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", RETRY_AFTER_S.encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})

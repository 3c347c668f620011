"""What an endpoint cannot answer normally, and the one place that turns it into a status.

Handlers raise; nothing below the HTTP layer knows a status code:

====================================  ======  ===================================================
``domain.wire.MalformedBody``         400     the body cannot be read as records
``domain.wire.BodyTooLarge``          413     over a size or record-count cap
``domain.wire.UnsupportedEncoding``   415     a ``Content-Encoding`` other than gzip or deflate
:class:`BadParameter`                 400     a query parameter of ``/api`` is unusable
:class:`NeedsSecret`                  401     ``/api`` without the secret (``WWW-Authenticate``)
:class:`LoopbackOnly`                 403     ``/api`` from another machine, without ``--secret``
:class:`NotFound`                     404     an unknown token, person or group
``store.base.QueryTooLong``           503     a read ran past its time limit
``store.base.QueryTooBig``            413     a read past its row or cell limit
``store.base.StoreError``             503     the database is unavailable (``Retry-After: 1``)
====================================  ======  ===================================================

The ingestion endpoints answer in Mixpanel's shapes, so they ask :func:`wire_status` for the
status and build their own body; the query API's errors are answered by :data:`ERROR_REPLIES`,
the application's exception handlers (``http.app``), as ``{"error": message}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from empmix_collector.domain.wire import BodyTooLarge, MalformedBody, UnsupportedEncoding, WireError
from empmix_collector.store.base import QueryTooBig, QueryTooLong, StoreError

__all__ = [
    "ApiError",
    "BadParameter",
    "NeedsSecret",
    "LoopbackOnly",
    "NotFound",
    "wire_status",
    "error_reply",
    "ERROR_REPLIES",
]

_WIRE_STATUS: Mapping[type[WireError], int] = {MalformedBody: 400, BodyTooLarge: 413, UnsupportedEncoding: 415}


class ApiError(Exception):
    """A query-API request that cannot be answered; the subclass names the status.

    Attributes:
        message: the reply's ``error`` text.
    """

    status: ClassVar[int] = 400
    headers: ClassVar[Mapping[str, str]] = {}

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadParameter(ApiError):
    """A query parameter is missing, malformed or out of range (400)."""


class NeedsSecret(ApiError):
    """No ``Authorization: Bearer <secret>``, or a wrong one (401)."""

    status = 401
    headers = {"WWW-Authenticate": 'Bearer realm="empmix-collector"'}


class LoopbackOnly(ApiError):
    """A collector without ``--secret`` answers loopback clients only (403)."""

    status = 403


class NotFound(ApiError):
    """The token, person or group asked for is unknown (404)."""

    status = 404


def wire_status(error: WireError) -> int:
    """The HTTP status answering a body that cannot be used."""
    for kind, status in _WIRE_STATUS.items():
        if isinstance(error, kind):
            return status
    return 400


async def error_reply(request: Request, error: Exception) -> Response:
    """The query API's reply to a typed error: ``{"error": message}`` with its status.

    Any other error is raised again (Starlette answers it with 500). A coroutine, so that
    Starlette runs it on the event loop rather than in its thread pool.
    """
    headers: dict[str, str] = {"Cache-Control": "no-store"}
    if isinstance(error, ApiError):
        status, message = error.status, error.message
        headers.update(error.headers)
    elif isinstance(error, QueryTooLong):
        status, message = 503, str(error)
    elif isinstance(error, QueryTooBig):
        status, message = 413, str(error)
    elif isinstance(error, StoreError):
        status, message = 503, f"store unavailable: {error}"
        headers["Retry-After"] = "1"
    else:
        raise error
    return JSONResponse({"error": message}, status_code=status, headers=headers)


ERROR_REPLIES: Mapping[Any, Any] = {ApiError: error_reply, StoreError: error_reply}
"""Exception type -> handler, for ``Starlette(exception_handlers=...)``."""

"""What the endpoints read from a request: the body, under a cap, and the secret in ``Authorization``.

Shared by the ingestion endpoints (``ingest``), ``POST /cookie`` (``cookie``) and the query
API (``api``).
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.requests import Request

from empmix_collector.domain.wire import BodyTooLarge, MalformedBody

__all__ = ["read_body", "secret_matches"]


def secret_matches(authorization: str | None, secret: str | None) -> bool:
    """``Authorization`` carries the secret: HTTP Basic with the secret as user name
    (any password, Mixpanel sends it empty) or ``Bearer SECRET``."""
    if secret is None or not authorization:
        return False
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        offered = value
    elif scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return False
        offered = decoded.partition(":")[0]
    else:
        return False
    return hmac.compare_digest(offered.encode("utf-8", "replace"), secret.encode("utf-8"))


async def read_body(request: Request, cap: int) -> bytes:
    """The request's body, read to the end unless it grows past ``cap`` bytes.

    Raises:
        BodyTooLarge: ``Content-Length`` or the bytes received pass ``cap``.
        MalformedBody: ``Content-Length`` is not a number.
        starlette.requests.ClientDisconnect: the client went away before the end.
    """
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise MalformedBody("Content-Length is not a number") from None
        if length > cap:
            raise BodyTooLarge(f"body larger than {cap} bytes")
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > cap:
            raise BodyTooLarge(f"body larger than {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)

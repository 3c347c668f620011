"""``POST /cookie``: the collector sets the SDK's identity cookie (``server_cookie=True``).

The SDK posts ``token=<token>&value=<identity JSON>`` (form-urlencoded, with credentials).
Allowed: ``200 {"status": 1, "error": null}`` with ``Set-Cookie: empmix_<token>=...;
Max-Age=31536000; Path=/; SameSite=Lax`` (``Domain=`` from ``--cookie-domain``, ``Secure``
over https). Refused: a 4xx with ``{"status": 0, "error": reason}`` and no ``Set-Cookie``:

* 403: no ``Origin`` (a browser always sends one on a POST), ``Origin: null``, an origin
  outside ``--allow-origin`` (the CORS middleware answers that one), a cross-site page
  (``Sec-Fetch-Site: cross-site``, or an ``Origin`` whose registrable domain is not the
  collector's), a page (or a collector host) outside ``--cookie-domain``;
* 400: a malformed body, an unknown token, a value that is not a valid identity;
* 413: a body over 8 KiB.

The credentialed CORS reply (exact origin, ``Access-Control-Allow-Credentials: true``,
never ``*``) comes from the CORS middleware, as for every endpoint.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from empmix_collector.domain.cookie import (
    check_identity,
    cookie_name_problem,
    domain_matches,
    set_cookie_header,
    site_of,
)
from empmix_collector.domain.wire import WireError, dumps_json
from empmix_collector.http.errors import wire_status
from empmix_collector.http.hosts import host_only
from empmix_collector.http.inputs import read_body
from empmix_collector.settings import Settings
from empmix_collector.store.base import Store

__all__ = ["CookieEndpoint", "MAX_COOKIE_BODY_BYTES"]

MAX_COOKIE_BODY_BYTES = 8192


def _reply(status: int, error: str | None, headers: dict[str, str] | None = None) -> Response:
    body: dict[str, Any] = {"status": 1 if error is None else 0, "error": error}
    all_headers = {"Cache-Control": "no-store"}
    if headers:
        all_headers.update(headers)
    return Response(dumps_json(body), status_code=status, media_type="application/json", headers=all_headers)


class CookieEndpoint:
    """``POST /cookie`` (and its ``--api-route cookie=PATH``)."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store

    def _site_problem(self, request: Request) -> str | None:
        origin = request.headers.get("origin")
        if origin is None:
            return "no Origin header: the identity cookie is set for pages of this site only"
        if origin == "null":
            return "Origin null (a sandboxed or file page) cannot get the identity cookie"
        if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
            return "a cross-site page cannot get the identity cookie"
        parts = urlsplit(origin)
        page_host = (parts.hostname or "").lower()
        own_host = host_only(request.headers.get("host", ""))
        if not page_host or not own_host:
            return "cannot tell the page's site"
        if parts.scheme not in ("http", "https"):
            return f"Origin scheme {parts.scheme!r} cannot get the identity cookie"
        if page_host != own_host and site_of(page_host) != site_of(own_host):
            return f"{origin[:100]} is not on this collector's site ({site_of(own_host)[:100]})"
        domain = self.settings.cookie_domain
        if domain is not None:
            if not domain_matches(page_host, domain):
                return f"{origin[:100]} is outside --cookie-domain {domain}"
            if not domain_matches(own_host, domain):  # browsers would drop the cookie
                return f"this collector's host {own_host[:100]} is outside --cookie-domain {domain}"
        return None

    async def set_cookie(self, request: Request) -> Response:
        """Set ``empmix_<token>`` to the posted identity, for a page of this site only."""
        problem = self._site_problem(request)
        if problem is not None:
            return _reply(403, problem)
        try:
            body = await read_body(request, MAX_COOKIE_BODY_BYTES)
        except WireError as exc:
            return _reply(wire_status(exc), exc.message)
        except ClientDisconnect:
            return Response(status_code=400)
        if request.headers.get("content-encoding", "identity").lower() not in ("identity", ""):
            return _reply(415, "POST /cookie takes an uncompressed form body")
        try:
            fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False, max_num_fields=8)
        except (UnicodeDecodeError, ValueError):
            return _reply(400, "the body is not a form (token=...&value=...)")
        tokens, values = fields.get("token", []), fields.get("value", [])
        if len(tokens) != 1 or len(values) != 1:
            return _reply(400, "the body needs exactly one token= and one value=")
        token, value = tokens[0], values[0]
        if token not in self.store.projects:
            return _reply(400, f"unknown token {token[:64]!r}")
        problem = cookie_name_problem(token) or check_identity(value)
        if problem is not None:
            return _reply(400, problem)
        secure = request.url.scheme == "https" or request.headers.get("origin", "").startswith("https:")
        try:
            header = set_cookie_header(token, value, domain=self.settings.cookie_domain, secure=secure)
        except ValueError as exc:
            return _reply(400, str(exc))
        return _reply(200, None, {"Set-Cookie": header})

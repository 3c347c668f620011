"""The server-set identity cookie (``POST /cookie``): what may be set, and for whom.

Safari caps cookies written by script at 7 days; a cookie set by the collector's own
``Set-Cookie`` is not capped when the collector is served from the site's own domain. The
SDK (``server_cookie=True``) posts ``token=<token>&value=<the identity cookie's JSON>``
with credentials; the collector answers with ``Set-Cookie: empmix_<token>=<value>``.

A hostile page must not be able to plant an identity in a visitor's browser (it could
then read that visitor's later events as its own, once the visitor identifies). So the
cookie is set only when all of these hold:

* the request comes from a page of the collector's own site: its ``Origin`` is the
  collector's origin, or shares the collector's registrable domain (:func:`site_of`),
  and a browser's ``Sec-Fetch-Site`` (computed with the browser's full public-suffix
  list) does not say ``cross-site``; with ``--cookie-domain D`` the page's host must also
  lie within ``D``;
* the token is one of the collector's;
* the value is an identity the SDK itself would accept (:func:`check_identity`): a flat
  JSON object of at most :data:`MAX_VALUE_CHARS` characters with exactly the identity's
  keys, ids by the rules of ``empmix_web.ids``, and the same consistency rules as
  ``empmix_web.identity.Identity.from_json``.

Example::

    problem = check_identity('{"distinct_id": "$device:d1", "$device_id": "d1", ...}')
    header = set_cookie_header("tok", value, domain=None, secure=False)
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import quote

from empmix_web.ids import DEVICE_PREFIX, MAX_ID_LENGTH, illegal_id_reason, user_id_problem

__all__ = [
    "COOKIE_MAX_AGE_S",
    "MAX_VALUE_CHARS",
    "IDENTITY_KEYS",
    "check_identity",
    "cookie_name_problem",
    "set_cookie_header",
    "site_of",
    "domain_matches",
]

COOKIE_MAX_AGE_S = 31_536_000
"""One year, as the SDK's own cookie."""
MAX_VALUE_CHARS = 2048
"""Longest identity value accepted: four ids of 255 characters and the keys fit well
within it, and its percent-encoding keeps the cookie under the browsers' 4 KB."""
MAX_ENCODED_CHARS = 4000
IDENTITY_KEYS = frozenset({"distinct_id", "$device_id", "$user_id", "state", "$alias"})
_REQUIRED_KEYS = frozenset({"distinct_id", "$device_id", "state"})
_SAFE = "-_.!~*'()"  # what encodeURIComponent leaves alone (besides letters and digits)
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

# second-level labels that sit under a country code as public suffixes (co.uk, com.au, ...)
_GENERIC_SLDS = frozenset({"ac", "co", "com", "edu", "gov", "go", "ltd", "me", "mil", "ne", "net", "or", "org", "plc"})
# hosting domains whose subdomains are separate sites (a few entries of the public-suffix
# list's private section; browsers send Sec-Fetch-Site from the whole list)
_SHARED_HOSTS = frozenset({
    "github.io", "gitlab.io", "herokuapp.com", "netlify.app", "vercel.app", "pages.dev", "workers.dev",
    "web.app", "firebaseapp.com", "appspot.com", "blogspot.com", "cloudfront.net", "azurewebsites.net",
    "onrender.com", "fly.dev", "ngrok.io", "ngrok-free.app", "glitch.me", "repl.co", "surge.sh",
    "s3.amazonaws.com", "amplifyapp.com", "pythonanywhere.com", "readthedocs.io",
})  # fmt: skip


class _DuplicateKey(Exception):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (readers disagree on which duplicate wins)."""
    data = dict(pairs)
    if len(data) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return data


def check_identity(value: str) -> str | None:
    """Why ``value`` is not an identity cookie value the collector may set, or ``None``."""
    if len(value) > MAX_VALUE_CHARS:
        return f"value is longer than {MAX_VALUE_CHARS} characters"
    if value.count("{") + value.count("[") > 8:  # the real value is one flat object
        return "value is not a flat JSON object"
    try:
        data: Any = json.loads(value, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        return f"value names {str(exc)[:60]!r} twice"
    except (ValueError, RecursionError):
        return "value is not JSON"
    if type(data) is not dict:
        return "value is not a JSON object"
    keys = set(data)
    if not keys <= IDENTITY_KEYS:
        return "value has keys an identity does not have: " + ", ".join(sorted(keys - IDENTITY_KEYS))[:200]
    if not _REQUIRED_KEYS <= keys:
        return "value lacks " + ", ".join(sorted(_REQUIRED_KEYS - keys))
    distinct_id, device_id = data["distinct_id"], data["$device_id"]
    user_id, alias, state = data.get("$user_id"), data.get("$alias"), data["state"]
    if type(distinct_id) is not str:
        return "distinct_id must be a string"
    problem = illegal_id_reason(distinct_id)
    if problem is not None:
        return "distinct_id: " + problem
    if type(device_id) is not str or not device_id or len(device_id) > MAX_ID_LENGTH:
        return "$device_id must be a non-empty string of at most 255 characters"
    problem = illegal_id_reason(DEVICE_PREFIX + device_id)
    if problem is not None:
        return "$device_id: " + problem
    for name, item in (("$user_id", user_id), ("$alias", alias)):
        if item is not None:
            if type(item) is not str:
                return name + " must be a string or null"
            problem = user_id_problem(item)
            if problem is not None:
                return name + ": " + problem
    if user_id is None:
        if distinct_id != DEVICE_PREFIX + device_id or state != "anonymous":
            return "an anonymous identity has distinct_id $device:<$device_id> and state anonymous"
    elif distinct_id != user_id or state != "identified":
        return "an identified identity has distinct_id = $user_id and state identified"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return "value holds control characters"
    return None


def cookie_name_problem(token: str) -> str | None:
    """``empmix_<token>`` must be a valid cookie name (RFC 6265 token characters)."""
    if not set(token) <= _TOKEN_CHARS:
        return "the token holds characters a cookie name cannot"
    return None


def set_cookie_header(token: str, value: str, *, domain: str | None, secure: bool) -> str:
    """The ``Set-Cookie`` value: the same name, encoding and lifetime as the SDK's own cookie
    (``encodeURIComponent`` of the JSON, so no ``;``, space or line break can get through)."""
    encoded = quote(value, safe=_SAFE)
    if len(encoded) > MAX_ENCODED_CHARS:
        raise ValueError("the encoded value is too long for a cookie")
    header = f"empmix_{token}={encoded}; Max-Age={COOKIE_MAX_AGE_S}; Path=/; SameSite=Lax"
    if domain:
        header += f"; Domain={domain}"
    if secure:
        header += "; Secure"
    return header


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def site_of(host: str) -> str:
    """The registrable domain ("site") of ``host`` (no port), approximately.

    IP addresses and single-label hosts (``localhost``) are their own site. Otherwise the
    last two labels, or three when the last two are a public suffix: ``co.uk``-style
    second levels under a country code, and common shared hosting domains
    (``github.io``, ``herokuapp.com``, ...). Browsers use the full public-suffix list;
    their ``Sec-Fetch-Site`` header is checked as well, so an entry missing here cannot
    let a cross-site page through a browser that sends it.
    """
    host = host.lower().rstrip(".")
    if _is_ip(host) or "." not in host:
        return host
    labels = host.split(".")
    suffix = 1
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _GENERIC_SLDS:
        suffix = 2
    for shared in _SHARED_HOSTS:
        if host == shared or host.endswith("." + shared):
            suffix = shared.count(".") + 1
    return ".".join(labels[-(suffix + 1) :])


def domain_matches(host: str, domain: str) -> bool:
    """``host`` is ``domain`` or one of its subdomains (RFC 6265 domain-match)."""
    host = host.lower().rstrip(".")
    return not _is_ip(host) and (host == domain or host.endswith("." + domain))

"""Cookieless visitor ids (issue 19): the pure part, no I/O.

In cookieless operation the SDK stores nothing and sends the sentinel ``"$cookieless"``
(``empmix_web.ids.COOKIELESS``) where a distinct id goes. The collector puts in its place::

    "$cookieless:" + base32(HMAC-SHA256(salt of the UTC day, project | client IP | User-Agent | host))

(lowercase base32 of the first 160 bits, no padding). The salt is random, one per project and
UTC day, kept in the database by ``store.cookieless`` and deleted after the retention, so an old
day's ids cannot be recomputed. After ``$cookieless_reset`` the same browser gets generation
``g`` of that day: another keyed hash of the base hash and ``g``, unlinkable without the salt.

Example::

    base = base_hash(salt, project_id=1, ip="203.0.113.9", user_agent="Mozilla/5.0 ...", host="shop.example")
    visitor_id(salt, base, 0)        # "$cookieless:" + base
    visitor_id(salt, base, 1)        # a fresh anonymous id, after one reset
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from urllib.parse import urlsplit

from empmix_web.ids import COOKIELESS, COOKIELESS_PREFIX

__all__ = [
    "COOKIELESS",
    "COOKIELESS_PREFIX",
    "RESET_EVENT",
    "LINK_KEY",
    "DAY_MS",
    "HASH_BYTES",
    "SALT_BYTES",
    "utc_day",
    "new_salt",
    "client_ip",
    "page_host",
    "base_hash",
    "visitor_id",
    "is_cookieless",
]

RESET_EVENT = "$cookieless_reset"
"""Sent by the SDK's ``reset()`` in cookieless operation: the browser's id of the day moves on a generation."""
LINK_KEY = "$cookieless_link"
"""``true`` on the SDK's first record after consent (with ``$device_id``): join this visit's cookieless id."""
DAY_MS = 86_400_000
HASH_BYTES = 20
"""Bytes of the HMAC kept: 160 bits, exactly 32 base32 characters (no padding)."""
SALT_BYTES = 32


def utc_day(now_ms: int) -> int:
    """The UTC day of ``now_ms``, as days since 1970-01-01."""
    return now_ms // DAY_MS


def new_salt() -> str:
    """A fresh random salt (hex text, so both stores keep it in a ``TEXT`` column)."""
    return secrets.token_hex(SALT_BYTES)


def client_ip(peer: str | None, forwarded_for: Sequence[str], trust_proxy: int) -> str:
    """The client address: the socket peer, or with ``trust_proxy`` N > 0 the N-th entry of
    ``X-Forwarded-For`` from the right (each trusted proxy appended the address it saw).

    A chain shorter than N gives its leftmost entry; no header gives the peer.
    """
    if trust_proxy > 0:
        entries = [part.strip() for value in forwarded_for for part in value.split(",") if part.strip()]
        if entries:
            return entries[-trust_proxy] if len(entries) >= trust_proxy else entries[0]
    return peer or ""


def page_host(current_url: object, origin: str | None) -> str:
    """The page's host: from the record's ``$current_url``, else the ``Origin`` header, else ``""``."""
    for candidate in (current_url, origin):
        if isinstance(candidate, str) and candidate:
            try:
                host = urlsplit(candidate.strip()).hostname
            except ValueError:
                host = None
            if host:
                return host.lower()
    return ""


def _b32(digest: bytes) -> str:
    return base64.b32encode(digest[:HASH_BYTES]).decode("ascii").lower()


def _mac(salt: str, parts: Sequence[str]) -> bytes:
    message = b"".join(len(data).to_bytes(4, "big") + data for data in (p.encode("utf-8", "replace") for p in parts))
    return hmac.new(bytes.fromhex(salt), message, hashlib.sha256).digest()


def base_hash(salt: str, *, project_id: int, ip: str, user_agent: str, host: str) -> str:
    """The keyed hash of one browser's visit on the salt's day (generation 0's id without the prefix)."""
    return _b32(_mac(salt, ("visitor", str(project_id), ip, user_agent, host)))


def visitor_id(salt: str, base: str, generation: int) -> str:
    """The distinct id of ``base`` after ``generation`` resets (0: none)."""
    if generation <= 0:
        return COOKIELESS_PREFIX + base
    return COOKIELESS_PREFIX + _b32(_mac(salt, ("generation", base, str(generation))))


def is_cookieless(distinct_id: str) -> bool:
    """A collector-made cookieless id (``$cookieless:...``)."""
    return distinct_id.startswith(COOKIELESS_PREFIX)

"""Verified identities: the HMAC a site's backend gives its logged-in user, and its check.

With ``--identity-secret TOKEN=SECRET`` a project accepts a link that makes an id part of
an identified user (``$identify``, ``$create_alias``, an event's ``$device_id`` +
``$user_id``) only if the record carries ``$identity_signature``: the hex HMAC-SHA256 of
that user id under the project's identity secret. The site's server computes it after
login, in any language::

    hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()   # Python
    crypto.createHmac("sha256", secret).update(userId).digest("hex")          // Node.js

and hands it to the page, whose SDK sends it with ``identify``/``alias``.

Example::

    signature = sign_identity("identity-secret", "alice@example.com")
    assert unverified(b"identity-secret", "track", "$device:d1", "alice@example.com", signature) is None
"""

from __future__ import annotations

import hashlib
import hmac

from empmix_web.ids import DEVICE_PREFIX

__all__ = ["SIGNATURE_PROPERTY", "sign_identity", "signature_matches", "unverified"]

SIGNATURE_PROPERTY = "$identity_signature"
"""Event property holding the signature (removed before the event is stored)."""
_MAX_SIGNATURE_LENGTH = 128


def _key(secret: str | bytes) -> bytes:
    return secret if isinstance(secret, bytes) else secret.encode("utf-8")


def sign_identity(secret: str | bytes, user_id: str) -> str:
    """The ``$identity_signature`` of ``user_id``: hex HMAC-SHA256 under ``secret``."""
    return hmac.new(_key(secret), user_id.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def signature_matches(secret: str | bytes, user_id: str, signature: object) -> bool:
    """``signature`` is ``user_id``'s (hex, any case; compared in constant time)."""
    if type(signature) is not str or len(signature) > _MAX_SIGNATURE_LENGTH:
        return False
    return hmac.compare_digest(sign_identity(secret, user_id), signature.lower())


def unverified(key: bytes | None, endpoint: str, from_id: str, to_id: str, signature: object) -> str | None:
    """Why a link from ``from_id`` to the user ``to_id`` may not make them one identified
    user, or ``None`` when it may: the project verifies nothing (``key`` None), the record
    came through ``/import`` (the project secret), or it is signed and the joining side is
    an anonymous ``$device:`` id (so a user's own signature cannot absorb another user)."""
    if key is None or endpoint == "import":
        return None
    if signature is None:
        return f"no {SIGNATURE_PROPERTY} for {to_id[:80]!r}"
    if not signature_matches(key, to_id, signature):
        return f"{SIGNATURE_PROPERTY} is not the signature of {to_id[:80]!r}"
    if not from_id.startswith(DEVICE_PREFIX):
        return f"{from_id[:80]!r} is not an anonymous $device: id; only $merge through /import joins it to a user"
    return None

"""Who the browser is: the anonymous device id, the user id, and where they are kept.

The identity lives in localStorage (``empmix_<token>_identity``) and is mirrored in the
first-party cookie ``empmix_<token>``; where the two disagree the cookie wins (it is what a
sibling subdomain or tab wrote last). Stored values are data, never trusted: anything that is not
a well-formed identity with legal ids reads as absent (logged once), and a fresh one is minted.
"""

import logging

from . import keys
from .compat import dumps, loads_bounded
from .ids import COOKIELESS, DEVICE_PREFIX, MAX_ID_LENGTH, illegal_id_reason, user_id_problem, uuid4
from .storage import MAX_COOKIE_CHARS, CookieJar, Storage

try:
    from typing import Any, Callable
except ImportError:
    pass

log = logging.getLogger("empmix_web")

COOKIE_RECHECK_S = 1.0


class Identity:
    """One browser's identity for one project token (immutable)."""

    __slots__ = ("distinct_id", "device_id", "user_id", "alias")

    def __init__(
        self, distinct_id: str, device_id: str, user_id: "str | None" = None, alias: "str | None" = None
    ) -> None:
        self.distinct_id = distinct_id
        self.device_id = device_id
        self.user_id = user_id
        self.alias = alias  # set by alias() while anonymous, until identify(alias)

    @property
    def identified(self) -> bool:
        """True once a user id is known (after ``identify``)."""
        return self.user_id is not None

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Identity)
            and self.distinct_id == other.distinct_id
            and self.device_id == other.device_id
            and self.user_id == other.user_id
            and self.alias == other.alias
        )

    def __repr__(self) -> str:
        return "Identity(" + repr(self.distinct_id) + ", user_id=" + repr(self.user_id) + ")"

    @staticmethod
    def anonymous(device_id: str) -> "Identity":
        """The anonymous identity of a device: ``distinct_id`` is ``$device:<device_id>``."""
        return Identity(DEVICE_PREFIX + device_id, device_id)

    @staticmethod
    def cookieless() -> "Identity":
        """The anonymous visitor of cookieless operation: no device id; the collector derives
        the visitor's id from the request (``distinct_id`` is the sentinel ``$cookieless``)."""
        return Identity(COOKIELESS, "")

    @staticmethod
    def mint(random16: bytes) -> "Identity":
        """A new anonymous identity whose ``$device_id`` is a UUID4 made of ``random16``."""
        return Identity.anonymous(uuid4(random16))

    def as_user(self, user_id: str) -> "Identity":
        """This device's identity logged in as ``user_id``."""
        return Identity(user_id, self.device_id, user_id)

    def with_alias(self, alias: str) -> "Identity":
        """This identity with ``alias`` recorded (``alias()`` while anonymous)."""
        return Identity(self.distinct_id, self.device_id, self.user_id, alias)

    def to_json(self) -> "dict[str, Any]":
        """The stored form: the JSON object of localStorage and the cookie."""
        data: "dict[str, Any]" = {
            "distinct_id": self.distinct_id,
            "$device_id": self.device_id,
            "$user_id": self.user_id,
            "state": "identified" if self.identified else "anonymous",
        }
        if self.alias is not None:
            data["$alias"] = self.alias
        return data

    @staticmethod
    def from_json(data: object) -> "Identity | None":
        """Parse stored state; anything malformed or with an illegal id reads as absent."""
        if not isinstance(data, dict):
            return None
        distinct_id, device_id = data.get("distinct_id"), data.get("$device_id")
        user_id, alias = data.get("$user_id"), data.get("$alias")
        if not isinstance(distinct_id, str) or illegal_id_reason(distinct_id) is not None:
            return None
        if not isinstance(device_id, str) or not device_id or len(device_id) > MAX_ID_LENGTH:
            return None
        for value in (user_id, alias):
            if value is not None and (not isinstance(value, str) or user_id_problem(value) is not None):
                return None
        if user_id is None and distinct_id != DEVICE_PREFIX + device_id:
            return None
        if user_id is not None and distinct_id != user_id:
            return None
        return Identity(distinct_id, device_id, user_id, alias)


def parse_identity(raw: "str | None") -> "Identity | None":
    """The identity stored as ``raw`` JSON text, or None when absent or not an identity."""
    return None if raw is None else Identity.from_json(loads_bounded(raw, MAX_COOKIE_CHARS))


class IdentityStore:
    """Loads and saves one token's ``Identity`` in localStorage and the cookie."""

    def __init__(
        self,
        storage: Storage,
        cookies: CookieJar,
        token: str,
        monotonic: "Callable[[], float]",
        random16: "Callable[[], bytes]",
    ) -> None:
        self._storage = storage
        self._cookies = cookies
        self._monotonic = monotonic
        self._random16 = random16
        self.key = keys.key(token, keys.IDENTITY)
        self.cookie_name = keys.cookie_name(token)
        self.current: "Identity | None" = None
        self.raw: "str | None" = None  # the stored text self.current was parsed from
        self._recheck_at = 0.0  # monotonic time of the next cookie read
        self._warned = False
        self.on_cookie_written: "Callable[[str], None] | None" = None
        self.cookieless = False  # cookieless operation: the identity lives in memory only

    @property
    def fresh_until(self) -> float:
        """The monotonic time until which ``load`` trusts an unchanged localStorage copy."""
        return self._recheck_at

    def stored_raw(self) -> "str | None":
        """The identity text in localStorage: what every call compares to see a sibling's change."""
        return None if self.cookieless else self._storage.get(self.key)

    def load(self, stored: "str | None", fresh: bool = False) -> Identity:
        """The current identity (minted and saved when none is stored).

        ``stored`` is ``stored_raw``, read by the caller. With ``fresh=False`` (the hot path
        of ``track``) an unchanged localStorage copy is trusted, and the cookie (a sibling
        subdomain may change only that; reading it costs 100-200 µs from Pyodide) is re-read at
        least every ``COOKIE_RECHECK_S``.
        """
        if self.cookieless:
            if self.current is None:
                self.current = Identity.cookieless()
            return self.current
        now = self._monotonic()
        if not fresh and self.current is not None and stored == self.raw and now < self._recheck_at:
            return self.current
        self._recheck_at = now + COOKIE_RECHECK_S
        from_cookie = self._cookies.get(self.cookie_name)
        identity = parse_identity(from_cookie)
        if identity is not None:  # the cookie wins
            if stored != from_cookie and from_cookie is not None:
                self._storage.set(self.key, from_cookie)
            self.current, self.raw = identity, from_cookie
            return identity
        self._discarded(from_cookie, "cookie " + self.cookie_name)
        identity = parse_identity(stored)  # no (valid) cookie: cookies blocked or cleared
        if identity is not None and stored is not None:
            self._write_cookie(stored)
            self.current, self.raw = identity, stored
            return identity
        self._discarded(stored, "localStorage " + self.key)
        return self.save(Identity.mint(self._random16()))

    def _discarded(self, raw: "str | None", where: str) -> None:
        if raw is not None and raw != "" and not self._warned:
            self._warned = True
            log.warning("empmix: discarding a malformed identity in %s (%d characters)", where, len(raw))

    def fresh(self) -> Identity:
        """A new anonymous visitor (``reset()``): a new device, or in cookieless operation the
        cookieless one."""
        return Identity.cookieless() if self.cookieless else Identity.mint(self._random16())

    def save(self, identity: Identity) -> Identity:
        """Store ``identity`` in localStorage and the cookie (in memory only when cookieless)."""
        if self.cookieless:
            self.current = identity
            return identity
        raw = dumps(identity.to_json())
        self._storage.set(self.key, raw)
        self._write_cookie(raw)
        self.current, self.raw = identity, self._storage.get(self.key)
        self._recheck_at = self._monotonic() + COOKIE_RECHECK_S
        return identity

    def _write_cookie(self, raw: str) -> None:
        self._cookies.set(self.cookie_name, raw)
        if self.on_cookie_written is not None:
            self.on_cookie_written(raw)

    def clear(self) -> None:
        """Forget the identity everywhere it is kept (host and parent-domain cookies)."""
        self.current, self.raw = None, None
        if self.cookieless:
            return
        self._storage.remove(self.key)
        self._cookies.remove(self.cookie_name)

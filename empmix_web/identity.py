"""Who the browser is: the anonymous device id, the user id, and where they are kept.

The identity lives in localStorage (``empmix_<token>_identity``) and is mirrored in the
first-party cookie ``empmix_<token>``; where the two disagree the cookie wins (it is what a
sibling subdomain or tab wrote last). It is re-read before every call, cheaply (see ``load``).
"""

from __future__ import annotations

import json
import time
import os
from dataclasses import dataclass
from typing import Any

from .storage import CookieJar, Storage
from .validation import DEVICE_PREFIX, dumps

COOKIE_RECHECK_S = 1.0


@dataclass(frozen=True)
class Identity:
    """One browser's identity for one project token."""

    distinct_id: str
    device_id: str
    user_id: str | None = None
    alias: str | None = None  # set by alias() while anonymous, until identify(alias)

    @property
    def identified(self) -> bool:
        return self.user_id is not None

    @classmethod
    def mint(cls) -> Identity:
        """A new anonymous identity: ``$device_id`` is a UUID4, ``distinct_id`` derives from it."""
        bits = int.from_bytes(os.urandom(16), "big")
        bits = (bits & ~(0xF000 << 64) | 0x4000 << 64) & ~(0xC000 << 48) | 0x8000 << 48  # v4, RFC 4122
        h = f"{bits:032x}"
        device_id = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
        return cls(DEVICE_PREFIX + device_id, device_id)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "distinct_id": self.distinct_id,
            "$device_id": self.device_id,
            "$user_id": self.user_id,
            "state": "identified" if self.identified else "anonymous",
        }
        if self.alias is not None:
            data["$alias"] = self.alias
        return data

    @classmethod
    def from_json(cls, data: Any) -> Identity | None:
        """Parse stored state; anything malformed reads as absent."""
        if not isinstance(data, dict):
            return None
        distinct_id, device_id = data.get("distinct_id"), data.get("$device_id")
        user_id, alias = data.get("$user_id"), data.get("$alias")
        if not (isinstance(distinct_id, str) and distinct_id and isinstance(device_id, str) and device_id):
            return None
        if user_id is not None and not isinstance(user_id, str):
            return None
        if alias is not None and not isinstance(alias, str):
            return None
        return cls(distinct_id, device_id, user_id, alias)


class IdentityStore:
    """Loads and saves one token's :class:`Identity` in localStorage and the cookie."""

    def __init__(self, storage: Storage, cookies: CookieJar, token: str, persist: bool = True) -> None:
        self._storage = storage
        self._cookies = cookies
        self.key = f"empmix_{token}_identity"
        self.cookie_name = f"empmix_{token}"
        self.persist = persist
        self._current: Identity | None = None
        self._raw: str | None = None  # the stored text self._current was parsed from
        self._recheck_at = 0.0  # monotonic time of the next cookie read

    def _parse(self, raw: str | None) -> Identity | None:
        if raw is None:
            return None
        try:
            return Identity.from_json(json.loads(raw))
        except ValueError:
            return None

    def load(self, fresh: bool = False) -> Identity:
        """The current identity; minted and saved on first use.

        ``fresh=True`` (identity calls and getters) always reads the cookie. Otherwise (the hot
        path of ``track``) one ``getItem`` checks that localStorage is unchanged since the last
        call: reading ``document.cookie`` from Pyodide costs 100-200 µs, so the cookie is then
        re-read only when localStorage shows a change (a sibling tab's identify or reset) and at
        least every ``COOKIE_RECHECK_S`` (a sibling subdomain that shares only the cookie).
        """
        if not self.persist:
            if self._current is None:
                self._current = Identity.mint()
            return self._current
        stored = self._storage.get(self.key)
        now = time.monotonic()
        if not fresh and self._current is not None and stored == self._raw and now < self._recheck_at:
            return self._current
        self._recheck_at = now + COOKIE_RECHECK_S
        from_cookie = self._cookies.get(self.cookie_name)
        identity = self._parse(from_cookie)
        if identity is not None:  # the cookie wins
            if stored != from_cookie:
                self._storage.set(self.key, from_cookie or "")
            self._current, self._raw = identity, from_cookie
            return identity
        identity = self._parse(stored)  # no (valid) cookie: cookies blocked or cleared
        if identity is not None:
            self._cookies.set(self.cookie_name, stored or "")
            self._current, self._raw = identity, stored
            return identity
        return self.save(Identity.mint())

    def save(self, identity: Identity) -> Identity:
        self._current = identity
        if self.persist:
            raw = dumps(identity.to_json())
            self._storage.set(self.key, raw)
            self._cookies.set(self.cookie_name, raw)
            self._raw = raw
            self._recheck_at = time.monotonic() + COOKIE_RECHECK_S
        return identity

    def clear(self) -> None:
        """Forget the identity everywhere it is kept (host and parent-domain cookies)."""
        self._current, self._raw = None, None
        self._storage.remove(self.key)
        self._cookies.remove(self.cookie_name)

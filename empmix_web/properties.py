"""Super properties: added to every later event of this browser, until ``reset()``.

Stored under ``empmix_<token>_props``. Reading localStorage on every ``track()`` would cost an FFI
crossing, so the parsed value is cached and re-read when the stored identity changes (a sibling
tab's ``reset()`` or login: never served stale across a logout) and at least once a second (a
sibling tab's ``register()``). While opted out they live in memory only.
"""

import logging

from . import keys
from .compat import dumps, loads_bounded
from .storage import Storage

try:
    from typing import Any, Callable
except ImportError:
    pass

log = logging.getLogger("empmix_web")

RECHECK_S = 1.0
MAX_PROPS_CHARS = 256 * 1024


class SuperProperties:
    """The super properties of one token: stored, cached, and re-read when a sibling may have changed them."""

    def __init__(self, storage: Storage, token: str, monotonic: "Callable[[], float]") -> None:
        self._storage = storage
        self.key = keys.key(token, keys.PROPS)
        self._monotonic = monotonic
        self._raw: "str | None" = None
        self._props: "dict[str, Any]" = {}
        self._recheck_at = 0.0
        self.memory: "dict[str, Any] | None" = None  # opted out: kept here, never stored
        self.version = 0  # counts every change of the value get() returns (event templates)

    def invalidate(self) -> None:
        """Read them again at the next ``get`` (the stored identity changed)."""
        self._recheck_at = 0.0
        self.version += 1  # event templates built on the cached value are stale too

    def get(self) -> "dict[str, Any]":
        """The super properties now (the cached value within the re-check interval)."""
        if self.memory is not None:
            return self.memory
        now = self._monotonic()
        if now < self._recheck_at:
            return self._props
        self._recheck_at = now + RECHECK_S
        raw = self._storage.get(self.key)
        if raw != self._raw:  # parse only when a tab (this or another) changed them
            self._raw = raw
            props = loads_bounded(raw, MAX_PROPS_CHARS) if raw is not None else None
            if raw is not None and not isinstance(props, dict):
                log.warning("empmix: discarding malformed super properties in %s", self.key)
                self._storage.remove(self.key)
                self._raw, props = None, {}
            self._props = props if isinstance(props, dict) else {}
            self.version += 1
        return self._props

    @property
    def fresh_until(self) -> float:
        """The monotonic time until which ``get`` serves its cached value without a read."""
        return self._recheck_at

    def save(self, props: "dict[str, Any]") -> None:
        """Replace the super properties with ``props``."""
        self.version += 1
        if self.memory is not None:
            self.memory = props
            return
        self._storage.set(self.key, dumps(props))
        self._props, self._raw = props, self._storage.get(self.key)
        self._recheck_at = self._monotonic() + RECHECK_S

    def clear(self) -> None:
        """Forget every super property (``reset()``)."""
        self.version += 1
        self._storage.remove(self.key)
        self._props, self._raw = {}, None
        if self.memory is not None:
            self.memory = {}

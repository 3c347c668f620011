"""Timed events: ``time_event(name)``, then the next ``track(name)`` carries ``$duration``.

Starts are kept in localStorage (``empmix_<token>_timers``, ``{name: start_ms}``) so a timer
survives reloads of the page; a second ``time_event`` restarts it; ``reset()`` clears them. They
are read once per page and cached, so ``track`` pays nothing for them (a timer started in another
tab is seen after a reload).
"""

from . import keys
from .compat import dumps, loads_bounded
from .storage import Storage

try:
    from typing import Any, Callable
except ImportError:
    pass

MAX_TIMERS = 100


class Timers:
    """The running ``time_event`` timers of one token: stored, read once per page."""

    def __init__(self, storage: Storage, token: str, now_ms: "Callable[[], float]") -> None:
        self._storage = storage
        self.key = keys.key(token, keys.TIMERS)
        self._now_ms = now_ms
        self.persist = True  # False while opted out: nothing is stored
        self._cache: "dict[str, Any] | None" = None

    def _load(self) -> "dict[str, Any]":
        if self._cache is None:
            data = loads_bounded(self._storage.get(self.key), 64 * 1024) if self.persist else None
            self._cache = data if isinstance(data, dict) else {}
        return self._cache

    def _save(self, timers: "dict[str, Any]") -> None:
        self._cache = timers
        if not self.persist:
            return
        if timers:
            self._storage.set(self.key, dumps(timers))
        else:
            self._storage.remove(self.key)

    def start(self, name: str) -> None:
        """Start (or restart) the timer of ``name``."""
        timers = self._load()
        timers.pop(name, None)
        timers[name] = self._now_ms()
        while len(timers) > MAX_TIMERS:
            del timers[min(timers, key=lambda n: timers[n])]
        self._save(timers)

    def running(self, name: str) -> bool:
        """True while a timer runs for ``name``."""
        return name in self._load()

    def stop(self, name: str) -> "float | None":
        """Seconds since ``start(name)`` (3 decimals), or None; the timer is removed."""
        timers = self._load()
        if name not in timers:
            return None
        start = timers.pop(name)
        self._save(timers)
        if start is True or start is False or not isinstance(start, (int, float)):
            return None
        return round(max(0.0, self._now_ms() - start) / 1000, 3)

    def clear(self) -> None:
        """Forget every timer (``reset()``, opt-out)."""
        self._cache = {}
        self._storage.remove(self.key)

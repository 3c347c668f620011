"""Sessions: every event carries ``$session_id``, a UUIDv7 shared by all tabs of the origin.

A session ends after ``timeout_ms`` without an event (default 30 minutes) or ``max_ms`` after it
began (default 24 hours); the next event starts a new one. The session lives in localStorage
(``empmix_<token>_session``: id, start, last event, in ms) so tabs share it. Each tab caches it:
before rotating, the stored copy is re-read (another tab may have kept it alive or rotated
already), the cache is dropped when the stored identity changes (a sibling's ``reset()``), and
``last`` is written at most once a second.
"""

from . import keys
from .compat import dumps, loads_bounded
from .storage import Storage

try:
    from typing import Callable
except ImportError:
    pass

DEFAULT_TIMEOUT_MS = 1_800_000
DEFAULT_MAX_MS = 86_400_000
WRITE_EVERY_MS = 1_000
_INF = float("inf")


def uuid7(now_ms: float, random10: bytes) -> str:
    """An RFC 9562 version-7 UUID: 48-bit Unix time in ms, version 7, 74 random bits."""
    ts = "%012x" % (int(now_ms) & 0xFFFFFFFFFFFF)
    b = bytearray(random10)
    b[0] = 0x70 | (b[0] & 0x0F)  # version 7 in the high nibble of byte 6 of the UUID
    b[2] = 0x80 | (b[2] & 0x3F)  # RFC 4122 variant in byte 8
    h = ts + bytes(b).hex()
    return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]


class Session:
    """One session: its id, and its start and last event in ms."""

    __slots__ = ("id", "start", "last")

    def __init__(self, session_id: str, start: float, last: float) -> None:
        self.id = session_id
        self.start = start
        self.last = last


def _parse(raw: "str | None") -> "Session | None":
    data = loads_bounded(raw, 512) if raw is not None else None
    if not isinstance(data, dict):
        return None
    sid, start, last = data.get("id"), data.get("start"), data.get("last")
    if not isinstance(sid, str) or len(sid) != 36:
        return None
    for value in (start, last):
        if value is True or value is False or not isinstance(value, (int, float)):
            return None
    try:
        start_ms, last_ms = float(start), float(last)  # type: ignore[arg-type]  # numbers: checked above
    except OverflowError:  # an integer beyond a float: hostile (the boot script reads Infinity)
        return None
    if not (-_INF < start_ms < _INF and -_INF < last_ms < _INF):  # NaN and Infinity, which json.loads reads
        return None
    return Session(sid, start_ms, last_ms)


class Sessions:
    """The origin's session for one token: shared by tabs through localStorage, cached per tab."""

    def __init__(
        self,
        storage: Storage,
        token: str,
        now_ms: "Callable[[], float]",
        random10: "Callable[[], bytes]",
        timeout_ms: int,
        max_ms: int,
    ) -> None:
        self._storage = storage
        self.key = keys.key(token, keys.SESSION)
        self._now_ms = now_ms
        self._random10 = random10
        self.timeout_ms = timeout_ms
        self.max_ms = max_ms
        self._cached: "Session | None" = None
        self._written_last = 0.0
        self.persist = True  # False while opted out: in memory only

    def invalidate(self) -> None:
        """Read the stored session again at the next event (a sibling may have rotated it)."""
        self._cached = None

    def _expired(self, session: Session, now: float) -> bool:
        return now - session.last > self.timeout_ms or now - session.start > self.max_ms

    def _save(self, session: Session) -> None:
        self._cached = session
        self._written_last = session.last
        if self.persist:
            self._storage.set(self.key, dumps({"id": session.id, "start": session.start, "last": session.last}))

    def touch(self) -> str:
        """The session of an event happening now (rotated if over), marked as active."""
        now = self._now_ms()
        session = self._cached
        if session is None or self._expired(session, now):
            session = _parse(self._storage.get(self.key)) if self.persist else None
            if session is None or self._expired(session, now) or session.start > now + 60_000:
                self._save(Session(uuid7(now, self._random10()), now, now))
                return self._cached.id  # type: ignore[union-attr]
            self._cached = session
            self._written_last = session.last
        session.last = now
        if now - self._written_last >= WRITE_EVERY_MS:
            self._save(session)
        return session.id

    def current(self) -> str:
        """``get_session_id()``: the current session, started if there is none."""
        return self.touch()

    def restart(self) -> str:
        """``reset()``: a new session at once."""
        now = self._now_ms()
        self._save(Session(uuid7(now, self._random10()), now, now))
        return self._cached.id  # type: ignore[union-attr]

    def forget(self) -> None:
        """Forget the session, cached and stored (opt-out)."""
        self._cached = None
        self._storage.remove(self.key)

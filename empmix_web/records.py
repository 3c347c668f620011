"""Wire records: the one place that builds events and profile operations.

A :class:`Record` says what it is (its :class:`Kind`: which endpoint, and whether a resend is
applied once), so delivery never has to search its JSON. Every record this SDK builds carries a
``$insert_id`` (events in ``properties``, profile operations at the top level), so the collector
applies a resend (a lost reply, a redirect mid-request, a beacon and a later normal send) once.
"""

from .compat import dumps
from .version import VERSION

try:
    from typing import Any, Callable
except ImportError:
    pass


class Kind:
    """What a record is: its key letter in storage, its endpoint, and whether it is idempotent."""

    __slots__ = ("letter", "endpoint", "idempotent")

    def __init__(self, letter: str, endpoint: str, idempotent: bool) -> None:
        self.letter = letter
        self.endpoint = endpoint
        self.idempotent = idempotent

    def __repr__(self) -> str:
        return "Kind(" + self.letter + ")"


EVENT = Kind("e", "track", True)
PROFILE = Kind("u", "engage", True)
GROUP = Kind("g", "groups", True)
# profile records queued by empmix-web 0.1.0 carry no $insert_id: a resend may apply twice
LEGACY_PROFILE = Kind("p", "engage", False)
KINDS = {EVENT.letter: EVENT, PROFILE.letter: PROFILE, GROUP.letter: GROUP, LEGACY_PROFILE.letter: LEGACY_PROFILE}

_orders = [0]


def next_order() -> int:
    """One ordering of all records of this page: what ``flush()`` waits on."""
    _orders[0] += 1
    return _orders[0]


class Record:
    """One queued wire record: its JSON text, what it is, and its storage key (None once it
    is kept in memory only)."""

    __slots__ = ("key", "kind", "body", "order")

    def __init__(self, kind: Kind, body: str, key: "str | None" = None) -> None:
        self.kind = kind
        self.body = body
        self.key = key
        self.order = next_order()

    def __repr__(self) -> str:
        return "Record(" + repr(self.kind) + ", " + self.body[:60] + ")"


class InsertIds:
    """``$insert_id`` values: 80 random bits per page, then a counter (32 hex characters)."""

    def __init__(self, random10: bytes) -> None:
        self._prefix = random10.hex()
        self._count = 0

    def __call__(self) -> str:
        self._count += 1
        return self._prefix + ("%012x" % self._count)


# the properties that differ from one event to the next: never part of an EventTemplate
PER_EVENT = ("time", "$insert_id", "$session_id", "$duration", "$persistence")


class EventTemplate:
    """The JSON text of the properties events share while nothing changes (ids, library, page
    context, super properties), so that an event costs one small encoding: its own properties."""

    __slots__ = ("fixed", "taken")

    def __init__(self, fixed: "dict[str, Any]") -> None:
        self.fixed = dumps(fixed)[1:-1]  # '"token":"...",...': never empty (token, distinct_id)
        self.taken = set(fixed)  # a caller's property named like one of these wins: not templated
        for key in PER_EVENT:
            self.taken.add(key)

    def fits(self, props: "dict[str, Any]") -> bool:
        """True when ``props`` override none of the templated or per-event properties."""
        return self.taken.isdisjoint(props)


class RecordFactory:
    """Builds records for one token, with a clock and an id source passed in."""

    def __init__(self, token: str, now_ms: "Callable[[], float]", insert_id: "Callable[[], str]") -> None:
        self.token = token
        self._now_ms = now_ms
        self._insert_id = insert_id
        self._names: "dict[str, str]" = {}  # event name -> its JSON (an app tracks few names)

    def event(
        self,
        name: str,
        identity: "Any",
        context: "dict[str, Any]",
        super_props: "dict[str, Any]",
        props: "dict[str, Any]",
    ) -> Record:
        """An event: SDK properties, then context, super properties, then ``props`` (which win)."""
        properties = self._sdk(identity)
        properties["time"] = int(self._now_ms())
        properties["$insert_id"] = self._insert_id()
        properties.update(context)
        properties.update(super_props)
        properties.update(props)
        return Record(EVENT, dumps({"event": name, "properties": properties}))

    def _sdk(self, identity: "Any") -> "dict[str, Any]":
        properties: "dict[str, Any]" = {"token": self.token, "distinct_id": identity.distinct_id}
        if identity.device_id:  # none in cookieless operation
            properties["$device_id"] = identity.device_id
        properties["mp_lib"] = "empmix-web"
        properties["$lib_version"] = VERSION
        if identity.user_id is not None:
            properties["$user_id"] = identity.user_id
        return properties

    def template(
        self, identity: "Any", context: "dict[str, Any]", super_props: "dict[str, Any]"
    ) -> "EventTemplate | None":
        """The template of the events :meth:`event` would build with these arguments, or None
        when a super property overrides a per-event property (then every event is built whole)."""
        for key in PER_EVENT:
            if key in super_props:
                return None
        shared = self._sdk(identity)
        shared.update(context)
        shared.update(super_props)
        for key in PER_EVENT:
            shared.pop(key, None)
        return EventTemplate(shared)

    def event_from(self, template: EventTemplate, name: str, session_id: str, props: "dict[str, Any]") -> Record:
        """The record :meth:`event` builds, from a template (``template.fits(props)``)."""
        quoted = self._names.get(name)
        if quoted is None:
            if len(self._names) >= 256:
                self._names = {}
            quoted = self._names[name] = dumps(name)
        own = "," + dumps(props)[1:] if props else "}"  # the caller's properties close them
        parts = (
            '{"event":',
            quoted,
            ',"properties":{"time":',
            str(int(self._now_ms())),
            ',"$insert_id":"',
            self._insert_id(),
            '","$session_id":"',
            session_id,
            '",',
            template.fixed,
            own,
            "}",
        )
        return Record(EVENT, "".join(parts))  # one string built: MicroPython's + copies each time

    def profile(self, identity: "Any", op: str, value: "Any") -> Record:
        """One profile operation for an identified user."""
        record = {
            "$token": self.token,
            "$distinct_id": identity.distinct_id,
            "$time": int(self._now_ms()),
            "$insert_id": self._insert_id(),
        }
        if identity.device_id:  # none in cookieless operation
            record["$device_id"] = identity.device_id
        record["$user_id"] = identity.user_id
        record[op] = value
        return Record(PROFILE, dumps(record))

    def group(self, group_key: str, group_id: "str | int", op: str, value: "Any") -> Record:
        """One operation on a group's profile (``/groups/``)."""
        record = {
            "$token": self.token,
            "$group_key": group_key,
            "$group_id": group_id,
            "$time": int(self._now_ms()),
            "$insert_id": self._insert_id(),
            op: value,
        }
        return Record(GROUP, dumps(record))

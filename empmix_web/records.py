"""Wire records: the one place that builds events and profile operations.

A ``Record`` says what it is (its ``Kind``: which endpoint, and whether a resend is
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
    """One queued wire record: what it is, its storage key (None once it is kept in memory
    only), its length, and its JSON text.

    A record the page assembled (``OutboundQueue.push_event``) keeps no text in Python: ``body``
    reads it from storage when the sender needs it (and ``""`` when it is gone from storage:
    the site's data was cleared; the queue then drops it)."""

    __slots__ = ("key", "kind", "_body", "size", "order", "_store")

    def __init__(
        self, kind: Kind, body: "str | None", key: "str | None" = None, size: int = 0, store: "Any" = None
    ) -> None:
        self.kind = kind
        self._body = body
        self.size = len(body) if body is not None else size  # the queue's character cap counts it
        self.key = key
        self._store = store  # with body None: what reads it (Storage.get)
        self.order = next_order()

    @property
    def body(self) -> str:
        """The record's JSON text."""
        body = self._body
        if body is None:
            body = self._body = (self._store.get(self.key) if self.key is not None else None) or ""
        return body

    @body.setter
    def body(self, text: str) -> None:
        """Replace the text (a record not yet sent)."""
        self._body = text
        self.size = len(text)

    def keep(self) -> None:
        """Read the text into memory (before its storage key goes)."""
        if self._body is None:
            self._body = self.body

    def __repr__(self) -> str:
        return "Record(" + repr(self.kind) + ", " + str(self.key) + ")"


PAGE_FIELDS = ("time", "$insert_id", "$session_id")  # what the page writes into a hot-path event


class InsertIds:
    """``$insert_id`` values: 80 random bits per page (``prefix``), then a counter (32 hex
    characters in all). The hot path hands the page the counter (``take``), which writes the id
    as ``__call__`` does."""

    def __init__(self, random10: bytes) -> None:
        self.prefix = random10.hex()
        self._count = 0

    def take(self) -> int:
        """The next counter value (a small integer: it crosses the FFI)."""
        self._count += 1
        return self._count

    def __call__(self) -> str:
        return self.prefix + ("%012x" % self.take())


class EventTemplate:
    """The shared half of an event (``RecordFactory.template``): ids, library, page context
    and super properties, as JSON text, and their names.

    The hot path keeps one while nothing changes, so that an event costs one small encoding: its
    own properties. The full path builds one per event: both go through ``RecordFactory.event``.
    """

    __slots__ = ("text", "names", "partial")

    def __init__(self, shared: "dict[str, Any]", partial: bool = False) -> None:
        self.text = dumps(shared)[1:-1]  # '"token":"...",...' (without its braces)
        self.names = set(shared)
        self.partial = partial  # some shared property was left out for the event's own

    def fits(self, props: "dict[str, Any]") -> bool:
        """True when ``props`` override none of the shared properties (then this template serves
        an event with them; a per-event value they override is left out by the encoder)."""
        return self.names.isdisjoint(props)


class RecordFactory:
    """Builds records for one token, with a clock and an id source passed in."""

    def __init__(self, token: str, now_ms: "Callable[[], float]", insert_ids: InsertIds) -> None:
        self.token = token
        self._now_ms = now_ms
        self.insert_ids = insert_ids
        self._insert_id = insert_ids
        self._names: "dict[str, str]" = {}  # event name -> its JSON (an app tracks few names)
        self._session = ("", '""')  # the last $session_id and its JSON

    # -- events: split into shared and per-event properties, and one encoder ------------------
    def template(
        self,
        identity: "Any",
        context: "dict[str, Any]",
        super_props: "dict[str, Any]",
        props: "dict[str, Any] | None" = None,
    ) -> EventTemplate:
        """The shared properties of an event: SDK properties, then ``context``, then super
        properties (which win), without the ones ``props`` override."""
        shared = self._sdk(identity)
        shared.update(context)
        shared.update(super_props)
        partial = False
        if props:
            for key in props:
                if key in shared:
                    del shared[key]
                    partial = True
        return EventTemplate(shared, partial)

    def per_event(self, session_id: str) -> "dict[str, Any]":
        """The properties that differ from one event to the next: ``time``, ``$insert_id`` and
        ``$session_id`` (the full path may add ``$duration`` and ``$persistence``)."""
        return {"time": int(self._now_ms()), "$insert_id": self._insert_id(), "$session_id": session_id}

    def quoted(self, name: str) -> str:
        """``dumps(name)``, cached (an app tracks few event names)."""
        quoted = self._names.get(name)
        if quoted is None:
            if len(self._names) >= 256:
                self._names = {}
            quoted = self._names[name] = dumps(name)
        return quoted

    def session_json(self, session_id: str) -> str:
        """``dumps(session_id)``, cached for the current session."""
        if session_id != self._session[0]:  # read from storage: encoded (once per session)
            self._session = (session_id, dumps(session_id))
        return self._session[1]

    def event(
        self,
        name: str,
        template: EventTemplate,
        per_event: "dict[str, Any]",
        props: "dict[str, Any]",
        props_json: str,
    ) -> Record:
        """The one encoder of events, for the hot path and the full path alike.

        ``props_json`` is ``dumps(props)``, encoded by the caller before any state changed (on
        CPython that encoding is the check of the caller's values). Precedence: a per-event value
        gives way to a shared property of the same name (a super property ``time`` is kept), and
        both give way to ``props``; ``template`` must come from ``template`` with ``props``,
        or fit them (``EventTemplate.fits``).
        """
        quoted = self.quoted(name)
        shared = template.names
        overridden = not shared.isdisjoint(per_event)
        if props and not overridden:
            for key in per_event:
                if key in props:
                    overridden = True
                    break
        pieces = ['{"event":', quoted, ',"properties":{']
        if overridden:
            own = dumps({k: v for k, v in per_event.items() if k not in shared and k not in props})
            if len(own) > 2:  # "{}": every per-event value was overridden
                pieces.append(own[1:-1])
        elif len(per_event) == 3:  # per_event()'s own, as dumps writes them (what the page writes too)
            pieces.append('"time":' + str(per_event["time"]) + ',"$insert_id":"' + per_event["$insert_id"])
            pieces.append('","$session_id":' + self.session_json(per_event["$session_id"]))
        else:
            pieces.append(dumps(per_event)[1:-1])
        if template.text:  # empty only when props override every shared property
            if len(pieces) > 3:
                pieces.append(",")
            pieces.append(template.text)
        if props:
            if len(pieces) > 3:
                pieces.append(",")
            pieces.append(props_json[1:-1])
        pieces.append("}}")
        return Record(EVENT, "".join(pieces))  # one string built: MicroPython's + copies each time

    def _sdk(self, identity: "Any") -> "dict[str, Any]":
        properties: "dict[str, Any]" = {"token": self.token, "distinct_id": identity.distinct_id}
        if identity.device_id:  # none in cookieless operation
            properties["$device_id"] = identity.device_id
        properties["mp_lib"] = "empmix-web"
        properties["$lib_version"] = VERSION
        if identity.user_id is not None:
            properties["$user_id"] = identity.user_id
        return properties

    # -- profiles and groups ------------------------------------------------------------------
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

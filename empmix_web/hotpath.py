"""The hot path of ``track()``: one call into the page per event while nothing has changed.

The full path (``Core.track``) reads the stored identity and the page's URL, builds the whole
event and stores it: three crossings of the FFI and an encoding of every property. After it has
run, this keeps

- a template (``records.EventTemplate``): the JSON text of the properties the next events share
  (ids, library, page context, super properties), and
- a guard in the page (``Browser.set_guard``): the stored identity text and the URL that
  template assumes.

The page's helper holds the template's text too (``Browser.set_template``). The next
``track()`` encodes only the caller's properties and hands them to the page in one call
(``Browser.local_set_event``), with the event's name, ``$session_id`` and the ``$insert_id``
counter: the page writes ``time`` and ``$insert_id``, assembles the record as
``RecordFactory.event`` would, and stores it only if the stored identity and the URL are still
the assumed ones. The record's text stays in the page (``Record.body`` reads it when sending).
So a sibling tab's login, logout or
opt-out (they all rewrite or remove the identity) and a single-page app's navigation are seen by
the very next call: the page writes nothing and the full path runs. Every record is still in
localStorage when ``track()`` returns. What the page cannot check is checked here: this tab's
identity and super properties, a running timer, memory mode, and the once-a-second re-reads
(the cookie, a sibling's ``register()``), which belong to the full path.
"""

from .records import PAGE_FIELDS

try:
    from typing import Any

    from .browser import Browser
    from .context import PageContext
    from .identity import Identity, IdentityStore
    from .properties import SuperProperties
    from .queue import OutboundQueue
    from .records import EventTemplate, RecordFactory
    from .sessions import Sessions
    from .storage import Storage
    from .timers import Timers
except ImportError:
    pass


# why the full path runs (``debug=True`` logs it): constant strings, built once
NOT_ARMED = "no template yet (the first event, or one after a change of identity, consent or storage)"
NO_STORED_IDENTITY = "nothing stored to guard (cookieless, or opted out)"
NOT_PERSISTENT = "localStorage refused a write: records are kept in memory"
IDENTITY_CHANGED = "this tab's identity changed (identify, alias, reset)"
PROPS_CHANGED = "super properties changed (register, unregister, a group)"
OVERRIDES = "the event's properties override shared ones (or time, $insert_id, $session_id)"
PAGE_FIELD_SHARED = "a super property is named like a per-event one (time, $insert_id, $session_id)"
TIMER = "a time_event() timer runs for this event"
RECHECK = "the once-a-second re-read of the cookie and a sibling's super properties is due"
GUARD = "the page's guard refused: the stored identity or the URL changed (a sibling tab, a navigation)"


class HotPath:
    """The template and the page's guard of one client; see the module's docstring."""

    def __init__(
        self,
        browser: "Browser",
        storage: "Storage",
        identity: "IdentityStore",
        props: "SuperProperties",
        page: "PageContext",
        sessions: "Sessions",
        timers: "Timers",
        queue: "OutboundQueue",
        records: "RecordFactory",
    ) -> None:
        self._browser = browser
        self._storage = storage
        self._identity = identity
        self._props = props
        self._page = page
        self._sessions = sessions
        self._timers = timers
        self._queue = queue
        self._records = records
        self._template: "EventTemplate | None" = None
        self._why = NOT_ARMED  # why there is no template
        self._ident: "Identity | None" = None  # the identity the template was built for
        self._props_version = -1
        self._until = 0.0  # monotonic: the full path's next re-read of cookie or super properties
        self._guarded: "tuple[str, str] | None" = None  # (identity text, URL) the page's guard holds
        self._in_page: "str | None" = None  # the template text the page holds
        self._blocked: "set[str]" = set()  # names the event's own properties may not use here

    def disarm(self) -> None:
        """Forget the template: the next event takes the full path."""
        self._template, self._why = None, NOT_ARMED

    def arm(
        self,
        ident: "Identity",
        context: "dict[str, Any]",
        super_props: "dict[str, Any]",
        template: "EventTemplate | None" = None,
    ) -> None:
        """After the full path built an event: keep the template of the next ones (``template``,
        when the full path's own serves), and tell the page what they assume."""
        seen, url = self._identity.raw, self._page.last_url
        if seen is None or not self._storage.persistent or ident is not self._identity.current:
            self._template = None
            if not self._storage.persistent:
                self._why = NOT_PERSISTENT
            else:
                self._why = NO_STORED_IDENTITY if seen is None else IDENTITY_CHANGED
            return
        if template is None:
            template = self._records.template(ident, context, super_props)
        if not template.names.isdisjoint(PAGE_FIELDS):  # the page writes these: built whole
            self._template, self._why = None, PAGE_FIELD_SHARED
            return
        self._template = template
        self._blocked = template.names.union(PAGE_FIELDS)
        if self._in_page != template.text:
            self._browser.set_template(template.text, self._records.insert_ids.prefix)
            self._in_page = template.text
        self._ident = ident
        self._props_version = self._props.version
        self._until = min(self._identity.fresh_until, self._props.fresh_until)
        if self._guarded != (seen, url):
            self._browser.set_guard(self._identity.key, seen, url)
            self._guarded = (seen, url)

    def track(self, name: str, props: "dict[str, Any]", props_json: str) -> "str | None":
        """Have the page store the event from the template (``props_json``: ``props`` encoded);
        None when it was stored, else why the full path must run (then nothing was stored)."""
        template = self._template
        if template is None:
            return self._why
        if self._identity.current is not self._ident:
            return IDENTITY_CHANGED
        if self._props.version != self._props_version:
            return PROPS_CHANGED
        if props and not self._blocked.isdisjoint(props):
            return OVERRIDES
        if self._timers.running(name):
            return TIMER
        if self._browser.monotonic() >= self._until:
            return RECHECK
        records = self._records
        session = records.session_json(self._sessions.touch())
        if self._queue.push_event(records.quoted(name), session, props_json, records.insert_ids.take()):
            return None
        return GUARD

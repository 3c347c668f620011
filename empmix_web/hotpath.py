"""The hot path of ``track()``: one call into the page per event while nothing has changed.

The full path (``Core.track``) reads the stored identity and the page's URL, builds the whole
event and stores it: three crossings of the FFI and an encoding of every property. After it has
run, this keeps

- a template (``records.EventTemplate``): the JSON text of the properties the next events share
  (ids, library, page context, super properties), and
- a guard in the page (``Browser.set_guard``): the stored identity text and the URL that
  template assumes.

The next ``track()`` encodes only its own part (time, ``$insert_id``, ``$session_id``, the
caller's properties) and hands the record to the page in one call, which stores it only if the
stored identity and the URL are still the assumed ones. So a sibling tab's login, logout or
opt-out (they all rewrite or remove the identity) and a single-page app's navigation are seen by
the very next call: the page writes nothing and the full path runs. Every record is still in
localStorage when ``track()`` returns. What the page cannot check is checked here: this tab's
identity and super properties, a running timer, memory mode, and the once-a-second re-reads
(the cookie, a sibling's ``register()``), which belong to the full path.
"""

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


class HotPath:
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
        self._ident: "Identity | None" = None  # the identity the template was built for
        self._props_version = -1
        self._until = 0.0  # monotonic: the full path's next re-read of cookie or super properties
        self._guarded: "tuple[str, str] | None" = None  # (identity text, URL) the page's guard holds

    def disarm(self) -> None:
        self._template = None

    def arm(self, ident: "Identity", context: "dict[str, Any]", super_props: "dict[str, Any]") -> None:
        """After the full path built an event: keep the template of the next ones, and tell the
        page what they assume."""
        seen, url = self._identity.raw, self._page.last_url
        if seen is None or not self._storage.persistent or ident is not self._identity.current:
            self._template = None
            return
        self._template = self._records.template(ident, context, super_props)
        self._ident = ident
        self._props_version = self._props.version
        self._until = min(self._identity.fresh_until, self._props.fresh_until)
        if self._guarded != (seen, url):
            self._browser.set_guard(self._identity.key, seen, url)
            self._guarded = (seen, url)

    def track(self, name: str, props: "dict[str, Any]") -> bool:
        """Store the event from the template; False (nothing stored) when the full path must run."""
        template = self._template
        if (
            template is None
            or self._identity.current is not self._ident
            or self._props.version != self._props_version
            or (props and not template.fits(props))
            or self._timers.running(name)
            or self._browser.monotonic() >= self._until
        ):
            return False
        record = self._records.event_from(template, name, self._sessions.touch(), props)
        return self._queue.push_guarded(record)

"""The coordinator of one client, over a ``Browser``: identity transitions, consent, and what
gets queued, each rule in the module that owns it (``people``: held profile operations;
``privacy``: consent in action; ``records``: what a record holds; ``hotpath``: the one-call
``track``; ``keys``: storage names). ``client.EmpMixClient`` checks arguments and calls into here.

Every public call starts with ``Core.sync``: one read of the stored identity tells whether a
sibling tab logged in, logged out, opted out or in since this tab's last call; if so, consent and
super properties are re-read before anything is built or written.
"""

import logging

from . import people
from .compat import dumps
from .consent import NEVER, UNTIL_CONSENT, Consent
from .context import PageContext
from .hotpath import HotPath
from .identity import Identity, IdentityStore, parse_identity
from .privacy import LINK_PROPERTY, Privacy
from .properties import SuperProperties
from .queue import OutboundQueue
from .records import InsertIds, Record, RecordFactory
from .sessions import Sessions
from .storage import CookieJar, Storage, probe_cookie_domain
from .tabs import TabCoordinator
from .timers import Timers
from .transport import Sender

try:
    from typing import Any

    from .browser import Browser
    from .options import Config
except ImportError:
    pass

log = logging.getLogger("empmix_web")

COOKIELESS_RESET = "$cookieless_reset"  # reset() in cookieless operation: a new visitor
SIGNATURE = "$identity_signature"  # identify()/alias(signature=...): the collector may verify it


class Core:
    """Everything an initialised client holds, and the rules that change it."""

    def __init__(self, token: str, browser: "Browser", config: "Config") -> None:
        self.token = token
        self.browser = browser
        self.config = config
        mode = config.cookieless
        self.storage = Storage(browser, memory=mode != NEVER)  # cookieless until decided otherwise
        # until consent, the choice is the one thing read (never a probe write) and stored
        choices = Storage(browser, probe=False) if mode == UNTIL_CONSENT else self.storage
        self.consent = Consent(choices, token, config.opt_out_by_default, mode)
        cookieless = self.consent.cookieless
        if not cookieless:
            self.storage.to_memory(False)
        domain = config.cookie_domain
        if domain is None and config.cross_subdomain_cookie and not cookieless:
            domain = probe_cookie_domain(browser)
        secure = config.secure_cookie
        https = browser.is_https() if secure is None else bool(secure)
        self.cookies = CookieJar(browser, domain, https, enabled=not cookieless)
        self.identity = IdentityStore(
            self.storage, self.cookies, token, browser.monotonic, lambda: browser.random_bytes(16)
        )
        self.identity.cookieless = cookieless
        if config.server_cookie:
            self.identity.on_cookie_written = self._ask_server_for_cookie
        self.props = SuperProperties(self.storage, token, browser.monotonic)
        self.held = people.HeldOperations(self.storage, token)
        self.records = RecordFactory(token, browser.now_ms, InsertIds(browser.random_bytes(10)))
        boot = config.boot  # a boot script's state this client adopts (handover.py)
        self.boot_pageview = boot is not None and boot.pageview is not None  # this load counted
        # the boot script's tab goes on: its queue keys, its Web Lock
        self.tab_id = boot.tab if boot is not None and boot.tab else browser.random_bytes(6).hex()
        self.queue = OutboundQueue(self.storage, token, self.tab_id, config.max_queue_size)
        if boot is not None and boot.tab:
            browser.boot_ready()  # from now on the boot script leaves this tab's queue to us
            self.queue.resume()
        self.sender = Sender(browser, self.queue, config, self.debug)
        self.sessions = Sessions(
            self.storage,
            token,
            browser.now_ms,
            lambda: browser.random_bytes(10),
            config.session_timeout_ms,
            config.session_max_ms,
        )
        self.timers = Timers(self.storage, token, browser.now_ms)
        self.page = PageContext(browser, config.track_marketing)
        self.tabs = TabCoordinator(
            browser, self.storage, self.queue, self.sender, token, lambda: not self.consent.quiet
        )
        self.tabs.own_lock_held = boot is not None and bool(boot.tab)
        self.hot = HotPath(
            browser,
            self.storage,
            self.identity,
            self.props,
            self.page,
            self.sessions,
            self.timers,
            self.queue,
            self.records,
        )
        self.seen_raw: "str | None" = None  # the stored identity text at the end of the last call
        self.privacy = Privacy(self)
        self._cookie_posted: "str | None" = None  # the identity value the collector was last asked to set

    def start(self) -> None:
        """Load (or mint) the identity (or the server's, from ``bootstrap``), register the first
        touch, claim this tab, resend what was left queued."""
        bootstrap, boot = self.config.bootstrap, self.config.boot
        device_id = bootstrap.get("device_id")
        if device_id is None and boot is not None:
            device_id = boot.device_id  # kept in memory only by the boot script: the same device
        if device_id is not None and not self.consent.quiet and not self.storage.memory and self._nothing_stored():
            self._saved(Identity.anonymous(device_id))  # server-side and browser events share it
        if boot is not None and boot.session is not None and self.storage.memory:
            self.storage.set(self.sessions.key, boot.session)  # cookieless: the page view's session
        ident = self.sync(fresh=True)
        if ident is not None and self.config.server_cookie:
            self._ask_server_for_cookie(self.identity.raw)  # refresh the cookie's lifetime
        self._register_first_touch()
        self.tabs.start()
        if len(self.queue):
            self.sender.wake()  # what the boot script queued
        self.browser.on_page_hide(self.page_hidden)
        if bootstrap.get("user_id") is not None:
            self.identify(bootstrap["user_id"])

    def _nothing_stored(self) -> bool:
        return (
            parse_identity(self.identity.stored_raw()) is None
            and parse_identity(self.cookies.get(self.identity.cookie_name)) is None
        )

    def stop(self) -> None:
        """Stop the sender and the tab scanner (the page keeps what is queued)."""
        self.sender.stop()
        self.tabs.stop()

    def debug(self, message: str) -> None:
        """With ``debug=True``: write ``message`` to the page's console."""
        if self.config.debug:
            self.browser.console("log", "empmix: " + message)

    # -- the state every call starts from -----------------------------------------------------
    def sync(self, fresh: bool = False) -> "Identity | None":
        """The current identity, or None while quiet (then nothing may be written)."""
        raw = self.identity.stored_raw()
        if raw != self.seen_raw:  # another tab (or this one) changed identity or consent
            self.consent.reload()
            self.props.invalidate()
            self.sessions.invalidate()
        memory = self.storage.memory
        if self.privacy.check():
            self.seen_raw = self.identity.stored_raw()
            return None
        if memory != self.storage.memory:  # consent given or refused (maybe in a sibling tab)
            raw = self.identity.stored_raw()
        before = self.identity.current
        ident = self.identity.load(raw, fresh)
        if before is not None and before.user_id is not None and ident.user_id != before.user_id:
            self.queue.unstore()  # a sibling logged out: nothing of that user stays stored
        self.seen_raw = self.identity.raw
        user, self.privacy.carry_user = self.privacy.carry_user, None
        if user is not None and ident.user_id is None:  # identified while cookieless, then consent
            self.identify(user)
            return self.identity.current
        return ident

    def current(self, fresh: bool = True) -> Identity:
        """For getters: the identity, also while opted out (then the in-memory one)."""
        ident = self.sync(fresh)
        return ident if ident is not None else self.privacy.memory_identity()

    # -- building and queueing ----------------------------------------------------------------
    def enqueue(self, record: Record) -> None:
        """Store and queue ``record``, and let the sender know."""
        self.queue.push(record)
        self.sender.queued()

    def track(self, name: str, props: "dict[str, Any]") -> None:
        """Queue an event. ``props`` is encoded first: a value the wire cannot carry raises
        before anything (a timer, the session, the queue) has changed."""
        props_json = dumps(props) if props else "{}"
        why = self.hot.track(name, props, props_json)
        if why is None:  # nothing changed since the last event: stored in one FFI call
            self.sender.queued()
            return
        if self.config.debug:
            self.debug("track(" + repr(name) + "): the full path, not the hot path: " + why)
        ident = self.sync()
        if ident is not None:
            self._event(name, ident, props, props_json, arm=True)

    def _event(
        self, name: str, ident: Identity, props: "dict[str, Any]", props_json: str = "", arm: bool = False
    ) -> None:
        """Build and queue an event (the full path); ``arm``: then keep its template for the
        hot path. ``props_json`` is ``dumps(props)`` when the caller already encoded it."""
        if self.privacy.link:  # the first event after consent: join the cookieless visit
            props, self.privacy.link = dict(props), False
            props[LINK_PROPERTY] = True
            props_json = ""
        if not props_json:
            props_json = dumps(props)
        persistent = self.storage.persistent
        context = self.page.props()
        super_props = self.props.get()
        template = self.records.template(ident, context, super_props, props)
        per_event = self.records.per_event(self.sessions.touch())
        duration = self.timers.stop(name)
        if duration is not None:
            per_event["$duration"] = duration
        if not persistent:
            per_event["$persistence"] = "memory"
        record = self.records.event(name, template, per_event, props, props_json)
        self.enqueue(record)
        if persistent and not self.storage.persistent:  # this very write was refused: say so
            per_event["$persistence"] = "memory"
            self.queue.rewrite(record, self.records.event(name, template, per_event, props, props_json).body)
        if arm:  # a template that left out a property for props serves no other event
            self.hot.arm(ident, context, super_props, None if template.partial else template)

    def take_boot_pageview(self) -> bool:
        """True once, when the boot script already recorded this page load's page view."""
        taken, self.boot_pageview = self.boot_pageview, False
        return taken

    def time_event(self, name: str) -> None:
        """Start (or restart) the timer of event ``name``."""
        if self.sync() is not None:
            self.timers.start(name)

    def session_id(self) -> str:
        """The current ``$session_id`` (a new session when the last one is over)."""
        self.sync()
        return self.sessions.current()

    def group_op(self, group_key: str, group_id: "str | int", op: str, value: "Any") -> None:
        """Queue one operation on the profile of group ``group_key``/``group_id``."""
        if self.sync() is not None:
            self.enqueue(self.records.group(group_key, group_id, op, value))

    # -- identity -----------------------------------------------------------------------------
    def identify(self, uid: str, signature: "str | None" = None) -> None:
        """Log in as ``uid``: link the anonymous past once, send the held profile operations."""
        ident = self.sync(fresh=True)
        if ident is None:
            self.privacy.remember(self.privacy.memory_identity().as_user(uid))
            return
        if ident.user_id == uid:
            return
        if ident.identified:
            log.warning(
                "empmix: identify(%r) while identified as %r: switching users without "
                "linking them. Call reset() at logout.",
                uid,
                ident.user_id,
            )
            self.queue.unstore()
            self._saved(ident.as_user(uid))
            return
        new = self._saved(ident.as_user(uid))
        if ident.alias != uid:  # alias() already linked this pair
            link = {"distinct_id": uid, "$anon_distinct_id": ident.distinct_id, "$user_id": uid}
            if ident.device_id:  # none in cookieless operation
                link["$device_id"] = ident.device_id
            if signature is not None:
                link[SIGNATURE] = signature
            self._event("$identify", new, link)
        for op, value in self.held.take():
            self.enqueue(self.records.profile(new, op, value))

    def alias(self, nid: str, signature: "str | None" = None) -> None:
        """Sign-up: tell the backend that ``nid`` is this anonymous visitor (refused once identified)."""
        ident = self.sync(fresh=True)
        if ident is None:
            return
        if nid == ident.distinct_id or nid == ident.alias:
            return
        if ident.identified:
            log.warning(
                "empmix: alias(%r) refused: already identified as %r (alias is for sign-up, while anonymous).",
                nid,
                ident.user_id,
            )
            return
        if ident.alias is not None:
            log.warning(
                "empmix: alias(%r) refused: this visitor was already aliased to %r; call identify(%r).",
                nid,
                ident.alias,
                ident.alias,
            )
            return
        link = {"distinct_id": ident.distinct_id, "alias": nid}
        if signature is not None:
            link[SIGNATURE] = signature
        self._event("$create_alias", ident, link)
        self._saved(ident.with_alias(nid))

    def reset(self) -> None:
        """Logout: nothing of the previous user stays in storage or cookies (their queued
        records are kept in memory and sent at once, and by beacon if the page hides)."""
        ident = self.sync(fresh=True)
        self.queue.unstore()
        self.identity.clear()
        self.props.clear()
        self.held.clear()
        self.timers.clear()
        fresh = self.identity.fresh()
        if ident is None:
            self.privacy.remember(fresh)
            return
        self._saved(fresh)
        self.sessions.restart()
        if self.identity.cookieless:  # the collector starts a new visitor for this browser
            self._event(COOKIELESS_RESET, fresh, {})
        self._register_first_touch()
        if len(self.queue):
            self.sender.wake()

    def _register_first_touch(self) -> None:
        """Once per device until reset(): super properties and the profile's ``$set_once``."""
        if self.privacy.out:
            return
        touch = self.page.first_touch(self.props.get())
        if touch:
            merged = dict(touch)
            merged.update(self.props.get())
            self.props.save(merged)
            self.profile("$set_once", touch)

    def _ask_server_for_cookie(self, value: "str | None") -> None:
        """``server_cookie=True``: the collector sets the identity cookie itself (``Set-Cookie``
        outlives Safari's 7-day cap on cookies written by script). Best effort: the SDK's own
        cookie stays either way."""
        if value is None or self.privacy.out or value == self._cookie_posted:
            return
        self._cookie_posted = value
        self.sender.post_cookie(self.token, value)

    def _saved(self, ident: Identity) -> Identity:
        self.identity.save(ident)
        self.seen_raw = self.identity.raw
        return ident

    saved = _saved

    # -- profiles -----------------------------------------------------------------------------
    def profile(self, op: str, value: "Any") -> None:
        """One profile operation: sent when identified, held (``people``) while anonymous."""
        ident = self.sync()
        if ident is None:
            return
        if ident.identified:
            self.enqueue(self.records.profile(ident, op, value))
            return
        if op == "$delete":
            log.warning("empmix: delete_user() ignored: no identified user")
            return
        self.held.add(op, value)

    # -- super properties ---------------------------------------------------------------------
    def super_properties(self) -> "dict[str, Any]":
        """The super properties now (re-read when a sibling tab changed them)."""
        self.sync()
        return self.props.get()

    def save_super_properties(self, props: "dict[str, Any]") -> None:
        """Replace the super properties with ``props``."""
        self.props.save(props)

    # -- consent (privacy.py) -----------------------------------------------------------------
    def opted_out(self) -> bool:
        """True when the visitor refused tracking."""
        self.sync()
        return self.consent.opted_out

    # -- page lifecycle -----------------------------------------------------------------------
    def page_hidden(self) -> None:
        """The page is hidden or going away: send what is queued by beacon (never raises)."""
        try:
            sent = self.sender.beacon_all()
            self.tabs.page_hidden()
            self.debug("page hidden: " + str(sent) + " queued records sent by beacon")
        except Exception as exc:  # an unload handler must never throw into the page
            log.error("empmix: page-hide delivery failed: %r", exc)

"""Consent in action: what a client changes when the visitor refuses or consents, here or in a
sibling tab, and the switches between cookieless and persistent operation (see ``consent``).

- Quiet (refused, where refusing stops tracking): nothing more is sent or stored by this tab;
  getters answer from an identity kept in memory.
- Cookieless: the storage is memory-only, the cookie jar off, the identity the cookieless one
  (``$cookieless``, no device id); sessions and super properties live in memory for the page.
- Consent after a cookieless start: the persistent identity is loaded (a sibling's, or minted)
  and the next event carries ``$cookieless_link: true``, so the collector joins this visit's
  cookieless id to the device. A refusal after consent forgets everything stored and goes back
  to cookieless.
"""

from .consent import UNTIL_CONSENT
from .identity import Identity
from .storage import probe_cookie_domain

try:
    from typing import Any
except ImportError:
    pass

LINK_PROPERTY = "$cookieless_link"


class Privacy:
    """One client's consent state; ``core`` is the ``Core`` it acts on."""

    def __init__(self, core: "Any") -> None:
        self.core = core
        self.out = False  # quiet: this tab sends and stores nothing
        self.link = False  # the next event joins the cookieless visit to the persistent device
        self.carry_user: "str | None" = None  # a user identified while cookieless, at consent
        self._memory_identity: "Identity | None" = None  # while quiet: never stored

    # -- every call starts here ---------------------------------------------------------------
    def check(self) -> bool:
        """Follow the consent choice (a sibling's too); True while quiet."""
        core = self.core
        consent = core.consent
        if consent.mode == UNTIL_CONSENT and core.storage.memory:
            consent.reload()  # one read while cookieless: a sibling may have consented
        if consent.cookieless != core.storage.memory:
            if consent.cookieless:
                self.to_cookieless()
            else:
                self.to_persistent()
        if consent.quiet:
            if not self.out:
                self.go_quiet()
            return True
        if self.out:
            self.wake_up()
        return False

    def _cookieless_parts(self, on: bool) -> None:
        core = self.core
        core.storage.to_memory(on)
        core.cookies.enabled = not on
        core.identity.cookieless = on
        core.identity.current = None
        core.hot.disarm()

    def to_persistent(self) -> None:
        """Consent given (here or in a sibling tab): from now on as without cookieless mode."""
        core = self.core
        current = core.identity.current
        self.carry_user = current.user_id if current is not None else None
        props = core.props.get()
        self._cookieless_parts(False)
        if core.cookies.domain is None and core.config.cross_subdomain_cookie:
            core.cookies.domain = probe_cookie_domain(core.browser)
        core.props.invalidate()
        if props:
            core.props.save(dict(props))  # registered before consent: stored now
        core.sessions.invalidate()
        self.link = True

    def to_cookieless(self) -> None:
        """Refused after consent (here or in a sibling tab): forget everything stored; the records
        already tracked stay in memory and are still sent."""
        core = self.core
        core.queue.unstore()
        core.identity.clear()
        core.props.clear()
        core.held.clear()
        core.sessions.forget()
        core.timers.clear()
        self._cookieless_parts(True)
        self.link = False

    def go_quiet(self) -> None:
        """Opted out (here or in another tab): nothing more is sent or stored by this tab."""
        core = self.core
        self.out = True
        core.hot.disarm()
        core.sender.paused = True
        core.queue.clear()
        core.props.memory = {}
        core.sessions.persist = core.timers.persist = False

    def wake_up(self) -> None:
        """Tracking resumes in this tab (consent given here or in a sibling)."""
        core = self.core
        self.out = False
        core.sender.paused = False
        core.props.memory = None
        core.props.invalidate()
        core.sessions.persist = core.timers.persist = True
        if len(core.queue):
            core.sender.wake()

    def memory_identity(self) -> Identity:
        """The identity the getters report while quiet (made once, never stored)."""
        if self._memory_identity is None:
            self._memory_identity = self.core.identity.fresh()
        return self._memory_identity

    def remember(self, identity: Identity) -> None:
        """While quiet, the identity the getters report (never stored)."""
        self._memory_identity = identity

    # -- the visitor's choice -----------------------------------------------------------------
    def opt_out(self) -> None:
        """Forget everything stored, then remember the choice (written last: the removals free
        space even when the quota is full). In ``until_consent`` the visit goes on cookieless."""
        core = self.core
        core.sync()
        if core.consent.mode == UNTIL_CONSENT:
            if not core.storage.memory:
                self.to_cookieless()
            core.consent.set(False)
            return
        self.go_quiet()
        core.identity.clear()
        core.props.clear()
        core.held.clear()
        core.sessions.forget()
        core.timers.clear()
        core.consent.set(False)
        self._memory_identity = None
        core.seen_raw = core.identity.stored_raw()

    def opt_in(self) -> None:
        """The visitor consents: remembered, and ``$opt_in`` is tracked."""
        core = self.core
        core.sync()
        if core.consent.mode == UNTIL_CONSENT:
            cookieless = core.storage.memory
            core.consent.set(True)
            if cookieless:
                core.sync()  # to persistent: the next event links the cookieless visit
                core.track("$opt_in", {})
            return
        was_out = self.out
        memory_props = core.props.memory
        core.consent.set(True)
        if not was_out:
            return
        self.wake_up()
        core.saved(self.memory_identity())
        self._memory_identity = None
        if memory_props:
            core.props.save(memory_props)
        core.track("$opt_in", {})

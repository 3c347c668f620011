"""Consent: the opt-in/opt-out choice, and whether the SDK may store anything at all.

The choice is stored under ``empmix_<token>_consent`` (``"in"`` or ``"out"``); ``reset()`` keeps
it. It is re-read whenever the stored identity changes (an opt-out removes it, an opt-in writes
it), so a choice made in one tab holds in every tab of the origin from that tab's next call.

``init(cookieless=...)`` decides what the choice means:

- ``"never"`` (the default): refusing stops tracking; nothing is stored or sent. With
  ``opt_out_by_default=True`` and no stored choice, nothing at all is written until
  ``opt_in_tracking()``.
- ``"always"``: nothing is ever stored, the choice included (it lives in memory for the page);
  events go out cookieless. Refusing stops tracking for the page.
- ``"until_consent"``: cookieless until the visitor consents (``"in"``), then today's persistent
  identity; refusing keeps the visit cookieless for good, and the refusal is the one thing
  stored. It is read on every call while cookieless, so a sibling tab's consent holds at once.
"""

from . import keys
from .storage import Storage

NEVER, UNTIL_CONSENT, ALWAYS = "never", "until_consent", "always"
MODES = (NEVER, UNTIL_CONSENT, ALWAYS)


class Consent:
    """The visitor's opt-in/opt-out choice for one token, and what it means in the configured mode."""

    def __init__(self, storage: Storage, token: str, opt_out_by_default: bool, mode: str = NEVER) -> None:
        self._storage = storage  # in "always", the SDK's memory-only storage
        self.key = keys.key(token, keys.CONSENT)
        self._default_out = opt_out_by_default
        self.mode = mode
        self.choice = storage.get(self.key)

    def reload(self) -> None:
        """Read the stored choice again (a sibling tab may have changed it)."""
        self.choice = self._storage.get(self.key)

    @property
    def opted_out(self) -> bool:
        """The visitor refused (``has_opted_out()``)."""
        if self.choice == "out":
            return True
        return self._default_out and self.choice != "in"

    @property
    def quiet(self) -> bool:
        """Nothing may be sent: refused where that stops tracking (not in ``until_consent``,
        where a refusal only keeps the visit cookieless)."""
        return self.mode != UNTIL_CONSENT and self.opted_out

    @property
    def cookieless(self) -> bool:
        """Nothing may be stored, and events go out cookieless."""
        return self.mode == ALWAYS or (self.mode == UNTIL_CONSENT and self.choice != "in")

    def set(self, opted_in: bool) -> None:
        """Store the visitor's choice (``opted_in``: True for in, False for out)."""
        self.choice = "in" if opted_in else "out"
        self._storage.set(self.key, self.choice)

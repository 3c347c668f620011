"""Consent: the opt-in/opt-out choice, the one thing kept when tracking is refused.

Stored under ``empmix_<token>_consent`` (``"in"`` or ``"out"``); ``reset()`` keeps it. With
``opt_out_by_default=True`` and no stored choice, the visitor is opted out and nothing at all is
written until ``opt_in_tracking()``. The choice is re-read whenever the stored identity changes
(an opt-out removes it, an opt-in writes it), so a choice made in one tab holds in every tab of
the origin from that tab's next call.
"""

from .storage import Storage


class Consent:
    def __init__(self, storage: Storage, token: str, opt_out_by_default: bool) -> None:
        self._storage = storage
        self.key = "empmix_" + token + "_consent"
        self._default_out = opt_out_by_default
        self._choice = storage.get(self.key)

    def reload(self) -> None:
        self._choice = self._storage.get(self.key)

    @property
    def opted_out(self) -> bool:
        if self._choice == "out":
            return True
        return self._default_out and self._choice != "in"

    def set(self, opted_in: bool) -> None:
        self._choice = "in" if opted_in else "out"
        self._storage.set(self.key, self._choice)

"""What every event says about where it happened: page, screen, referrer, campaign, session.

Built per event from values that rarely change: the page URL is read each time (a single-page
app changes it), and its campaign parameters are parsed again only when it changed.
"""

from . import campaigns

try:
    from typing import Any

    from .browser import Browser
    from .sessions import Sessions
    from .storage import Storage
except ImportError:
    pass


class PageContext:
    def __init__(self, browser: "Browser", storage: "Storage", sessions: "Sessions", marketing: bool) -> None:
        self._browser = browser
        self._storage = storage
        self._sessions = sessions
        self.marketing = marketing
        width, height = browser.screen_size()
        self.referrer = browser.referrer()
        self._fixed: "dict[str, Any]" = {"$screen_width": width, "$screen_height": height}
        if marketing:
            self._fixed.update(campaigns.referrer_props(self.referrer))
        else:
            self._fixed["$referrer"] = self.referrer
        self._url = ""
        self._campaign: "dict[str, str]" = {}

    @property
    def last_url(self) -> str:
        """The URL :meth:`url` read last (events built since carry it)."""
        return self._url

    def url(self) -> str:
        url = self._browser.page_url()
        if url != self._url:
            self._url = url
            self._campaign = campaigns.campaign(url) if self.marketing else {}
        return url

    def props(self) -> "dict[str, Any]":
        """The context properties of an event happening now (touches the session)."""
        context = dict(self._fixed)
        context["$current_url"] = self.url()
        if self._campaign:
            context.update(self._campaign)
        context["$session_id"] = self._sessions.touch()
        if not self._storage.persistent:
            context["$persistence"] = "memory"
        return context

    def first_touch(self, registered: "dict[str, Any]") -> "dict[str, Any]":
        """First-touch properties not registered yet (empty with ``track_marketing=False``)."""
        if not self.marketing:
            return {}
        return campaigns.first_touch(self.referrer, self.url(), registered)

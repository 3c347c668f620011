"""What every event says about where it happened: page, screen, referrer, campaign.

Built per event from values that rarely change: the page URL is read each time (a single-page
app changes it), and its campaign parameters are parsed again only when it changed.
"""

from . import campaigns

try:
    from typing import Any

    from .browser import Browser
except ImportError:
    pass


class PageContext:
    """The page properties of events: screen and referrer (read once), URL and campaign (per event)."""

    def __init__(self, browser: "Browser", marketing: bool) -> None:
        self._browser = browser
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
        """The URL ``url`` read last (events built since carry it)."""
        return self._url

    def url(self) -> str:
        """The page's URL now; its campaign parameters are parsed again when it changed."""
        url = self._browser.page_url()
        if url != self._url:
            self._url = url
            self._campaign = campaigns.campaign(url) if self.marketing else {}
        return url

    def props(self) -> "dict[str, Any]":
        """The page's properties for an event happening now: screen, referrer, URL and its
        campaign. They are the same for every event until the URL changes (the hot path's
        template holds them); what differs per event is ``RecordFactory.per_event``'s."""
        context = dict(self._fixed)
        context["$current_url"] = self.url()
        if self._campaign:
            context.update(self._campaign)
        return context

    def first_touch(self, registered: "dict[str, Any]") -> "dict[str, Any]":
        """First-touch properties not registered yet (empty with ``track_marketing=False``)."""
        if not self.marketing:
            return {}
        return campaigns.first_touch(self.referrer, self.url(), registered)

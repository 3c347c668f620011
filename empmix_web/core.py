"""What an initialised client holds: storage, identity, consent, queue, sender, tabs."""

from __future__ import annotations

import logging
import time
from random import getrandbits
from typing import Any

from .consent import Consent
from .identity import IdentityStore
from .queue import OutboundQueue
from .storage import CookieJar, Storage, probe_cookie_domain
from .tabs import TabCoordinator
from .transport import Sender

PROPS_RECHECK_S = 1.0


class ConsoleHandler(logging.Handler):
    """SDK log lines go to the browser console at their level (warnings are not errors)."""

    def __init__(self, browser: Any) -> None:
        super().__init__()
        self._browser = browser

    def emit(self, record: logging.LogRecord) -> None:
        level = "error" if record.levelno >= logging.ERROR else (
            "warn" if record.levelno >= logging.WARNING else "log")
        try:
            self._browser.console(level, self.format(record))
        except Exception:  # logging must never break the page
            pass


class Core:
    """Everything an initialised client holds."""

    def __init__(self, token: str, browser: Any, config: dict[str, Any]) -> None:
        self.token = token
        self.browser = browser
        self.config = config
        self.storage = Storage(browser)
        domain = config["cookie_domain"]
        if domain is None and config["cross_subdomain_cookie"]:
            domain = probe_cookie_domain(browser)
        secure = config["secure_cookie"] if config["secure_cookie"] is not None else browser.is_https()
        self.cookies = CookieJar(browser, domain, secure)
        self.consent = Consent(self.storage, token, config["opt_out_by_default"])
        self.identity = IdentityStore(self.storage, self.cookies, token, persist=not self.consent.opted_out)
        self.props_key = f"empmix_{token}_props"
        self.people_key = f"empmix_{token}_people"
        self.memory_props: dict[str, Any] = {}  # super properties while nothing may be stored
        self._props_raw: str | None = None
        self._props: dict[str, Any] = {}
        self._props_recheck_at = 0.0
        self.tab_id = f"{getrandbits(48):012x}"
        self.queue = OutboundQueue(self.storage, token, self.tab_id, config["max_queue_size"])
        self.sender = Sender(browser, self.queue, config["api_host"], config["batch_size"],
                             config["flush_interval_ms"], self.debug)
        self.sender.paused = self.consent.opted_out
        self.referrer = browser.referrer()
        self.screen = browser.screen_size()
        self.tabs = TabCoordinator(browser, self.queue, self.sender, token)

    def debug(self, message: str) -> None:
        if self.config["debug"]:
            self.browser.console("log", f"empmix: {message}")

    def super_properties(self) -> dict[str, Any]:
        """The registered super properties. Another tab's register() is seen within
        ``PROPS_RECHECK_S``; this tab's at once (one ``getItem`` a second, not one per event)."""
        if not self.identity.persist:
            return self.memory_props
        now = time.monotonic()
        if now < self._props_recheck_at:
            return self._props
        self._props_recheck_at = now + PROPS_RECHECK_S
        raw = self.storage.get(self.props_key)
        if raw != self._props_raw:  # parse only when a tab (this or another) changed them
            self._props_raw = raw
            props = self.storage.get_json(self.props_key) if raw is not None else None
            self._props = props if isinstance(props, dict) else {}
        return self._props

    def save_super_properties(self, props: dict[str, Any]) -> None:
        if self.identity.persist:
            self.storage.set_json(self.props_key, props)
            self._props, self._props_raw = props, self.storage.get(self.props_key)
        else:
            self.memory_props = props

    def forget_super_properties(self) -> None:
        self.storage.remove(self.props_key)
        self.memory_props, self._props, self._props_raw = {}, {}, None

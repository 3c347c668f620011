"""Persistence: localStorage with a per-key memory overlay, and the identity cookie.

A storage fault never reaches the page. A write the browser refuses (quota full, storage
disabled) is kept in memory for the life of the page, and the key's older value is removed from
localStorage, so nothing stale can outlive it there (a removal needs no quota); reads see the
overlay first. Every removal goes to localStorage and the cookie jar whatever happened before:
``reset()`` and opt-out leave nothing behind in any mode. After the first refused write, events
carry ``$persistence: "memory"``. In cookieless operation (``memory``) everything is kept in memory
and the browser's storage is never touched, not even read; the cookie jar is then disabled.
"""

import logging

from . import keys
from .browser import StorageUnavailable
from .ids import WHITESPACE
from .percent import quote, unquote

try:
    from .browser import Browser
except ImportError:
    pass

log = logging.getLogger("empmix_web")

KEY_PREFIX = keys.PREFIX
COOKIE_MAX_AGE_S = 365 * 24 * 3600
MAX_COOKIE_CHARS = 4096  # browsers keep at most ~4 KB per cookie: anything longer is not ours


class Storage:
    """``empmix_*`` keys in localStorage, with a memory overlay for refused writes."""

    def __init__(self, browser: "Browser", memory: bool = False, probe: bool = True) -> None:
        self._browser = browser
        self._overlay: "dict[str, str]" = {}
        self._readable = True  # False: localStorage cannot be used at all (sandbox, disabled)
        self.persistent = True  # False after the first refused write
        self.memory = memory  # cookieless operation: never touch the browser's storage
        if probe and not memory:
            self._probe()

    def _probe(self) -> None:
        try:  # write-read-remove probe: Safari private mode and sandboxes fail here
            self._browser.local_set(keys.PROBE, "1")
            ok = self._browser.local_get(keys.PROBE) == "1"
            self._browser.local_remove(keys.PROBE)
            if not ok:
                raise StorageUnavailable("probe read back a different value")
        except StorageUnavailable as exc:
            self._readable = False
            self._degrade(exc)

    def to_memory(self, memory: bool) -> None:
        """Cookieless operation starts (``True``: from now on nothing reaches the browser's
        storage) or ends (``False``, at consent: what is kept in memory stays there until it is
        written again)."""
        if self.memory and not memory:
            self.memory = False
            self._probe()
        self.memory = memory

    def _degrade(self, exc: Exception) -> None:
        if self.persistent:
            self.persistent = False
            log.warning("empmix: localStorage refused a write (%s); keeping that state in memory for this page", exc)

    def get(self, key: str) -> "str | None":
        """The value of ``key``: this page's overlay first, then localStorage; None when absent or unreadable."""
        if key in self._overlay:
            return self._overlay[key]
        if not self._readable or self.memory:
            return None
        try:
            return self._browser.local_get(key)
        except StorageUnavailable as exc:
            self._readable = False
            self._degrade(exc)
            return None

    def set(self, key: str, value: str) -> bool:
        """Store ``value``; False when it could only be kept in memory."""
        if self.memory:
            self._overlay[key] = value
            return True
        if self._readable:
            try:
                self._browser.local_set(key, value)
                if key in self._overlay:
                    del self._overlay[key]
                return True
            except StorageUnavailable as exc:
                self._degrade(exc)
        self._overlay[key] = value
        self._remove_stored(key)
        return False

    def set_event(self, key: str, name_json: str, session_json: str, props_json: str, count: int) -> int:
        """Have the page assemble an event from its template and store it under ``key``, only
        while what the browser's guard assumes still holds (``Browser.local_set_event``); the
        stored text's length, or 0 when nothing was written, for that or any other reason
        (memory mode, a refused write): the caller then takes the path that handles it."""
        if not self.persistent or self.memory or key in self._overlay:
            return 0
        try:
            return self._browser.local_set_event(key, name_json, session_json, props_json, count)
        except StorageUnavailable:
            return 0

    def remove(self, key: str) -> None:
        """Remove ``key`` from the overlay and from localStorage."""
        self._overlay.pop(key, None)
        if not self.memory:
            self._remove_stored(key)

    def _remove_stored(self, key: str) -> None:
        try:  # tried even when reads failed: a removal needs no quota
            self._browser.local_remove(key)
        except StorageUnavailable:
            pass

    def keys(self, prefix: str) -> "list[str]":
        """Every key that starts with ``prefix``, stored or in the overlay."""
        found: "list[str]" = []
        if self._readable and not self.memory:
            try:
                found = self._browser.local_keys(prefix)
            except StorageUnavailable as exc:
                self._readable = False
                self._degrade(exc)
        for key in self._overlay:
            if key.startswith(prefix) and key not in found:
                found.append(key)
        return found


def parent_domains(host: str) -> "list[str]":
    """``a.b.example.com`` -> ``['.b.example.com', '.example.com']`` (never a bare TLD)."""
    parts = host.split(".")
    if len(parts) < 2 or all(p.isdigit() for p in parts) or ":" in host:  # localhost, IPs
        return []
    return ["." + ".".join(parts[i:]) for i in range(1, len(parts) - 1)]


class CookieJar:
    """First-party cookies through ``document.cookie``."""

    def __init__(self, browser: "Browser", domain: "str | None", secure: bool, enabled: bool = True) -> None:
        self._browser = browser
        self.domain = domain
        self._secure = secure
        self.enabled = enabled  # False in cookieless operation: no cookie is read or written

    def get(self, name: str) -> "str | None":
        """The value of the first cookie ``name`` (decoded), or None; over-long values are None."""
        if not self.enabled:
            return None
        for part in self._browser.get_cookies().split(";"):
            key, sep, value = part.strip(WHITESPACE).partition("=")
            if sep and key == name:
                if len(value) > MAX_COOKIE_CHARS:
                    return None
                return unquote(value)
        return None

    def set(self, name: str, value: str) -> None:
        """Write ``name`` on the configured domain, after expiring the copies that could shadow
        it: a host-only copy when writing domain-wide, parent-domain copies otherwise."""
        if not self.enabled:
            return
        self._expire(name, keep=self.domain or "")
        cookie = name + "=" + quote(value) + "; Max-Age=" + str(COOKIE_MAX_AGE_S) + "; path=/; SameSite=Lax"
        if self.domain:
            cookie += "; domain=" + self.domain
        if self._secure:
            cookie += "; Secure"
        self._browser.set_cookie(cookie)

    def remove(self, name: str) -> None:
        """Expire ``name`` on the host and on every parent domain it may have been set for."""
        if self.enabled:
            self._expire(name, keep=None)

    def _expire(self, name: str, keep: "str | None") -> None:
        """Expire every copy of ``name`` but ``keep`` ("" = the host-only copy, None = none)."""
        expire = name + "=; Max-Age=0; path=/; SameSite=Lax"
        if keep != "":
            self._browser.set_cookie(expire)
        domains = parent_domains(self._browser.page_host())
        if self.domain and self.domain not in domains:
            domains.append(self.domain)
        for domain in domains:
            if domain != keep:
                self._browser.set_cookie(expire + "; domain=" + domain)


def probe_cookie_domain(browser: "Browser") -> "str | None":
    """The widest parent domain that accepts a cookie (public suffixes refuse it), or None."""
    domains = parent_domains(browser.page_host())
    for domain in reversed(domains):
        browser.set_cookie(keys.PROBE + "=1; path=/; domain=" + domain)
        if keys.PROBE + "=1" in browser.get_cookies():
            browser.set_cookie(keys.PROBE + "=; Max-Age=0; path=/; domain=" + domain)
            return domain
    return None

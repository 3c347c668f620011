"""Persistence: localStorage with a memory fallback, and the identity cookie.

A storage fault never reaches the page. The first failing operation switches this store to
memory for the life of the page (logged once); events are then marked ``$persistence: "memory"``.
Corrupted JSON under an SDK key reads as "absent".
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ._bridge import StorageUnavailable
from .percent import quote, unquote
from .validation import dumps

log = logging.getLogger("empmix_web")

KEY_PREFIX = "empmix_"
COOKIE_MAX_AGE_S = 365 * 24 * 3600


class Storage:
    """``empmix_*`` keys in localStorage; a dict when localStorage cannot be used."""

    def __init__(self, browser: Any) -> None:
        self._browser = browser
        self._memory: dict[str, str] | None = None
        try:  # write-read-remove probe: Safari private mode and sandboxes fail here
            browser.local_set("empmix_probe", "1")
            ok = browser.local_get("empmix_probe") == "1"
            browser.local_remove("empmix_probe")
            if not ok:
                raise StorageUnavailable("probe read back a different value")
        except StorageUnavailable as exc:
            self._fall_back(exc)

    @property
    def persistent(self) -> bool:
        return self._memory is None

    def _fall_back(self, exc: Exception) -> None:
        if self._memory is not None:
            return
        log.warning("empmix: localStorage unavailable (%s); keeping state in memory for this page", exc)
        self._memory = {}
        try:  # keep what is still readable so nothing already accepted is lost
            for key in self._browser.local_keys(KEY_PREFIX):
                value = self._browser.local_get(key)
                if value is not None:
                    self._memory[key] = value
        except StorageUnavailable:
            pass

    def get(self, key: str) -> str | None:
        if self._memory is not None:
            return self._memory.get(key)
        try:
            return self._browser.local_get(key)
        except StorageUnavailable as exc:
            self._fall_back(exc)
            return self._memory.get(key) if self._memory is not None else None

    def set(self, key: str, value: str) -> None:
        if self._memory is None:
            try:
                self._browser.local_set(key, value)
                return
            except StorageUnavailable as exc:
                self._fall_back(exc)
        assert self._memory is not None
        self._memory[key] = value

    def remove(self, key: str) -> None:
        if self._memory is not None:
            self._memory.pop(key, None)
            return
        try:
            self._browser.local_remove(key)
        except StorageUnavailable as exc:
            self._fall_back(exc)
            if self._memory is not None:
                self._memory.pop(key, None)

    def keys(self, prefix: str) -> list[str]:
        if self._memory is None:
            try:
                return self._browser.local_keys(prefix)
            except StorageUnavailable as exc:
                self._fall_back(exc)
        assert self._memory is not None
        return [k for k in self._memory if k.startswith(prefix)]

    def get_json(self, key: str) -> Any:
        """The parsed value, or None when absent or corrupted (a corrupted value is removed)."""
        raw = self.get(key)
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            log.warning("empmix: discarding corrupted value under %s", key)
            self.remove(key)
            return None

    def set_json(self, key: str, value: Any) -> None:
        self.set(key, dumps(value))


def parent_domains(host: str) -> list[str]:
    """``a.b.example.com`` -> ``['.b.example.com', '.example.com']`` (never a bare TLD)."""
    parts = host.split(".")
    if len(parts) < 2 or all(p.isdigit() for p in parts):  # localhost, IPv4
        return []
    return ["." + ".".join(parts[i:]) for i in range(1, len(parts) - 1)]


class CookieJar:
    """First-party cookies through ``document.cookie``."""

    def __init__(self, browser: Any, domain: str | None, secure: bool) -> None:
        self._browser = browser
        self._domain = domain
        self._secure = secure

    def get(self, name: str) -> str | None:
        for part in self._browser.get_cookies().split(";"):
            key, sep, value = part.strip().partition("=")
            if sep and key == name:
                return unquote(value)
        return None

    def set(self, name: str, value: str) -> None:
        cookie = f"{name}={quote(value)}; Max-Age={COOKIE_MAX_AGE_S}; path=/; SameSite=Lax"
        if self._domain:
            cookie += f"; domain={self._domain}"
        if self._secure:
            cookie += "; Secure"
        self._browser.set_cookie(cookie)

    def remove(self, name: str) -> None:
        """Expire ``name`` on the host and on every parent domain it may have been set for."""
        expire = f"{name}=; Max-Age=0; path=/; SameSite=Lax"
        self._browser.set_cookie(expire)
        domains = parent_domains(self._browser.page_host())
        if self._domain and self._domain not in domains:
            domains.append(self._domain)
        for domain in domains:
            self._browser.set_cookie(f"{expire}; domain={domain}")


def probe_cookie_domain(browser: Any) -> str | None:
    """The widest parent domain that accepts a cookie (public suffixes refuse it), or None."""
    for domain in reversed(parent_domains(browser.page_host())):
        browser.set_cookie(f"empmix_probe=1; path=/; domain={domain}")
        if "empmix_probe=1" in browser.get_cookies():
            browser.set_cookie(f"empmix_probe=; Max-Age=0; path=/; domain={domain}")
            return domain
    return None

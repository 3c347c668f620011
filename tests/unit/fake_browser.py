"""An in-memory, typed implementation of the SDK's ``Browser`` protocol for CPython unit tests.

An :class:`Origin` is what tabs of one site share (localStorage, cookies, Web Locks, the server);
each :class:`FakeBrowser` is one tab. Time is a manual clock (``origin.advance(ms)``). The server
is a function from (url, records) to an :class:`HttpReply` or a raised ``NetworkError``; it
deduplicates nothing by itself: tests read ``origin.received`` (every record that crossed).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from empmix_web.browser import HttpReply, NetworkError, StorageUnavailable

Server = Callable[[str, list[dict[str, object]]], HttpReply]


def ok_server(url: str, records: list[dict[str, object]]) -> HttpReply:
    return HttpReply(200, '{"status":1,"error":null}', None)


class Origin:
    """What the tabs of one origin share."""

    def __init__(self, host: str = "127.0.0.1", https: bool = False) -> None:
        self.host = host
        self.https = https
        self.local: dict[str, str] = {}
        self.cookies: dict[tuple[str, str], str] = {}  # (name, domain or "") -> value
        self.locks: dict[str, object] = {}
        self.clock_ms = 1_800_000_000_000.0
        self.server: Server = ok_server
        self.received: list[tuple[str, dict[str, object]]] = []  # (url, record) per POST or beacon
        self.beacons: list[tuple[str, str]] = []
        self.cookie_posts: list[tuple[str, dict[str, str], bool]] = []
        self.quota_chars: int | None = None  # setItem fails past this many stored characters
        self.storage_broken = False  # every localStorage call throws (sandboxed frame)
        self.seed = 0

    def advance(self, ms: float) -> None:
        self.clock_ms += ms

    def stored_chars(self) -> int:
        return sum(len(k) + len(v) for k, v in self.local.items())

    def everything_stored(self) -> str:
        """Every localStorage value and cookie value, as one text (for "nothing left" checks)."""
        return "\n".join(list(self.local.values()) + list(self.cookies.values()))


def decode_body(body: str) -> list[dict[str, object]]:
    (payload,) = parse_qs(body)["data"]
    data = json.loads(payload)
    return data if isinstance(data, list) else [data]


class FakeBrowser:
    """One tab of an :class:`Origin`."""

    def __init__(self, origin: Origin, locks: bool = True, url: str | None = None, referrer: str = "") -> None:
        self.origin = origin
        self.in_worker = False
        self.locks = locks
        scheme = "https" if origin.https else "http"
        self.url = url or f"{scheme}://{origin.host}/page"
        self.ref = referrer
        self.hide_callbacks: list[Callable[[], None]] = []
        self.console_lines: list[tuple[str, str]] = []
        self.held_locks: list[str] = []
        self.closed = False
        self.guard: tuple[str, str, str] | None = None
        self.guarded_writes = 0  # local_set_event calls that wrote
        self.template = ("", "")  # set_template's (text, $insert_id prefix)
        self.boot: dict[str, object] | None = None  # window.empmixBoot (tests set it)
        self.since_navigation_ms = 1234.5  # what boot_ready() reads from the page's clock

    # -- localStorage -------------------------------------------------------------------------
    def _check(self) -> None:
        if self.origin.storage_broken:
            raise StorageUnavailable("SecurityError: The operation is insecure.")

    def local_get(self, key: str) -> str | None:
        self._check()
        return self.origin.local.get(key)

    def local_set(self, key: str, value: str) -> None:
        self._check()
        self._write(key, value)

    def _write(self, key: str, value: str) -> None:
        quota = self.origin.quota_chars
        if quota is not None:
            old = self.origin.local.get(key)
            grown = len(key) + len(value) - (len(key) + len(old) if old is not None else 0)
            if self.origin.stored_chars() + grown > quota:
                raise StorageUnavailable("QuotaExceededError: the quota has been exceeded.")
        self.origin.local[key] = value

    def local_remove(self, key: str) -> None:
        self._check()
        self.origin.local.pop(key, None)

    def local_keys(self, prefix: str) -> list[str]:
        self._check()
        return [k for k in self.origin.local if k.startswith(prefix)]

    def set_guard(self, watch_key: str, watch_value: str, url: str) -> None:
        self.guard = (watch_key, watch_value, url)

    def set_template(self, text: str, id_prefix: str) -> None:
        self.template = (text, id_prefix)

    def page_event(self, name_json: str, session_json: str, props_json: str, count: int, time_ms: int) -> str:
        """The record the page's helper assembles (``_bridge._PAGE_HELPER``'s ``event``, line for
        line; tests/browser/test_event_contract.py binds that one to ``RecordFactory.event``)."""
        text, prefix = self.template
        return (
            '{"event":'
            + name_json
            + ',"properties":{"time":'
            + str(time_ms)
            + ',"$insert_id":"'
            + prefix
            + ("%x" % count).rjust(12, "0")
            + '","$session_id":'
            + session_json
            + ("," + text if text else "")
            + ("," + props_json[1:-1] if len(props_json) > 2 else "")
            + "}}"
        )

    def local_set_event(self, key: str, name_json: str, session_json: str, props_json: str, count: int) -> int:
        self._check()
        if self.guard is None:
            return 0
        watch_key, watch_value, url = self.guard
        if self.origin.local.get(watch_key) != watch_value or self.url != url:
            return 0
        value = self.page_event(name_json, session_json, props_json, count, int(self.now_ms()))
        self._write(key, value)
        self.guarded_writes += 1
        return len(value)

    # -- cookies (a name per domain; "" is host-only) -----------------------------------------
    def get_cookies(self) -> str:
        from empmix_web.percent import quote  # noqa: F401 - values are stored as written

        return "; ".join(f"{name}={value}" for (name, _d), value in self.origin.cookies.items())

    def set_cookie(self, cookie: str) -> None:
        parts = [p.strip() for p in cookie.split(";")]
        name, _, value = parts[0].partition("=")
        attrs = {p.partition("=")[0].lower(): p.partition("=")[2] for p in parts[1:]}
        domain = attrs.get("domain", "")
        if domain and not ("." + self.origin.host).endswith(domain):
            return  # a browser ignores a cookie for a foreign domain
        if attrs.get("max-age") == "0":
            self.origin.cookies.pop((name, domain), None)
        else:
            self.origin.cookies[(name, domain)] = value

    # -- the page -----------------------------------------------------------------------------
    def page_url(self) -> str:
        return self.url

    def page_host(self) -> str:
        return self.origin.host

    def page_origin(self) -> str:
        return ("https://" if self.origin.https else "http://") + self.origin.host

    def is_https(self) -> bool:
        return self.origin.https

    def referrer(self) -> str:
        return self.ref

    def screen_size(self) -> tuple[int, int]:
        return (1280, 720)

    def on_page_hide(self, callback: Callable[[], None]) -> None:
        self.hide_callbacks.append(callback)

    def hide(self) -> None:
        for callback in self.hide_callbacks:
            callback()

    def console(self, level: str, message: str) -> None:
        self.console_lines.append((level, message))

    def boot_state(self) -> str | None:
        return None if self.boot is None else json.dumps(self.boot)

    def boot_ready(self) -> float:
        if self.boot is not None:
            self.boot["ready"] = True
        return self.since_navigation_ms

    def warnings(self) -> list[str]:
        return [m for level, m in self.console_lines if level == "warn"]

    # -- clocks and randomness ----------------------------------------------------------------
    def now_ms(self) -> float:
        return self.origin.clock_ms

    def monotonic(self) -> float:
        # real time: the sender's waits are real asyncio sleeps (tests shorten the back-off)
        return time.monotonic()

    def random_bytes(self, n: int) -> bytes:
        import random

        self.origin.seed += 1
        return random.Random(self.origin.seed).randbytes(n)

    # -- network ------------------------------------------------------------------------------
    async def _post(self, url: str, body: str, credentials: bool) -> HttpReply:
        if "data=" not in body:  # the server-set cookie request: token=...&value=...
            self.origin.cookie_posts.append((url, {k: v[0] for k, v in parse_qs(body).items()}, credentials))
            return self.origin.server(url, [])
        records = decode_body(body)
        reply = self.origin.server(url, records)  # may raise NetworkError
        for record in records:
            self.origin.received.append((url, record))
        return reply

    def post_form(self, url: str, body: str, timeout_ms: int, credentials: bool = False) -> Awaitable[HttpReply]:
        return self._post(url, body, credentials)

    def send_beacon(self, url: str, body: str) -> bool:
        if sum(len(b) for _u, b in self.origin.beacons) + len(body) > 64 * 1024 * 4:
            return False
        self.origin.beacons.append((url, body))
        for record in decode_body(body):
            self.origin.received.append((url, record))
        return True

    # -- Web Locks ----------------------------------------------------------------------------
    def has_locks(self) -> bool:
        return self.locks

    def hold_lock(self, name: str) -> Callable[[], None]:
        self.origin.locks[name] = self
        self.held_locks.append(name)

        def release() -> None:
            if self.origin.locks.get(name) is self:
                del self.origin.locks[name]

        return release

    async def _try_lock(self, name: str) -> Callable[[], None] | None:
        if name in self.origin.locks:
            return None
        return self.hold_lock(name)

    def try_lock(self, name: str) -> Awaitable[Callable[[], None] | None]:
        return self._try_lock(name)

    def close(self) -> None:
        """The tab goes away: its locks are freed."""
        self.closed = True
        for name in self.held_locks:
            if self.origin.locks.get(name) is self:
                del self.origin.locks[name]


__all__ = ["FakeBrowser", "Origin", "decode_body", "ok_server", "NetworkError"]

"""The ``Browser`` protocol: everything the SDK needs from the page, and nothing else.

The SDK's decisions (identity, people, consent, records, wire, queue, transport, tabs) are plain
Python over this protocol. ``_bridge.JsBrowser`` implements it on Pyodide and MicroPython;
``tests/unit/fake_browser.FakeBrowser`` implements it in memory for the CPython unit tests.
"""

try:
    from typing import Awaitable, Callable, Protocol
except ImportError:  # MicroPython: annotations are never evaluated there
    Protocol = object  # type: ignore[assignment]


class StorageUnavailable(Exception):
    """The browser refused a localStorage operation (disabled, sandboxed, over quota)."""


class NetworkError(Exception):
    """The request produced no HTTP response (offline, DNS, CORS, abort, timeout)."""


class HttpReply:
    """What the transport needs from an HTTP response."""

    def __init__(self, status: int, body: str, retry_after: "str | None" = None) -> None:
        self.status = status
        self.body = body
        self.retry_after = retry_after

    def __repr__(self) -> str:
        return "HttpReply(" + str(self.status) + ")"


class Browser(Protocol):
    """The page as the SDK sees it. Methods never raise except where they say so."""

    in_worker: bool

    # localStorage (raise StorageUnavailable when the browser refuses)
    def local_get(self, key: str) -> "str | None":
        """The value stored under ``key``, or None."""

    def local_set(self, key: str, value: str) -> None:
        """Store ``value`` under ``key``."""

    def local_remove(self, key: str) -> None:
        """Remove ``key`` (no error when it is absent)."""

    def local_keys(self, prefix: str) -> "list[str]":
        """Every stored key that starts with ``prefix``."""

    # the hot path of track(): one call that assembles and writes the event only if nothing it
    # assumes has changed. set_guard names what local_set_event assumes (localStorage[watch_key]
    # is watch_value, the page's URL is url); set_template gives it the event's shared part
    def set_guard(self, watch_key: str, watch_value: str, url: str) -> None:
        """Name what the next guarded writes assume: ``localStorage[watch_key]`` is ``watch_value`` and the
        page's URL is ``url``."""

    def set_template(self, text: str, id_prefix: str) -> None:
        """The shared properties of the next hot-path events (``EventTemplate.text``) and the
        page's ``$insert_id`` prefix (``InsertIds.prefix``)."""

    def local_set_event(self, key: str, name_json: str, session_json: str, props_json: str, count: int) -> int:
        """While the guard holds: store under ``key`` the event ``RecordFactory.event`` writes for
        the template, ``time`` now (ms), ``$insert_id`` the prefix and ``count`` (12 hex digits),
        ``$session_id`` and the event's own properties, and return its length; else write nothing and
        return 0."""

    # cookies: document.cookie as read, and one Set-Cookie-style string per write
    def get_cookies(self) -> str:
        """``document.cookie`` as the page reads it."""

    def set_cookie(self, cookie: str) -> None:
        """Write one cookie: a ``Set-Cookie``-style string (``name=value; attributes``)."""

    # the page
    def page_url(self) -> str:
        """The page's URL now (a single-page app changes it)."""

    def page_host(self) -> str:
        """The page's host name."""

    def page_origin(self) -> str:
        """The page's origin (``scheme://host[:port]``)."""

    def is_https(self) -> bool:
        """True on an https page."""

    def referrer(self) -> str:
        """``document.referrer`` (empty when there is none)."""

    def screen_size(self) -> "tuple[int, int]":
        """The screen's width and height in CSS pixels."""

    def on_page_hide(self, callback: "Callable[[], None]") -> None:
        """Call ``callback`` whenever the page is hidden or unloaded (``pagehide``, ``visibilitychange``)."""

    def console(self, level: str, message: str) -> None:
        """Write ``message`` to the browser console at ``level`` (``log``, ``warn``, ``error``)."""

    # clocks and randomness (wall clock in ms as a float: never an int across a 32-bit FFI)
    def now_ms(self) -> float:
        """The wall clock, in ms since the epoch (a float)."""

    def monotonic(self) -> float:
        """A clock in seconds that never goes back (for intervals)."""

    def random_bytes(self, n: int) -> bytes:
        """``n`` cryptographically random bytes."""

    # network: post_form raises NetworkError when no HTTP reply came back; credentials=True
    # sends cookies and lets the reply set them (the server-set identity cookie)
    def post_form(self, url: str, body: str, timeout_ms: int, credentials: bool = False) -> "Awaitable[HttpReply]":
        """POST a form-encoded ``body`` to ``url``; the reply, or NetworkError when none came back."""

    def send_beacon(self, url: str, body: str) -> bool:
        """Queue ``body`` for ``url`` with ``navigator.sendBeacon``; False when the browser refused it."""

    # the boot script (empmix-boot.js): its window.empmixBoot as JSON text (None: no boot script
    # ran); boot_ready tells it the SDK has taken over and returns the page's performance.now()
    # (ms since navigation start, also from a worker)
    def boot_state(self) -> "str | None":
        """The boot script's ``window.empmixBoot`` as JSON text, or None when no boot script ran."""

    def boot_ready(self) -> float:
        """Tell the boot script the SDK has taken over; the page's ``performance.now()`` in ms."""

    # Web Locks: one per tab, held for the life of the page
    def has_locks(self) -> bool:
        """True when the Web Locks API is there."""

    def hold_lock(self, name: str) -> "Callable[[], None]":
        """Hold the Web Lock ``name`` for the life of the page; returns its release function."""

    def try_lock(self, name: str) -> "Awaitable[Callable[[], None] | None]":
        """Take the Web Lock ``name`` if it is free (its release function), else None."""

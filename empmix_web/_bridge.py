"""The one place that talks to the browser.

Everything else in empmix_web is plain Python and receives a :class:`Browser`. This module
imports ``js``/``pyodide`` lazily, so the package imports on CPython too (unit tests pass a fake
with the same methods). Every method either does what it says or raises; callers decide what a
failure means (a storage fault falls back to memory, a network fault is retried).

In a PyScript worker, ``js`` is the worker's global scope, which has no ``localStorage``,
``document.cookie`` or ``sendBeacon``: there the page's real ``window``/``document`` come from
PyScript's synchronous proxies (``from pyscript import window, document``), which need a
cross-origin-isolated page (COOP/COEP headers).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable


class StorageUnavailable(Exception):
    """The browser refused a localStorage operation (disabled, sandboxed, over quota)."""


class NetworkError(Exception):
    """The request did not produce an HTTP response (offline, DNS, CORS, abort, timeout)."""


@dataclass(frozen=True)
class HttpReply:
    """What the transport needs from an HTTP response."""

    status: int
    body: str
    retry_after: str | None


def _is_null(value: Any) -> bool:
    """JS ``null`` arrives in Python as ``pyodide.ffi.jsnull``, not None (``undefined`` is None)."""
    if value is None:
        return True
    from pyodide.ffi import jsnull  # noqa: PLC0415

    return value is jsnull


def in_browser() -> bool:
    """True inside Pyodide (main thread or worker)."""
    return sys.platform == "emscripten"


class Browser:
    """Real browser globals, reached through Pyodide's FFI."""

    def __init__(self) -> None:
        import js  # noqa: PLC0415 - only importable inside Pyodide
        from pyodide.ffi import create_proxy, to_js  # noqa: PLC0415

        self._js = js
        self._create_proxy = create_proxy
        self._to_js = to_js
        self._proxies: list[Any] = []  # keep listener proxies alive for the life of the page
        # PyScript gives its workers a proxy of the page's document as js.document, but no
        # js.window: that is how a worker is told apart from the page's main thread.
        window, document = js, getattr(js, "document", None)
        self.in_worker = not hasattr(js, "window")
        if self.in_worker:
            from pyscript import document, window  # type: ignore[import-not-found,no-redef]  # noqa: PLC0415
        self._window = window
        self._document = document
        self._location = window.location  # one FFI hop less per track()
        self._storage: Any = None

    # -- localStorage -------------------------------------------------------------------------
    def _local(self) -> Any:
        if self._storage is None:
            try:
                self._storage = self._window.localStorage
            except Exception as exc:  # SecurityError in sandboxed frames, disabled storage
                raise StorageUnavailable(str(exc)) from None
            if _is_null(self._storage):
                raise StorageUnavailable("window.localStorage is null")
        return self._storage

    def local_get(self, key: str) -> str | None:
        try:
            value = self._local().getItem(key)
        except StorageUnavailable:
            raise
        except Exception as exc:
            raise StorageUnavailable(str(exc)) from None
        return value if isinstance(value, str) else None  # JS null arrives as pyodide's jsnull

    def local_set(self, key: str, value: str) -> None:
        try:
            self._local().setItem(key, value)
        except StorageUnavailable:
            raise
        except Exception as exc:  # QuotaExceededError
            raise StorageUnavailable(str(exc)) from None

    def local_remove(self, key: str) -> None:
        try:
            self._local().removeItem(key)
        except StorageUnavailable:
            raise
        except Exception as exc:
            raise StorageUnavailable(str(exc)) from None

    def local_keys(self, prefix: str) -> list[str]:
        """All localStorage keys that start with ``prefix`` (one FFI crossing)."""
        try:
            keys = self._window.Object.keys(self._local()).to_py()  # the page's Object in a worker
        except StorageUnavailable:
            raise
        except Exception as exc:
            raise StorageUnavailable(str(exc)) from None
        return [k for k in keys if k.startswith(prefix)]

    # -- cookies ------------------------------------------------------------------------------
    def get_cookies(self) -> str:
        try:
            return str(self._document.cookie or "")
        except Exception:  # cookies blocked
            return ""

    def set_cookie(self, cookie: str) -> None:
        try:
            self._document.cookie = cookie
        except Exception:  # cookies blocked: localStorage alone keeps the identity
            pass

    # -- page ---------------------------------------------------------------------------------
    def page_url(self) -> str:
        return str(self._location.href)

    def page_host(self) -> str:
        return str(self._window.location.hostname)

    def is_https(self) -> bool:
        return str(self._window.location.protocol) == "https:"

    def referrer(self) -> str:
        return str(self._document.referrer or "")

    def screen_size(self) -> tuple[int, int]:
        screen = self._window.screen
        return int(screen.width), int(screen.height)

    def user_agent(self) -> str:
        return str(self._window.navigator.userAgent)

    def on_page_hide(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` synchronously when the page is hidden or unloaded."""

        def on_visibility(_event: Any) -> None:
            if str(self._document.visibilityState) == "hidden":
                callback()

        def on_pagehide(_event: Any) -> None:
            callback()

        for target, name, handler in (
            (self._document, "visibilitychange", on_visibility),
            (self._window, "pagehide", on_pagehide),
        ):
            proxy = self._create_proxy(handler)
            self._proxies.append(proxy)
            target.addEventListener(name, proxy)

    def console(self, level: str, message: str) -> None:
        getattr(self._js.console, level, self._js.console.log)(message)

    # -- network ------------------------------------------------------------------------------
    async def post_form(self, url: str, body: str, timeout_ms: int) -> HttpReply:
        """POST a form-encoded body with ``fetch`` (no credentials, so no CORS preflight)."""
        from pyodide.http import pyfetch  # noqa: PLC0415

        try:
            signal = self._js.AbortSignal.timeout(timeout_ms)
            response = await pyfetch(
                url,
                method="POST",
                body=body,
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                credentials="omit",
                signal=signal,
            )
            text = await response.text()
        except Exception as exc:  # TypeError: Failed to fetch, AbortError, TimeoutError
            raise NetworkError(str(exc)) from None
        return HttpReply(response.status, text, response.headers.get("retry-after"))

    def send_beacon(self, url: str, body: str) -> bool:
        """Queue ``body`` for delivery even if the page goes away (``sendBeacon``, else keepalive)."""
        navigator = self._window.navigator
        try:
            if self.in_worker:  # a string crosses to the page's thread; it goes as text/plain
                payload: Any = body
            else:  # form-encoded: a CORS-safelisted type, so no preflight that unload would cut
                payload = self._js.Blob.new(
                    self._to_js([body]),
                    self._to_js({"type": "application/x-www-form-urlencoded"},
                                dict_converter=self._js.Object.fromEntries),
                )
            if navigator.sendBeacon(url, payload):
                return True
        except Exception:
            pass
        try:  # workers have no sendBeacon; fetch keepalive survives the page too
            opts = self._to_js(
                {"method": "POST", "body": body, "keepalive": True, "credentials": "omit",
                 "headers": {"Content-Type": "application/x-www-form-urlencoded"}},
                dict_converter=self._js.Object.fromEntries,
            )
            self._js.fetch(url, opts)
            return True
        except Exception:
            return False

    # -- Web Locks (tabs) ---------------------------------------------------------------------
    def _locks(self) -> Any:
        try:  # navigator.locks: secure contexts only (https, or http on localhost/127.0.0.1)
            return self._js.navigator.locks
        except Exception:
            return None

    def has_locks(self) -> bool:
        return self._locks() is not None

    def hold_lock(self, name: str) -> None:
        """Hold the Web Lock ``name`` for the life of this page; the browser frees it when the
        page goes away, which is how other tabs learn that this one is gone."""
        from pyodide.ffi import create_once_callable  # noqa: PLC0415

        never = create_once_callable(
            lambda _lock: self._js.Promise.new(create_once_callable(lambda _resolve, _reject: None)))
        self._locks().request(name, never)

    async def try_lock(self, name: str) -> Callable[[], None] | None:
        """Take the Web Lock ``name`` if nobody holds it: a function releasing it, else None."""
        import asyncio  # noqa: PLC0415

        from pyodide.ffi import create_once_callable  # noqa: PLC0415

        got: asyncio.Future[Callable[[], None] | None] = asyncio.get_event_loop().create_future()

        def granted(lock: Any) -> Any:
            if _is_null(lock):  # not granted: another tab holds it
                got.set_result(None)
                return None
            resolvers: list[Any] = []
            held = self._js.Promise.new(
                create_once_callable(lambda resolve, _reject: resolvers.append(resolve)))
            got.set_result(lambda: resolvers[0]())
            return held

        options = self._to_js({"ifAvailable": True}, dict_converter=self._js.Object.fromEntries)
        self._locks().request(name, options, create_once_callable(granted))
        return await got

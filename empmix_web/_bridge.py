"""The one module that talks to JavaScript: ``JsBrowser``, the ``Browser`` of a real page.

It runs unchanged on Pyodide (``type="py"``) and MicroPython (``type="mpy"``), in the page's
main thread and in a PyScript worker. What differs between them stays here:

- every synchronous JS call that can throw (localStorage over quota, a sandboxed frame,
  ``document.cookie``) goes through a small JavaScript helper made once at ``init``, which
  catches and returns a string: MicroPython cannot catch a synchronous JS exception;
- values cross as strings (``"V"`` + value, ``"N"`` for null, ``"E"`` + error), so neither
  interpreter's null/undefined sentinels leak out, and no 64-bit integer crosses (MicroPython's
  FFI integers are 32-bit: time is computed in Python);
- ``fetch`` and Web Locks are wrapped in promises that always resolve, and awaited;
- random bytes come from ``crypto.getRandomValues`` on MicroPython (no ``os.urandom``).

In a worker, storage, cookies, beacons and page-lifecycle events belong to the page: that helper
is made in the page's realm through PyScript's synchronous ``window`` proxy (which needs a
cross-origin-isolated page, COOP/COEP), so each call is one round trip to the main thread.
Fetch and locks run in the worker itself.
"""

import time

import js

from .browser import HttpReply, NetworkError, StorageUnavailable
from .compat import MICROPYTHON

try:
    from typing import Any, Callable
except ImportError:
    pass

if MICROPYTHON:
    try:
        from pyscript.ffi import create_proxy
    except ImportError:
        from jsffi import create_proxy
else:
    from pyodide.ffi import create_proxy

# Made in the page's realm: storage, cookies, beacons, location, lifecycle.
_PAGE_HELPER = r"""
const store = () => { try { return globalThis.localStorage || null } catch (e) { return null } };
const fail = e => "E" + (e && e.name ? e.name + ": " + e.message : String(e));
const NONE = "Eno localStorage";
let guardKey = null, guardValue = null, guardUrl = null;  // what setEvent assumes (set by watch)
let tpl = "", idPrefix = "";  // the shared part of the next events, the $insert_id prefix (template)
// records.RecordFactory.event's text for per_event()'s three (tests/browser/test_event_contract.py)
const event = (n, s, p, c, t) => '{"event":' + n + ',"properties":{"time":' + t + ',"$insert_id":"' + idPrefix
  + c.toString(16).padStart(12, "0") + '","$session_id":' + s + (tpl ? "," + tpl : "")
  + (p.length > 2 ? "," + p.slice(1, -1) : "") + "}}";
return {
  get(k) { try { const s = store(); if (!s) return NONE; const v = s.getItem(k);
                 return v === null ? "N" : "V" + v } catch (e) { return fail(e) } },
  set(k, v) { try { const s = store(); if (!s) return NONE; s.setItem(k, v); return "" }
              catch (e) { return fail(e) } },
  remove(k) { try { const s = store(); if (!s) return NONE; s.removeItem(k); return "" }
              catch (e) { return fail(e) } },
  watch(k, v, url) { guardKey = k; guardValue = v; guardUrl = url },
  template(t, p) { tpl = t; idPrefix = p },
  setEvent(k, n, s, p, c) { try { const st = store(); if (!st) return NONE;
                                  if (guardKey === null || st.getItem(guardKey) !== guardValue
                                      || String(location.href) !== guardUrl) return 0;
                                  const v = event(n, s, p, c, Date.now()); st.setItem(k, v); return v.length }
                            catch (e) { return fail(e) } },
  keys(p) { try { const s = store(); if (!s) return NONE; const out = [];
                  for (let i = 0; i < s.length; i++) { const k = s.key(i);
                    if (k !== null && k.startsWith(p)) out.push(k) }
                  return "V" + JSON.stringify(out) } catch (e) { return fail(e) } },
  cookies() { try { return String(document.cookie || "") } catch (e) { return "" } },
  setCookie(c) { try { document.cookie = c } catch (e) {} },
  beacon(url, body) { try { return !!navigator.sendBeacon(url,
      new Blob([body], {type: "application/x-www-form-urlencoded"})) } catch (e) { return false } },
  href() { return String(location.href) },
  page() { let w = 0, h = 0; try { w = screen.width; h = screen.height } catch (e) {}
           return [location.hostname, location.origin, location.protocol,
                   document.referrer || "", w, h].join("\n") },
  boot() { try { const b = globalThis.empmixBoot; return b ? JSON.stringify(b) : "" } catch (e) { return "" } },
  bootReady() { try { if (globalThis.empmixBoot) globalThis.empmixBoot.ready = true } catch (e) {}
                return performance.now() },
  onHide(cb) {
    addEventListener("pagehide", () => cb());
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "hidden") cb() });
  },
};
"""

# Made in the realm Python runs in (the worker, in a worker): fetch and Web Locks.
_LOCAL_HELPER = r"""
return {
  async post(url, body, ms, withCredentials) {
    try {
      const r = await fetch(url, {method: "POST", body, credentials: withCredentials ? "include" : "omit",
        headers: {"Content-Type": "application/x-www-form-urlencoded"},
        signal: AbortSignal.timeout(ms)});
      const text = await r.text();
      return r.status + "\n" + (r.headers.get("Retry-After") || "") + "\n" + text;
    } catch (e) { return "E" + e }
  },
  hasLocks() { try { return !!(navigator.locks && navigator.locks.request) } catch (e) { return false } },
  holdLock(name) {
    let release = null, done = false;
    navigator.locks.request(name, () => done ? null : new Promise(r => { release = r }))
      .catch(() => {});
    return () => { done = true; if (release) release() };
  },
  tryLock(name) {
    return new Promise(resolve => {
      navigator.locks.request(name, {ifAvailable: true},
        lock => lock ? new Promise(r => resolve(() => r())) : resolve(false))
        .catch(() => resolve(false));
    });
  },
};
"""


def _page_scope() -> "tuple[bool, Any]":
    """(in a worker?, the page's window)."""
    try:
        from pyscript import RUNNING_IN_WORKER, window
    except ImportError:  # bare Pyodide (loadPyodide) on the main thread, without PyScript
        return False, js
    return bool(RUNNING_IN_WORKER), window


def _make(realm: "Any", source: str) -> "Any":
    return realm.Function.new(source)()


class _Ticks:
    """Monotonic seconds from MicroPython's wrapping millisecond ticks."""

    def __init__(self) -> None:
        self._last = time.ticks_ms()  # type: ignore[attr-defined]
        self._total = 0

    def __call__(self) -> float:
        now = time.ticks_ms()  # type: ignore[attr-defined]
        self._total += time.ticks_diff(now, self._last)  # type: ignore[attr-defined]
        self._last = now
        return self._total / 1000


class JsBrowser:
    """The real page, through the interpreter's FFI (see the module docstring)."""

    def __init__(self) -> None:
        self.in_worker, window = _page_scope()
        if self.in_worker and window is None:
            raise RuntimeError(
                "empmix: this worker cannot reach the page (serve it with COOP/COEP "
                "headers so PyScript can proxy window and document)"
            )
        self._page = _make(window, _PAGE_HELPER)
        self._local = _make(js, _LOCAL_HELPER)
        self._set_event = self._page.setEvent  # looked up once: each JsProxy attribute read costs µs
        host, self._origin, protocol, self._referrer, width, height = str(self._page.page()).split("\n")
        self._host, self._https = host, protocol == "https:"
        self._screen = (int(width or 0), int(height or 0))
        self._proxies: "list[Any]" = []  # listeners live as long as the page
        self.monotonic = _Ticks() if MICROPYTHON else time.monotonic

    # -- localStorage -------------------------------------------------------------------------
    def local_get(self, key: str) -> "str | None":
        """``localStorage.getItem`` in the page, through the helper (``"V"``/``"N"``/``"E"`` reply)."""
        reply = str(self._page.get(key))
        if reply == "N":
            return None
        if reply[:1] == "V":
            return reply[1:]
        raise StorageUnavailable(reply[1:])

    def _check(self, reply: "Any") -> None:
        if reply:
            raise StorageUnavailable(str(reply)[1:])

    def local_set(self, key: str, value: str) -> None:
        """``localStorage.setItem`` in the page; StorageUnavailable on the helper's error reply."""
        self._check(self._page.set(key, value))

    def local_remove(self, key: str) -> None:
        """``localStorage.removeItem`` in the page; StorageUnavailable on the helper's error reply."""
        self._check(self._page.remove(key))

    def set_guard(self, watch_key: str, watch_value: str, url: str) -> None:
        """Kept by the page helper, which checks them on each ``local_set_event``."""
        self._page.watch(watch_key, watch_value, url)

    def set_template(self, text: str, id_prefix: str) -> None:
        """Kept by the page helper, which splices the event's own parts into ``text``."""
        self._page.template(text, id_prefix)

    def local_set_event(self, key: str, name_json: str, session_json: str, props_json: str, count: int) -> int:
        """One FFI call: the page helper checks the guard, assembles the record and stores it."""
        reply = self._set_event(key, name_json, session_json, props_json, count)
        if type(reply) is int:
            return reply
        raise StorageUnavailable(str(reply)[1:])

    def local_keys(self, prefix: str) -> "list[str]":
        """The page helper walks ``localStorage`` and replies with the matching keys as JSON."""
        import json

        reply = str(self._page.keys(prefix))
        if reply[:1] != "V":
            raise StorageUnavailable(reply[1:])
        keys: "list[str]" = json.loads(reply[1:])
        return keys

    # -- cookies ------------------------------------------------------------------------------
    def get_cookies(self) -> str:
        """``document.cookie`` of the page (empty when reading it throws)."""
        return str(self._page.cookies())

    def set_cookie(self, cookie: str) -> None:
        """Assigns ``document.cookie`` in the page (a refusal is silent, as in the browser)."""
        self._page.setCookie(cookie)

    # -- the page -----------------------------------------------------------------------------
    def page_url(self) -> str:
        """``location.href`` of the page, read on each call."""
        return str(self._page.href())

    def page_host(self) -> str:
        """``location.hostname``, read once at construction."""
        return self._host

    def page_origin(self) -> str:
        """``location.origin``, read once at construction."""
        return self._origin

    def is_https(self) -> bool:
        """``location.protocol`` is ``https:`` (read once)."""
        return self._https

    def referrer(self) -> str:
        """``document.referrer``, read once at construction."""
        return self._referrer

    def screen_size(self) -> "tuple[int, int]":
        """``screen.width`` and ``screen.height``, read once (0 when missing)."""
        return self._screen

    def on_page_hide(self, callback: "Callable[[], None]") -> None:
        """A listener in the page's realm; the proxy is kept for the page's life so it is not freed."""
        proxy = create_proxy(callback)
        self._proxies.append(proxy)
        self._page.onHide(proxy)

    def boot_state(self) -> "str | None":
        """``JSON.stringify(window.empmixBoot)`` from the page helper, or None."""
        return str(self._page.boot()) or None

    def boot_ready(self) -> float:
        """Sets the boot script's hand-over flag in the page; the page's ``performance.now()``."""
        return float(self._page.bootReady())

    def console(self, level: str, message: str) -> None:
        """``console[level]`` of the realm Python runs in (``console.log`` for an unknown level)."""
        log = getattr(js.console, level, None) or js.console.log
        log(message)

    # -- clocks and randomness ----------------------------------------------------------------
    def now_ms(self) -> float:
        """``time.time()`` in ms: computed in Python, so no 64-bit integer crosses the FFI."""
        return time.time() * 1000

    def random_bytes(self, n: int) -> bytes:
        """``os.urandom`` on Pyodide; ``crypto.getRandomValues`` on MicroPython."""
        if MICROPYTHON:
            return bytes(js.crypto.getRandomValues(js.Uint8Array.new(n)))
        import os

        return os.urandom(n)

    # -- network ------------------------------------------------------------------------------
    async def post_form(self, url: str, body: str, timeout_ms: int, credentials: bool = False) -> HttpReply:
        """POST a form-encoded body (a CORS-safelisted type: no preflight; no credentials unless
        asked for)."""
        reply = str(await self._local.post(url, body, timeout_ms, bool(credentials)))
        if reply[:1] == "E":
            raise NetworkError(reply[1:])
        status, retry_after, text = reply.split("\n", 2)
        return HttpReply(int(status), text, retry_after or None)

    def send_beacon(self, url: str, body: str) -> bool:
        """``sendBeacon`` from the page (form-encoded): survives the page going away."""
        return bool(self._page.beacon(url, body))

    # -- Web Locks ----------------------------------------------------------------------------
    def has_locks(self) -> bool:
        """``navigator.locks.request`` exists in the realm Python runs in."""
        return bool(self._local.hasLocks())

    def hold_lock(self, name: str) -> "Callable[[], None]":
        """A ``navigator.locks.request`` whose promise resolves only on release."""
        release: "Callable[[], None]" = self._local.holdLock(name)
        return release

    async def try_lock(self, name: str) -> "Callable[[], None] | None":
        """``navigator.locks.request`` with ``ifAvailable``; the helper resolves ``false`` when not granted."""
        release = await self._local.tryLock(name)  # false (not null: no sentinel) when not granted
        return None if release is False or release is None else release

"""Several tabs of one origin: each sends only its own records; a closed tab's are adopted.

Every tab holds a Web Lock named after itself for its whole life. Records in storage under a
tab id whose lock is free belong to a tab that is gone (closed, crashed, reloaded): a live tab
takes that lock (``ifAvailable``, so exactly one tab wins), sends them as its own, and releases
the lock once they are all delivered. So no two tabs ever send the same batch at the same time.

Without Web Locks (plain-http origins other than localhost), each tab writes a heartbeat
(``empmix_<token>_alive_<tab>``) every scan and removes it when the page hides; a tab silent for
``STALE_MS`` is gone: its records are adopted and its heartbeat removed with them, so keys do not
grow with page views. Two tabs may then adopt the same records at once, and the collector's
``$insert_id`` deduplication keeps the result exactly-once. Nothing is written while opted out.
"""

import asyncio
import logging

from . import keys
from .compat import spawn
from .queue import OutboundQueue

try:
    from typing import Any, Callable

    from .browser import Browser
    from .storage import Storage
    from .transport import Sender
except ImportError:
    pass

log = logging.getLogger("empmix_web")

SCAN_INTERVAL_S = 5.0
STALE_MS = 20_000


class TabCoordinator:
    """Which tab sends which records: this tab's own, and those of tabs that are gone."""

    def __init__(
        self,
        browser: "Browser",
        storage: "Storage",
        queue: OutboundQueue,
        sender: "Sender",
        token: str,
        active: "Callable[[], bool]",
    ) -> None:
        self._browser = browser
        self._storage = storage
        self._queue = queue
        self._sender = sender
        self._active = active  # False while opted out: no heartbeat, no adoption
        self._lock_prefix = keys.key(token, keys.TAB_LOCK)
        self.heartbeat_prefix = keys.key(token, keys.ALIVE)
        self._held: "dict[str, Any]" = {}  # adopted tab -> release function (None: heartbeats)
        self._task: "Any" = None
        self._release_own: "Any" = None
        self.use_locks = False
        self.own_lock_held = False  # the boot script holds this tab's lock for the page's life

    def start(self) -> None:
        """Hold this tab's Web Lock (or use heartbeats) and start scanning for closed tabs."""
        try:
            self.use_locks = self._browser.has_locks()
            if self.use_locks and not self.own_lock_held:
                self._release_own = self._browser.hold_lock(self._lock_prefix + self._queue.tab_id)
        except Exception as exc:  # a missing API must not break init
            log.warning("empmix: Web Locks unavailable (%s); using heartbeats", exc)
            self.use_locks = False
        self._task = spawn(self._run())

    def stop(self) -> None:
        """Stop scanning."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.scan()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.error("empmix: tab scan failed: %r", exc)
            await asyncio.sleep(SCAN_INTERVAL_S)

    def page_hidden(self) -> None:
        """The page may be going away: let other tabs adopt at once what is left."""
        if not self.use_locks:
            self._storage.remove(self.heartbeat_prefix + self._queue.tab_id)

    def _release_finished(self) -> None:
        for tab in list(self._held):
            if not self._queue.owned_by(tab):
                release = self._held.pop(tab)
                if release is not None:
                    release()

    async def scan(self) -> int:
        """Adopt the records of tabs that are gone. Returns how many records were adopted."""
        self._release_finished()
        if not self._active():
            return 0
        now = self._browser.now_ms()
        if not self.use_locks:
            self._storage.set(self.heartbeat_prefix + self._queue.tab_id, str(int(now)))
            self._sweep_heartbeats(now)
        adopted = 0
        for tab in self._queue.tabs_with_records():
            if tab == self._queue.tab_id or tab in self._held:
                continue
            if self.use_locks:
                release = await self._browser.try_lock(self._lock_prefix + tab)
                if release is None:
                    continue  # that tab is alive (or another tab is sending its records)
                self._held[tab] = release
            else:
                if self._alive(tab, now):
                    continue
                self._storage.remove(self.heartbeat_prefix + tab)
                self._held[tab] = None
            adopted += self._queue.adopt(tab)
        if adopted:
            log.info("empmix: resending %d records left by a closed tab", adopted)
            self._sender.wake()
        self._release_finished()
        return adopted

    def _alive(self, tab: str, now: float) -> bool:
        beat = self._storage.get(self.heartbeat_prefix + tab)
        return beat is not None and beat.isdigit() and now - int(beat) < STALE_MS

    def _sweep_heartbeats(self, now: float) -> None:
        """Remove the heartbeats of tabs that are gone (records or not)."""
        for key in self._storage.keys(self.heartbeat_prefix):
            tab = key[len(self.heartbeat_prefix) :]
            if tab != self._queue.tab_id and not self._alive(tab, now):
                if not self._queue_has(tab):
                    self._storage.remove(key)

    def _queue_has(self, tab: str) -> bool:
        return len(self._storage.keys(self._queue.prefix + tab + "_")) > 0

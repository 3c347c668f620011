"""Several tabs of one origin: each sends only its own records; a closed tab's are adopted.

Every tab holds a Web Lock named after itself for its whole life. Records in storage under a
tab id whose lock is free belong to a tab that is gone (closed, crashed, reloaded): a live tab
takes that lock (``ifAvailable``, so exactly one tab wins) and sends them as its own. So no two
tabs ever send the same batch at the same time.

Without Web Locks (plain-http origins other than localhost), tabs write a heartbeat instead and a
tab silent for ``STALE_MS`` is considered gone; two tabs may then adopt the same records at once,
and the collector's ``$insert_id`` deduplication keeps the result exactly-once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from .queue import OutboundQueue
from .transport import Sender

log = logging.getLogger("empmix_web")

SCAN_INTERVAL_S = 5.0
STALE_MS = 20_000


class TabCoordinator:
    def __init__(self, browser: Any, queue: OutboundQueue, sender: Sender, token: str) -> None:
        self._browser = browser
        self._queue = queue
        self._sender = sender
        self._lock_prefix = f"empmix_{token}_tab_"
        self._heartbeat_prefix = f"empmix_{token}_alive_"
        self._held: dict[str, Any] = {}  # adopted tab -> release function
        self._task: asyncio.Task[None] | None = None
        self._use_locks = False

    def start(self) -> None:
        try:
            self._use_locks = bool(self._browser.has_locks())
            if self._use_locks:
                self._browser.hold_lock(self._lock_prefix + self._queue.tab_id)
        except Exception as exc:  # noqa: BLE001 - a missing API must not break init
            log.warning("empmix: Web Locks unavailable (%s); using heartbeats", exc)
            self._use_locks = False
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = asyncio.get_event_loop()
        self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        while True:
            try:
                await self.scan()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                log.exception("empmix: tab scan failed")
            await asyncio.sleep(SCAN_INTERVAL_S)

    async def scan(self) -> int:
        """Adopt the records of tabs that are gone. Returns how many records were adopted."""
        storage = self._queue._storage  # noqa: SLF001 - same package
        if not storage.persistent:
            return 0
        now = int(time.time() * 1000)
        if not self._use_locks:
            storage.set(self._heartbeat_prefix + self._queue.tab_id, str(now))
        adopted = 0
        for tab in self._queue.stored_tabs():
            if tab in self._held:
                continue
            if self._use_locks:
                release = await self._browser.try_lock(self._lock_prefix + tab)
                if release is None:
                    continue  # that tab is alive (or another tab is sending its records)
                self._held[tab] = release
            else:
                beat = storage.get(self._heartbeat_prefix + tab)
                if beat is not None and beat.isdigit() and now - int(beat) < STALE_MS:
                    continue
                storage.remove(self._heartbeat_prefix + tab)
                self._held[tab] = None
            adopted += self._queue.adopt(tab)
        if adopted:
            log.info("empmix: resending %d records left by a closed tab", adopted)
            self._sender.wake()
        return adopted

"""Delivery: one sender per client sends its queue, one batch at a time, oldest first.

Records therefore arrive in the order they were made. What a reply means is decided by
``wire.outcome`` (see ``wire``); this module schedules: a batch goes when it is full, when
``flush_interval_ms`` has passed since the first record waiting, or at once during ``flush()``;
retries wait out the back-off, which ``flush()`` does not bypass. On page hide, everything queued
also goes by beacon (``beacon_all``); it stays queued until a normal send confirms it, and the
collector's ``$insert_id`` deduplication makes the second copy harmless.
"""

import asyncio
import logging

from . import wire
from .browser import NetworkError
from .compat import spawn, wait_event
from .percent import quote
from .queue import OutboundQueue

try:
    from typing import Any, Callable

    from .browser import Browser
    from .options import Config
    from .records import Record
except ImportError:
    pass

log = logging.getLogger("empmix_web")

REQUEST_TIMEOUT_MS = 30_000


class Sender:
    """Sends one client's queue; never raises into the page."""

    def __init__(
        self, browser: "Browser", queue: OutboundQueue, config: "Config", debug: "Callable[[str], None]"
    ) -> None:
        self._browser = browser
        self.queue = queue
        self.api_host = config.api_host
        self.routes = dict(wire.DEFAULT_ROUTES)
        self.routes.update(config.api_routes)
        self.batch_size = config.batch_size
        self.flush_interval_ms = config.flush_interval_ms
        self._debug = debug
        self._limit = config.batch_size  # halved on 413, doubled back after a success
        self._attempts = 0
        self._retry_at = 0.0  # monotonic seconds
        self._due_at: "float | None" = None
        self._flushing = 0  # active flush() calls: send without waiting for the interval
        self._wake = asyncio.Event()
        self._progress = asyncio.Event()
        self._task: "Any" = None
        self.paused = False  # opted out: nothing is sent
        self.requests = 0

    def url(self, endpoint: str, verbose: bool = True) -> str:
        """The URL of ``endpoint`` (``track``, ``engage``, ``groups``, ``cookie``) under ``api_host``."""
        return wire.url(self.api_host, self.routes[endpoint], verbose)

    def post_cookie(self, token: str, value: str) -> None:
        """Ask the collector to set the identity cookie (``POST /cookie``, with credentials so
        that its ``Set-Cookie`` applies); best effort, in the background."""
        body = "token=" + quote(token) + "&value=" + quote(value)
        spawn(self._post_cookie(self.url("cookie", verbose=False), body))

    async def _post_cookie(self, url: str, body: str) -> None:
        try:
            reply = await self._browser.post_form(url, body, 10_000, True)
            self._debug("POST " + url + " -> " + str(reply.status))
        except Exception as exc:  # NetworkError: the page's own cookie stays
            self._debug("POST " + url + " failed: " + str(exc))

    # -- scheduling ---------------------------------------------------------------------------
    def wake(self) -> None:
        """Something was queued (or a flush asked for): make sure the sender runs."""
        if self._task is None or self._task.done():
            self._task = spawn(self._run())
        self._wake.set()

    def queued(self) -> None:
        """A record was queued. The sender's timer already covers a batch that is filling up, so
        it is woken only when the queue was empty or a batch is full."""
        n = len(self.queue)
        if self._task is None or n == 1 or n >= self._limit:
            self.wake()

    def stop(self) -> None:
        """Stop sending (what is queued stays queued)."""
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                if await self._wait_for_batch():
                    await self._send(self.queue.head(self._limit))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a bug here must not stop delivery for the page's lifetime
                log.error("empmix: sender error: %r", exc)
                await asyncio.sleep(1)

    async def _sleep_or_wake(self, seconds: float) -> None:
        self._wake.clear()
        await wait_event(self._wake, seconds)

    async def _wait_for_batch(self) -> bool:
        """Wait until a batch is due; True when one should be sent now."""
        now = self._browser.monotonic()
        if self.paused or not len(self.queue):
            self._due_at = None
            await self._sleep_or_wake(3600)
            return False
        if now < self._retry_at:
            await asyncio.sleep(self._retry_at - now)  # back-off: flush() does not bypass it
            return True
        if self._flushing or len(self.queue) >= self._limit:
            return True
        if self._due_at is None:
            self._due_at = now + self.flush_interval_ms / 1000
        if now >= self._due_at:
            return True
        await self._sleep_or_wake(self._due_at - now)
        return False

    # -- sending ------------------------------------------------------------------------------
    async def _send(self, batch: "list[Record]") -> None:
        if not batch or self.paused:
            return
        self._due_at = None
        url = self.url(batch[0].kind.endpoint)
        self.requests += 1
        try:
            reply = await self._browser.post_form(url, wire.encode_batch([r.body for r in batch]), REQUEST_TIMEOUT_MS)
        except NetworkError as exc:
            self._retry_later(None, "network error: " + str(exc))
            return
        action, refused = wire.outcome(reply.status, reply.body)
        self._debug("POST " + url + ": " + str(len(batch)) + " records -> " + str(reply.status))
        for index in refused:
            log.warning("empmix: the server refused a record (%s): %s", refused[index], _short(batch, index))
        if action == wire.DELIVERED:
            self._done(batch)
        elif action == wire.SPLIT:
            if len(batch) == 1:
                log.warning("empmix: dropping a record the server finds too large: %s", _short(batch, 0))
                self._done(batch)
            else:
                self._limit = max(1, len(batch) // 2)
        elif action == wire.RETRY:
            self._retry_later(reply.retry_after, "HTTP " + str(reply.status))
        elif action == wire.DROP_SOME:
            self._done([batch[i] for i in sorted(refused) if 0 <= i < len(batch)] or batch)
        else:
            log.warning(
                "empmix: the server refused a batch of %d records (HTTP %d): %s",
                len(batch),
                reply.status,
                reply.body[:200],
            )
            self._done(batch)

    def _done(self, records: "list[Record]") -> None:
        self.queue.remove(records)
        self._attempts = 0
        self._retry_at = 0.0
        self._limit = min(self.batch_size, self._limit * 2)
        self._progress.set()

    def _retry_later(self, retry_after: "str | None", why: str) -> None:
        delay_ms = wire.retry_after_ms(retry_after, self._browser.now_ms())
        if delay_ms is None:
            delay_ms = wire.backoff_ms(self._attempts, self._browser.random_bytes(1)[0] / 256)  # jitter
        self._attempts += 1
        self._retry_at = self._browser.monotonic() + delay_ms / 1000
        self._debug("delivery failed (" + why + "); retrying in " + str(delay_ms) + " ms")
        self._progress.set()

    async def flush(self, timeout_ms: "int | None" = None) -> bool:
        """True once every record queued before the call is confirmed or refused for good."""
        if not len(self.queue):
            return True
        watermark = max(r.order for r in self.queue)
        deadline = None if timeout_ms is None else self._browser.monotonic() + timeout_ms / 1000
        self._flushing += 1
        try:
            self.wake()
            while self.queue.pending_before(watermark):
                if self.paused:
                    return False
                remaining = None if deadline is None else deadline - self._browser.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._progress.clear()
                if not await wait_event(self._progress, remaining):
                    return False
            return True
        finally:
            self._flushing -= 1

    def beacon_all(self) -> int:
        """Page hide: send what is queued by beacon, without dequeuing. Returns records sent."""
        if self.paused:
            return 0
        sent = 0
        for chunk in wire.beacon_chunks(list(self.queue), self.batch_size):
            body = wire.encode_batch([r.body for r in chunk])
            if not self._browser.send_beacon(self.url(chunk[0].kind.endpoint), body):
                break  # over the page's quota: the next page load sends the rest
            sent += len(chunk)
        return sent


def _short(batch: "list[Record]", index: int) -> str:
    return batch[index].body[:200] if 0 <= index < len(batch) else "#" + str(index)

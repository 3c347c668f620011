"""Delivery: batches from the outbound queue to the Mixpanel ingestion endpoints.

One sender per client sends one batch at a time, oldest first, so records arrive in the order
they were made. Replies decide what happens to a batch:

- 2xx: delivered (records the server names in ``failed_records`` were refused; logged).
- 400: records named in ``failed_records`` are dropped (logged) and the rest sent again (the
  server deduplicates by ``$insert_id``); without that list the whole batch is dropped.
- 413: the batch is split; a single record still too large is dropped (logged).
- network error, 408, 429, 5xx: retried with exponential back-off and jitter from about 1 s to a
  cap of 3 minutes, or after ``Retry-After`` when the server sends one.
- other 4xx: dropped (logged): the server will never accept them.

On page hide, everything queued also goes out by ``sendBeacon`` (64 KiB at most, form-encoded so
no CORS preflight); it stays queued until a normal send confirms it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from typing import Any, Callable

from ._bridge import NetworkError
from .percent import quote
from .queue import EVENT, OutboundQueue, Record

log = logging.getLogger("empmix_web")

BACKOFF_BASE_MS = 1_000
BACKOFF_CAP_MS = 180_000
RETRY_AFTER_CAP_MS = 600_000
REQUEST_TIMEOUT_MS = 30_000
BEACON_LIMIT = 64 * 1024  # the keepalive in-flight quota shared by all beacons of a page
# Profile operations that count (applied twice, they count twice) stay out of beacons: /engage
# records carry no $insert_id for the server to deduplicate a beacon and a later normal send.
_NOT_IDEMPOTENT = ('"$add":', '"$append":')


def encode_batch(bodies: list[str]) -> str:
    """The form body ``data=<url-encoded JSON array>``."""
    return "data=" + quote("[" + ",".join(bodies) + "]")


def parse_retry_after(value: str | None) -> int | None:
    """``Retry-After`` (seconds or an HTTP date) in milliseconds, or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(int(value) * 1000, RETRY_AFTER_CAP_MS)
    import email.utils  # noqa: PLC0415 - rare; kept off the page's start-up

    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError):
        return None
    return max(0, min(int((when - time.time()) * 1000), RETRY_AFTER_CAP_MS))


def failed_indexes(body: str) -> dict[int, str]:
    """``{index: reason}`` from a verbose reply's ``failed_records`` (Mixpanel's /import shape)."""
    try:
        reply = json.loads(body)
    except ValueError:
        return {}
    failed = reply.get("failed_records") if isinstance(reply, dict) else None
    out: dict[int, str] = {}
    for item in failed if isinstance(failed, list) else []:
        if isinstance(item, dict) and isinstance(item.get("index"), int):
            out[item["index"]] = str(item.get("message") or item.get("reason") or "rejected")
    return out


class Sender:
    """Sends one client's queue; never raises into the page."""

    def __init__(self, browser: Any, queue: OutboundQueue, api_host: str, batch_size: int,
                 flush_interval_ms: int, debug: Callable[[str], None]) -> None:
        self._browser = browser
        self.queue = queue
        self.api_host = api_host.rstrip("/")
        self.batch_size = batch_size
        self.flush_interval_ms = flush_interval_ms
        self._debug = debug
        self._limit = batch_size  # halved on 413, restored after a success
        self._attempts = 0
        self._retry_at = 0.0  # monotonic seconds
        self._due_at: float | None = None
        self._flushing = 0  # active flush() calls: send without waiting for the interval
        self._wake: asyncio.Event | None = None
        self._progress: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self.paused = False  # opted out: nothing is sent
        self.requests = 0

    def url(self, kind: str) -> str:
        return f"{self.api_host}/{'track' if kind == EVENT else 'engage'}/?verbose=1"

    # -- scheduling ---------------------------------------------------------------------------
    def _loop(self) -> asyncio.AbstractEventLoop:
        try:
            return asyncio.get_running_loop()
        except RuntimeError:  # Pyodide: the browser's event loop is always there
            return asyncio.get_event_loop()

    def wake(self) -> None:
        """Something was queued (or a flush asked for): make sure the sender runs."""
        if self._task is None or self._task.done():
            loop = self._loop()
            self._wake, self._progress = asyncio.Event(), asyncio.Event()
            self._task = loop.create_task(self._run())
        assert self._wake is not None
        self._wake.set()

    def queued(self) -> None:
        """A record was queued. The sender's timer already covers a batch that is filling up, so
        it is woken only when the queue was empty or a batch is full: no wake-up (and no timer
        churn on the event loop) per ``track()``."""
        if self._task is None or self._task.done() or len(self.queue) == 1 or len(self.queue) >= self._limit:
            self.wake()

    async def _run(self) -> None:
        while True:
            try:
                if await self._wait_for_batch():
                    await self._send(self.queue.head(self._limit))
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not stop delivery for the page's lifetime
                log.exception("empmix: sender error")
                await asyncio.sleep(1)

    async def _sleep_or_wake(self, seconds: float) -> None:
        assert self._wake is not None
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, seconds))
        except asyncio.TimeoutError:
            pass

    async def _wait_for_batch(self) -> bool:
        """Wait until a batch is due; True when one should be sent now."""
        now = time.monotonic()
        if self.paused or not self.queue:
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
    async def _send(self, batch: list[Record]) -> None:
        if not batch or self.paused:
            return
        self._due_at = None
        url = self.url(batch[0].kind)
        self.requests += 1
        try:
            reply = await self._browser.post_form(url, encode_batch([r.body for r in batch]),
                                                  REQUEST_TIMEOUT_MS)
        except NetworkError as exc:
            self._retry_later(None, f"network error: {exc}")
            return
        status = reply.status
        self._debug(f"POST {url}: {len(batch)} records -> {status}")
        if 200 <= status < 300:
            failed = failed_indexes(reply.body)
            for index, reason in failed.items():
                log.warning("empmix: the server refused a record (%s): %s", reason, _short(batch, index))
            self._done(batch)
        elif status == 413:
            if len(batch) == 1:
                log.warning("empmix: dropping a record the server finds too large: %s", _short(batch, 0))
                self._done(batch)
            else:
                self._limit = max(1, len(batch) // 2)
        elif status in (408, 429) or status >= 500:
            self._retry_later(reply.retry_after, f"HTTP {status}")
        elif status == 400 and (failed := failed_indexes(reply.body)):
            refused = [batch[i] for i in sorted(failed) if i < len(batch)]
            for index, reason in failed.items():
                log.warning("empmix: the server refused a record (%s): %s", reason, _short(batch, index))
            self._done(refused or batch)
        else:
            log.warning("empmix: the server refused a batch of %d records (HTTP %d): %s",
                        len(batch), status, reply.body[:200])
            self._done(batch)

    def _done(self, records: list[Record]) -> None:
        self.queue.remove(records)
        self._attempts = 0
        self._retry_at = 0.0
        self._limit = min(self.batch_size, self._limit * 2)
        self._notify()

    def _retry_later(self, retry_after: str | None, why: str) -> None:
        delay_ms = parse_retry_after(retry_after)
        if delay_ms is None:
            backoff = min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** self._attempts)
            delay_ms = int(backoff * random.uniform(0.5, 1.0))  # jitter: tabs don't retry in step
        self._attempts += 1
        self._retry_at = time.monotonic() + delay_ms / 1000
        self._debug(f"delivery failed ({why}); retrying in {delay_ms} ms")
        self._notify()

    def _notify(self) -> None:
        if self._progress is not None:
            self._progress.set()

    async def flush(self, timeout_ms: int | None = None) -> bool:
        """True once every record queued before the call is confirmed or refused for good."""
        if not self.queue:
            return True
        watermark = max(r.order for r in self.queue)
        deadline = None if timeout_ms is None else time.monotonic() + timeout_ms / 1000
        self._flushing += 1
        try:
            self.wake()
            assert self._progress is not None
            while self.queue.pending_before(watermark):
                if self.paused:
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._progress.clear()
                try:
                    await asyncio.wait_for(self._progress.wait(), timeout=remaining)
                except asyncio.TimeoutError:
                    return False
            return True
        finally:
            self._flushing -= 1

    def beacon_all(self) -> int:
        """Page hide: send what is queued by beacon, without dequeuing. Returns records sent."""
        if self.paused:
            return 0
        sent, budget = 0, BEACON_LIMIT
        chunk: list[Record] = []
        size = 0  # length of encode_batch(chunk), kept as records are added

        def ship() -> bool:
            nonlocal sent, budget
            if not self._browser.send_beacon(self.url(chunk[0].kind), encode_batch([r.body for r in chunk])):
                return False
            sent += len(chunk)
            budget -= size
            return True

        for record in self.queue:
            if record.kind != EVENT and any(op in record.body for op in _NOT_IDEMPOTENT):
                continue
            grown = len(quote(record.body)) + 3  # the record and a %2C separator
            if chunk and (record.kind != chunk[0].kind or len(chunk) >= self.batch_size
                          or size + grown > budget):
                if not ship():
                    return sent
                chunk, size = [], 0
            if not chunk:
                size = len("data=%5B%5D") - 3
            if size + grown > budget:
                break  # over the page's beacon quota: the next page load sends the rest
            chunk.append(record)
            size += grown
        if chunk:
            ship()
        return sent


def _short(batch: list[Record], index: int) -> str:
    return batch[index].body[:200] if 0 <= index < len(batch) else f"#{index}"

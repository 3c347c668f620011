"""What the two SQL stores share: the write queue and the query API's reads.

A subclass opens its database, builds a :class:`~empmix_collector.store.writer.GroupWriter`
around its own transaction function, and implements :meth:`SqlStore._read_sync`
(run a ``reads`` function on a pooled read connection). Everything else, and so
every result of the query API, is the same code on both stores.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from empmix_collector.domain.records import WriteBatch, WriteResult
from empmix_collector.store import funnels, reads, startup
from empmix_collector.store import retention as retention_reads
from empmix_collector.store.base import JSON, QueryGone, StoreClosed
from empmix_collector.store.cancel import ReadCancel
from empmix_collector.store.cookieless import CookielessMixin
from empmix_collector.store.sql import Sql
from empmix_collector.store.writer import Writer
from empmix_collector.store.writer_stats import WriterStats

__all__ = ["SqlStore", "register_projects", "HEAVY_READERS", "LIGHT_READERS"]

T = TypeVar("T")
log = logging.getLogger("empmix_collector.store")

HEAVY_READERS = 2
"""Threads for the reads that scan many events (funnels, retention, group lists): at most this
many run at once, so they never take every connection nor starve the cheap reads."""
LIGHT_READERS = 4
"""Threads for the other reads (a person, its events, the merge log)."""


class SqlStore(CookielessMixin):
    """Base of :class:`~empmix_collector.store.sqlite.SqliteStore` and
    :class:`~empmix_collector.store.postgres.PostgresStore` (implements ``Store``)."""

    def __init__(self, tokens: Sequence[str], *, max_ids_per_person: int, max_pending: int) -> None:
        self.tokens = tuple(tokens)
        self.max_ids_per_person = max_ids_per_person
        self.max_pending = max_pending
        self.projects: dict[str, int] = {}
        self._writer: Writer | None = None
        self._pools: dict[bool, ThreadPoolExecutor] = {}
        self.interrupted_reads = 0
        """Reads stopped in the database because no one waited for them any more (client gone)."""

    @property
    def is_open(self) -> bool:
        """Whether writes are accepted."""
        return self._writer is not None

    @property
    def commit_count(self) -> int:
        """Write transactions committed since open (group commit makes it < batches)."""
        return 0 if self._writer is None else self._writer.commit_count

    @property
    def writer_stats(self) -> WriterStats:
        """The writer's per-group timings (an empty record when the store is closed)."""
        return WriterStats() if self._writer is None else self._writer.stats

    @property
    def pending(self) -> int:
        """Batches queued for the writer and not yet taken."""
        return 0 if self._writer is None else self._writer.pending

    async def write(self, batch: WriteBatch) -> WriteResult:
        """Store a batch; returns once its transaction has committed.

        Raises:
            StoreClosed, StoreBusy, StoreUnavailable: see ``store.base``.
        """
        writer = self._writer
        if writer is None:
            raise StoreClosed("the store is closed")
        return await writer.submit(batch)

    # -- reads -----------------------------------------------------------------------

    def _read_sync(self, fn: Callable[..., T], *args: Any, cancel: ReadCancel | None = None) -> T:
        """Run ``fn(sql, *args)`` on a read connection (blocking); ``cancel`` can interrupt it
        (then ``QueryGone``)."""
        raise NotImplementedError

    def _require_open(self) -> None:
        if self._writer is None:
            raise StoreClosed("the store is closed")

    def read_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(sql, *args)`` on a read connection (blocking; tests and benchmarks)."""
        self._require_open()
        return self._read_sync(fn, *args)

    async def _read(self, fn: Callable[..., T], *args: Any, heavy: bool = False) -> T:
        """Run a read on its own bounded pool (never the event loop's default executor, which
        Starlette and the writer's callers share).

        Cancelling the awaiting task cancels the read: still queued, it never runs; running,
        its statement is interrupted in the database and its connection goes back to the pool.
        """
        pool = self._pools.get(heavy)
        if pool is None:
            size, name = (HEAVY_READERS, "empmix-heavy-read") if heavy else (LIGHT_READERS, "empmix-read")
            pool = self._pools[heavy] = ThreadPoolExecutor(size, thread_name_prefix=name)
        loop = asyncio.get_running_loop()
        cancel = ReadCancel()
        future = loop.run_in_executor(pool, functools.partial(self._cancellable_read, cancel, fn, *args))
        try:
            return await future
        except asyncio.CancelledError:
            loop.run_in_executor(None, cancel.cancel)  # PostgreSQL's cancel request is a round trip
            raise

    def _cancellable_read(self, cancel: ReadCancel, fn: Callable[..., T], *args: Any) -> T:
        self._require_open()
        try:
            return self._read_sync(fn, *args, cancel=cancel)
        except QueryGone:
            self.interrupted_reads += 1
            log.info("a %s read was cancelled: its client went away", getattr(fn, "__name__", "query"))
            raise

    def _stop_reads(self) -> None:
        """Let the read pools' threads go (on close)."""
        pools, self._pools = self._pools, {}
        for pool in pools.values():
            pool.shutdown(wait=False, cancel_futures=True)

    def _aside_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(sql, *args)`` on a connection that may write, outside the writer's
        transaction, each statement committed on its own (blocking; ``store.cookieless``)."""
        raise NotImplementedError

    def aside_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """``_aside_sync`` on an open store (blocking; tests)."""
        self._require_open()
        return self._aside_sync(fn, *args)

    async def _aside(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(self.aside_sync, fn, *args)

    async def get_person(self, project_id: int, distinct_id: str) -> JSON | None:
        """See ``Store.get_person``."""
        return await self._read(reads.get_person, project_id, distinct_id)

    async def person_events(self, project_id: int, distinct_id: str, limit: int) -> list[JSON] | None:
        """See ``Store.person_events``."""
        return await self._read(reads.person_events, project_id, distinct_id, limit)

    async def person_sessions(self, project_id: int, distinct_id: str) -> list[JSON] | None:
        """See ``Store.person_sessions``."""
        return await self._read(reads.person_sessions, project_id, distinct_id)

    async def get_group(self, project_id: int, group_key: str, group_id: str) -> JSON | None:
        """See ``Store.get_group``."""
        return await self._read(reads.get_group, project_id, group_key, group_id)

    async def list_groups(self, project_id: int, group_key: str, limit: int) -> list[JSON]:
        """See ``Store.list_groups``."""
        return await self._read(reads.list_groups, project_id, group_key, limit, heavy=True)

    async def list_persons(self, project_id: int, limit: int, offset: int) -> list[JSON]:
        """See ``Store.list_persons``."""
        return await self._read(reads.list_persons, project_id, limit, offset)

    async def latest_events(self, project_id: int, limit: int) -> list[JSON]:
        """See ``Store.latest_events``."""
        return await self._read(reads.latest_events, project_id, limit)

    async def merge_log(self, project_id: int, limit: int) -> list[JSON]:
        """See ``Store.merge_log``."""
        return await self._read(reads.merge_log, project_id, limit)

    async def funnel(
        self,
        project_id: int,
        steps: Sequence[str],
        from_ms: int | None,
        to_ms: int | None,
        window_ms: int,
        by: str,
        group_key: str | None = None,
    ) -> list[JSON]:
        """See ``Store.funnel``."""
        return await self._read(funnels.funnel, project_id, steps, from_ms, to_ms, window_ms, by, group_key, heavy=True)

    async def retention(
        self,
        project_id: int,
        born: str,
        returned: str,
        from_ms: int | None,
        to_ms: int | None,
        unit: str,
        by: str,
        group_key: str | None = None,
    ) -> list[JSON]:
        """See ``Store.retention``."""
        return await self._read(
            retention_reads.retention, project_id, born, returned, from_ms, to_ms, unit, by, group_key, heavy=True
        )

    async def startup(self, project_id: int, from_ms: int | None, to_ms: int | None) -> JSON:
        """See ``Store.startup``."""
        return await self._read(startup.startup, project_id, from_ms, to_ms)


def register_projects(sql: Sql, tokens: Sequence[str], now_ms: int) -> dict[str, int]:
    """Give every token a project row (first start) and return token -> project id."""
    for token in tokens:
        sql.run("INSERT INTO projects(token, created_at) VALUES (?, ?) ON CONFLICT DO NOTHING", (token, now_ms))
    return {str(token): int(pid) for token, pid in sql.all("SELECT token, id FROM projects") if token in tokens}

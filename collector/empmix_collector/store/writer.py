"""One writer thread with group commit, shared by both stores.

As in Datasette, one thread owns the write connection. Requests put their
validated batch on a queue and await a future; the thread drains every batch
waiting (up to :data:`MAX_GROUP_RECORDS` records, small batches first), applies them in
one transaction (group commit) and only then resolves the futures, so a reply is never sent before
its records are committed. If a group fails, it is applied again in one transaction
with each batch under its own savepoint (``isolated``): the batch that failed is
rolled back alone and the others commit together, so one bad batch neither sinks the
others nor turns the writer into one commit per batch. If the database itself is
unavailable, every batch of the group fails at once with
:class:`~empmix_collector.store.base.StoreUnavailable`.

Example::

    writer = GroupWriter(commit=lambda batches, isolated: apply_in_one_transaction(batches, isolated))
    writer.start()
    result = await writer.submit(batch)
    writer.stop()
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from empmix_collector.domain.records import WriteBatch, WriteResult
from empmix_collector.store.base import StoreBusy, StoreClosed, StoreUnavailable
from empmix_collector.store.writer_stats import WriterStats

__all__ = ["GroupWriter", "Writer", "Deliver", "MAX_GROUP_RECORDS", "MAX_GROUP_PROFILE_RECORDS", "DEFAULT_MAX_PENDING"]

log = logging.getLogger("empmix_collector.store")

MAX_GROUP_RECORDS = 2_000
"""Records committed in one transaction at most (latency bound under load: a group of 4,000
records holds the writer ~60 ms on this machine's 2 cores when they are saturated; 20,000 held
it up to 2 s under the overload of 2,000-record batches, and a one-event request waits for
the group being written)."""
MAX_GROUP_PROFILE_RECORDS = 2_000
"""Profile and group records (``/engage``, ``/groups``) in one transaction at most (the oldest
batch always goes, whatever it holds): each costs far more than an event (up to ``MAX_PROFILE_WORK`` per request), so
four flooding clients' worst requests go one group each instead of all four in the group a
one-event ``/track`` then waits for."""
SMALL_BATCH_RECORDS = 100
"""Batches of at most this many records go first into the next group (see ``_take_group``)."""
DEFAULT_MAX_PENDING = 2_000
"""Batches waiting for the writer before requests are turned away with 503."""

Commit = Callable[[list[WriteBatch], bool], list[WriteResult | Exception]]
"""``commit(batches, isolated)``: one transaction; with ``isolated``, a batch that fails is
rolled back alone and its exception takes its place in the returned list."""
_Outcome = tuple["_Task", WriteResult | None, BaseException | None]


@dataclass
class _Task:
    batch: WriteBatch
    loop: asyncio.AbstractEventLoop | None  # None: a task of another process (``enqueue``)
    future: asyncio.Future[WriteResult] | None
    queued: float  # time.perf_counter() at submit
    ident: int = 0  # the other process's number for it


Deliver = Callable[[list[_Outcome]], None]
"""Hands a group's outcomes ``(task, result, error)`` to whoever waits for them."""


_STOP = object()


class Writer(Protocol):
    """What a store needs of its writer: :class:`GroupWriter`, or ``sqlite.writer_process.ProcessWriter``."""

    commit_count: int
    stats: WriterStats

    @property
    def pending(self) -> int: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    async def submit(self, batch: WriteBatch) -> WriteResult: ...


class GroupWriter:
    """The write queue and its thread.

    Args:
        commit: applies batches in one transaction and commits it, or raises with
            nothing committed; runs on the writer thread only (see :data:`Commit`).
        on_exit: called on the writer thread when it stops (closes the connection).
        max_pending: queued batches beyond which :meth:`submit` raises :class:`StoreBusy`.
        max_group_records: records per transaction at most.
        stats: where each group's timings go (``stats``; a new one by default). The commit
            function may set ``stats.commit_s`` to the time its ``COMMIT`` statement took.
        deliver: called on the writer thread with each group's outcomes (default: resolve
            the futures of :meth:`submit` on their event loops).
    """

    def __init__(
        self,
        commit: Commit,
        *,
        on_exit: Callable[[], None] | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
        max_group_records: int = MAX_GROUP_RECORDS,
        name: str = "empmix-writer",
        stats: WriterStats | None = None,
        deliver: Deliver | None = None,
    ) -> None:
        self._commit = commit
        self._deliver = _deliver if deliver is None else deliver
        self._on_exit = on_exit
        self.max_pending = max_pending
        self.max_group_records = max_group_records
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._running = False
        self._small_went = False  # the last group was small batches that went before a large oldest one
        self.commit_count = 0
        """Transactions committed so far (observability; group commit makes it < batches)."""
        self.stats = WriterStats() if stats is None else stats
        """Per-group timings (``GET /api/writer``)."""

    @property
    def pending(self) -> int:
        """Batches queued and not yet taken by the writer."""
        return self._pending

    def start(self) -> None:
        """Start the writer thread."""
        self._running = True
        self._thread.start()

    def stop(self) -> None:
        """Commit what is queued, then stop the thread (and run ``on_exit``). Idempotent."""
        if not self._running:
            return
        self._running = False
        self._queue.put(_STOP)
        self._thread.join()

    async def submit(self, batch: WriteBatch) -> WriteResult:
        """Queue ``batch`` and wait until its transaction has committed.

        Raises:
            StoreClosed: the writer is stopped.
            StoreBusy: too many batches are already waiting.
            StoreUnavailable: the database cannot be reached.
            Exception: whatever the commit raised for this batch alone (nothing of it stored).
        """
        if not self._running:
            raise StoreClosed("the store is closed")
        with self._pending_lock:
            if self._pending >= self.max_pending:
                raise StoreBusy(f"{self._pending} batches are waiting to be written")
            self._pending += 1
        loop = asyncio.get_running_loop()
        future: asyncio.Future[WriteResult] = loop.create_future()
        self._queue.put(_Task(batch, loop, future, time.perf_counter()))
        # shield: a client that hangs up does not cancel a write already queued
        return await asyncio.shield(future)

    def enqueue(self, batch: WriteBatch, ident: int, queued: float) -> None:
        """Queue a batch another process submitted (no future: ``deliver`` answers it by
        ``ident``). The caller bounds what it sends; this never refuses."""
        with self._pending_lock:
            self._pending += 1
        self._queue.put(_Task(batch, None, None, queued, ident))

    def _run(self) -> None:
        backlog: list[_Task] = []  # taken off the queue, not yet in a group (oldest first)
        stopping = False
        try:
            while backlog or not stopping:
                if not backlog:
                    item = self._queue.get()
                    if item is _STOP:
                        break
                    backlog.append(item)
                while not stopping:  # whatever is queued now joins the backlog
                    try:
                        nxt = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        stopping = True
                    else:
                        backlog.append(nxt)
                group, backlog = self._take_group(backlog)
                with self._pending_lock:
                    self._pending -= len(group)
                self._deliver(self._commit_group(group))
        finally:
            if self._on_exit is not None:
                self._on_exit()

    def _take_group(self, backlog: list[_Task]) -> tuple[list[_Task], list[_Task]]:
        """The next group. When small batches (an SDK's few events) wait behind a large oldest
        batch, they go alone first, as one group of small batches, in arrival order; the group
        after that takes the oldest batch again. Otherwise: the oldest batch (so every batch
        progresses), then the small batches, then the large ones in arrival order, up to
        ``max_group_records`` (and :data:`MAX_GROUP_PROFILE_RECORDS` profile records, unless the
        oldest batch alone has more). So a one-event request waits for at most the group being
        written and its own, never for a group of 2,000-record batches of its own. Returns
        (group, what is left)."""
        head = backlog[0]
        small_first = not self._small_went and len(head.batch) > SMALL_BATCH_RECORDS
        if small_first and any(len(task.batch) <= SMALL_BATCH_RECORDS for task in backlog):
            group, left, size, profiles = [], [], 0, 0
            for task in backlog:
                costly = len(task.batch.profiles) + len(task.batch.groups)
                if (
                    len(task.batch) <= SMALL_BATCH_RECORDS
                    and size < self.max_group_records
                    and profiles + costly <= MAX_GROUP_PROFILE_RECORDS
                ):
                    group.append(task)
                    size += len(task.batch)
                    profiles += costly
                else:
                    left.append(task)
            self._small_went = True
            return group, left
        self._small_went = False
        rest = backlog[1:]
        group, size = [head], len(head.batch)
        profiles = len(head.batch.profiles) + len(head.batch.groups)
        small = [task for task in rest if len(task.batch) <= SMALL_BATCH_RECORDS]
        large = [task for task in rest if len(task.batch) > SMALL_BATCH_RECORDS]
        left = []
        for task in small + large:
            costly = len(task.batch.profiles) + len(task.batch.groups)
            if size < self.max_group_records and profiles + costly <= MAX_GROUP_PROFILE_RECORDS:
                group.append(task)
                size += len(task.batch)
                profiles += costly
            else:
                left.append(task)
        if left and small and large:  # keep arrival order among what waits
            order = {id(task): n for n, task in enumerate(rest)}
            left.sort(key=lambda task: order[id(task)])
        return group, left

    def _commit_group(self, group: list[_Task]) -> list[_Outcome]:
        started, cpu = time.perf_counter(), time.thread_time()
        self.stats.commit_s = 0.0
        try:
            return self._try_group(group)
        finally:
            self.stats.record_group(
                started=started,
                waited_s=started - group[0].queued,
                hold_s=time.perf_counter() - started,
                commit_s=self.stats.commit_s,
                cpu_s=time.thread_time() - cpu,
                batches=len(group),
                records=sum(len(task.batch) for task in group),
            )

    def _try_group(self, group: list[_Task]) -> list[_Outcome]:
        batches = [task.batch for task in group]
        try:
            results = self._commit(batches, False)
        except StoreUnavailable as exc:
            log.warning("the database is unavailable; %d batches turned away: %s", len(group), exc)
            return [(task, None, exc) for task in group]
        except Exception as exc:
            if len(group) == 1:
                log.exception("writing a batch failed; it was rolled back")
                return [(group[0], None, exc)]
            try:  # again, each batch under its own savepoint: only the culprit is rolled back
                results = self._commit(batches, True)
            except StoreUnavailable as unavailable:
                return [(task, None, unavailable) for task in group]
            except Exception as again:
                log.exception("writing a group failed twice; it was rolled back")
                return [(task, None, again) for task in group]
        self.commit_count += 1
        outcomes: list[_Outcome] = []
        for task, result in zip(group, results, strict=True):
            if isinstance(result, Exception):
                log.error("writing a batch failed; it was rolled back", exc_info=result)
                outcomes.append((task, None, result))
            else:
                outcomes.append((task, result, None))
        return outcomes


def _deliver(outcomes: list[_Outcome]) -> None:
    """One wake-up per event loop for the whole group, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        loop = outcome[0].loop
        assert loop is not None
        by_loop.setdefault(loop, []).append(outcome)
    for loop, delivered in by_loop.items():
        try:
            loop.call_soon_threadsafe(_resolve, delivered)
        except RuntimeError:  # the awaiting loop is gone
            pass


def _resolve(outcomes: list[_Outcome]) -> None:
    for task, result, error in outcomes:
        future = task.future
        if future is None or future.done():
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

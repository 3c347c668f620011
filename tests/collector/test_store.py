"""The storage layer directly (both stores): group commit, isolation of a bad batch, backpressure."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from empmix_collector.domain import validate
from empmix_collector.domain.records import EventRecord, WriteBatch, WriteResult
from empmix_collector.store.base import StoreBusy, StoreClosed, StoreError
from empmix_collector.store.sqlite import SqliteStore, connect
from empmix_collector.store.sqlstore import SqlStore
from tests.collector.conftest import TOKEN, event, now_ms
from tests.collector.dbs import is_postgres, rows

T = TypeVar("T")
WAIT_S = 20.0
"""Longest wait for a condition (a lock taken, batches queued) before the test fails."""


def _batch(store: SqlStore, n: int, distinct_id: str) -> WriteBatch:
    ctx = validate.Context(store.projects, now_ms(), "track")
    batch = WriteBatch(received_ms=ctx.now_ms)
    for i in range(n):
        record = validate.validate_event(event("e", distinct_id), i, ctx)
        assert isinstance(record, EventRecord)
        batch.events.append(record)
    return batch


def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """asyncio.run in a fresh thread: pytest-playwright's sync API may own this thread's loop."""
    box: list[Any] = []

    def target() -> None:
        try:
            box.append(asyncio.run(scenario()))
        except BaseException as exc:  # re-raised below
            box.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    assert box, "scenario did not finish"
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]  # type: ignore[no-any-return]


def _count(target: str) -> int:
    return int(rows(target, "SELECT COUNT(*) FROM events")[0][0])


def _open_store(target: str, **options: Any) -> SqlStore:
    if is_postgres(target):
        from empmix_collector.store.postgres import PostgresStore

        store: SqlStore = PostgresStore(target, [TOKEN], **options)
    else:
        store = SqliteStore(target, [TOKEN], **options)
    store.open()
    return store


class _WriteLock:
    """The events table write-locked from another connection until :meth:`release`, so that
    the writer blocks on its first group and what is submitted meanwhile queues up."""

    def __init__(self, target: str) -> None:
        self._release = threading.Event()
        locked = threading.Event()

        def hold() -> None:
            if is_postgres(target):
                import psycopg

                with psycopg.connect(target) as pg:
                    pg.execute("LOCK TABLE events IN EXCLUSIVE MODE")
                    locked.set()
                    self._release.wait(WAIT_S)
                    pg.rollback()
                return
            conn = connect(target)
            conn.execute("BEGIN IMMEDIATE")
            locked.set()
            self._release.wait(WAIT_S)
            conn.execute("ROLLBACK")
            conn.close()

        self._thread = threading.Thread(target=hold)
        self._thread.start()
        assert locked.wait(WAIT_S)

    def release(self) -> None:
        self._release.set()
        self._thread.join(WAIT_S)


class _Writes:
    """``store.write()`` tasks, counting those whose batch has reached the writer's queue."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.queued = 0

    def start(self, batch: WriteBatch) -> asyncio.Future[Any]:
        return asyncio.ensure_future(self._write(batch))

    async def _write(self, batch: WriteBatch) -> Any:
        write = self.store.write(batch)
        self.queued += 1  # the write's first step (checks, count, queue) runs next, with no await before it
        return await write


async def _until(condition: Callable[[], bool], what: str) -> None:
    """Wait (on the event loop) until ``condition()`` holds; fail after :data:`WAIT_S`."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.005)


@pytest.fixture
def target(new_db: Callable[[], str]) -> str:
    return new_db()


@pytest.fixture
def store(target: str) -> Iterator[SqlStore]:
    s = _open_store(target)
    yield s
    s.close()


def test_group_commit_commits_queued_batches_together(store: SqlStore, target: str) -> None:
    before = store.commit_count

    async def scenario() -> None:
        lock, started = _WriteLock(target), _Writes(store)
        first = started.start(_batch(store, 10, "u0"))
        await _until(lambda: started.queued == 1 and store.pending == 0, "the writer took the first batch")
        writes = [started.start(_batch(store, 10, f"u{i}")) for i in range(1, 40)]
        await _until(lambda: started.queued == 40 and store.pending == 39, "the 39 others are queued behind it")
        assert not first.done()  # the lock holds the writer
        lock.release()
        await asyncio.gather(first, *writes)

    run(scenario)
    assert _count(target) == 400
    assert store.commit_count - before == 2  # the first batch alone, the 39 queued behind it together


def test_a_failing_batch_does_not_sink_the_others(store: SqlStore, target: str) -> None:
    before = store.commit_count

    async def scenario() -> list[object]:
        lock, started = _WriteLock(target), _Writes(store)
        first = started.start(_batch(store, 5, "a"))
        await _until(lambda: started.queued == 1 and store.pending == 0, "the writer took the first batch")
        bad = _batch(store, 2, "bad")
        bad.events[1].project_id = None  # type: ignore[assignment]  # violates NOT NULL
        queued = [started.start(b) for b in (_batch(store, 5, "b"), bad, _batch(store, 5, "c"))]
        await _until(lambda: started.queued == 4 and store.pending == 3, "b, the bad batch and c wait together")
        lock.release()
        return await asyncio.gather(first, *queued, return_exceptions=True)

    results = run(scenario)
    assert isinstance(results[2], Exception) and not isinstance(results[2], StoreError)  # a NOT NULL violation
    assert all(not isinstance(r, BaseException) for i, r in enumerate(results) if i != 2)
    assert _count(target) == 15  # nothing of the bad batch, everything of the others
    # b and c were committed together, beside the bad one (savepoints), not one by one
    assert store.commit_count - before == 2


def test_backpressure_and_closed_store(target: str) -> None:
    store = _open_store(target, max_pending=2)

    async def scenario() -> list[object]:
        lock, started = _WriteLock(target), _Writes(store)
        first = started.start(_batch(store, 1, "x"))
        await _until(lambda: started.queued == 1 and store.pending == 0, "the writer took it; it waits for the lock")
        queued = [started.start(_batch(store, 1, "y")) for _ in range(2)]
        await _until(lambda: started.queued == 3 and store.pending == 2, "two batches wait")
        with pytest.raises(StoreBusy):
            await store.write(_batch(store, 1, "z"))
        lock.release()
        return await asyncio.gather(first, *queued)

    assert len(run(scenario)) == 3
    assert sorted(row[0] for row in rows(target, "SELECT distinct_id FROM events")) == ["x", "y", "y"]
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreClosed):
        run(lambda: store.write(WriteBatch()))


def test_a_small_batch_goes_into_the_next_group_before_large_ones(store: SqlStore, target: str) -> None:
    async def scenario() -> list[str]:
        done: list[str] = []
        lock, started = _WriteLock(target), _Writes(store)
        first = started.start(_batch(store, 10, "first"))  # the writer takes it and waits
        await _until(lambda: started.queued == 1 and store.pending == 0, "the writer took the first batch")
        names = [f"large{i}" for i in range(5)] + ["small"]
        writes = []
        for name in names:  # 5 x 5,000 records, then 1: more than one group holds
            future = started.start(_batch(store, 1 if name == "small" else 5000, name))
            future.add_done_callback(lambda _, name=name: done.append(name))
            writes.append(future)
        await _until(lambda: started.queued == 7 and store.pending == 6, "all six are queued")
        lock.release()
        await asyncio.gather(first, *writes)
        return done

    done = run(scenario)
    assert set(done) == {"small", "large0", "large1", "large2", "large3", "large4"}
    assert done.index("small") < done.index("large4")  # it did not wait behind every large batch
    assert _count(target) == 10 + 5 * 5000 + 1


def test_profile_heavy_batches_go_one_group_each() -> None:
    """Four 2,000-record /engage batches queued behind a busy writer are committed in four
    groups, not one; a one-event batch queued after them goes first, alone (store-independent:
    a fake commit)."""
    from empmix_collector.store.writer import MAX_GROUP_PROFILE_RECORDS, GroupWriter

    entered, release, groups = threading.Event(), threading.Event(), []

    def commit(batches: list[WriteBatch], isolated: bool) -> list[Any]:
        if not groups:
            entered.set()
            release.wait(20)  # the first group holds the writer while the rest queue
        groups.append([(len(b.profiles), len(b.events)) for b in batches])
        return [WriteResult() for _ in batches]

    writer = GroupWriter(commit)
    writer.start()

    async def scenario() -> None:
        first = asyncio.ensure_future(writer.submit(WriteBatch(events=[object()])))  # type: ignore[list-item]
        await _until(entered.is_set, "the writer holds the first group")
        heavy = [WriteBatch(profiles=[object()] * MAX_GROUP_PROFILE_RECORDS) for _ in range(4)]  # type: ignore[list-item]
        writes = [asyncio.ensure_future(writer.submit(batch)) for batch in heavy]
        writes.append(asyncio.ensure_future(writer.submit(WriteBatch(events=[object()]))))  # type: ignore[list-item]
        await _until(lambda: writer.pending == 5, "five batches wait")
        release.set()
        await asyncio.gather(first, *writes)

    try:
        run(scenario)
    finally:
        writer.stop()
    assert groups == [[(0, 1)], [(0, 1)], [(2000, 0)], [(2000, 0)], [(2000, 0)], [(2000, 0)]]

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


def _hold_write_lock(target: str, seconds: float) -> threading.Thread:
    """Keep the events table write-locked for a while, so the writer's queue fills up."""
    locked = threading.Event()

    def hold() -> None:
        if is_postgres(target):
            import psycopg

            with psycopg.connect(target) as pg:
                pg.execute("LOCK TABLE events IN EXCLUSIVE MODE")
                locked.set()
                time.sleep(seconds)
                pg.rollback()
            return
        conn = connect(target)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(seconds)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert locked.wait(5)
    return thread


@pytest.fixture
def target(new_db: Callable[[], str]) -> str:
    return new_db()


@pytest.fixture
def store(target: str) -> Iterator[SqlStore]:
    s = _open_store(target)
    yield s
    s.close()


def test_group_commit_commits_queued_batches_together(store: SqlStore, target: str) -> None:
    async def scenario() -> None:
        holder = _hold_write_lock(target, 0.5)
        writes = [asyncio.ensure_future(store.write(_batch(store, 10, f"u{i}"))) for i in range(40)]
        await asyncio.gather(*writes)
        holder.join()

    run(scenario)
    assert _count(target) == 400
    assert store.commit_count <= 3  # the first batch alone, the rest in one or two groups


def test_a_failing_batch_does_not_sink_the_others(store: SqlStore, target: str) -> None:
    async def scenario() -> list[object]:
        holder = _hold_write_lock(target, 0.3)
        bad = _batch(store, 2, "bad")
        bad.events[1].project_id = None  # type: ignore[assignment]  # violates NOT NULL
        batches = [_batch(store, 5, "a"), _batch(store, 5, "b"), bad, _batch(store, 5, "c")]
        results = await asyncio.gather(*(store.write(b) for b in batches), return_exceptions=True)
        holder.join()
        return results

    results = run(scenario)
    assert isinstance(results[2], Exception) and not isinstance(results[2], StoreError)  # a NOT NULL violation
    assert all(not isinstance(r, BaseException) for i, r in enumerate(results) if i != 2)
    assert _count(target) == 15  # nothing of the bad batch, everything of the others
    # the others were committed together, beside the bad one (savepoints), not one by one
    assert store.commit_count <= 2


def test_backpressure_and_closed_store(target: str) -> None:
    store = _open_store(target, max_pending=2)

    async def scenario() -> list[object]:
        holder = _hold_write_lock(target, 0.5)
        await asyncio.sleep(0)
        first = asyncio.ensure_future(store.write(_batch(store, 1, "x")))
        await asyncio.sleep(0)  # let it queue
        deadline = time.monotonic() + 10
        while store.pending and time.monotonic() < deadline:  # the writer took it; it waits for the lock
            await asyncio.sleep(0.01)
        assert store.pending == 0
        queued = [asyncio.ensure_future(store.write(_batch(store, 1, "y"))) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(StoreBusy):
            await store.write(_batch(store, 1, "z"))
        results = await asyncio.gather(first, *queued)
        holder.join()
        return results

    assert len(run(scenario)) == 3
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreClosed):
        run(lambda: store.write(WriteBatch()))


def test_a_small_batch_goes_into_the_next_group_before_large_ones(store: SqlStore, target: str) -> None:
    async def scenario() -> list[str]:
        done: list[str] = []
        holder = _hold_write_lock(target, 0.5)
        first = asyncio.ensure_future(store.write(_batch(store, 10, "first")))  # the writer takes it and waits
        deadline = time.monotonic() + 10
        while store.pending and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        names = [f"large{i}" for i in range(5)] + ["small"]
        writes = []
        for name in names:  # 5 x 5,000 records, then 1: more than one group's 20,000
            future = asyncio.ensure_future(store.write(_batch(store, 1 if name == "small" else 5000, name)))
            future.add_done_callback(lambda _, name=name: done.append(name))
            writes.append(future)
        await asyncio.gather(first, *writes)
        holder.join()
        return done

    done = run(scenario)
    assert set(done) == {"small", "large0", "large1", "large2", "large3", "large4"}
    assert done.index("small") < done.index("large4")  # it did not wait behind every large batch
    assert _count(target) == 10 + 5 * 5000 + 1


def test_profile_heavy_batches_go_one_group_each() -> None:
    """Four 2,000-record /engage batches queued behind a busy writer are committed in four
    groups, not one; a one-event batch joins the first of them (store-independent: a fake commit)."""
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
        deadline = time.monotonic() + 10
        while not entered.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        heavy = [WriteBatch(profiles=[object()] * MAX_GROUP_PROFILE_RECORDS) for _ in range(4)]  # type: ignore[list-item]
        writes = [asyncio.ensure_future(writer.submit(batch)) for batch in heavy]
        writes.append(asyncio.ensure_future(writer.submit(WriteBatch(events=[object()]))))  # type: ignore[list-item]
        while writer.pending < 5 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        release.set()
        await asyncio.gather(first, *writes)

    try:
        run(scenario)
    finally:
        writer.stop()
    assert groups == [[(0, 1)], [(2000, 0), (0, 1)], [(2000, 0)], [(2000, 0)], [(2000, 0)]]

"""The storage layer directly: group commit, isolation of a bad batch, backpressure."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from empmix_collector import validate
from empmix_collector.store import Store, StoreBusy, StoreClosed, connect
from empmix_collector.writes import WriteBatch

from tests.collector.conftest import TOKEN, event, now_ms

T = TypeVar("T")


def _batch(store: Store, n: int, distinct_id: str) -> WriteBatch:
    ctx = validate.Context(store.projects, now_ms(), "track")
    batch = WriteBatch(received_ms=ctx.now_ms)
    for i in range(n):
        record = validate.validate_event(event("e", distinct_id), i, ctx)
        assert isinstance(record, validate.EventRecord)
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


def _count(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    finally:
        conn.close()


def _hold_write_lock(path: Path, seconds: float) -> threading.Thread:
    """Keep the database write-locked for a while, so the writer's queue fills up."""
    locked = threading.Event()

    def hold() -> None:
        conn = connect(str(path))
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
def store(tmp_path: Path) -> Store:
    s = Store(str(tmp_path / "s.db"), [TOKEN])
    s.open()
    yield s  # type: ignore[misc]
    s.close()


def test_group_commit_commits_queued_batches_together(store: Store, tmp_path: Path) -> None:
    async def scenario() -> None:
        holder = _hold_write_lock(tmp_path / "s.db", 0.5)
        writes = [asyncio.ensure_future(store.write(_batch(store, 10, f"u{i}"))) for i in range(40)]
        await asyncio.gather(*writes)
        holder.join()

    run(scenario)
    assert _count(tmp_path / "s.db") == 400
    assert store.commit_count <= 3  # the first batch alone, the rest in one or two groups


def test_a_failing_batch_does_not_sink_the_others(store: Store, tmp_path: Path) -> None:
    async def scenario() -> list[object]:
        holder = _hold_write_lock(tmp_path / "s.db", 0.3)
        bad = _batch(store, 2, "bad")
        bad.events[1].project_id = None  # type: ignore[assignment]  # violates NOT NULL
        batches = [_batch(store, 5, "a"), _batch(store, 5, "b"), bad, _batch(store, 5, "c")]
        results = await asyncio.gather(*(store.write(b) for b in batches), return_exceptions=True)
        holder.join()
        return results

    results = run(scenario)
    assert isinstance(results[2], sqlite3.IntegrityError)
    assert all(not isinstance(r, BaseException) for i, r in enumerate(results) if i != 2)
    assert _count(tmp_path / "s.db") == 15  # nothing of the bad batch, everything of the others


def test_backpressure_and_closed_store(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "b.db"), [TOKEN], max_pending=2)
    store.open()

    async def scenario() -> list[object]:
        holder = _hold_write_lock(tmp_path / "b.db", 0.5)
        await asyncio.sleep(0)
        first = asyncio.ensure_future(store.write(_batch(store, 1, "x")))
        await asyncio.sleep(0)  # let it queue
        deadline = time.monotonic() + 10
        while store._pending and time.monotonic() < deadline:  # the writer took it; it waits for the lock
            await asyncio.sleep(0.01)
        assert store._pending == 0
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

"""The SQLite writer in a process of its own (``store.sqlite.writer_process``), and the writer's
per-group timings (``GET /api/writer``)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from empmix_collector.domain.records import WriteBatch
from empmix_collector.http.app import create_app
from empmix_collector.settings import Settings
from empmix_collector.store.base import StoreUnavailable
from empmix_collector.store.sqlite import SqliteStore
from empmix_collector.store.sqlite.writer_process import ProcessWriter
from tests.collector.conftest import TOKEN, event
from tests.collector.dbs import rows
from tests.collector.test_store import _batch, _count, _until, _WriteLock, _Writes, run


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "events.db")


@pytest.fixture
def store(db: str) -> Iterator[SqliteStore]:
    s = SqliteStore(db, [TOKEN], writer_process=True)
    s.open()
    yield s
    s.close()


def _child_pid(store: SqliteStore) -> int:
    writer = store._writer
    assert isinstance(writer, ProcessWriter)
    pid: int = writer._child.pid
    return pid


def test_batches_are_acknowledged_once_committed_and_stored_once(store: SqliteStore, db: str) -> None:
    assert _child_pid(store) != os.getpid()  # the writer is another process
    batches = [_batch(store, 20, f"u{i}") for i in range(30)]

    async def scenario() -> None:
        lock, started = _WriteLock(db), _Writes(store)
        writes = [started.start(batch) for batch in batches]
        await _until(lambda: started.queued == 30 and store.pending == 30, "all 30 sent to the writer")
        assert not any(write.done() for write in writes)  # none acknowledged while the file is locked
        assert _count(db) == 0
        lock.release()
        for write in writes:
            assert not (await write).failed
        assert _count(db) == 600  # every acknowledged record is there
        for batch in batches[:5]:  # a retry of acknowledged batches stores nothing twice
            await store.write(batch)

    run(scenario)
    assert _count(db) == 600
    assert store.commit_count >= 1
    stats = store.writer_stats.snapshot()
    assert sum(group["records"] for group in stats["groups"]) == 700
    assert all(group["hold_ms"] >= group["commit_ms"] >= 0 for group in stats["groups"])


def test_a_killed_writer_process_turns_its_batches_away_and_a_new_one_takes_over(store: SqliteStore, db: str) -> None:
    old = _child_pid(store)

    async def scenario() -> None:
        lock, started = _WriteLock(db), _Writes(store)
        waiting = started.start(_batch(store, 10, "lost"))
        await _until(lambda: store.pending == 1, "the batch was sent to the writer")
        os.kill(old, signal.SIGKILL)
        with pytest.raises(StoreUnavailable):  # answered 503: it was never acknowledged
            await waiting
        lock.release()
        await _until(lambda: _child_pid(store) != old, "a new writer process was started")
        result = await store.write(_batch(store, 3, "after"))
        assert not result.failed

    run(scenario)
    assert sorted({row[0] for row in rows(db, "SELECT distinct_id FROM events")}) == ["after"]


def test_the_writer_endpoint_reports_each_group_after_a_mark(db: str) -> None:
    settings = Settings(db_path=db, tokens=(TOKEN,), secret="s3cret", writer_process=True)
    with TestClient(create_app(settings), headers={"Authorization": "Bearer s3cret"}) as client:
        mark = client.get("/api/writer?after=999999999").json()
        assert mark["groups"] == []
        for n in range(3):
            reply = client.post("/track", json=[event("e", f"d{n}")])
            assert reply.status_code == 200
        body = client.get(f"/api/writer?after={mark['seq']}").json()
        assert [group["records"] for group in body["groups"]] == [1, 1, 1]
        assert body["seq"] == mark["seq"] + 3
        assert all(set(group) >= {"hold_ms", "wait_ms", "commit_ms", "cpu_ms"} for group in body["groups"])
        assert body["load"]["inflight_requests"] == 1  # this request
        assert client.get(f"/api/writer?after={body['seq']}").json()["groups"] == []


def test_the_writer_endpoint_needs_the_secret(db: str) -> None:
    settings = Settings(db_path=db, tokens=(TOKEN,), secret="s3cret")
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/writer").status_code == 401
        assert client.get("/api/writer", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_small_batches_go_alone_before_a_large_oldest_batch() -> None:
    """Behind a busy writer, 2,000-record batches then a one-event batch: the one-event batch is
    committed in the next group, alone, and each large batch in a group of its own after it."""
    import threading

    from empmix_collector.store.writer import MAX_GROUP_RECORDS, GroupWriter

    entered, release, groups = threading.Event(), threading.Event(), []

    def commit(batches: list[WriteBatch], isolated: bool) -> list[object]:
        if not groups:
            entered.set()
            release.wait(20)
        groups.append([len(b.events) for b in batches])
        return [object() for _ in batches]

    writer = GroupWriter(commit)  # type: ignore[arg-type]
    writer.start()
    big = [WriteBatch(events=[object()] * MAX_GROUP_RECORDS) for _ in range(3)]  # type: ignore[list-item]

    async def scenario() -> None:
        import asyncio

        first = asyncio.ensure_future(writer.submit(WriteBatch(events=[object()])))  # type: ignore[list-item]
        await _until(entered.is_set, "the writer holds the first group")
        writes = [asyncio.ensure_future(writer.submit(batch)) for batch in big]
        writes.append(asyncio.ensure_future(writer.submit(WriteBatch(events=[object()]))))  # type: ignore[list-item]
        await _until(lambda: writer.pending == 4, "four batches wait")
        release.set()
        await asyncio.gather(first, *writes)

    try:
        run(scenario)
    finally:
        writer.stop()
    assert groups == [[1], [1], [MAX_GROUP_RECORDS], [MAX_GROUP_RECORDS], [MAX_GROUP_RECORDS]]


def test_the_cli_runs_the_sqlite_writer_in_a_process(tmp_path: Path) -> None:
    from empmix_collector.cli import build_parser, settings_from_args

    parse: Callable[[list[str]], Settings] = lambda extra: settings_from_args(  # noqa: E731
        build_parser().parse_args(["--db", str(tmp_path / "x.db"), "--token", TOKEN, *extra])
    )
    assert parse([]).writer_process is True
    assert parse(["--writer-thread"]).writer_process is False

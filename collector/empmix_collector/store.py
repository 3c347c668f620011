"""SQLite storage: schema, one writer thread with group commit, pooled readers.

SQLite has one writer at a time, so (as in Datasette) one thread owns the only
write connection. Requests put their validated batch on a queue and await a
future; the writer drains every batch waiting, applies them in one transaction
(group commit; if that fails, each batch alone, so one bad batch cannot sink the
others) and only then resolves the futures. A reply is therefore never sent before its records are durable
(WAL, ``synchronous=NORMAL``: a committed transaction survives ``kill -9``).
Reads run on separate connections in worker threads.

Example::

    store = Store("events.db", ["tok"])
    store.open()
    result = await store.write(WriteBatch(events=[...], received_ms=now))
    persons = await store.read(query.list_persons, project_id)
    store.close()
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from empmix_collector.writes import BatchWriter, WriteBatch, WriteResult

__all__ = ["Store", "WriteBatch", "WriteResult", "StoreBusy", "StoreClosed", "SCHEMA"]

log = logging.getLogger("empmix_collector.store")
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS projects (
  id INTEGER PRIMARY KEY, token TEXT UNIQUE NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS events (                 -- append-only, never rewritten
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL,
  event TEXT NOT NULL, distinct_id TEXT NOT NULL,    -- as sent ('' = not tied to a user)
  time_ms INTEGER NOT NULL,                          -- stored time (arrival time if none, clamped if future)
  dedup_time_ms INTEGER NOT NULL,                    -- time as sent, -1 if none: part of the dedup key
  received_ms INTEGER NOT NULL,
  insert_id TEXT NOT NULL, insert_id_generated INTEGER NOT NULL DEFAULT 0,
  properties TEXT NOT NULL);
-- exactly once: (project, $insert_id, event, distinct_id, time as sent). Time leads the key so
-- that inserts append near the right edge of the b-tree instead of touching random pages
-- (random uuids first cost ~3x in write throughput).
CREATE UNIQUE INDEX IF NOT EXISTS ux_events_dedup
  ON events(project_id, dedup_time_ms, insert_id, event, distinct_id);
CREATE INDEX IF NOT EXISTS ix_events_did_time ON events(project_id, distinct_id, time_ms);
-- covering for funnels and retention (event, time, distinct_id, rowid): no table lookups
CREATE INDEX IF NOT EXISTS ix_events_name_time ON events(project_id, event, time_ms, distinct_id);
CREATE TABLE IF NOT EXISTS persons (
  id INTEGER PRIMARY KEY AUTOINCREMENT, project_id INTEGER NOT NULL,
  is_identified INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,
  properties TEXT NOT NULL DEFAULT '{}');
CREATE INDEX IF NOT EXISTS ix_persons_project ON persons(project_id, id);
CREATE TABLE IF NOT EXISTS person_distinct_ids (    -- the identity map, resolved at query time
  project_id INTEGER NOT NULL, distinct_id TEXT NOT NULL,
  person_id INTEGER NOT NULL, created_at INTEGER NOT NULL, seq INTEGER NOT NULL,
  PRIMARY KEY (project_id, distinct_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ix_pdi_person ON person_distinct_ids(person_id, seq);
CREATE TABLE IF NOT EXISTS aliases (                -- an alias value is registered once
  project_id INTEGER NOT NULL, alias TEXT NOT NULL, target_distinct_id TEXT NOT NULL,
  created_at INTEGER NOT NULL, PRIMARY KEY (project_id, alias)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS merges (                 -- every merge attempt (rule 12)
  id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL, insert_id TEXT,
  kind TEXT NOT NULL, from_id TEXT NOT NULL, to_id TEXT NOT NULL,
  result TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', detail TEXT,
  time_ms INTEGER NOT NULL, received_ms INTEGER NOT NULL);
-- an identical refused (or no-op) attempt is logged once, however many events repeat it
CREATE UNIQUE INDEX IF NOT EXISTS ux_merges_once
  ON merges(project_id, kind, from_id, to_id, result, reason) WHERE result <> 'merged';
CREATE TABLE IF NOT EXISTS profile_updates (        -- dedup of /engage records carrying $insert_id
  project_id INTEGER NOT NULL, insert_id TEXT NOT NULL, distinct_id TEXT NOT NULL,
  received_ms INTEGER NOT NULL, PRIMARY KEY (project_id, insert_id)) WITHOUT ROWID;
"""

CHECKPOINT_INTERVAL_S = 0.5
"""How often the checkpointer thread runs a PASSIVE checkpoint (copies the WAL into the db)."""
WRITER_AUTOCHECKPOINT_PAGES = 20_000
"""The writer checkpoints itself only if the WAL grows past this (80 MB): a backstop."""
MAX_GROUP_RECORDS = 20_000
"""Records committed in one transaction at most (latency bound under load)."""
DEFAULT_MAX_PENDING = 2_000
"""Batches waiting for the writer before requests are turned away with 503."""


class StoreClosed(RuntimeError):
    """The store is not open (not yet, or no longer)."""


class StoreBusy(RuntimeError):
    """Too many batches are waiting for the writer; retry later."""


@dataclass
class _Task:
    batch: WriteBatch
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[WriteResult]


_STOP = object()


def connect(path: str, *, readonly: bool = False) -> sqlite3.Connection:
    """Open ``path`` with the pragmas the collector relies on (WAL, NORMAL sync)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0, cached_statements=512)
    conn.execute("PRAGMA busy_timeout=30000")
    if readonly:
        conn.execute("PRAGMA query_only=1")
    else:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError(f"cannot put {path!r} in WAL mode (got {mode!r})")
        conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA cache_size=-32000")
    if not readonly:
        # the checkpointer thread copies the WAL back; the writer does it only as a backstop
        conn.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT_PAGES}")
    conn.execute("PRAGMA temp_store=MEMORY")
    return conn


class Store:
    """The collector's database.

    Args:
        path: SQLite file.
        tokens: project tokens; each gets a project row (created on first open).
        max_ids_per_person: identity cluster cap.
        max_pending: queued batches beyond which :meth:`write` raises :class:`StoreBusy`.
    """

    def __init__(
        self,
        path: str,
        tokens: Sequence[str],
        *,
        max_ids_per_person: int = 500,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self.path = path
        self.tokens = tuple(tokens)
        self.max_ids_per_person = max_ids_per_person
        self.max_pending = max_pending
        self.projects: dict[str, int] = {}
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending = 0
        self._pending_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._open = False
        self.commit_count = 0
        """Transactions committed so far (observability; group commit makes it < batches)."""

    # -- lifecycle -------------------------------------------------------------------

    def open(self) -> None:
        """Create the schema and the projects, and start the writer thread."""
        if self._open:
            return
        conn = connect(self.path)
        conn.executescript(SCHEMA)
        now = int(time.time() * 1000)
        for token in self.tokens:
            conn.execute("INSERT OR IGNORE INTO projects(token, created_at) VALUES (?, ?)", (token, now))
        rows = conn.execute("SELECT token, id FROM projects").fetchall()
        self.projects = {token: pid for token, pid in rows if token in self.tokens}
        writer = BatchWriter(conn, max_ids_per_person=self.max_ids_per_person)
        self._thread = threading.Thread(target=self._run, args=(conn, writer), name="empmix-writer", daemon=True)
        self._stop_checkpoints.clear()
        self._checkpointer = threading.Thread(target=self._checkpoints, name="empmix-checkpoint", daemon=True)
        self._open = True
        self._thread.start()
        self._checkpointer.start()

    def close(self) -> None:
        """Finish the queued writes, stop the writer and close every connection. Idempotent."""
        if not self._open:
            return
        self._open = False
        self._queue.put(_STOP)
        if self._thread is not None:
            self._thread.join()
        self._stop_checkpoints.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
        with self._readers_lock:
            for conn in self._all_readers:
                conn.close()
            self._all_readers.clear()
        self._readers = queue.SimpleQueue()

    @property
    def is_open(self) -> bool:
        """Whether writes are accepted."""
        return self._open

    # -- writes ----------------------------------------------------------------------

    async def write(self, batch: WriteBatch) -> WriteResult:
        """Store a batch; returns once its transaction has committed.

        Raises:
            StoreClosed: the store is not open.
            StoreBusy: too many batches are already waiting.
            sqlite3.Error: the commit failed (nothing of the batch is stored).
        """
        if not self._open:
            raise StoreClosed("the store is closed")
        with self._pending_lock:
            if self._pending >= self.max_pending:
                raise StoreBusy(f"{self._pending} batches are waiting to be written")
            self._pending += 1
        loop = asyncio.get_running_loop()
        future: asyncio.Future[WriteResult] = loop.create_future()
        self._queue.put(_Task(batch, loop, future))
        # shield: a client that hangs up does not cancel a write already queued
        return await asyncio.shield(future)

    def _run(self, conn: sqlite3.Connection, writer: BatchWriter) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is _STOP:
                break
            group = [item]
            size = len(item.batch)
            while size < MAX_GROUP_RECORDS:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stopping = True
                    break
                group.append(nxt)
                size += len(nxt.batch)
            with self._pending_lock:
                self._pending -= len(group)
            self._commit_group(conn, writer, group)
        conn.close()

    def _checkpoints(self) -> None:
        """Copy committed WAL frames into the database off the writer's path.

        A commit then only appends to the WAL; the page copying and the fsyncs of a
        checkpoint run here (PASSIVE never blocks the writer or the readers).
        """
        conn = connect(self.path)
        try:
            while not self._stop_checkpoints.wait(CHECKPOINT_INTERVAL_S):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:  # busy or I/O: try again next round
                    log.warning("checkpoint failed: %s", exc)
        finally:
            conn.close()

    def _commit_group(self, conn: sqlite3.Connection, writer: BatchWriter, group: list[_Task]) -> None:
        outcomes: list[tuple[_Task, WriteResult | None, BaseException | None]]
        result: WriteResult | None
        try:
            results = self._transaction(conn, writer, [task.batch for task in group])
            outcomes = [(task, result, None) for task, result in zip(group, results, strict=True)]
        except Exception as exc:
            if len(group) == 1:
                log.exception("writing a batch failed; it was rolled back")
                outcomes = [(group[0], None, exc)]
            else:
                # find the culprit: one transaction per batch, so the others still commit
                outcomes = []
                for task in group:
                    try:
                        result = self._transaction(conn, writer, [task.batch])[0]
                    except Exception as single:
                        log.exception("writing a batch failed; it was rolled back")
                        outcomes.append((task, None, single))
                    else:
                        outcomes.append((task, result, None))
        # one wake-up per event loop for the whole group, not one per request
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[_Task, WriteResult | None, BaseException | None]]] = {}
        for outcome in outcomes:
            by_loop.setdefault(outcome[0].loop, []).append(outcome)
        for loop, delivered in by_loop.items():
            try:
                loop.call_soon_threadsafe(_deliver_all, delivered)
            except RuntimeError:  # the awaiting loop is gone
                pass

    def _transaction(
        self, conn: sqlite3.Connection, writer: BatchWriter, batches: list[WriteBatch]
    ) -> list[WriteResult]:
        """Apply ``batches`` in one transaction and commit; roll back everything on error."""
        try:
            conn.execute("BEGIN IMMEDIATE")
            results = writer.apply_group(batches)
            conn.execute("COMMIT")
            self.commit_count += 1
            return results
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            writer.forget_caches()
            raise

    # -- reads -----------------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        try:
            return self._readers.get_nowait()
        except queue.Empty:
            conn = connect(self.path, readonly=True)
            with self._readers_lock:
                self._all_readers.append(conn)
            return conn

    def read_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` on a pooled read connection (blocking)."""
        if not self._open:
            raise StoreClosed("the store is closed")
        conn = self._reader()
        try:
            return fn(conn, *args)
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._readers.put(conn)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` in a worker thread on a read connection."""
        return await asyncio.to_thread(self.read_sync, fn, *args)


def _deliver_all(outcomes: list[tuple[_Task, WriteResult | None, BaseException | None]]) -> None:
    for task, result, error in outcomes:
        if task.future.done():
            continue
        if error is not None:
            task.future.set_exception(error)
        else:
            task.future.set_result(result)  # type: ignore[arg-type]

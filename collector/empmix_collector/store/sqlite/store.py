"""The embedded store: one SQLite file (WAL), one writer thread, pooled readers.

SQLite has one writer at a time, so (as in Datasette) one thread owns the only
write connection and commits groups of batches (``store.writer``). WAL with
``synchronous=NORMAL``: a committed transaction survives ``kill -9`` of the
collector (a power loss can drop the last commits). A second thread copies the WAL
back into the database (PASSIVE checkpoints) off the writer's path. Reads run on
separate connections in worker threads.

Example::

    store = SqliteStore("events.db", ["tok"])
    store.open()
    result = await store.write(WriteBatch(events=[...], received_ms=now))
    persons = await store.list_persons(store.projects["tok"], 100, 0)
    store.close()
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from typing import Any, TypeVar

from empmix_collector.domain.records import WriteBatch, WriteResult
from empmix_collector.store import base
from empmix_collector.store.base import QueryTooLong, StoreUnavailable
from empmix_collector.store.batch import BatchWriter
from empmix_collector.store.cancel import ReadCancel
from empmix_collector.store.sql import Row, fixed_name
from empmix_collector.store.sqlite.schema import upgrade
from empmix_collector.store.sqlite.writer_process import ProcessWriter
from empmix_collector.store.sqlstore import SqlStore, register_projects
from empmix_collector.store.writer import DEFAULT_MAX_PENDING, Commit, GroupWriter
from empmix_collector.store.writer_stats import WriterStats

__all__ = ["SqliteStore", "connect", "make_commit"]

log = logging.getLogger("empmix_collector.store")
T = TypeVar("T")

CHECKPOINT_INTERVAL_S = 0.5
RESTART_PAGES = 4096
"""Past this WAL size (16 MB), the checkpointer follows its PASSIVE checkpoint with a RESTART one:
under constant writes a PASSIVE checkpoint never catches up with the writer, so the WAL never
starts over and grows until the writer's own backstop checkpoint (:data:`WRITER_AUTOCHECKPOINT_PAGES`)
copies and syncs it inside a commit: 100-370 ms commits every ~2 s at 50 events/request, the
requests' p99. The RESTART right after the PASSIVE has little left to copy; it takes the write lock
only if the writer is between groups (no busy wait here), and the WAL then starts over at its
beginning."""
"""How often the checkpointer thread runs a PASSIVE checkpoint (copies the WAL into the db)."""
WRITER_AUTOCHECKPOINT_PAGES = 20_000
"""The writer checkpoints itself only if the WAL grows past this (80 MB): a backstop."""
_ROWS_PER_STATEMENT = 100


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


class SqliteSql:
    """``store.sql.WriteSql`` over one ``sqlite3`` connection.

    Ids come from counters kept here (one writer per file, so no one else draws
    them); there is nothing to lock.
    """

    pin_join = "CROSS JOIN"
    no_index = "+"
    person_key = "COALESCE(m.person_id, 'd:' || e.distinct_id)"
    person_partition = ("COALESCE(m.person_id, 'd:' || e.distinct_id) AS k", "k")  # one key sorts faster here

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self._next: dict[str, int] = {}

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.conn.execute(sql, params).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        row: Row | None = self.conn.execute(sql, params).fetchone()
        return row

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(sql, params)

    def in_list(self, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return "IN (" + ",".join("?" * len(values)) + ")", list(values)

    def json_field(self, column: str, key: str) -> tuple[str, str]:
        """SQLite reads every text the collector stores (``->``: the value's JSON text)."""
        return f"{column} -> '$.\"{fixed_name(key)}\"'", "NULL"

    def insert_many(self, table: str, columns: Sequence[str], rows: Sequence[Row], returning: str = "") -> list[Row]:
        """Multi-row ``INSERT``: one statement per 100 rows instead of one step per row.

        ``executemany`` releases and re-takes the GIL for every row; while the event loop
        thread is busy each re-take can wait a whole switch interval, which starved the
        writer (7k events/s instead of 45k+ in a micro-benchmark with a busy main thread).
        """
        head = f"INSERT INTO {table}({', '.join(columns)}) VALUES "
        row = "(" + ", ".join("?" * len(columns)) + ")"
        tail = " ON CONFLICT DO NOTHING" + (f" RETURNING {returning}" if returning else "")
        inserted: list[Row] = []
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            part = rows[start : start + _ROWS_PER_STATEMENT]
            cursor = self.conn.execute(head + ",".join([row] * len(part)) + tail, list(chain.from_iterable(part)))
            if returning:
                inserted.extend(cursor.fetchall())
        return inserted

    def existing_ids(self, project_id: int, distinct_ids: Sequence[str]) -> list[str]:
        among, values = self.in_list(distinct_ids)
        sql = f"SELECT distinct_id FROM person_distinct_ids WHERE project_id = ? AND distinct_id {among}"
        return [row[0] for row in self.conn.execute(sql, (project_id, *values))]

    def new_ids(self, what: str, count: int) -> list[int]:
        if what not in self._next:
            if what == "person":
                sql = (
                    "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'persons'), 0),"
                    " COALESCE((SELECT MAX(id) FROM persons), 0))"
                )
            else:
                sql = "SELECT COALESCE(MAX(seq), 0) FROM person_distinct_ids"
            self._next[what] = int(self.conn.execute(sql).fetchone()[0]) + 1
        start = self._next[what]
        self._next[what] = start + count
        return list(range(start, start + count))

    def lock_projects(self, project_ids: Iterable[int], *, exclusive: bool) -> None:
        """Nothing to do: ``BEGIN IMMEDIATE`` already makes this the only writer."""

    def forget(self) -> None:
        self._next.clear()


def make_commit(conn: sqlite3.Connection, max_ids_per_person: int, stats: WriterStats) -> Commit:
    """The writer's transaction function on ``conn`` (``BEGIN IMMEDIATE`` ... ``COMMIT``; see
    ``store.writer.Commit``); ``stats.commit_s`` gets each ``COMMIT``'s time."""
    batches = BatchWriter(SqliteSql(conn), max_ids_per_person=max_ids_per_person, faults=(sqlite3.OperationalError,))

    def commit(group: list[WriteBatch], isolated: bool) -> list[WriteResult | Exception]:
        try:
            conn.execute("BEGIN IMMEDIATE")
            results: list[WriteResult | Exception] = (
                batches.apply_isolated(group) if isolated else list(batches.apply_group(group))
            )
            before = time.perf_counter()
            conn.execute("COMMIT")
            stats.commit_s = time.perf_counter() - before
            return results
        except BaseException as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            batches.forget_caches()
            if isinstance(exc, sqlite3.OperationalError):  # locked too long, disk full, I/O error
                raise StoreUnavailable(f"SQLite: {exc}") from exc
            raise

    return commit


class SqliteStore(SqlStore):
    """The collector's embedded database (implements ``store.base.Store``).

    Args:
        path: SQLite file (created if missing).
        tokens: project tokens; each gets a project row (created on first open).
        max_ids_per_person: identity cluster cap.
        max_pending: queued batches beyond which ``write`` raises ``StoreBusy``.
        writer_process: run the writer in a child process (``sqlite.writer_process``: it then
            never waits for the event loop's GIL); else a thread of this process.
    """

    def __init__(
        self,
        path: str,
        tokens: Sequence[str],
        *,
        max_ids_per_person: int = 500,
        max_pending: int = DEFAULT_MAX_PENDING,
        writer_process: bool = False,
    ) -> None:
        super().__init__(tokens, max_ids_per_person=max_ids_per_person, max_pending=max_pending)
        self.path = path
        self.writer_process = writer_process
        self._checkpointer: threading.Thread | None = None
        self._stop_checkpoints = threading.Event()
        self._readers: queue.SimpleQueue[SqliteSql] = queue.SimpleQueue()
        self._all_readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._aside_conn: sqlite3.Connection | None = None  # cookieless salts and resets
        self._aside_lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------

    def open(self) -> None:
        """Create or upgrade the schema, register the projects, start the writer."""
        if self._writer is not None:
            return
        try:
            conn = connect(self.path)
        except (sqlite3.Error, RuntimeError) as exc:  # a missing folder, no permission, not a database
            raise StoreUnavailable(f"cannot open the SQLite database {os.path.abspath(self.path)}: {exc}") from exc
        try:
            found, now = upgrade(conn, self.path)
        except sqlite3.Error as exc:
            conn.close()
            raise StoreUnavailable(f"cannot open the SQLite database {os.path.abspath(self.path)}: {exc}") from exc
        if found and found != now:
            log.warning("upgraded %s from schema version %d to %d", self.path, found, now)
        sql = SqliteSql(conn)
        self.projects = register_projects(sql, self.tokens, int(time.time() * 1000))
        if self.writer_process:
            conn.close()
            self._writer = ProcessWriter(
                self.path, max_ids_per_person=self.max_ids_per_person, max_pending=self.max_pending
            )
        else:
            stats = WriterStats()
            commit = make_commit(conn, self.max_ids_per_person, stats)
            self._writer = GroupWriter(commit, on_exit=conn.close, max_pending=self.max_pending, stats=stats)
        self._stop_checkpoints.clear()
        self._checkpointer = threading.Thread(target=self._checkpoints, name="empmix-checkpoint", daemon=True)
        self._writer.start()
        self._checkpointer.start()

    def close(self) -> None:
        """Finish the queued writes, stop the writer and close every connection. Idempotent."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        writer.stop()
        self._stop_checkpoints.set()
        if self._checkpointer is not None:
            self._checkpointer.join()
        with self._readers_lock:
            for conn in self._all_readers:
                conn.close()
            self._all_readers.clear()
        self._readers = queue.SimpleQueue()
        with self._aside_lock:
            if self._aside_conn is not None:
                self._aside_conn.close()
                self._aside_conn = None
        self._stop_reads()

    def _checkpoints(self) -> None:
        """Copy committed WAL frames into the database off the writer's path.

        A commit then only appends to the WAL; the page copying and the fsyncs of a
        checkpoint run here (PASSIVE never blocks the writer or the readers). Past
        :data:`RESTART_PAGES` a RESTART checkpoint follows, so the WAL starts over. Once the
        writer has been idle for a round, a TRUNCATE checkpoint empties the WAL file, so a
        burst does not leave it at its largest size for good. It does not wait: if a
        writer or a reader is busy, it gives up and is tried again at the next idle round.
        """
        conn = connect(self.path)
        conn.execute("PRAGMA busy_timeout=0")
        stats = self.writer_stats
        seen, truncated = -1, True
        try:
            while not self._stop_checkpoints.wait(CHECKPOINT_INTERVAL_S):
                commits = self.commit_count
                began = time.perf_counter()
                try:
                    if commits != seen:
                        busy, wal, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                        truncated = False
                        kind = "busy" if busy else "passive" if done == wal else "passive_partial"
                        stats.record_checkpoint(kind, time.perf_counter() - began, wal)
                        if wal >= RESTART_PAGES:
                            began = time.perf_counter()
                            busy = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
                            stats.record_checkpoint("restart_busy" if busy else "restart", time.perf_counter() - began)
                    elif not truncated:
                        busy = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
                        truncated = not busy
                        stats.record_checkpoint("truncate_busy" if busy else "truncate", time.perf_counter() - began, 0)
                except sqlite3.Error as exc:  # busy or I/O: try again next round
                    log.warning("checkpoint failed: %s", exc)
                seen = commits
        finally:
            conn.close()

    # -- reads -----------------------------------------------------------------------

    def _reader(self) -> SqliteSql:
        try:
            return self._readers.get_nowait()
        except queue.Empty:
            conn = connect(self.path, readonly=True)
            with self._readers_lock:
                self._all_readers.append(conn)
            return SqliteSql(conn)

    def _read_sync(self, fn: Callable[..., T], *args: Any, cancel: ReadCancel | None = None) -> T:
        reader = self._reader()
        limit = base.QUERY_TIME_LIMIT_S
        deadline = time.monotonic() + limit
        gone = cancel or ReadCancel()

        def stop() -> bool:  # SQLite calls this every 10,000 virtual machine steps; True interrupts
            return gone.cancelled or time.monotonic() > deadline

        reader.conn.set_progress_handler(stop, 10_000)
        try:
            gone.attach(reader.conn.interrupt)  # at once, from the event loop's thread
            return fn(reader, *args)
        except sqlite3.OperationalError as exc:
            if "interrupted" not in str(exc):
                raise StoreUnavailable(f"SQLite: {exc}") from exc
            gone.check()
            raise QueryTooLong(f"the query ran past its time limit of {limit:g} s and was cancelled") from exc
        finally:
            gone.detach()
            reader.conn.set_progress_handler(None, 0)
            if reader.conn.in_transaction:
                reader.conn.execute("ROLLBACK")
            self._readers.put(reader)

    def _aside_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """One write connection beside the writer's (autocommit: each statement takes the
        file's write lock only for itself, waiting up to the busy timeout)."""
        with self._aside_lock:
            if self._aside_conn is None:
                self._aside_conn = connect(self.path)
            try:
                return fn(SqliteSql(self._aside_conn), *args)
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"SQLite: {exc}") from exc

"""The shared store: one PostgreSQL database for any number of collectors.

Writes: one writer thread per collector process commits groups of batches
(``store.writer``) on its own connection; the dedup index with ``ON CONFLICT DO
NOTHING`` gives exactly-once across processes, and identity changes are serialised
per project by transaction-scoped advisory locks (see ``store.batch``). A deadlock
or serialisation failure is retried; a lost connection fails the group with
``StoreUnavailable`` (answered 503 + ``Retry-After``) and the next group reconnects,
so the collector recovers by itself when the server is back. Reads use a
``psycopg_pool`` pool whose connections are checked on checkout.

Example::

    store = PostgresStore("postgresql://empmix@127.0.0.1:5432/empmix", ["tok"])
    store.open()          # StoreUnavailable if the server cannot be reached
    ...
    store.close()
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import psycopg
import psycopg.errors
from psycopg_pool import ConnectionPool, PoolTimeout

from empmix_collector.domain.records import WriteBatch, WriteResult
from empmix_collector.store import base, describe_target
from empmix_collector.store.base import QueryTooLong, StoreUnavailable
from empmix_collector.store.batch import BatchWriter
from empmix_collector.store.cancel import ReadCancel
from empmix_collector.store.postgres.schema import LOCK_SPACE, upgrade
from empmix_collector.store.sql import Row, fixed_name
from empmix_collector.store.sqlstore import HEAVY_READERS, LIGHT_READERS, SqlStore, register_projects
from empmix_collector.store.writer import DEFAULT_MAX_PENDING, GroupWriter

__all__ = ["PostgresStore", "PgSql", "CONNECT_TIMEOUT_S", "MAX_RETRIES"]

log = logging.getLogger("empmix_collector.store")
T = TypeVar("T")

CONNECT_TIMEOUT_S = 5
"""How long a connection attempt may take before the server counts as unreachable."""
MAX_RETRIES = 8
"""Attempts of one group after deadlocks or serialisation failures."""
READ_POOL_SIZE = HEAVY_READERS + LIGHT_READERS
"""Read connections per collector process at most: one per read thread."""
READ_WORK_MEM = "64MB"
"""``work_mem`` of the read connections: a funnel over 10^6 events sorts its ~10^5 matching
rows in memory (the server's default 4 MB spills them to disk). Memory is taken only
by a sort that needs it."""
_Conn = psycopg.Connection[tuple[Any, ...]]


@functools.lru_cache(maxsize=2048)
def _pg(sql: str) -> str:
    """The collector's ``?`` placeholders in psycopg's ``%s`` style."""
    return sql.replace("?", "%s")


_COLUMN_TYPES = {
    "id": "bigint", "project_id": "bigint", "person_id": "bigint", "seq": "bigint", "created_at": "bigint",
    "time_ms": "bigint", "dedup_time_ms": "bigint", "received_ms": "bigint", "insert_id_generated": "boolean",
    "event": "text", "distinct_id": "text", "insert_id": "text", "properties": "text",
}  # fmt: skip
"""Array types for ``insert_many`` (the columns the batch writer inserts in bulk)."""


def _text_safe(params: Sequence[Any]) -> Sequence[Any]:
    """PostgreSQL text cannot hold NUL: store U+FFFD in its place (ids and names only;
    JSON text escapes it). The identity rules still see the NUL and refuse such ids."""
    for value in params:
        if type(value) is str and "\x00" in value:
            return [v.replace("\x00", "\ufffd") if type(v) is str else v for v in params]
    return params


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _configure_reader(conn: _Conn) -> None:
    """A new read connection: room to sort in memory, and the query time limit (the pool's
    connections autocommit)."""
    conn.execute("SELECT set_config('work_mem', %s, false)", (READ_WORK_MEM,))
    limit_ms = max(int(base.QUERY_TIME_LIMIT_S * 1000), 1)
    conn.execute("SELECT set_config('statement_timeout', %s, false)", (str(limit_ms),))


class PgSql:
    """``store.sql.WriteSql`` over one psycopg connection."""

    pin_join = "JOIN"
    no_index = ""
    person_key = "COALESCE(m.person_id::text, 'd:' || e.distinct_id) COLLATE \"C\""
    person_partition = ("m.person_id AS k1, CASE WHEN m.person_id IS NULL THEN e.distinct_id END AS k2", "k1, k2")

    def __init__(self, conn: _Conn, cancel: ReadCancel | None = None) -> None:
        self.conn = conn
        self.cancel = cancel
        """A read's cancel switch: checked before each statement (a cancel request sent between
        two statements finds nothing to cancel on the server)."""

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        if self.cancel is not None:
            self.cancel.check()
        return self.conn.execute(_pg(sql), _text_safe(params)).fetchall()

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        if self.cancel is not None:
            self.cancel.check()
        return self.conn.execute(_pg(sql), _text_safe(params)).fetchone()

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.conn.execute(_pg(sql), _text_safe(params))

    def in_list(self, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return "= ANY(?)", [list(values)]

    def json_field(self, column: str, key: str) -> tuple[str, str]:
        """``json ->`` for texts without a ``\\u`` escape; PostgreSQL refuses to read some of
        those (``\\u0000``, a lone surrogate), so such a text is handed over whole."""
        escaped = f"strpos({column}, '\\u') > 0"
        field = f"CASE WHEN NOT {escaped} THEN ({column}::json -> '{fixed_name(key)}')::text END"
        return field, f"CASE WHEN {escaped} THEN {column} END"

    def insert_many(self, table: str, columns: Sequence[str], rows: Sequence[Row], returning: str = "") -> list[Row]:
        """One ``INSERT ... SELECT FROM unnest(array, ...)`` for all rows: a short statement
        (psycopg parses and the server plans it once) with one array per column."""
        arrays: list[Any] = [list(column) for column in zip(*rows, strict=True)]
        for n, name in enumerate(columns):
            if _COLUMN_TYPES[name] == "text" and "\x00" in "".join(arrays[n]):
                arrays[n] = [value.replace("\x00", "\ufffd") for value in arrays[n]]
        casts = ", ".join(f"%b::{_COLUMN_TYPES[name]}[]" for name in columns)  # %b: binary arrays, dumped in C
        sql = f"INSERT INTO {table}({', '.join(columns)}) SELECT * FROM unnest({casts}) ON CONFLICT DO NOTHING"
        if returning:
            return self.conn.execute(sql + f" RETURNING {returning}", arrays).fetchall()
        self.conn.execute(sql, arrays)
        return []

    def existing_ids(self, project_id: int, distinct_ids: Sequence[str]) -> list[str]:
        """One primary-key probe per id. ``distinct_id = ANY(array)`` is planned as a scan of
        the project's whole identity map (the array is not an index condition on the key's
        second column), which grew every group's cost with the number of persons; the
        ``OFFSET 0`` keeps the lateral subquery a per-id index lookup."""
        rows = self.conn.execute(
            "SELECT m.distinct_id FROM unnest(%s::text[]) AS u(d) CROSS JOIN LATERAL"
            " (SELECT distinct_id FROM person_distinct_ids WHERE project_id = %s AND distinct_id = u.d OFFSET 0) m",
            (list(_text_safe(distinct_ids)), project_id),
        ).fetchall()
        return [row[0] for row in rows]

    def new_ids(self, what: str, count: int) -> list[int]:
        sequence = "persons_id_seq" if what == "person" else "person_distinct_ids_seq"
        rows = self.conn.execute(
            f"SELECT nextval('{sequence}') FROM generate_series(1, %s)",
            (count,),  # fixed names, not input
        ).fetchall()
        return sorted(int(row[0]) for row in rows)

    def lock_projects(self, project_ids: Iterable[int], *, exclusive: bool) -> None:
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        for project_id in sorted(project_ids):  # one order: two writers cannot wait on each other
            self.conn.execute(f"SELECT {function}(%s, %s)", (LOCK_SPACE, project_id))

    def forget(self) -> None:
        """Nothing cached: ids come from sequences."""


class PostgresStore(SqlStore):
    """The collector's database on PostgreSQL (implements ``store.base.Store``).

    Args:
        url: ``postgresql://user:password@host:port/dbname`` (libpq parameters allowed).
        tokens: project tokens; each gets a project row (created on first open).
        max_ids_per_person: identity cluster cap.
        max_pending: queued batches beyond which ``write`` raises ``StoreBusy``.
    """

    def __init__(
        self,
        url: str,
        tokens: Sequence[str],
        *,
        max_ids_per_person: int = 500,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        super().__init__(tokens, max_ids_per_person=max_ids_per_person, max_pending=max_pending)
        self.url = url
        self.where = describe_target(url)
        self._pool: ConnectionPool[_Conn] | None = None
        self._conn: _Conn | None = None
        self._sql: PgSql | None = None

    def _connect(self) -> _Conn:
        try:
            return psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S, application_name="empmix-collector")
        except psycopg.Error as exc:
            raise StoreUnavailable(f"cannot connect to PostgreSQL at {self.where}: {_first_line(exc)}") from exc

    # -- lifecycle -------------------------------------------------------------------

    def open(self) -> None:
        """Create or upgrade the schema, register the projects, start the writer and the read pool.

        Raises:
            StoreUnavailable: the server cannot be reached (or refuses the login).
        """
        if self._writer is not None:
            return
        conn = self._connect()
        try:
            found, now = upgrade(conn, self.where)
            if found and found != now:
                log.warning("upgraded %s from schema version %d to %d", self.where, found, now)
            sql = PgSql(conn)
            with conn.transaction():
                self.projects = register_projects(sql, self.tokens, int(time.time() * 1000))
        except psycopg.OperationalError as exc:
            conn.close()
            raise StoreUnavailable(f"PostgreSQL at {self.where}: {_first_line(exc)}") from exc
        except BaseException:
            conn.close()
            raise
        self._conn, self._sql = conn, sql
        batches = BatchWriter(
            sql,
            max_ids_per_person=self.max_ids_per_person,
            faults=(psycopg.OperationalError, psycopg.InterfaceError),  # TransactionRollback is one
        )
        self._pool = ConnectionPool(
            self.url,
            min_size=1,
            max_size=READ_POOL_SIZE,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S, "application_name": "empmix-reader"},
            check=ConnectionPool.check_connection,
            configure=_configure_reader,
            open=True,
            name="empmix-readers",
        )
        self._writer = GroupWriter(
            lambda group, isolated: self._commit(batches, group, isolated),
            on_exit=self._close_writer_connection,
            max_pending=self.max_pending,
        )
        self._writer.start()

    def close(self) -> None:
        """Commit what is queued, stop the writer, close the pool. Idempotent."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        writer.stop()
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self._stop_reads()

    def _close_writer_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- writes ----------------------------------------------------------------------

    def _writer_sql(self) -> PgSql:
        """The writer's connection, reconnected if the last one broke."""
        assert self._sql is not None
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            self._conn = self._connect()
            self._sql.conn = self._conn
            log.warning("reconnected to PostgreSQL at %s", self.where)
        return self._sql

    def _commit(self, batches: BatchWriter, group: list[WriteBatch], isolated: bool) -> list[WriteResult | Exception]:
        """One transaction for ``group`` (``isolated``: each batch under a savepoint), retried
        after deadlocks and serialisation failures."""
        for attempt in range(MAX_RETRIES):
            sql = self._writer_sql()
            try:
                results: list[WriteResult | Exception] = (
                    batches.apply_isolated(group) if isolated else list(batches.apply_group(group))
                )
                before = time.perf_counter()
                sql.conn.commit()
                if self._writer is not None:
                    self._writer.stats.commit_s = time.perf_counter() - before
                return results
            except psycopg.errors.TransactionRollback as exc:  # deadlock / serialisation failure
                self._rollback(batches)
                log.info("retrying a group after %s (attempt %d)", type(exc).__name__, attempt + 1)
                time.sleep(random.uniform(0, 0.005 * 2**attempt))
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                self._rollback(batches)
                raise StoreUnavailable(f"PostgreSQL at {self.where}: {_first_line(exc)}") from exc
            except BaseException:
                self._rollback(batches)
                raise
        raise StoreUnavailable(f"PostgreSQL at {self.where}: still conflicting after {MAX_RETRIES} attempts")

    def _rollback(self, batches: BatchWriter) -> None:
        batches.forget_caches()
        conn = self._conn
        if conn is None:
            return
        try:
            if not conn.closed and not conn.broken:
                conn.rollback()
        except psycopg.Error:
            pass
        if conn.closed or conn.broken:
            conn.close()
            self._conn = None

    # -- reads -----------------------------------------------------------------------

    def _read_sync(self, fn: Callable[..., T], *args: Any, cancel: ReadCancel | None = None) -> T:
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("the read pool is closed")
        try:
            with pool.connection(timeout=CONNECT_TIMEOUT_S) as conn:
                sql = PgSql(conn, cancel)
                if cancel is not None:
                    cancel.attach(conn.cancel_safe)  # a cancel request to the server, from the event loop
                try:
                    return fn(sql, *args)
                finally:
                    if cancel is not None:
                        cancel.detach()
        except psycopg.errors.QueryCanceled as exc:
            if cancel is not None:
                cancel.check()
            limit = base.QUERY_TIME_LIMIT_S
            raise QueryTooLong(f"the query ran past its time limit of {limit:g} s and was cancelled") from exc
        except (PoolTimeout, psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise StoreUnavailable(f"PostgreSQL at {self.where}: {_first_line(exc)}") from exc

    def _aside_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """The read pool's connections autocommit: each statement is its own transaction."""
        return self._read_sync(fn, *args)

"""The interface every store implements, and the faults it reports.

The HTTP layer talks to a :class:`Store` only: it never sees SQL, a connection or a
driver exception. A store raises :class:`StoreBusy` (too much queued),
:class:`StoreClosed` (not open) or :class:`StoreUnavailable` (the database cannot be
reached or failed); the HTTP layer turns each into ``503`` with ``Retry-After``,
so nothing is acknowledged that is not committed.

Example::

    store = create_store(settings)      # empmix_collector.store.create_store
    store.open()
    result = await store.write(WriteBatch(events=[...], received_ms=now_ms))
    person = await store.get_person(store.projects["tok"], "user-1")
    store.close()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from empmix_collector.domain.records import WriteBatch, WriteResult
from empmix_collector.settings import is_postgres_url
from empmix_collector.store.cookieless import CookielessStore

__all__ = [
    "Store",
    "StoreError",
    "StoreBusy",
    "StoreClosed",
    "StoreUnavailable",
    "SchemaTooNew",
    "QueryTooLong",
    "QueryTooBig",
    "QueryGone",
    "QUERY_TIME_LIMIT_S",
    "QUERY_ROW_LIMIT",
    "RETENTION_CELL_LIMIT",
    "is_postgres_url",
]

QUERY_TIME_LIMIT_S = 30.0
"""A read of the query API running longer is cancelled (``QueryTooLong``, answered 503)."""

QUERY_ROW_LIMIT = 2_000_000
"""A funnel or retention query may read at most this many events (those of its event names in its
time range); past it the query is refused (``QueryTooBig``, answered 413) before it runs."""
RETENTION_CELL_LIMIT = 1_000_000
"""A retention table may hold at most this many numbers (cohorts x periods); past it ``QueryTooBig``."""

JSON = dict[str, Any]


class StoreError(RuntimeError):
    """Base class of the faults a store reports to the HTTP layer (all answered with 503)."""


class StoreClosed(StoreError):
    """The store is not open (not yet, or no longer)."""


class StoreBusy(StoreError):
    """Too many batches are waiting for the writer; retry later."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or failed; nothing of the batch was committed
    (or, for a connection lost during ``COMMIT``, it may have been: a retry is
    deduplicated by ``$insert_id``)."""


class QueryTooLong(StoreError):
    """A read ran past :data:`QUERY_TIME_LIMIT_S` and was cancelled."""


class QueryTooBig(StoreError):
    """A read would go past :data:`QUERY_ROW_LIMIT` or :data:`RETENTION_CELL_LIMIT`: refused
    (answered 413; narrow the time range or use a larger unit)."""


class QueryGone(StoreError):
    """A read was cancelled because no one waits for it any more (its HTTP client went away)."""


class SchemaTooNew(StoreError):
    """The database was written by a newer collector (its schema version is unknown here)."""


class Store(CookielessStore, Protocol):
    """A collector database: one write path and the reads of the query API.

    ``write`` returns only after the batch's transaction has committed. Reads return
    JSON-ready values; ``project_id`` comes from :attr:`projects`.
    """

    projects: dict[str, int]
    """token -> project id, filled by :meth:`open`."""

    @property
    def is_open(self) -> bool:
        """Whether writes are accepted."""
        ...

    def open(self) -> None:
        """Create or upgrade the schema, register the tokens, start the writer.

        Raises:
            StoreUnavailable: the database cannot be reached.
        """
        ...

    def close(self) -> None:
        """Commit what is queued, stop the writer, close every connection. Idempotent."""
        ...

    async def write(self, batch: WriteBatch) -> WriteResult:
        """Store one request's records; returns once they are committed."""
        ...

    async def get_person(self, project_id: int, distinct_id: str) -> JSON | None:
        """``{person_id, distinct_ids, identified, created_at, properties}`` or ``None``."""
        ...

    async def person_events(self, project_id: int, distinct_id: str, limit: int) -> list[JSON] | None:
        """The person's events under all its ids, oldest first; ``None`` if unknown."""
        ...

    async def person_sessions(self, project_id: int, distinct_id: str) -> list[JSON] | None:
        """The person's sessions ``[{session_id, start, end, events}]``, oldest first; ``None`` if unknown."""
        ...

    async def get_group(self, project_id: int, group_key: str, group_id: str) -> JSON | None:
        """``{group_key, group_id, properties, created_at, updated_at}`` or ``None``."""
        ...

    async def list_groups(self, project_id: int, group_key: str, limit: int) -> list[JSON]:
        """Groups of ``group_key`` with their members, sorted by id."""
        ...

    async def list_persons(self, project_id: int, limit: int, offset: int) -> list[JSON]:
        """Persons, newest first."""
        ...

    async def latest_events(self, project_id: int, limit: int) -> list[JSON]:
        """The newest events with the person each resolves to."""
        ...

    async def merge_log(self, project_id: int, limit: int) -> list[JSON]:
        """The latest merge attempts, oldest first."""
        ...

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
        """Ordered funnel counts ``[{event, count}]`` (``by="group"``: group ids of ``group_key``)."""
        ...

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
        """Cohort retention ``[{start, size, returned}]``."""
        ...

    async def startup(self, project_id: int, from_ms: int | None, to_ms: int | None) -> JSON:
        """Start-up report: ``{visits, left_before_ready, left_before_ready_share, ready, histogram}``
        (see ``domain.startup.startup_report``)."""
        ...

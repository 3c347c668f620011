"""What the shared SQL code (``batch``, ``reads``) needs from a database connection.

Both stores speak one SQL: ``?`` placeholders, ``INSERT ... ON CONFLICT DO NOTHING``,
``RETURNING``. Each store wraps its connection in a small adapter implementing
:class:`Sql` (reads) or :class:`WriteSql` (the writer), which supplies the few
things that differ: placeholder style, planner hints, how new ids are drawn and
how concurrent writers are kept apart.

Example::

    rows = sql.all("SELECT distinct_id FROM person_distinct_ids WHERE person_id = ?", (7,))
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

__all__ = ["Sql", "WriteSql", "Row", "fixed_name"]

Row = tuple[Any, ...]
_NAME = re.compile(r"[$A-Za-z0-9_]{1,64}")


def fixed_name(key: str) -> str:
    """``key`` unchanged if it may be spelled inside an SQL literal as is (a property name the
    code fixes, such as ``$ready_ms``); else ``ValueError``."""
    if not _NAME.fullmatch(key):
        raise ValueError(f"not a fixed property name: {key[:40]!r}")
    return key


class Sql(Protocol):
    """A connection for reads, plus the dialect's few spellings."""

    pin_join: str
    """Join keyword that keeps the written join order (SQLite ``CROSS JOIN``, else ``JOIN``)."""
    no_index: str
    """Prefix that keeps the planner off an index on a column (SQLite ``+``, else empty)."""
    person_key: str
    """Expression: the person of ``m``/``e``, or ``'d:' || distinct_id`` when none; sortable."""
    person_partition: tuple[str, str]
    """How a funnel partitions events by person (``m``/``e``, the person or the raw distinct id
    when it has none): (select list naming the key columns, the list of those columns)."""

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        """Every row of ``sql``."""
        ...

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        """The first row of ``sql``, or ``None``."""
        ...

    def run(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Execute ``sql`` for its effect."""
        ...

    def in_list(self, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """``column <this>`` tests membership in ``values``: (SQL fragment, its parameters)."""
        ...

    def json_field(self, column: str, key: str) -> tuple[str, str]:
        """Two SQL expressions on the JSON object text in ``column``: the JSON text of its
        top-level ``key`` (``NULL`` when absent), and the whole text where the database could
        not read it (else ``NULL``), for the caller to parse. ``key`` is a fixed name, not input."""
        ...


class WriteSql(Sql, Protocol):
    """The writer's connection, inside an open transaction."""

    def insert_many(self, table: str, columns: Sequence[str], rows: Sequence[Row], returning: str = "") -> list[Row]:
        """``INSERT ... ON CONFLICT DO NOTHING`` of many rows in few statements (SQLite:
        multi-row ``VALUES``; PostgreSQL: ``unnest`` of one array per column). Returns the
        ``RETURNING`` rows of what was inserted when ``returning`` names columns."""
        ...

    def existing_ids(self, project_id: int, distinct_ids: Sequence[str]) -> list[str]:
        """Those of ``distinct_ids`` the identity map holds (one index probe each)."""
        ...

    def new_ids(self, what: str, count: int) -> list[int]:
        """``count`` unused ids for ``what`` (``"person"`` or ``"seq"``), ascending."""
        ...

    def lock_projects(self, project_ids: Iterable[int], *, exclusive: bool) -> None:
        """Keep other writers off these projects' identity map until commit.

        Exclusive: for merges and profile changes (read, decide, write). Shared: for
        adding new distinct ids only. A single-writer store does nothing here.
        """
        ...

    def forget(self) -> None:
        """The transaction was rolled back: drop anything cached from it."""
        ...

"""Cookieless state in the database (both stores): daily salts, reset generations, the report.

Everything here runs outside the writer's transaction, one statement per transaction
(SQLite: a separate write connection; PostgreSQL: the autocommit read pool), so every
collector node on one database sees the same salt and the same generations:

* ``cookieless_salts`` (project, UTC day) -> salt: created on first use with
  ``INSERT ... ON CONFLICT DO NOTHING`` and then read, so nodes racing on a new day agree;
  days older than the retention are deleted then, with their resets.
* ``cookieless_resets`` (project, day, base hash, ``$insert_id`` of the reset): the
  generation of a browser's id is the number of its resets that day. A retried reset is
  stored once. Neither table holds an IP address or a user agent.

Example::

    salt = store.read_sync(cookieless_salt, project_id, day, new_salt(), now_ms, 2)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from empmix_collector.domain.cookieless import COOKIELESS_PREFIX
from empmix_collector.store.sql import Sql

__all__ = [
    "CookielessStore",
    "CookielessMixin",
    "cookieless_salt",
    "cookieless_generations",
    "cookieless_reset",
    "cookieless_report",
]

T = TypeVar("T")


def cookieless_salt(sql: Sql, project_id: int, day: int, candidate: str, now_ms: int, keep_days: int) -> str:
    """The salt of ``(project_id, day)``: ``candidate`` if this call created it, else the one
    stored first. Deletes the salts (and resets) older than ``keep_days`` days."""
    sql.run(
        "INSERT INTO cookieless_salts(project_id, day, salt, created_ms) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (project_id, day, candidate, now_ms),
    )
    row = sql.one("SELECT salt FROM cookieless_salts WHERE project_id = ? AND day = ?", (project_id, day))
    first_kept = day - keep_days + 1
    sql.run("DELETE FROM cookieless_salts WHERE project_id = ? AND day < ?", (project_id, first_kept))
    sql.run("DELETE FROM cookieless_resets WHERE project_id = ? AND day < ?", (project_id, first_kept))
    assert row is not None  # inserted above, and never deleted on its own day
    return str(row[0])


def cookieless_generations(sql: Sql, project_id: int, day: int, bases: list[str]) -> dict[str, int]:
    """base hash -> its generation on ``day`` (only the bases that were reset)."""
    among, values = sql.in_list(bases)
    rows = sql.all(
        f"SELECT base, COUNT(*) FROM cookieless_resets WHERE project_id = ? AND day = ? AND base {among} GROUP BY base",
        (project_id, day, *values),
    )
    return {str(base): int(count) for base, count in rows}


def cookieless_reset(sql: Sql, project_id: int, day: int, base: str, insert_id: str, now_ms: int) -> tuple[int, int]:
    """Record the reset ``insert_id`` of ``base`` (once) -> (the generation the reset event
    itself belongs to, the generation from now on)."""
    key = (project_id, day, base)
    sql.run(
        "INSERT INTO cookieless_resets(project_id, day, base, insert_id, created_ms) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (*key, insert_id, now_ms),
    )
    rows = sql.all(
        "SELECT insert_id FROM cookieless_resets WHERE project_id = ? AND day = ? AND base = ?"
        " ORDER BY created_ms, insert_id",
        key,
    )
    order = [str(row[0]) for row in rows]
    return order.index(insert_id), len(order)


def cookieless_report(sql: Sql, project_id: int) -> dict[str, Any]:
    """``{persons, cookieless_only}``: the project's persons, and those whose every id is a
    cookieless one (visitors counted only thanks to cookieless mode)."""
    total = sql.one("SELECT COUNT(*) FROM persons WHERE project_id = ?", (project_id,))
    prefix = (len(COOKIELESS_PREFIX), COOKIELESS_PREFIX)
    only = sql.one(
        "SELECT COUNT(*) FROM persons p WHERE p.project_id = ?"
        " AND EXISTS (SELECT 1 FROM person_distinct_ids m WHERE m.person_id = p.id"
        "  AND substr(m.distinct_id, 1, ?) = ?)"
        " AND NOT EXISTS (SELECT 1 FROM person_distinct_ids m WHERE m.person_id = p.id"
        "  AND substr(m.distinct_id, 1, ?) <> ?)",
        (project_id, *prefix, *prefix),
    )
    return {"persons": int(total[0]) if total else 0, "cookieless_only": int(only[0]) if only else 0}


class CookielessStore(Protocol):
    """The store calls of cookieless operation (part of ``store.base.Store``)."""

    async def cookieless_salt(self, project_id: int, day: int, candidate: str, now_ms: int, keep_days: int) -> str:
        """See :func:`cookieless_salt`."""
        ...

    async def cookieless_generations(self, project_id: int, day: int, bases: list[str]) -> dict[str, int]:
        """See :func:`cookieless_generations`."""
        ...

    async def cookieless_reset(
        self, project_id: int, day: int, base: str, insert_id: str, now_ms: int
    ) -> tuple[int, int]:
        """See :func:`cookieless_reset`."""
        ...

    async def cookieless_report(self, project_id: int) -> dict[str, Any]:
        """See :func:`cookieless_report`."""
        ...


class CookielessMixin:
    """Implements :class:`CookielessStore` on a store that runs a function on a connection
    outside the writer, in autocommit (``_aside``)."""

    async def _aside(self, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    async def cookieless_salt(self, project_id: int, day: int, candidate: str, now_ms: int, keep_days: int) -> str:
        """See :func:`cookieless_salt`."""
        return await self._aside(cookieless_salt, project_id, day, candidate, now_ms, keep_days)

    async def cookieless_generations(self, project_id: int, day: int, bases: list[str]) -> dict[str, int]:
        """See :func:`cookieless_generations`."""
        return await self._aside(cookieless_generations, project_id, day, bases)

    async def cookieless_reset(
        self, project_id: int, day: int, base: str, insert_id: str, now_ms: int
    ) -> tuple[int, int]:
        """See :func:`cookieless_reset`."""
        return await self._aside(cookieless_reset, project_id, day, base, insert_id, now_ms)

    async def cookieless_report(self, project_id: int) -> dict[str, Any]:
        """See :func:`cookieless_report`."""
        return await self._aside(cookieless_report, project_id)

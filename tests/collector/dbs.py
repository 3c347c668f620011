"""Looking into a collector's database from a test, whichever store it is.

``target`` is what ``--db`` got: a SQLite path or a ``postgresql://`` URL. SQL uses
``?`` placeholders on both.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

__all__ = ["is_postgres", "rows", "stored_insert_ids"]


def is_postgres(target: str | Path) -> bool:
    return str(target).startswith(("postgresql://", "postgres://"))


def rows(target: str | Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one read query against the database the collector uses."""
    if is_postgres(target):
        import psycopg

        with psycopg.connect(str(target), autocommit=True) as conn:
            return conn.execute(sql.replace("?", "%s"), params).fetchall()  # type: ignore[arg-type]
    conn = sqlite3.connect(f"file:{target}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def stored_insert_ids(target: str | Path) -> list[str]:
    """Every stored event's ``$insert_id`` (with repeats, if any were stored twice)."""
    return [row[0] for row in rows(target, "SELECT insert_id FROM events")]


def integrity_ok(target: str | Path) -> bool:
    """SQLite's own check of the file (PostgreSQL: the server answers, which is all we can ask)."""
    if is_postgres(target):
        return rows(target, "SELECT 1") == [(1,)]
    return rows(target, "PRAGMA integrity_check") == [("ok",)]

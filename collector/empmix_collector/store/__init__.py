"""Storage: the ``Store`` interface (``base``) and its two implementations.

* ``sqlite/``: one file, one writer, zero setup (the default: ``--db events.db``).
* ``postgres/``: a PostgreSQL database shared by any number of collectors
  (``--db postgresql://user:password@host:port/dbname``).

``batch`` (the write path), ``reads`` (the query API's SQL) and ``writer`` (the
group-commit thread) are shared by both, so both give the same results. Only this
package imports ``sqlite3`` or ``psycopg``.

Example::

    from empmix_collector.store import create_store
    store = create_store(settings)   # SqliteStore or PostgresStore, from settings.db_path
"""

from __future__ import annotations

from empmix_collector.settings import Settings
from empmix_collector.store.base import Store, is_postgres_url

__all__ = ["create_store", "describe_target"]


def create_store(settings: Settings) -> Store:
    """The store ``settings.db_path`` names (not opened yet).

    The PostgreSQL driver is imported only here, when a URL asks for it, so the
    SQLite default needs nothing beyond the standard library.
    """
    if is_postgres_url(settings.db_path):
        from empmix_collector.store.postgres import PostgresStore

        return PostgresStore(settings.db_path, settings.tokens, max_ids_per_person=settings.max_ids_per_person)
    from empmix_collector.store.sqlite import SqliteStore

    return SqliteStore(
        settings.db_path,
        settings.tokens,
        max_ids_per_person=settings.max_ids_per_person,
        writer_process=settings.writer_process,
    )


def describe_target(target: str) -> str:
    """``--db`` for messages: a PostgreSQL URL without its password."""
    if not is_postgres_url(target):
        return target
    scheme, _, rest = target.partition("://")
    credentials, at, place = rest.rpartition("@")
    if not at:
        return target
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}@{place}" if user else f"{scheme}://{place}"

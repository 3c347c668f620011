"""The PostgreSQL store (``--db postgresql://...``), for several collectors on one database.

Needs the driver: ``pip install 'empmix-collector[postgres]'`` (psycopg 3 and psycopg_pool).
"""

from empmix_collector.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]

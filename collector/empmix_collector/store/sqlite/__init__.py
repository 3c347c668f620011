"""The SQLite store, the embedded default (``--db PATH``)."""

from empmix_collector.store.sqlite.store import SqliteStore, connect

__all__ = ["SqliteStore", "connect"]

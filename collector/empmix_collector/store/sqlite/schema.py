"""The SQLite schema and its versions.

Version 1 is the layout of collector 0.1.0, which had no version table: a database
holding ``events`` but no ``schema_version`` is a version-1 database and is
stamped in place on open. Later versions append to :data:`MIGRATIONS`; each one
runs once, in order, inside the opening transaction.
"""

from __future__ import annotations

import sqlite3

from empmix_collector.store.base import SchemaTooNew

__all__ = ["SCHEMA_V1", "SCHEMA_V2", "SCHEMA_V3", "MIGRATIONS", "CURRENT_VERSION", "upgrade"]

SCHEMA_V1 = """
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

SCHEMA_V2 = """
CREATE TABLE IF NOT EXISTS group_profiles (                 -- group profiles (/groups), Mixpanel's group analytics
  project_id INTEGER NOT NULL, group_key TEXT NOT NULL, group_id TEXT NOT NULL,
  created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, properties TEXT NOT NULL DEFAULT '{}',
  PRIMARY KEY (project_id, group_key, group_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS group_updates (          -- dedup of /groups records carrying $insert_id
  project_id INTEGER NOT NULL, insert_id TEXT NOT NULL, group_key TEXT NOT NULL, group_id TEXT NOT NULL,
  received_ms INTEGER NOT NULL, PRIMARY KEY (project_id, insert_id)) WITHOUT ROWID;
"""
"""Group profiles (``/groups``): one row per (project, group key, group id)."""

SCHEMA_V3 = """
CREATE TABLE IF NOT EXISTS cookieless_salts (       -- one random salt per project and UTC day
  project_id INTEGER NOT NULL, day INTEGER NOT NULL, salt TEXT NOT NULL, created_ms INTEGER NOT NULL,
  PRIMARY KEY (project_id, day)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cookieless_resets (      -- $cookieless_reset: a browser's next generation of the day
  project_id INTEGER NOT NULL, day INTEGER NOT NULL, base TEXT NOT NULL, insert_id TEXT NOT NULL,
  created_ms INTEGER NOT NULL, PRIMARY KEY (project_id, day, base, insert_id)) WITHOUT ROWID;
"""
"""Cookieless operation (``store.cookieless``): daily salts and reset generations."""

SCHEMA_V4 = """
ALTER TABLE merges ADD COLUMN endpoint TEXT;
ALTER TABLE merges ADD COLUMN origin TEXT;
"""
"""The merge log records where each attempt came from: the endpoint and the request's Origin."""

MIGRATIONS: list[tuple[int, str]] = [(1, SCHEMA_V1), (2, SCHEMA_V2), (3, SCHEMA_V3), (4, SCHEMA_V4)]
"""(version, DDL) in order; a database at version N runs every entry above N."""
CURRENT_VERSION = MIGRATIONS[-1][0]


def _version(conn: sqlite3.Connection) -> int:
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "schema_version" in tables:
        row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
        return int(row[0] or 0)
    return 1 if "events" in tables else 0  # collector 0.1.0 kept no version


def upgrade(conn: sqlite3.Connection, path: str) -> tuple[int, int]:
    """Bring the database to :data:`CURRENT_VERSION` in one transaction.

    Returns:
        (version found, version now).

    Raises:
        SchemaTooNew: the database is at a version this collector does not know.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = _version(conn)
        if found > CURRENT_VERSION:
            raise SchemaTooNew(
                f"{path!r} has schema version {found}; this collector knows up to {CURRENT_VERSION}: upgrade it"
            )
        for version, ddl in MIGRATIONS:
            if version > found:
                for statement in ddl.split(";"):
                    if statement.strip():
                        conn.execute(statement)
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, applied_ms INTEGER)")
        if found < CURRENT_VERSION or conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 0:
            conn.execute(
                "INSERT INTO schema_version(version, applied_ms) "
                "VALUES (?, CAST(strftime('%s','now') AS INTEGER) * 1000)",
                (CURRENT_VERSION,),
            )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return found, CURRENT_VERSION

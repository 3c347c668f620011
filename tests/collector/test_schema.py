"""Schema versions: a database made by collector 0.1.0 opens and is upgraded in place;
a database from a newer collector is refused with the reason."""

from __future__ import annotations

import http.client
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from empmix_collector.settings import Settings
from empmix_collector.store import create_store
from empmix_collector.store.base import SchemaTooNew
from empmix_collector.store.sqlite import SqliteStore
from empmix_collector.store.sqlite.schema import CURRENT_VERSION
from tests.collector.conftest import TOKEN, CollectorProcess, event, launch_collector, now_ms
from tests.collector.dbs import rows
from tests.collector.pgcluster import PgCluster

OLD_SCHEMA = (Path(__file__).parent / "data" / "schema_0_1_0.sql").read_text()


def _make_0_1_0_database(path: Path) -> None:
    """A database as collector 0.1.0 left it: its schema, one person with two ids and
    an event under each, one merge logged, no ``schema_version`` table."""
    conn = sqlite3.connect(path)
    conn.executescript(OLD_SCHEMA)
    t = now_ms() - 60_000
    conn.executescript(
        f"""
        INSERT INTO projects(id, token, created_at) VALUES (1, '{TOKEN}', {t});
        INSERT INTO persons(id, project_id, is_identified, created_at, properties)
          VALUES (1, 1, 1, {t}, '{{"plan":"pro"}}');
        INSERT INTO person_distinct_ids VALUES (1, '$device:old', 1, {t}, 1), (1, 'old-user', 1, {t}, 2);
        INSERT INTO events(project_id, event, distinct_id, time_ms, dedup_time_ms, received_ms, insert_id,
                           insert_id_generated, properties)
          VALUES (1, 'view', '$device:old', {t}, {t}, {t}, 'i1', 0, '{{"token":"{TOKEN}"}}'),
                 (1, 'signup', 'old-user', {t + 1}, {t + 1}, {t + 1}, 'i2', 0, '{{"token":"{TOKEN}"}}');
        INSERT INTO merges(project_id, insert_id, kind, from_id, to_id, result, reason, detail, time_ms, received_ms)
          VALUES (1, 'i0', 'identify', '$device:old', 'old-user', 'merged', '', NULL, {t}, {t});
        """
    )
    conn.commit()
    conn.close()


def test_a_0_1_0_database_opens_and_is_upgraded_in_place(tmp_path: Path) -> None:
    """Collector 0.1.0 wrote SQLite only, so this one runs on SQLite."""
    db = tmp_path / "old.db"
    _make_0_1_0_database(db)
    proc = launch_collector(db)
    try:
        _check_upgraded(proc, db)
    finally:
        proc.stop()
    again = launch_collector(db)  # a second start finds the current version: nothing to do
    try:
        assert again.person("old-user")["distinct_ids"] == ["$device:old", "old-user", "$device:new"]  # type: ignore[index]
        assert rows(db, "SELECT version FROM schema_version") == [(CURRENT_VERSION,)]
    finally:
        again.stop()


def _check_upgraded(proc: CollectorProcess, db: Path) -> None:
    person = proc.person("old-user")
    assert person is not None
    assert person["distinct_ids"] == ["$device:old", "old-user"]
    assert person["properties"] == {"plan": "pro"} and person["identified"]
    assert [e["event"] for e in proc.events_of("$device:old")] == ["view", "signup"]
    assert [m["kind"] for m in proc.api("/api/merges")["merges"]] == ["identify"]
    assert rows(db, "SELECT version FROM schema_version") == [(CURRENT_VERSION,)] and CURRENT_VERSION == 4
    assert rows(db, "SELECT COUNT(*) FROM group_profiles") == [(0,)]
    assert rows(db, "SELECT COUNT(*) FROM cookieless_salts") == rows(db, "SELECT COUNT(*) FROM cookieless_resets")
    # new data lands next to the old, ids keep counting from where 0.1.0 stopped
    assert _track(proc, [event("$identify", "old-user", **{"$anon_distinct_id": "$device:new"})]) == 200
    assert proc.person("$device:new")["person_id"] == person["person_id"]  # type: ignore[index]


def test_a_database_from_a_newer_collector_is_refused(new_db: Callable[[], str]) -> None:
    target = new_db()
    if target.startswith("postgresql://"):
        import psycopg

        from empmix_collector.store.postgres import PostgresStore
        from empmix_collector.store.postgres.schema import CURRENT_VERSION as newest

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_ms BIGINT)")
            conn.execute("INSERT INTO schema_version VALUES (%s, 0)", (newest + 1,))
        store: SqliteStore | PostgresStore = PostgresStore(target, [TOKEN])
    else:
        conn = sqlite3.connect(target)
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_ms INTEGER)")
        newest = CURRENT_VERSION
        conn.execute("INSERT INTO schema_version VALUES (?, 0)", (newest + 1,))
        conn.commit()
        conn.close()
        store = SqliteStore(target, [TOKEN])
    with pytest.raises(SchemaTooNew, match=f"schema version {newest + 1}"):
        store.open()
    assert not store.is_open


def _track(proc: CollectorProcess, records: list[dict[str, object]]) -> int:
    parts = urlsplit(proc.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("POST", "/track/?verbose=1", body="data=" + quote(json.dumps(records), safe=""),
                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    status = conn.getresponse().status
    conn.close()
    return status


def test_a_postgres_database_at_version_1_is_upgraded_in_place(new_db: Callable[[], str]) -> None:
    target = new_db()
    if not target.startswith("postgresql://"):
        pytest.skip("the PostgreSQL schema's own versions")
    import psycopg

    from empmix_collector.store.postgres import PostgresStore
    from empmix_collector.store.postgres.schema import CURRENT_VERSION as newest
    from empmix_collector.store.postgres.schema import SCHEMA_V1

    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(SCHEMA_V1)  # type: ignore[arg-type]
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_ms BIGINT)")
        conn.execute("INSERT INTO schema_version VALUES (1, 0)")
        conn.execute("INSERT INTO projects(token, created_at) VALUES (%s, 0)", (TOKEN,))
        conn.execute(
            "INSERT INTO events(project_id, event, distinct_id, time_ms, dedup_time_ms, received_ms, insert_id,"
            " properties) VALUES (1, 'view', 'u1', 5, 5, 5, 'i1', '{}')"
        )
    store = PostgresStore(target, [TOKEN])
    store.open()
    try:
        from empmix_collector.store import funnels

        assert store.read_sync(funnels.funnel, store.projects[TOKEN], ["view"], None, None, 10, "person") == [
            {"event": "view", "count": 1}
        ]
    finally:
        store.close()
    with psycopg.connect(target, autocommit=True) as conn:
        versions = [row[0] for row in conn.execute("SELECT version FROM schema_version ORDER BY version")]
        indexes = {row[0] for row in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'events'")}
    assert versions == [1, newest] and newest == 5
    assert "ix_events_name_time_id" in indexes and "ix_events_name_time" not in indexes
    _groups_work(target)


def _groups_work(target: str) -> None:
    """The upgraded database takes group profiles (schema version 2 on SQLite, 3 on PostgreSQL)."""
    from empmix_collector.domain.records import GroupRecord, WriteBatch
    from empmix_collector.store import reads
    from empmix_collector.store.postgres import PostgresStore
    from empmix_collector.store.sqlite import SqliteStore

    store = PostgresStore(target, [TOKEN]) if target.startswith("postgresql://") else SqliteStore(target, [TOKEN])
    store.open()
    try:
        project = store.projects[TOKEN]
        batch = WriteBatch(
            received_ms=now_ms(), groups=[GroupRecord(0, project, "company", "acme", [("$set", {"n": 1})])]
        )
        from tests.collector.test_store import run

        assert run(lambda: store.write(batch)).failed == []
        assert store.read_sync(reads.get_group, project, "company", "acme")["properties"] == {"n": 1}  # type: ignore[index]
    finally:
        store.close()


def test_a_database_of_the_previous_version_is_upgraded_for_groups(new_db: Callable[[], str]) -> None:
    """SQLite 1 -> 2 and PostgreSQL 2 -> 3 add the group tables in place; the data stays."""
    target = new_db()
    if target.startswith("postgresql://"):
        import psycopg

        from empmix_collector.store.postgres.schema import SCHEMA_V1, SCHEMA_V2

        with psycopg.connect(target, autocommit=True) as conn:
            conn.execute(SCHEMA_V1)  # type: ignore[arg-type]
            conn.execute(SCHEMA_V2)  # type: ignore[arg-type]
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_ms BIGINT)")
            conn.execute("INSERT INTO schema_version VALUES (1, 0), (2, 0)")
    else:
        from empmix_collector.store.sqlite.schema import SCHEMA_V1

        conn = sqlite3.connect(target)
        conn.executescript(SCHEMA_V1)
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_ms INTEGER)")
        conn.execute("INSERT INTO schema_version VALUES (1, 0)")
        conn.commit()
        conn.close()
    _groups_work(target)
    versions = sorted(row[0] for row in rows(target, "SELECT version FROM schema_version"))
    assert versions[-1] == (5 if target.startswith("postgresql://") else 4)


def _sqlite_columns(path: Path) -> dict[str, set[str]]:
    names = rows(path, "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    return {name: {column[1] for column in rows(path, f"PRAGMA table_info({name})")} for (name,) in names}


def _postgres_columns(url: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    query = (
        "SELECT c.table_name, c.column_name FROM information_schema.columns c"
        " JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name"
        " WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"
    )
    for table, column in rows(url, query):
        found.setdefault(table, set()).add(column)
    return found


def test_sqlite_and_postgresql_define_the_same_tables_and_columns(tmp_path: Path, pg_cluster: PgCluster) -> None:
    """After every migration, read back from the real databases (not from the DDL text)."""
    sqlite_path, postgres_url = tmp_path / "same.db", pg_cluster.fresh_url()
    for target in (str(sqlite_path), postgres_url):
        store = create_store(Settings(db_path=target, tokens=(TOKEN,)))
        store.open()
        store.close()
    on_sqlite, on_postgres = _sqlite_columns(sqlite_path), _postgres_columns(postgres_url)
    assert len(on_sqlite) >= 10 and "events" in on_sqlite  # the schema is there, not an empty file
    assert sorted(on_sqlite) == sorted(on_postgres)
    assert {table: sorted(columns) for table, columns in on_sqlite.items()} == {
        table: sorted(columns) for table, columns in on_postgres.items()
    }

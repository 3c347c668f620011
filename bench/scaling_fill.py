"""The scaling benchmark's large sizes, written straight into the database: the rows the collector
would have stored for ``bench.scaling.scaling_event(i)``, made by the database itself.

Over HTTP the collector stores about 25,000–50,000 events/s on this machine, so the step from
10^6 to 10^7 stored events would take 3–6 minutes per store. Here one ``INSERT … SELECT``
generates the events (a recursive CTE on SQLite, ``generate_series`` on PostgreSQL: no row
crosses a socket), with every index of the collector's schema in place, and the identity tables
get what the collector's writer gives a new distinct id: a person (``is_identified`` 0,
properties ``{}``) and one ``person_distinct_ids`` row, ids and ``seq`` drawn where the writer
draws them (``sqlite_sequence`` / ``MAX(seq)`` on SQLite, the sequences on PostgreSQL). The
events' columns (name, distinct id, time, ``$insert_id``, the properties' JSON text) are those
``POST /track`` stores; ``received_ms`` (and the persons' ``created_at``) is the fill's clock.
``tests/bench/test_scaling_fill.py`` checks row for row that the collector stores the same.

The collector must not be running on the database meanwhile (SQLite's writer keeps its next
ids in memory). PostgreSQL's tables are ``VACUUM (ANALYZE)``-ed by the benchmark afterwards, as
after an HTTP load.

Example::

    fill(db, "bench_scale", first=1_000_000, last=10_000_000, t0_ms=t0, spacing_ms=34.56,
         received_ms=now)
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

__all__ = ["fill", "properties_sql"]

_VALUES = {"distinct_id": "'\"user' || u || '\"'", "time": "t", "$insert_id": "'\"s' || i || '\"'", "step": "k"}
"""The JSON text of the per-event properties, over ``u`` (user number), ``t`` (time), ``i`` (event
number) and ``k`` (its step within the user's 20)."""


def properties_sql(token: str) -> str:
    """An SQL expression giving the JSON text the collector stores as ``properties`` for
    ``scaling_event(i)``: its properties in their order, as ``bench.scaling`` sends them (compact
    JSON), the fixed ones spelled out, the per-event ones from :data:`_VALUES`."""
    from bench.scaling import scaling_event

    props = {**scaling_event(0, 0, 0.0)["properties"], "token": token}
    pieces: list[str] = []
    literal = "{"
    for n, (key, value) in enumerate(props.items()):
        literal += ("," if n else "") + json.dumps(key) + ":"
        if key in _VALUES:
            pieces += ["'" + literal.replace("'", "''") + "'", f"({_VALUES[key]})"]
            literal = ""
        else:
            literal += json.dumps(value, separators=(",", ":"))
    pieces.append("'" + (literal + "}").replace("'", "''") + "'")
    return " || ".join(pieces)


def _name_sql() -> str:
    """``scaling_event``'s rule for the event name, over ``u`` and ``k``."""
    return (
        "CASE WHEN k = 0 THEN 'view' WHEN k = 5 AND u % 3 = 0 THEN 'signup'"
        " WHEN k = 12 AND u % 21 = 0 THEN 'purchase' ELSE 'page' END"
    )


_COLUMNS = (
    "project_id, event, distinct_id, time_ms, dedup_time_ms, received_ms, insert_id, insert_id_generated, properties"
)


def _users(first: int, last: int) -> tuple[int, int]:
    """The users whose first event is in ``first .. last - 1`` (the others have a person already)."""
    from bench.scaling import EVENTS_PER_USER

    return -(-first // EVENTS_PER_USER), -(-last // EVENTS_PER_USER)


def _fill_sqlite(
    db: Path, token: str, first: int, last: int, t0_ms: int, spacing_ms: float, received_ms: int
) -> dict[str, Any]:
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        # the collector puts the file back in WAL mode when it opens it; until then no journal:
        # a fill that fails leaves a database to throw away, and none of the rows goes twice to disk
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1048576")  # 1 GB: the distinct-id index's pages stay in memory
        conn.execute("BEGIN IMMEDIATE")
        (project,) = conn.execute("SELECT id FROM projects WHERE token = ?", (token,)).fetchone()
        u0, u1 = _users(first, last)
        (person,) = conn.execute(
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'persons'), 0),"
            " COALESCE((SELECT MAX(id) FROM persons), 0)) + 1"
        ).fetchone()
        (seq,) = conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM person_distinct_ids").fetchone()
        users = f"WITH RECURSIVE n(u) AS (SELECT {u0} UNION ALL SELECT u + 1 FROM n WHERE u + 1 < {u1})"
        if u1 > u0:
            conn.execute(
                f"INSERT INTO persons(id, project_id, created_at) {users} SELECT {person} + u - {u0}, ?, ? FROM n",
                (project, received_ms),
            )
            conn.execute(
                f"INSERT INTO person_distinct_ids(project_id, distinct_id, person_id, created_at, seq) {users}"
                f" SELECT ?, 'user' || u, {person} + u - {u0}, ?, {seq} + u - {u0} FROM n",
                (project, received_ms),
            )
        started = time.perf_counter()
        conn.execute(
            f"INSERT INTO events({_COLUMNS})"
            f" WITH RECURSIVE n(i) AS (SELECT {first} UNION ALL SELECT i + 1 FROM n WHERE i + 1 < {last}),"
            f" r AS (SELECT i, i / 20 AS u, i % 20 AS k, CAST(? + i * ? AS INTEGER) AS t FROM n)"
            f" SELECT ?, {_name_sql()}, 'user' || u, t, t, ?, 's' || i, 0, {properties_sql(token)} FROM r",
            (t0_ms, float(spacing_ms), project, received_ms),
        )
        events_s = time.perf_counter() - started
        conn.execute("COMMIT")
    finally:
        conn.close()
    return {"persons": max(0, u1 - u0), "events_s": round(events_s, 1)}


def _fill_postgres(
    url: str, token: str, first: int, last: int, t0_ms: int, spacing_ms: float, received_ms: int
) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(url) as pg:
        pg.execute("SET synchronous_commit = off")  # one commit: nothing to wait for but the end
        row = pg.execute("SELECT id FROM projects WHERE token = %s", (token,)).fetchone()
        assert row is not None, f"no project {token!r}: open the store once first"
        project = int(row[0])
        u0, u1 = _users(first, last)
        count = max(0, u1 - u0)
        if count:
            # ids as the writer draws them (nextval), reserved in one step each
            ids = pg.execute("SELECT nextval('persons_id_seq'), nextval('person_distinct_ids_seq')").fetchone()
            assert ids is not None
            person, seq = int(ids[0]), int(ids[1])
            pg.execute(
                "SELECT setval('persons_id_seq', %s), setval('person_distinct_ids_seq', %s)",
                (person + count - 1, seq + count - 1),
            )
            users = "generate_series(%(u0)s::bigint, %(u1)s::bigint - 1) AS g(u)"
            values = {"u0": u0, "u1": u1, "person": person, "seq": seq, "project": project, "received": received_ms}
            pg.execute(
                "INSERT INTO person_distinct_ids(project_id, distinct_id, person_id, created_at, seq)"
                " SELECT %(project)s, 'user' || u, %(person)s + u - %(u0)s, %(received)s,"
                f" %(seq)s + u - %(u0)s FROM {users}",
                values,
            )
            pg.execute(
                "INSERT INTO persons(id, project_id, created_at)"
                f" SELECT %(person)s + u - %(u0)s, %(project)s, %(received)s FROM {users}",
                values,
            )
        started = time.perf_counter()
        # no parameters: the numbers are spelled in the statement (a float's repr reads back as
        # the same double), so psycopg leaves the text, and its "%", alone
        pg.execute(
            f"INSERT INTO events({_COLUMNS})"
            f" SELECT {project}, {_name_sql()}, 'user' || u, t, t, {received_ms}, 's' || i, false,"
            f" {properties_sql(token)} FROM"
            f" (SELECT i, i / 20 AS u, i % 20 AS k, trunc({t0_ms} + i * {float(spacing_ms)!r}::float8)::bigint AS t"
            f"  FROM generate_series({first}::bigint, {last - 1}::bigint) AS g(i)) r"
        )
        events_s = time.perf_counter() - started
        pg.commit()
    return {"persons": count, "events_s": round(events_s, 1)}


def fill(
    db: Path | str, token: str, first: int, last: int, t0_ms: int, spacing_ms: float, received_ms: int | None = None
) -> dict[str, Any]:
    """Store events ``first .. last - 1`` of ``scaling_event`` (and the persons of the users they
    start) in ``db`` (an SQLite path or a ``postgresql://`` URL) whose schema and project
    ``token`` the collector has created. Returns ``{"persons", "events_s", "seconds"}``."""
    if last <= first:
        return {"persons": 0, "events_s": 0.0, "seconds": 0.0}
    started = time.perf_counter()
    now = int(time.time() * 1000) if received_ms is None else received_ms
    if isinstance(db, str):
        out = _fill_postgres(db, token, first, last, t0_ms, spacing_ms, now)
    else:
        out = _fill_sqlite(db, token, first, last, t0_ms, spacing_ms, now)
    return {**out, "seconds": round(time.perf_counter() - started, 1)}

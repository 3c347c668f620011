"""``bench.scaling_fill`` writes the rows the collector stores for the scaling benchmark's events.

The same events go into two databases of each store: one entirely through the collector's
``POST /track`` (in-process), the other partly through it and the rest written directly (the
split falls inside a user's events, as the benchmark's 10^6 → 10^7 step may). The events
(every column but arrival time) and the identity tables (one person per distinct id, with the
writer's defaults) must be the same, and a collector opened on the filled database must go on
drawing fresh person ids and ``seq`` numbers.
"""

from __future__ import annotations

import sqlite3
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bench import scaling_fill
from bench.scaling import TOKEN, scaling_event
from tests.collector.conftest import pg_cluster  # noqa: F401 (the collector tests' throwaway cluster)

with warnings.catch_warnings():  # starlette 1.x prefers httpx2; httpx is what requirements pin
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from starlette.testclient import TestClient

from empmix_collector.http.app import create_app
from empmix_collector.settings import Settings

SPACING_MS = 34.56  # what 4 days over 10^7 events gives: not a whole number of ms
SPLIT, TOTAL = 130, 270  # user 6 owns events 120 .. 139: the direct part starts inside it


@pytest.fixture(params=("sqlite", "postgres"))
def new_db(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Path | str]:
    made: list[Path | str] = []

    def make() -> Path | str:
        if request.param == "postgres":
            made.append(str(request.getfixturevalue("pg_cluster").fresh_url()))
        else:
            made.append(tmp_path / f"db{len(made)}.db")
        return made[-1]

    return make


def _t0() -> int:
    return int(time.time() * 1000) - 2 * 86_400_000  # /track takes events up to 5 days old


def _track(db: Path | str, events: list[dict[str, Any]]) -> None:
    """``events`` through the collector's ``POST /track`` (its lifespan opens and closes the store)."""
    app = create_app(Settings(db_path=str(db), tokens=(TOKEN,)))
    with TestClient(app, raise_server_exceptions=True, client=("127.0.0.1", 50000)) as http:
        for start in range(0, len(events), 100):
            reply = http.post("/track/?verbose=1", json=events[start : start + 100])
            assert reply.status_code == 200 and reply.json()["status"] == 1, reply.text


def _rows(db: Path | str, query: str) -> list[tuple[Any, ...]]:
    if isinstance(db, str):
        import psycopg

        with psycopg.connect(db, autocommit=True) as pg:
            return [tuple(row) for row in pg.execute(query).fetchall()]
    conn = sqlite3.connect(db)
    try:
        return [tuple(row) for row in conn.execute(query).fetchall()]
    finally:
        conn.close()


def _state(db: Path | str) -> dict[str, Any]:
    events = _rows(
        db,
        "SELECT project_id, event, distinct_id, time_ms, dedup_time_ms, insert_id,"
        " CAST(insert_id_generated AS INTEGER), properties FROM events",
    )
    links = _rows(
        db,
        "SELECT m.distinct_id, m.person_id, m.seq, p.is_identified, p.properties"
        " FROM person_distinct_ids m JOIN persons p ON p.id = m.person_id",
    )
    persons = _rows(db, "SELECT id FROM persons")
    return {
        "events": Counter(events),
        "ids": sorted(link[0] for link in links),
        "person_defaults": Counter((link[3], link[4]) for link in links),
        "one_person_each": len({link[1] for link in links}) == len(links) == len(persons),
        "seqs_unique": len({link[2] for link in links}) == len(links),
    }


def test_filled_rows_are_the_collectors(new_db: Callable[[], Path | str]) -> None:
    t0 = _t0()
    events = [scaling_event(i, t0, SPACING_MS) for i in range(TOTAL)]
    through_http, mixed = new_db(), new_db()
    _track(through_http, events)
    _track(mixed, events[:SPLIT])
    filled = scaling_fill.fill(mixed, TOKEN, SPLIT, TOTAL, t0, SPACING_MS)
    assert filled["persons"] == 7  # users 7 .. 13: user 6 had its person already
    expected, got = _state(through_http), _state(mixed)
    assert got["events"] == expected["events"] and sum(got["events"].values()) == TOTAL
    assert got["ids"] == expected["ids"] == [f"user{u}" for u in sorted(range(TOTAL // 20 + 1), key=str)]
    assert got["person_defaults"] == expected["person_defaults"]
    assert got["one_person_each"] and expected["one_person_each"]
    assert got["seqs_unique"]
    # the collector goes on from the filled database: new ids get new persons, no id drawn twice
    _track(
        mixed,
        [scaling_event(i, t0, SPACING_MS) for i in range(TOTAL, TOTAL + 40)]
        + [{"event": "view", "properties": {"token": TOKEN, "distinct_id": "fresh", "$insert_id": "f1"}}],
    )
    after = _state(mixed)
    assert after["ids"] == sorted([*got["ids"], "fresh", "user14", "user15"])  # user 13 had one
    assert after["one_person_each"] and after["seqs_unique"]

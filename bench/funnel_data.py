"""A large SQLite collector database made fast: events, persons and identity links inserted
straight into the file (the collector's own schema) before a collector opens it.

Through HTTP, 10^6 events take minutes on this machine; this takes seconds. The data is what
the SDK would have produced: every distinct id has a person, and a share of the anonymous
``$device:`` ids are linked to a user id, so funnels by person and by distinct id differ.

Example::

    fill(Path("big.db"), "bench", events=1_000_000)
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from empmix_collector.store.sqlite import SqliteStore

__all__ = ["fill", "STEPS", "T0_MS"]

STEPS = ("view", "signup", "purchase")
"""The funnel the benchmark asks for; other events are noise the query must skip."""
T0_MS = 1_704_067_200_000  # 2024-01-01
_NAMES = (*STEPS, "open", "scroll", "click")
_WEIGHTS = (30, 8, 3, 20, 25, 14)
_SPAN_MS = 30 * 86_400_000


def _ids(users: int) -> list[str]:
    return [f"u{i}" if i % 3 == 0 else f"$device:d{i}" for i in range(users)]


def _events(count: int, ids: list[str], rng: random.Random) -> Iterator[tuple[object, ...]]:
    names = rng.choices(_NAMES, _WEIGHTS, k=count)
    times = sorted(T0_MS + rng.randrange(_SPAN_MS) for _ in range(count))  # in time order, as they arrive
    for n, t in enumerate(times):
        yield (names[n], ids[rng.randrange(len(ids))], t, t, t, f"bulk-{n}", '{"$lib":"bulk"}')


def fill(db: Path, token: str, events: int, users: int | None = None, seed: int = 18) -> int:
    """Create ``db`` (the collector's schema, project ``token``) holding ``events`` events of
    ``users`` distinct ids (default ``events // 20``); returns the project id."""
    users = users or max(events // 20, 1)
    store = SqliteStore(str(db), [token])
    store.open()
    project = store.projects[token]
    store.close()
    rng = random.Random(seed)
    ids = _ids(users)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")  # 256 MB: the random-order indexes stay in memory
        conn.execute("BEGIN")
        persons: dict[str, int] = {}
        for n, distinct_id in enumerate(ids):
            if distinct_id.startswith("$device:") and n % 3 == 1:  # this device's user is the one before it
                persons[distinct_id] = persons[ids[n - 1]]
                continue
            persons[distinct_id] = len(persons) + 1
        person_ids = sorted(set(persons.values()))
        conn.executemany(
            "INSERT INTO persons(id, project_id, is_identified, created_at, properties) VALUES (?, ?, 0, ?, '{}')",
            [(p, project, T0_MS) for p in person_ids],
        )
        conn.executemany(
            "INSERT INTO person_distinct_ids(project_id, distinct_id, person_id, created_at, seq)"
            " VALUES (?, ?, ?, ?, ?)",
            [(project, d, p, T0_MS, n + 1) for n, (d, p) in enumerate(persons.items())],
        )
        conn.executemany(
            "INSERT INTO events(project_id, event, distinct_id, time_ms, dedup_time_ms, received_ms, insert_id,"
            " properties) VALUES (" + str(int(project)) + ", ?, ?, ?, ?, ?, ?, ?)",
            _events(events, ids, rng),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return project

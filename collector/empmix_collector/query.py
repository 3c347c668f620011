"""Read queries: persons, their events, the merge log, funnels and retention.

Every function takes a read connection first (``Store.read`` supplies one) and
returns plain JSON-ready data. Identity is resolved at query time by joining
``events.distinct_id`` to ``person_distinct_ids``, so an anonymous past is
attributed to a person the moment a link arrives, in whatever order events came.

Example::

    steps = await store.read(funnel, project_id, ["view", "signup"], None, None, DAY_MS * 30, "person")
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any

__all__ = [
    "UNITS_MS",
    "get_person",
    "person_events",
    "list_persons",
    "latest_events",
    "merge_log",
    "funnel",
    "funnel_depth",
    "retention",
    "period_start",
]

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
UNITS_MS = {"hour": HOUR_MS, "day": DAY_MS, "week": WEEK_MS}
_MONDAY_MS = 4 * DAY_MS  # 1970-01-05, the first Monday: weeks start on Monday (ISO)
_NO_TIME = (-(2**62), 2**62)


def _person_row(conn: sqlite3.Connection, person_id: int) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT id, is_identified, created_at, properties FROM persons WHERE id = ?", (person_id,)
    ).fetchone()
    if row is None:
        return None
    ids = [
        r[0]
        for r in conn.execute(
            "SELECT distinct_id FROM person_distinct_ids WHERE person_id = ? ORDER BY seq", (person_id,)
        )
    ]
    return {
        "person_id": row[0],
        "distinct_ids": ids,
        "identified": bool(row[1]),
        "created_at": row[2],
        "properties": json.loads(row[3]),
    }


def _person_id_of(conn: sqlite3.Connection, project_id: int, distinct_id: str) -> int | None:
    row = conn.execute(
        "SELECT person_id FROM person_distinct_ids WHERE project_id = ? AND distinct_id = ?", (project_id, distinct_id)
    ).fetchone()
    return None if row is None else int(row[0])


def get_person(conn: sqlite3.Connection, project_id: int, distinct_id: str) -> dict[str, Any] | None:
    """The person ``distinct_id`` belongs to: ``person_id``, ``distinct_ids``, ``identified``,
    ``created_at``, ``properties``; ``None`` if the id is unknown."""
    person_id = _person_id_of(conn, project_id, distinct_id)
    return None if person_id is None else _person_row(conn, person_id)


def _event(row: Sequence[Any], with_person: bool = False) -> dict[str, Any]:
    out = {
        "event": row[0],
        "distinct_id": row[1],
        "time": row[2],
        "insert_id": row[3],
        "properties": json.loads(row[4]),
    }
    if with_person:
        out["person_id"] = row[5]
    return out


def person_events(
    conn: sqlite3.Connection, project_id: int, distinct_id: str, limit: int
) -> list[dict[str, Any]] | None:
    """Every event of the person of ``distinct_id``, under any of its ids, in time order
    (oldest first, at most ``limit``); ``None`` if the id is unknown."""
    person_id = _person_id_of(conn, project_id, distinct_id)
    if person_id is None:
        return None
    rows = conn.execute(
        # CROSS JOIN pins the order (ids of the person first, then their events by index);
        # left to itself the planner may scan every event of the project
        "SELECT e.event, e.distinct_id, e.time_ms, e.insert_id, e.properties"
        " FROM person_distinct_ids m CROSS JOIN events e"
        " ON e.project_id = m.project_id AND e.distinct_id = m.distinct_id"
        " WHERE m.person_id = ? AND m.project_id = ? ORDER BY e.time_ms, e.id LIMIT ?",
        (person_id, project_id, limit),
    )
    return [_event(row) for row in rows]


def list_persons(conn: sqlite3.Connection, project_id: int, limit: int, offset: int) -> list[dict[str, Any]]:
    """Persons of the project, newest first."""
    rows = conn.execute(
        "SELECT id, is_identified, created_at, properties FROM persons WHERE project_id = ?"
        " ORDER BY id DESC LIMIT ? OFFSET ?",
        (project_id, limit, offset),
    ).fetchall()
    ids: dict[int, list[str]] = defaultdict(list)
    for start in range(0, len(rows), 500):
        chunk = [row[0] for row in rows[start : start + 500]]
        marks = ",".join("?" * len(chunk))
        for person_id, distinct_id in conn.execute(
            f"SELECT person_id, distinct_id FROM person_distinct_ids WHERE person_id IN ({marks}) ORDER BY seq", chunk
        ):
            ids[person_id].append(distinct_id)
    return [
        {
            "person_id": row[0],
            "distinct_ids": ids.get(row[0], []),
            "identified": bool(row[1]),
            "created_at": row[2],
            "properties": json.loads(row[3]),
        }
        for row in rows
    ]


def latest_events(conn: sqlite3.Connection, project_id: int, limit: int) -> list[dict[str, Any]]:
    """The newest events (by ``time``, among the most recently received), newest first,
    each with the ``person_id`` its distinct_id resolves to (``None`` for ``""``)."""
    window = max(limit * 10, 1000)
    rows = conn.execute(
        "SELECT r.event, r.distinct_id, r.time_ms, r.insert_id, r.properties, m.person_id FROM"
        " (SELECT id, event, distinct_id, time_ms, insert_id, properties FROM events"
        "  WHERE +project_id = ? ORDER BY id DESC LIMIT ?) r"  # +: walk the rowids backwards, no index
        " LEFT JOIN person_distinct_ids m ON m.project_id = ? AND m.distinct_id = r.distinct_id"
        " ORDER BY r.time_ms DESC, r.id DESC LIMIT ?",
        (project_id, window, project_id, limit),
    )
    return [_event(row, with_person=True) for row in rows]


def merge_log(conn: sqlite3.Connection, project_id: int, limit: int) -> list[dict[str, Any]]:
    """The latest ``limit`` merge attempts, oldest first."""
    rows = conn.execute(
        "SELECT * FROM (SELECT id, kind, from_id, to_id, result, reason, detail, time_ms, insert_id, received_ms"
        " FROM merges WHERE project_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id",
        (project_id, limit),
    )
    return [
        {
            "kind": r[1],
            "from_id": r[2],
            "to_id": r[3],
            "result": r[4],
            "reason": r[5] or None,
            "detail": r[6],
            "time": r[7],
            "insert_id": r[8],
            "received": r[9],
        }
        for r in rows
    ]


def _keyed_events(
    conn: sqlite3.Connection, project_id: int, names: Sequence[str], lo: int, hi: int, by: str, ordered: bool = False
) -> list[tuple[Any, int, int, str]]:
    """(key, time, id, event) for the named events in [lo, hi], key = person or distinct_id
    (``ordered``: sorted by key, time, id -- SQLite sorts faster than Python)."""
    marks = ",".join("?" * len(names))
    if by == "person":
        sql = (
            "SELECT COALESCE(m.person_id, 'd:' || e.distinct_id), e.time_ms, e.id, e.event FROM events e"
            " LEFT JOIN person_distinct_ids m ON m.project_id = e.project_id AND m.distinct_id = e.distinct_id"
            f" WHERE e.project_id = ? AND e.event IN ({marks}) AND e.time_ms BETWEEN ? AND ? AND e.distinct_id <> ''"
        )
    else:
        sql = (
            "SELECT e.distinct_id, e.time_ms, e.id, e.event FROM events e"
            f" WHERE e.project_id = ? AND e.event IN ({marks}) AND e.time_ms BETWEEN ? AND ? AND e.distinct_id <> ''"
        )
    if ordered:
        sql += " ORDER BY 1, 2, 3"
    return conn.execute(sql, (project_id, *names, lo, hi)).fetchall()


def funnel_depth(events: Sequence[tuple[int, str]], steps: Sequence[str], hi: int, window_ms: int) -> int:
    """How many steps of an ordered funnel one person reached.

    ``events`` are (time, name) in time order. One pass, O(events x steps): for each step
    keep the *latest* start (first-step time) of a chain that reached it, since a later
    start leaves more of the window for the steps to come. Steps are updated from the
    last to the first so one event never advances a chain by two steps.
    """
    total = len(steps)
    latest: list[int | None] = [None] * total
    first = steps[0]
    for time_ms, name in events:
        for k in range(total - 1, 0, -1):
            start = latest[k - 1]
            if name == steps[k] and start is not None and time_ms - start <= window_ms:
                current = latest[k]
                if current is None or start > current:
                    latest[k] = start
        if name == first and time_ms <= hi:
            latest[0] = time_ms
    depth = 0
    while depth < total and latest[depth] is not None:
        depth += 1
    return depth


def funnel(
    conn: sqlite3.Connection,
    project_id: int,
    steps: Sequence[str],
    from_ms: int | None,
    to_ms: int | None,
    window_ms: int,
    by: str = "person",
) -> list[dict[str, Any]]:
    """Ordered funnel: how many persons (or raw distinct ids, ``by="distinct_id"``) did
    ``steps[0]``, then ``steps[1]``, ... in order, every step within ``window_ms`` of the
    first. The first step must fall in ``[from_ms, to_ms]``; later steps may run past
    ``to_ms`` up to the window. Returns ``[{"event", "count"}, ...]``.
    """
    lo = _NO_TIME[0] if from_ms is None else from_ms
    hi = _NO_TIME[1] if to_ms is None else to_ms
    rows = _keyed_events(conn, project_id, sorted(set(steps)), lo, min(hi + window_ms, _NO_TIME[1]), by, True)
    reached_counts = [0] * len(steps)
    for _, group in groupby(rows, key=itemgetter(0)):
        for k in range(funnel_depth([(row[1], row[3]) for row in group], steps, hi, window_ms)):
            reached_counts[k] += 1
    return [{"event": name, "count": count} for name, count in zip(steps, reached_counts, strict=True)]


def period_start(time_ms: int, unit: str) -> int:
    """Start of the UTC hour / day / ISO week (Monday) holding ``time_ms``."""
    size = UNITS_MS[unit]
    offset = _MONDAY_MS if unit == "week" else 0
    return time_ms - (time_ms - offset) % size


def retention(
    conn: sqlite3.Connection,
    project_id: int,
    born: str,
    returned: str,
    from_ms: int | None,
    to_ms: int | None,
    unit: str = "day",
    by: str = "person",
) -> list[dict[str, Any]]:
    """Cohort retention table.

    Each person (or distinct id) is born at its first ``born`` event in
    ``[from_ms, to_ms]``; its cohort is the UTC ``unit`` holding that event.
    ``returned[k]`` counts the cohort's members with a ``returned`` event in the
    k-th unit after the cohort start (k = 0 is the birth period). Every row runs
    up to the unit of the latest ``returned`` event of the project, so rows by
    person and by distinct id have the same shape.
    """
    lo = _NO_TIME[0] if from_ms is None else from_ms
    hi = _NO_TIME[1] if to_ms is None else to_ms
    births: dict[Any, int] = {}
    for key, time_ms, _, _ in _keyed_events(conn, project_id, [born], lo, hi, by):
        if key not in births or time_ms < births[key]:
            births[key] = time_ms
    if not births:
        return []
    size = UNITS_MS[unit]
    starts = {key: period_start(t, unit) for key, t in births.items()}
    first = min(starts.values())
    came_back: dict[Any, set[int]] = defaultdict(set)
    last = max(births.values())
    for key, time_ms, _, _ in _keyed_events(conn, project_id, [returned], first, _NO_TIME[1], by):
        last = max(last, time_ms)
        start = starts.get(key)
        if start is not None and time_ms >= start:
            came_back[key].add((time_ms - start) // size)
    cohorts: dict[int, list[Any]] = defaultdict(list)
    for key, start in starts.items():
        cohorts[start].append(key)
    table = []
    for start in sorted(cohorts):
        members = cohorts[start]
        periods = max(1, (last - start) // size + 1)
        counts = [0] * periods
        for key in members:
            for k in came_back.get(key, ()):
                if k < periods:
                    counts[k] += 1
        table.append({"start": start, "size": len(members), "returned": counts})
    return table

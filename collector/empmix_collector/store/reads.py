"""The query API's reads of single things and short lists, in the SQL both stores speak:
persons, their events and sessions, the latest events, the merge log, groups. Funnels and
retention, which scan many events, are in ``funnels`` and ``retention``.

Every function takes a :class:`~empmix_collector.store.sql.Sql` first and returns
plain JSON-ready data. Identity is resolved at query time by joining
``events.distinct_id`` to ``person_distinct_ids``, so an anonymous past is attributed
to a person the moment a link arrives, in whatever order events came.

Example::

    person = get_person(sql, project_id, "user-1")
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from empmix_collector.domain.analysis import sessions_of
from empmix_collector.domain.cookieless import is_cookieless
from empmix_collector.domain.groups import group_ids
from empmix_collector.domain.wire import loads_json
from empmix_collector.store.event_scan import like_key
from empmix_collector.store.sql import Row, Sql

__all__ = [
    "get_person",
    "person_events",
    "person_sessions",
    "list_persons",
    "latest_events",
    "merge_log",
    "get_group",
    "list_groups",
]

_CHUNK = 500


def _person_json(row: Row, ids: list[str]) -> dict[str, Any]:
    return {
        "person_id": row[0],
        "distinct_ids": ids,
        "identified": bool(row[1]),
        "cookieless": bool(ids) and all(is_cookieless(i) for i in ids),  # counted only thanks to cookieless mode
        "created_at": row[2],
        "properties": loads_json(row[3]),
    }


def _person_row(sql: Sql, person_id: int) -> dict[str, Any] | None:
    row = sql.one("SELECT id, is_identified, created_at, properties FROM persons WHERE id = ?", (person_id,))
    if row is None:
        return None
    ids = [
        r[0]
        for r in sql.all("SELECT distinct_id FROM person_distinct_ids WHERE person_id = ? ORDER BY seq", (person_id,))
    ]
    return _person_json(row, ids)


def _person_id_of(sql: Sql, project_id: int, distinct_id: str) -> int | None:
    row = sql.one(
        "SELECT person_id FROM person_distinct_ids WHERE project_id = ? AND distinct_id = ?", (project_id, distinct_id)
    )
    return None if row is None else int(row[0])


def get_person(sql: Sql, project_id: int, distinct_id: str) -> dict[str, Any] | None:
    """The person ``distinct_id`` belongs to: ``person_id``, ``distinct_ids``, ``identified``,
    ``created_at``, ``properties``; ``None`` if the id is unknown."""
    person_id = _person_id_of(sql, project_id, distinct_id)
    return None if person_id is None else _person_row(sql, person_id)


def _event(row: Row, with_person: bool = False) -> dict[str, Any]:
    out = {
        "event": row[0],
        "distinct_id": row[1],
        "time": row[2],
        "insert_id": row[3],
        "properties": loads_json(row[4]),
    }
    if with_person:
        out["person_id"] = row[5]
    return out


def person_events(sql: Sql, project_id: int, distinct_id: str, limit: int) -> list[dict[str, Any]] | None:
    """Every event of the person of ``distinct_id``, under any of its ids, in time order
    (oldest first, at most ``limit``); ``None`` if the id is unknown."""
    person_id = _person_id_of(sql, project_id, distinct_id)
    if person_id is None:
        return None
    rows = sql.all(
        # the pinned join keeps the order (ids of the person first, then their events by index);
        # left to itself SQLite's planner may scan every event of the project
        "SELECT e.event, e.distinct_id, e.time_ms, e.insert_id, e.properties"
        f" FROM person_distinct_ids m {sql.pin_join} events e"
        " ON e.project_id = m.project_id AND e.distinct_id = m.distinct_id"
        " WHERE m.person_id = ? AND m.project_id = ? ORDER BY e.time_ms, e.id LIMIT ?",
        (person_id, project_id, limit),
    )
    return [_event(row) for row in rows]


def person_sessions(sql: Sql, project_id: int, distinct_id: str) -> list[dict[str, Any]] | None:
    """The person's sessions (events grouped by ``properties.$session_id``, over all its ids),
    oldest first: ``[{"session_id", "start", "end", "events"}]``; ``None`` if the id is unknown."""
    person_id = _person_id_of(sql, project_id, distinct_id)
    if person_id is None:
        return None
    rows = sql.all(
        "SELECT e.time_ms, e.properties"
        f" FROM person_distinct_ids m {sql.pin_join} events e"
        " ON e.project_id = m.project_id AND e.distinct_id = m.distinct_id"
        " WHERE m.person_id = ? AND m.project_id = ? AND e.properties LIKE ? ESCAPE '\\'",
        (person_id, project_id, like_key("$session_id")),
    )
    return sessions_of((time_ms, loads_json(props).get("$session_id")) for time_ms, props in rows)


def list_persons(sql: Sql, project_id: int, limit: int, offset: int) -> list[dict[str, Any]]:
    """Persons of the project, newest first."""
    rows = sql.all(
        "SELECT id, is_identified, created_at, properties FROM persons WHERE project_id = ?"
        " ORDER BY id DESC LIMIT ? OFFSET ?",
        (project_id, limit, offset),
    )
    ids: dict[int, list[str]] = defaultdict(list)
    for start in range(0, len(rows), _CHUNK):
        among, values = sql.in_list([row[0] for row in rows[start : start + _CHUNK]])
        for person_id, distinct_id in sql.all(
            f"SELECT person_id, distinct_id FROM person_distinct_ids WHERE person_id {among} ORDER BY seq", values
        ):
            ids[person_id].append(distinct_id)
    return [_person_json(row, ids.get(row[0], [])) for row in rows]


def latest_events(sql: Sql, project_id: int, limit: int) -> list[dict[str, Any]]:
    """The newest events (by ``time``, among the most recently received), newest first,
    each with the ``person_id`` its distinct_id resolves to (``None`` for ``""``)."""
    window = max(limit * 10, 1000)
    rows = sql.all(
        "SELECT r.event, r.distinct_id, r.time_ms, r.insert_id, r.properties, m.person_id FROM"
        " (SELECT id, event, distinct_id, time_ms, insert_id, properties FROM events"
        f"  WHERE {sql.no_index}project_id = ? ORDER BY id DESC LIMIT ?) r"  # walk the ids backwards
        " LEFT JOIN person_distinct_ids m ON m.project_id = ? AND m.distinct_id = r.distinct_id"
        " ORDER BY r.time_ms DESC, r.id DESC LIMIT ?",
        (project_id, window, project_id, limit),
    )
    return [_event(row, with_person=True) for row in rows]


def merge_log(sql: Sql, project_id: int, limit: int) -> list[dict[str, Any]]:
    """The latest ``limit`` merge attempts, oldest first."""
    rows = sql.all(
        "SELECT * FROM (SELECT id, kind, from_id, to_id, result, reason, detail, time_ms, insert_id, received_ms,"
        " endpoint, origin"
        " FROM merges WHERE project_id = ? ORDER BY id DESC LIMIT ?) r ORDER BY id",
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
            "endpoint": r[10],
            "origin": r[11],
        }
        for r in rows
    ]


# -- groups ------------------------------------------------------------------------------


def get_group(sql: Sql, project_id: int, group_key: str, group_id: str) -> dict[str, Any] | None:
    """``{"group_key", "group_id", "properties", "created_at", "updated_at"}`` or ``None``."""
    row = sql.one(
        "SELECT properties, created_at, updated_at FROM group_profiles"
        " WHERE project_id = ? AND group_key = ? AND group_id = ?",
        (project_id, group_key, group_id),
    )
    if row is None:
        return None
    return {
        "group_key": group_key,
        "group_id": group_id,
        "properties": loads_json(row[0]),
        "created_at": row[1],
        "updated_at": row[2],
    }


def list_groups(sql: Sql, project_id: int, group_key: str, limit: int) -> list[dict[str, Any]]:
    """Every group of ``group_key`` that has a profile or is named by an event or a person's
    profile, sorted by id: ``[{"group_key", "group_id", "properties", "members", "events"}]``.

    ``members`` are the distinct ids (each person's first id, in the identity map's order)
    of the persons whose events or profile property ``group_key`` name the group; ``events``
    counts the events naming it. Reads every event that may carry the key: a dashboard
    query, not one for millions of events.
    """
    like = like_key(group_key)
    groups: dict[str, dict[str, Any]] = {}

    def entry(group_id: str) -> dict[str, Any]:
        found = groups.get(group_id)
        if found is None:
            found = groups[group_id] = {
                "group_key": group_key, "group_id": group_id, "properties": {}, "members": set(), "events": 0,
            }  # fmt: skip
        return found

    for group_id, props in sql.all(
        "SELECT group_id, properties FROM group_profiles WHERE project_id = ? AND group_key = ?",
        (project_id, group_key),
    ):
        entry(group_id)["properties"] = loads_json(props)
    for person_id, props in sql.all(
        "SELECT id, properties FROM persons WHERE project_id = ? AND properties LIKE ? ESCAPE '\\'",
        (project_id, like),
    ):
        for group_id in group_ids(loads_json(props), group_key):
            entry(group_id)["members"].add(person_id)
    for person_id, props in sql.all(
        "SELECT m.person_id, e.properties FROM events e"
        " LEFT JOIN person_distinct_ids m ON m.project_id = e.project_id AND m.distinct_id = e.distinct_id"
        " WHERE e.project_id = ? AND e.distinct_id <> '' AND e.properties LIKE ? ESCAPE '\\'",
        (project_id, like),
    ):
        for group_id in group_ids(loads_json(props), group_key):
            found = entry(group_id)
            found["events"] += 1
            if person_id is not None:
                found["members"].add(person_id)
    chosen = [groups[group_id] for group_id in sorted(groups)[:limit]]
    persons = sorted({person_id for group in chosen for person_id in group["members"]})
    first_id: dict[int, str] = {}
    for start in range(0, len(persons), _CHUNK):
        among, values = sql.in_list(persons[start : start + _CHUNK])
        for person_id, distinct_id in sql.all(
            f"SELECT person_id, distinct_id FROM person_distinct_ids WHERE person_id {among} ORDER BY seq", values
        ):
            first_id.setdefault(person_id, distinct_id)
    for group in chosen:
        group["members"] = sorted(
            ({"person_id": p, "distinct_id": first_id.get(p)} for p in group["members"]),
            key=lambda member: member["person_id"],
        )
    return chosen

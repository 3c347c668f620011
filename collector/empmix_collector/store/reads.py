"""The query API's reads in the SQL both stores speak: persons, events, merge log,
funnels and retention.

Every function takes a :class:`~empmix_collector.store.sql.Sql` first and returns
plain JSON-ready data. Identity is resolved at query time by joining
``events.distinct_id`` to ``person_distinct_ids``, so an anonymous past is attributed
to a person the moment a link arrives, in whatever order events came. The counting
itself is in ``domain.analysis``.

Example::

    steps = funnel(sql, project_id, ["view", "signup"], None, None, DAY_MS * 30, "person")
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from empmix_collector.domain.analysis import (
    NO_TIME,
    first_times,
    funnel_counts,
    period_start,
    retention_table,
    sessions_of,
)
from empmix_collector.domain.cookieless import is_cookieless
from empmix_collector.domain.groups import group_ids
from empmix_collector.domain.wire import dumps_json, loads_json
from empmix_collector.store.sql import Row, Sql

__all__ = [
    "get_person",
    "person_events",
    "person_sessions",
    "list_persons",
    "latest_events",
    "merge_log",
    "funnel",
    "retention",
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
        (person_id, project_id, _like_key("$session_id")),
    )
    return sessions_of((time_ms, loads_json(props).get("$session_id")) for time_ms, props in rows)


def _like_key(key: str) -> str:
    """A ``LIKE`` pattern (escape ``\\``) matching stored properties that may hold ``key``: a cheap
    filter in the database; the exact test is on the parsed properties."""
    quoted = dumps_json(key)
    return "%" + quoted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


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


def _keyed_events(
    sql: Sql, project_id: int, names: Sequence[str], lo: int, hi: int, by: str, ordered: bool = False
) -> list[Row]:
    """(key, time, id, event) for the named events in [lo, hi], key = person or distinct_id
    (``ordered``: sorted by key, time, id -- the database sorts faster than Python)."""
    among, values = sql.in_list(names)
    if by == "person":
        sql_text = (
            f"SELECT {sql.person_key}, e.time_ms, e.id, e.event FROM events e"
            " LEFT JOIN person_distinct_ids m ON m.project_id = e.project_id AND m.distinct_id = e.distinct_id"
            f" WHERE e.project_id = ? AND e.event {among} AND e.time_ms BETWEEN ? AND ? AND e.distinct_id <> ''"
        )
    else:
        sql_text = (
            "SELECT e.distinct_id, e.time_ms, e.id, e.event FROM events e"
            f" WHERE e.project_id = ? AND e.event {among} AND e.time_ms BETWEEN ? AND ? AND e.distinct_id <> ''"
        )
    if ordered:
        sql_text += " ORDER BY 1, 2, 3"
    return sql.all(sql_text, (project_id, *values, lo, hi))


def funnel(
    sql: Sql,
    project_id: int,
    steps: Sequence[str],
    from_ms: int | None,
    to_ms: int | None,
    window_ms: int,
    by: str = "person",
    group_key: str | None = None,
) -> list[dict[str, Any]]:
    """Ordered funnel: how many persons (or raw distinct ids, ``by="distinct_id"``, or group
    ids named by the events' property ``group_key``, ``by="group"``) did
    ``steps[0]``, then ``steps[1]``, ... in order, every step within ``window_ms`` of the
    first. The first step must fall in ``[from_ms, to_ms]``; later steps may run past
    ``to_ms`` up to the window. Returns ``[{"event", "count"}, ...]``.
    """
    lo = NO_TIME[0] if from_ms is None else from_ms
    hi = NO_TIME[1] if to_ms is None else to_ms
    last = min(hi + window_ms, NO_TIME[1])
    if by == "group":  # counted in Python on both stores: the ids live inside the properties
        assert group_key is not None
        rows = _group_keyed_events(sql, project_id, sorted(set(steps)), lo, last, group_key)
        return funnel_counts(rows, steps, hi, window_ms)
    if sql.funnel_in_sql:
        return _funnel_in_sql(sql, project_id, steps, lo, hi, last, window_ms, by)
    rows = _keyed_events(sql, project_id, sorted(set(steps)), lo, last, by, True)
    return funnel_counts(rows, steps, hi, window_ms)


def _funnel_in_sql(
    sql: Sql, project_id: int, steps: Sequence[str], lo: int, hi: int, last: int, window_ms: int, by: str
) -> list[dict[str, Any]]:
    """``domain.analysis.funnel_counts`` computed by the database: only the counts travel.

    The same one-pass rule as ``funnel_depth``, one window function per step over each
    key's events in (time, id) order. ``s{k}`` is the latest start of a chain whose step
    ``k`` is this event: step 0 is the event's own time (if it is the first step and
    at most ``hi``); step ``k`` is the latest ``s{k-1}`` among the *earlier* events of the
    key, if this event is step ``k`` and lies within ``window_ms`` of that start. A key
    reached step ``k`` if some event has an ``s{k}``.
    """
    among, names = sql.in_list(sorted(set(steps)))
    if by == "person":  # the person, or the raw distinct id when it has none (k2 is then set)
        keys = "m.person_id AS k1, CASE WHEN m.person_id IS NULL THEN e.distinct_id END AS k2"
        source = (
            "events e LEFT JOIN person_distinct_ids m ON m.project_id = e.project_id AND m.distinct_id = e.distinct_id"
        )
    else:
        keys = "0 AS k1, e.distinct_id AS k2"
        source = "events e"
    params: list[Any] = [steps[0], hi, project_id, *names, lo, last]
    query = (
        f"SELECT k1, k2, t, id, ev, CASE WHEN ev = ? AND t <= ? THEN t END AS s0 FROM"
        f" (SELECT {keys}, e.time_ms AS t, e.id AS id, e.event AS ev FROM {source}"
        f"  WHERE e.project_id = ? AND e.event {among} AND e.time_ms BETWEEN ? AND ? AND e.distinct_id <> '') r"
    )
    window = "PARTITION BY k1, k2 ORDER BY t, id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
    for k in range(1, len(steps)):
        carried = ", ".join(f"s{j}" for j in range(k))
        query = (
            f"SELECT k1, k2, t, id, ev, {carried}, CASE WHEN ev = ? AND t - m <= ? THEN m END AS s{k} FROM"
            f" (SELECT k1, k2, t, id, ev, {carried}, MAX(s{k - 1}) OVER ({window}) AS m FROM ({query}) q{k}) w{k}"
        )
        params = [steps[k], window_ms, *params]
    reached = ", ".join(f"MAX(CASE WHEN s{k} IS NULL THEN 0 ELSE 1 END) AS r{k}" for k in range(len(steps)))
    totals = ", ".join(f"COALESCE(SUM(r{k}), 0)" for k in range(len(steps)))
    row = sql.one(f"SELECT {totals} FROM (SELECT {reached} FROM ({query}) f GROUP BY k1, k2) g", params)
    assert row is not None
    return [{"event": name, "count": int(count)} for name, count in zip(steps, row, strict=True)]


def retention(
    sql: Sql,
    project_id: int,
    born: str,
    returned: str,
    from_ms: int | None,
    to_ms: int | None,
    unit: str = "day",
    by: str = "person",
    group_key: str | None = None,
) -> list[dict[str, Any]]:
    """Cohort retention table (see ``domain.analysis.retention_table``): each person (or
    distinct id, or group id with ``by="group"``) is born at its first ``born`` event in
    ``[from_ms, to_ms]``."""
    lo = NO_TIME[0] if from_ms is None else from_ms
    hi = NO_TIME[1] if to_ms is None else to_ms

    def keyed(names: list[str], start: int, end: int) -> list[Row]:
        if by == "group":
            assert group_key is not None
            return _group_keyed_events(sql, project_id, names, start, end, group_key)
        return _keyed_events(sql, project_id, names, start, end, by)

    births = first_times(keyed([born], lo, hi))
    if not births:
        return []
    first = min(period_start(t, unit) for t in births.values())
    returns = keyed([returned], first, NO_TIME[1])
    return retention_table(births, returns, unit)


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
    like = _like_key(group_key)
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


def _group_keyed_events(sql: Sql, project_id: int, names: Sequence[str], lo: int, hi: int, group_key: str) -> list[Row]:
    """(group id, time, id, event) for the named events in [lo, hi], one row per group id the
    event names under ``group_key``, sorted by (group id, time, id)."""
    among, values = sql.in_list(names)
    rows = sql.all(
        "SELECT e.time_ms, e.id, e.event, e.properties FROM events e"
        f" WHERE e.project_id = ? AND e.event {among} AND e.time_ms BETWEEN ? AND ? AND e.distinct_id <> ''"
        " AND e.properties LIKE ? ESCAPE '\\'",
        (project_id, *values, lo, hi, _like_key(group_key)),
    )
    out = [
        (group_id, time_ms, event_id, name)
        for time_ms, event_id, name, props in rows
        for group_id in group_ids(loads_json(props), group_key)
    ]
    out.sort(key=lambda row: (row[0], row[1], row[2]))
    return out

"""What the funnel and retention reads share: the bound on how many events one query may read,
and the events of a group key (whose ids live inside the stored properties).

Example::

    check_rows(sql, project_id, ["view", "signup"], lo, hi)   # QueryTooBig past QUERY_ROW_LIMIT
    rows = group_keyed_events(sql, project_id, ["view"], lo, hi, "company")
"""

from __future__ import annotations

from collections.abc import Sequence

from empmix_collector.domain.groups import group_ids
from empmix_collector.domain.wire import dumps_json, loads_json
from empmix_collector.store import base
from empmix_collector.store.base import QueryTooBig
from empmix_collector.store.sql import Row, Sql

__all__ = ["check_rows", "like_key", "group_keyed_events"]


def check_rows(sql: Sql, project_id: int, names: Sequence[str], lo: int, hi: int) -> int:
    """How many events named ``names`` lie in ``[lo, hi]`` (a covering index range, counted up to
    one past the limit); ``QueryTooBig`` if more than ``base.QUERY_ROW_LIMIT``."""
    limit = base.QUERY_ROW_LIMIT
    among, values = sql.in_list(sorted(set(names)))
    row = sql.one(
        "SELECT COUNT(*) FROM (SELECT 1 FROM events e"
        f" WHERE e.project_id = ? AND e.event {among} AND e.time_ms BETWEEN ? AND ? AND e.distinct_id <> ''"
        " LIMIT ?) n",
        (project_id, *values, lo, hi, limit + 1),
    )
    count = 0 if row is None else int(row[0])
    if count > limit:
        raise QueryTooBig(
            f"the query would read more than {limit:,} events (QUERY_ROW_LIMIT): narrow it with from= and to="
        )
    return count


def like_key(key: str) -> str:
    """A ``LIKE`` pattern (escape ``\\``) matching stored properties that may hold ``key``: a cheap
    filter in the database; the exact test is on the parsed properties."""
    quoted = dumps_json(key)
    return "%" + quoted.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def group_keyed_events(sql: Sql, project_id: int, names: Sequence[str], lo: int, hi: int, group_key: str) -> list[Row]:
    """(group id, time, id, event) for the named events in [lo, hi], one row per group id the
    event names under ``group_key``, sorted by (group id, time, id)."""
    among, values = sql.in_list(names)
    rows = sql.all(
        "SELECT e.time_ms, e.id, e.event, e.properties FROM events e"
        f" WHERE e.project_id = ? AND e.event {among} AND e.time_ms BETWEEN ? AND ? AND e.distinct_id <> ''"
        " AND e.properties LIKE ? ESCAPE '\\'",
        (project_id, *values, lo, hi, like_key(group_key)),
    )
    out = [
        (group_id, time_ms, event_id, name)
        for time_ms, event_id, name, props in rows
        for group_id in group_ids(loads_json(props), group_key)
    ]
    out.sort(key=lambda row: (row[0], row[1], row[2]))
    return out

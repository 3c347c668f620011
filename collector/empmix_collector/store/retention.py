"""Cohort retention, counted by the database on both stores: only one row per (cohort, period)
travels.

The rules are those of ``domain.analysis.retention_table``: each key (person, or raw distinct
id) is born at its first ``born`` event in ``[from, to]``; its cohort is the UTC hour, day or
ISO week holding that time; ``returned[k]`` counts the members with a ``returned`` event in the
k-th unit after the cohort start; every row runs up to the unit of the latest ``returned``
event. ``by="group"`` reads the events and counts in Python (the ids live in the properties).

Example::

    table = retention(sql, project_id, "signup", "open", None, None, "day", "person")
"""

from __future__ import annotations

from typing import Any

from empmix_collector.domain.analysis import NO_TIME, UNITS_MS, first_times, period_start, retention_table
from empmix_collector.store import base
from empmix_collector.store.base import QueryTooBig
from empmix_collector.store.event_scan import check_rows, group_keyed_events
from empmix_collector.store.sql import Sql

__all__ = ["retention"]

_MONDAY_MS = 4 * 86_400_000  # weeks start on Monday, as in domain.analysis.period_start


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
    """Cohort retention table ``[{"start", "size", "returned": [...]}]``, oldest cohort first.

    Raises:
        QueryTooBig: more than ``base.QUERY_ROW_LIMIT`` events of either name to read, or a table
            of more than ``base.RETENTION_CELL_LIMIT`` numbers.
    """
    lo = NO_TIME[0] if from_ms is None else from_ms
    hi = NO_TIME[1] if to_ms is None else to_ms
    check_rows(sql, project_id, [born], lo, hi)
    check_rows(sql, project_id, [returned], period_start(lo, unit), NO_TIME[1])  # the first cohort starts here or later
    if by == "group":
        assert group_key is not None
        births = first_times(group_keyed_events(sql, project_id, [born], lo, hi, group_key))
        if not births:
            return []
        starts = {period_start(t, unit) for t in births.values()}
        returns = group_keyed_events(sql, project_id, [returned], min(starts), NO_TIME[1], group_key)
        last = max([*births.values(), *(row[1] for row in returns)])
        _check_cells(sum(max(1, (last - start) // UNITS_MS[unit] + 1) for start in starts))
        return retention_table(births, returns, unit)
    return _retention_in_sql(sql, project_id, born, returned, lo, hi, unit, by)


def _check_cells(cells: int) -> None:
    if cells > base.RETENTION_CELL_LIMIT:
        raise QueryTooBig(
            f"the retention table would hold {cells:,} numbers, more than {base.RETENTION_CELL_LIMIT:,}"
            " (RETENTION_CELL_LIMIT): use a larger unit or a narrower range"
        )


def _retention_in_sql(
    sql: Sql, project_id: int, born: str, returned: str, lo: int, hi: int, unit: str, by: str
) -> list[dict[str, Any]]:
    """One pass over the key's events, no join: the ``born`` events in ``[lo, hi]`` (role 0) and
    the ``returned`` ones from the earliest possible cohort on (role 1), with each key's birth as
    a window minimum over its events. Rows: (cohort start, -1, size, latest birth) and (cohort
    start, period, members who returned in it, -); then the latest ``returned`` event."""
    size = UNITS_MS[unit]
    offset = _MONDAY_MS if unit == "week" else 0  # both fixed numbers, not input
    if by == "person":
        key = sql.person_key
        source = (
            "events e LEFT JOIN person_distinct_ids m ON m.project_id = e.project_id AND m.distinct_id = e.distinct_id"
        )
    else:
        key, source = "e.distinct_id", "events e"
    named = "e.project_id = ? AND e.event = ? AND e.distinct_id <> ''"
    # stored times are past MIN_TIME_MS (1971), so b - offset >= 0 and "/" rounds down as "//" does
    cohort = f"{offset} + {size} * ((b - {offset}) / {size})"
    query = (
        f"SELECT c, CASE WHEN role = 0 THEN -1 ELSE (t - c) / {size} END AS p, COUNT(DISTINCT k), MAX(t) FROM"
        f" (SELECT k, t, role, {cohort} AS c FROM"
        "  (SELECT k, t, role, MIN(CASE WHEN role = 0 THEN t END) OVER (PARTITION BY k) AS b FROM"
        f"   (SELECT {key} AS k, e.time_ms AS t, 0 AS role FROM {source} WHERE {named} AND e.time_ms BETWEEN ? AND ?"
        f"    UNION ALL SELECT {key} AS k, e.time_ms AS t, 1 AS role FROM {source}"
        f"    WHERE {named} AND e.time_ms BETWEEN ? AND ?) r) w"
        "  WHERE b IS NOT NULL) x"
        " WHERE role = 0 OR t >= c GROUP BY 1, 2"
    )
    first = period_start(lo, unit)
    params = (project_id, born, lo, hi, project_id, returned, first, NO_TIME[1])
    sizes: dict[int, int] = {}
    came_back: list[tuple[int, int, int]] = []
    last: int | None = None
    for start, period, members, latest in sql.all(query, params):
        if period == -1:
            sizes[int(start)] = int(members)
            last = int(latest) if last is None else max(last, int(latest))
        else:
            came_back.append((int(start), int(period), int(members)))
    if not sizes or last is None:
        return []
    row = sql.one(
        f"SELECT MAX(e.time_ms) FROM events e WHERE {named} AND e.time_ms BETWEEN ? AND ?",
        (project_id, returned, min(sizes), NO_TIME[1]),
    )
    if row is not None and row[0] is not None:
        last = max(last, int(row[0]))
    periods = {start: max(1, (last - start) // size + 1) for start in sizes}
    _check_cells(sum(periods.values()))
    counts = {start: [0] * periods[start] for start in sizes}
    for start, period, members in came_back:
        if period < periods[start]:
            counts[start][period] = members
    return [{"start": start, "size": sizes[start], "returned": counts[start]} for start in sorted(sizes)]

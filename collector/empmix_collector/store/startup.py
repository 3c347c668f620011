"""The start-up report's read (``GET /api/startup``), in the SQL both stores speak.

The database counts: page views by the event index, page leaves grouped by the JSON text of
their ``$left_before_ready``, and ``$python_ready`` events grouped by the texts of their
``$interpreter`` and ``$ready_ms``, so only distinct (interpreter, time) pairs with their counts
travel, never whole events (except the rare text PostgreSQL cannot read, see
``Sql.json_field``). The arithmetic is ``domain.startup``'s.

Example::

    report = startup(sql, project_id, None, None)   # {"visits": 12, "left_before_ready": 3, ...}
"""

from __future__ import annotations

from typing import Any

from empmix_collector.domain.analysis import NO_TIME
from empmix_collector.domain.startup import (
    INTERPRETER_KEY,
    LEAVE_EVENT,
    LEFT_EARLY_KEY,
    READY_EVENT,
    READY_MS_KEY,
    VISIT_EVENT,
    startup_report,
)
from empmix_collector.domain.wire import loads_json
from empmix_collector.store.sql import Sql

__all__ = ["startup"]

_WHERE = " FROM events WHERE project_id = ? AND event = ? AND time_ms BETWEEN ? AND ?"


def _values(sql: Sql, keys: tuple[str, ...], event: str, where: tuple[int, int, int]) -> list[tuple[list[Any], int]]:
    """``([value of each key], count)`` for the ``event`` rows in range, grouped by those values."""
    fields = [sql.json_field("properties", key) for key in keys]
    raw = fields[0][1]
    columns = ", ".join(field for field, _ in fields)
    groups = ", ".join(str(n) for n in range(1, len(keys) + 2))
    project_id, lo, hi = where
    rows = sql.all(f"SELECT {columns}, {raw}, COUNT(*){_WHERE} GROUP BY {groups}", (project_id, event, lo, hi))
    out = []
    for *texts, whole, count in rows:
        if whole is not None:
            props = loads_json(whole)
            values = [props.get(key) if isinstance(props, dict) else None for key in keys]
        else:
            values = [None if text is None else loads_json(text) for text in texts]
        out.append((values, int(count)))
    return out


def startup(sql: Sql, project_id: int, from_ms: int | None, to_ms: int | None) -> dict[str, Any]:
    """Visits, visits left before Python was ready, and ready times per interpreter, for the
    events timed in ``[from_ms, to_ms]`` (see ``domain.startup.startup_report``)."""
    where = (project_id, NO_TIME[0] if from_ms is None else from_ms, NO_TIME[1] if to_ms is None else to_ms)
    row = sql.one("SELECT COUNT(*)" + _WHERE, (where[0], VISIT_EVENT, *where[1:]))
    visits = int(row[0]) if row is not None else 0
    leaves = _values(sql, (LEFT_EARLY_KEY,), LEAVE_EVENT, where)
    left_early = sum(count for (value,), count in leaves if value is True)
    ready = _values(sql, (INTERPRETER_KEY, READY_MS_KEY), READY_EVENT, where)
    return startup_report(visits, left_early, [(name, ms, count) for (name, ms), count in ready])

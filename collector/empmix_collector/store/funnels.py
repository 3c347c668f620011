"""Ordered funnels, counted by the database on both stores: only the counts travel.

Identity is resolved at query time (``events.distinct_id`` joined to ``person_distinct_ids``),
so an anonymous past counts for its person the moment a link arrives. ``by="group"`` is the
exception: group ids live inside the stored properties, so those events are read and counted
with ``domain.analysis.funnel_counts``. Every funnel first checks how many events it would
read (``event_scan.check_rows``).

Example::

    steps = funnel(sql, project_id, ["view", "signup"], None, None, DAY_MS * 30, "person")
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from empmix_collector.domain.analysis import NO_TIME, funnel_counts
from empmix_collector.store.event_scan import check_rows, group_keyed_events
from empmix_collector.store.sql import Sql

__all__ = ["funnel"]


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

    Raises:
        QueryTooBig: more than ``base.QUERY_ROW_LIMIT`` events to read.
    """
    lo = NO_TIME[0] if from_ms is None else from_ms
    hi = NO_TIME[1] if to_ms is None else to_ms
    last = min(hi + window_ms, NO_TIME[1])
    names = sorted(set(steps))
    check_rows(sql, project_id, names, lo, last)
    if by == "group":
        assert group_key is not None
        rows = group_keyed_events(sql, project_id, names, lo, last, group_key)
        return funnel_counts(rows, steps, hi, window_ms)
    return _funnel_in_sql(sql, project_id, steps, lo, hi, last, window_ms, by)


def _funnel_in_sql(
    sql: Sql, project_id: int, steps: Sequence[str], lo: int, hi: int, last: int, window_ms: int, by: str
) -> list[dict[str, Any]]:
    """``domain.analysis.funnel_counts`` computed by the database.

    The same one-pass rule as ``funnel_depth``, one window function per step over each
    key's events in (time, id) order. ``s{k}`` is the latest start of a chain whose step
    ``k`` is this event: step 0 is the event's own time (if it is the first step and
    at most ``hi``); step ``k`` is the latest ``s{k-1}`` among the *earlier* events of the
    key, if this event is step ``k`` and lies within ``window_ms`` of that start. A key
    reached step ``k`` if some event has an ``s{k}``. The database sorts the events once per
    step (in memory up to its sort budget, then on disk); Python holds one row.
    """
    among, names = sql.in_list(sorted(set(steps)))
    if by == "person":  # the person, or the raw distinct id when it has none
        keys, part = sql.person_partition
        source = (
            "events e LEFT JOIN person_distinct_ids m ON m.project_id = e.project_id AND m.distinct_id = e.distinct_id"
        )
    else:
        keys, part = "e.distinct_id AS k", "k"
        source = "events e"
    params: list[Any] = [steps[0], hi, project_id, *names, lo, last]
    query = (
        f"SELECT {part}, t, id, ev, CASE WHEN ev = ? AND t <= ? THEN t END AS s0 FROM"
        f" (SELECT {keys}, e.time_ms AS t, e.id AS id, e.event AS ev FROM {source}"
        f"  WHERE e.project_id = ? AND e.event {among} AND e.time_ms BETWEEN ? AND ? AND e.distinct_id <> '') r"
    )
    window = f"PARTITION BY {part} ORDER BY t, id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING"
    for k in range(1, len(steps)):
        carried = ", ".join(f"s{j}" for j in range(k))
        query = (
            f"SELECT {part}, t, id, ev, {carried}, CASE WHEN ev = ? AND t - m <= ? THEN m END AS s{k} FROM"
            f" (SELECT {part}, t, id, ev, {carried}, MAX(s{k - 1}) OVER ({window}) AS m FROM ({query}) q{k}) w{k}"
        )
        params = [steps[k], window_ms, *params]
    reached = ", ".join(f"MAX(CASE WHEN s{k} IS NULL THEN 0 ELSE 1 END) AS r{k}" for k in range(len(steps)))
    totals = ", ".join(f"COALESCE(SUM(r{k}), 0)" for k in range(len(steps)))
    row = sql.one(f"SELECT {totals} FROM (SELECT {reached} FROM ({query}) f GROUP BY {part}) g", params)
    assert row is not None
    return [{"event": name, "count": int(count)} for name, count in zip(steps, row, strict=True)]

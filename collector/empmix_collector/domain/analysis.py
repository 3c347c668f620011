"""Funnels and retention on plain rows: the arithmetic, with no SQL.

A store fetches ``(key, time_ms, id, event)`` rows (key = person or distinct id) and
hands them here, so both stores count the same way::

    counts = funnel_counts(rows_sorted_by_key_time_id, ["view", "signup"], hi, DAY_MS)
    table = retention_table(births, returns, "day")
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import groupby
from operator import itemgetter
from typing import Any

__all__ = [
    "HOUR_MS",
    "DAY_MS",
    "WEEK_MS",
    "UNITS_MS",
    "NO_TIME",
    "funnel_depth",
    "funnel_counts",
    "period_start",
    "first_times",
    "retention_table",
    "sessions_of",
]

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
WEEK_MS = 7 * DAY_MS
UNITS_MS = {"hour": HOUR_MS, "day": DAY_MS, "week": WEEK_MS}
_MONDAY_MS = 4 * DAY_MS  # 1970-01-05, the first Monday: weeks start on Monday (ISO)
NO_TIME = (-(2**62), 2**62)
"""The time range used when a query gives no ``from``/``to``."""

Row = Sequence[Any]  # (key, time_ms, id, event)


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


def funnel_counts(rows: Iterable[Row], steps: Sequence[str], hi: int, window_ms: int) -> list[dict[str, Any]]:
    """``[{"event", "count"}]`` from rows sorted by (key, time, id): how many keys reached each step."""
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


def first_times(rows: Iterable[Row]) -> dict[Any, int]:
    """key -> earliest time among ``rows`` (the births of a retention table)."""
    births: dict[Any, int] = {}
    for row in rows:
        key, time_ms = row[0], row[1]
        if key not in births or time_ms < births[key]:
            births[key] = time_ms
    return births


def retention_table(births: dict[Any, int], returns: Iterable[Row], unit: str) -> list[dict[str, Any]]:
    """Cohort table ``[{start, size, returned}]``.

    Each key is born at ``births[key]``; its cohort is the UTC ``unit`` holding that time.
    ``returned[k]`` counts the cohort's members with a return (a row of ``returns``) in
    the k-th unit after the cohort start (k = 0 is the birth period). Every row runs up
    to the unit of the latest return, so tables by person and by distinct id have the
    same shape.
    """
    if not births:
        return []
    size = UNITS_MS[unit]
    starts = {key: period_start(t, unit) for key, t in births.items()}
    came_back: dict[Any, set[int]] = defaultdict(set)
    last = max(births.values())
    for row in returns:
        key, time_ms = row[0], row[1]
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


def sessions_of(events: Iterable[tuple[int, Any]]) -> list[dict[str, Any]]:
    """``[{"session_id", "start", "end", "events"}]`` from ``(time_ms, $session_id)`` pairs,
    oldest session first (by start, then id). Events without a usable session id (not a
    non-empty string of at most 255 characters) are left out."""
    found: dict[str, list[int]] = {}
    for time_ms, session_id in events:
        if type(session_id) is not str or not session_id or len(session_id) > 255:
            continue
        span = found.get(session_id)
        if span is None:
            found[session_id] = [time_ms, time_ms, 1]
        else:
            span[0] = min(span[0], time_ms)
            span[1] = max(span[1], time_ms)
            span[2] += 1
    ordered = sorted(found.items(), key=lambda item: (item[1][0], item[0]))
    return [{"session_id": sid, "start": a, "end": b, "events": n} for sid, (a, b, n) in ordered]

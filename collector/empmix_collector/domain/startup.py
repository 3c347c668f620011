"""The start-up report on plain values: how many visits, how many left before Python was
ready, and how long Python took to be ready, per interpreter. No SQL here.

The boot script records a ``$mp_web_page_view`` for every page load, and a ``$mp_page_leave``
with ``$left_before_ready: true`` when the page is left before the SDK took over; the SDK then
tracks ``$python_ready`` with ``$ready_ms`` and ``$interpreter``. A store counts the first two
and hands over the ready times as ``(interpreter, ready_ms, count)`` triples::

    report = startup_report(visits=40, left_early=6, samples=[("pyodide", 1840.5, 1), ...])
    report["ready"]      # [{"interpreter": "pyodide", "count": 1, "median_ms": 1840.5, "p90_ms": 1840.5}]
    report["histogram"]  # {"width_ms": 200, "interpreters": [...], "buckets": [{start_ms, end_ms, counts}]}

Quantiles interpolate linearly between the two nearest ranks (PostgreSQL's ``percentile_cont``,
NumPy's default).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "VISIT_EVENT",
    "LEAVE_EVENT",
    "READY_EVENT",
    "LEFT_EARLY_KEY",
    "READY_MS_KEY",
    "INTERPRETER_KEY",
    "INTERPRETERS",
    "ready_ms",
    "interpreter",
    "quantile",
    "bucket_width",
    "histogram",
    "startup_report",
]

VISIT_EVENT = "$mp_web_page_view"
LEAVE_EVENT = "$mp_page_leave"
READY_EVENT = "$python_ready"
LEFT_EARLY_KEY = "$left_before_ready"
READY_MS_KEY = "$ready_ms"
INTERPRETER_KEY = "$interpreter"
INTERPRETERS = ("pyodide", "micropython")
"""The interpreters the SDK names; any other value of ``$interpreter`` is reported as ``other``."""
OTHER = "other"
MAX_READY_MS = 3_600_000.0
"""A ready time past an hour is no start-up time (a tab left in the background, a bad clock)."""
BUCKETS = 12
"""How many bars the histogram aims at (plus one open bar for the slowest few)."""
OUTLIER = 2.0
"""A ready time over this many times the third quartile goes to the histogram's open bar."""


def ready_ms(value: Any) -> float | None:
    """``$ready_ms`` as a number of milliseconds, or ``None`` when it is not a plausible one
    (not a number, a bool, negative, not finite, or over :data:`MAX_READY_MS`)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    ms = float(value)
    return ms if math.isfinite(ms) and 0 <= ms <= MAX_READY_MS else None


def interpreter(value: Any) -> str:
    """``$interpreter``: one of :data:`INTERPRETERS`, else ``other``."""
    return value if isinstance(value, str) and value in INTERPRETERS else OTHER


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of the ascending ``ordered``, interpolating between ranks.

    Raises:
        ValueError: ``ordered`` is empty.
    """
    if not ordered:
        raise ValueError("quantile of no values")
    rank = q * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def bucket_width(span: float, buckets: int = BUCKETS) -> int:
    """The smallest 1, 2 or 5 x 10^k milliseconds (at least 1) that covers ``span`` in
    ``buckets`` bars."""
    target = max(span / buckets, 1.0)
    power = 10 ** math.floor(math.log10(target))
    for step in (1, 2, 5, 10):
        if step * power >= target:
            return int(step * power)
    raise AssertionError("unreachable")  # pragma: no cover


def histogram(samples: Iterable[tuple[str, float, int]], buckets: int = BUCKETS) -> dict[str, Any]:
    """Bars of equal width from 0 ms, counted per interpreter.

    The bars (at most ``buckets``, of a round width) reach the slowest time within
    :data:`OUTLIER` times the third quartile; one last, open bar (``end_ms: null``) holds any
    slower ones, so a single stuck load does not squash every other bar. No samples: no bars.
    """
    rows = [(name, ms, count) for name, ms, count in samples if count > 0]
    names = [name for name in (*INTERPRETERS, OTHER) if any(row[0] == name for row in rows)]
    if not rows:
        return {"width_ms": None, "interpreters": names, "buckets": []}
    ordered = sorted(ms for _, ms, count in rows for _ in range(count))
    limit = OUTLIER * quantile(ordered, 0.75)
    span = max(ms for ms in ordered if ms <= limit)
    width = bucket_width(span, buckets)
    closed = max(1, min(buckets, math.floor(span / width) + 1))
    ends: list[int | None] = [(i + 1) * width for i in range(closed)]
    if ordered[-1] >= closed * width:
        ends.append(None)  # the open bar
    counts = [dict.fromkeys(names, 0) for _ in ends]
    for name, ms, count in rows:
        counts[min(int(ms // width), len(ends) - 1)][name] += count
    bars = [
        {"start_ms": i * width, "end_ms": end, "counts": found}
        for i, (end, found) in enumerate(zip(ends, counts, strict=True))
    ]
    return {"width_ms": width, "interpreters": names, "buckets": bars}


def startup_report(visits: int, left_early: int, samples: Iterable[tuple[Any, Any, int]]) -> dict[str, Any]:
    """The ``GET /api/startup`` answer.

    Args:
        visits: ``$mp_web_page_view`` events.
        left_early: ``$mp_page_leave`` events with ``$left_before_ready`` true.
        samples: ``($interpreter, $ready_ms, count)`` of the ``$python_ready`` events, raw
            values as stored (implausible times are dropped, unknown interpreters become ``other``).

    Returns:
        ``{visits, left_before_ready, left_before_ready_share, ready: [{interpreter, count,
        median_ms, p90_ms}], histogram}``; the share is ``None`` without visits.
    """
    clean: list[tuple[str, float, int]] = []
    for name, value, count in samples:
        ms = ready_ms(value)
        if ms is not None and count > 0:
            clean.append((interpreter(name), ms, count))
    ready = []
    for name in (*INTERPRETERS, OTHER):
        ordered = sorted(ms for found, ms, count in clean if found == name for _ in range(count))
        if ordered:
            ready.append({
                "interpreter": name,
                "count": len(ordered),
                "median_ms": round(quantile(ordered, 0.5), 1),
                "p90_ms": round(quantile(ordered, 0.9), 1),
            })  # fmt: skip
    return {
        "visits": visits,
        "left_before_ready": left_early,
        "left_before_ready_share": left_early / visits if visits else None,
        "ready": ready,
        "histogram": histogram(clean),
    }

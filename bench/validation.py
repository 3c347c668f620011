"""Per-record validation cost on the collector's event loop (``domain.validate``).

Every record of every request is validated on the event loop, so validation must stay cheap:
the write path needs tens of thousands of records a second. This times
``validate_event`` on ``/track`` records as an SDK sends them (a page view with a few
properties and a ``$insert_id``), best of several rounds, in this process. The goal (200 µs per
record, about 10 µs on an idle core) is reported, not asserted; ``tests/collector`` checks what
validation decides, not how fast.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from empmix_collector.domain import validate

__all__ = ["run", "summary", "markdown", "GOAL_US"]

GOAL_US = 200.0
"""Per-record budget (µs): generous, for shared cores."""
TOKEN = "bench"


def _records(n: int, now_ms: int) -> list[dict[str, Any]]:
    return [
        {
            "event": "view",
            "properties": {
                "token": TOKEN,
                "distinct_id": f"u{i}",
                "time": now_ms,
                "$insert_id": str(uuid.uuid4()),
                "path": "/p",
                "title": "t",
                "n": i,
            },
        }
        for i in range(n)
    ]


def run(quick: bool) -> dict[str, Any]:
    """Best per-record time over the rounds; returns the figures."""
    n, rounds = (500, 3) if quick else (5000, 7)
    now_ms = int(time.time() * 1000)
    ctx = validate.Context({TOKEN: 1}, now_ms, "track")
    records = _records(n, now_ms)
    per_record: list[float] = []
    for _ in range(rounds):
        start = time.perf_counter()
        for i, record in enumerate(records):
            if not isinstance(validate.validate_event(record, i, ctx), validate.EventRecord):
                raise RuntimeError(f"record {i} was refused: the benchmark's records are wrong")
        per_record.append((time.perf_counter() - start) / n * 1e6)
    return {"records": n, "rounds": rounds, "us_per_record": [round(x, 2) for x in per_record]}


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The ``summary.json`` keys of this benchmark (``None`` when it did not run)."""
    times = result.get("us_per_record") or []
    return {"validation_us_per_record": min(times) if times else None, "validation_goal_us": GOAL_US}


def markdown(result: dict[str, Any]) -> list[str]:
    """The section of the performance page."""
    best = summary(result)["validation_us_per_record"]
    return [
        "### Record validation",
        "",
        "| Figure | Value | Goal |",
        "|---|---|---|",
        f"| `validate_event`, µs per `/track` record (best of {result['rounds']} x {result['records']}) "
        f"| {best} | ≤ {GOAL_US:g} |",
    ]

"""The collector writer's own timings, as the benchmarks read them from ``GET /api/writer``.

The writer records, for each commit group, how long it held the transaction (``hold_ms``:
``BEGIN`` to ``COMMIT`` done), how long the group's oldest batch had waited in the queue, the
``COMMIT`` alone, and the group's size (``empmix_collector.store.writer_stats``). A benchmark
reads the ``seq`` before its load (:func:`mark`) and the groups after it (:func:`summary`), so
``hostile_max_writer_hold_ms`` is the writer's hold, not a reply time that includes parsing.
The bench collectors run without ``--secret``, so the loopback bench client may read it.

Example::

    seq = mark(server.url)
    ...  # the load
    print(summary(server.url, seq)["hold_ms"]["max"])
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from bench.common import percentile

__all__ = ["fetch", "mark", "summary", "distribution"]


def fetch(url: str, after: int = 0) -> dict[str, Any]:
    """``GET {url}/api/writer?after=...`` (the collector's loopback-only query API)."""
    with urllib.request.urlopen(f"{url}/api/writer?after={after}", timeout=30) as reply:
        body: dict[str, Any] = json.loads(reply.read())
    return body


def mark(url: str) -> int:
    """The writer's group counter now: pass it to :func:`summary` after the load."""
    return int(fetch(url, after=2**62)["seq"])


def distribution(values: list[float]) -> dict[str, float | None]:
    """``{p50, p90, p99, max, sum}`` of a list of numbers (``None`` when empty)."""
    if not values:
        return {"p50": None, "p90": None, "p99": None, "max": None, "sum": None}
    return {
        "p50": round(percentile(values, 50), 2),
        "p90": round(percentile(values, 90), 2),
        "p99": round(percentile(values, 99), 2),
        "max": round(max(values), 2),
        "sum": round(sum(values), 1),
    }


def summary(url: str, after: int, snapshot: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the writer did since group ``after``: hold, wait, commit and size distributions,
    checkpoints, GC pauses (totals since start) and the share of the span it held the lock."""
    body = snapshot if snapshot is not None else fetch(url, after)
    groups = [g for g in body.get("groups", []) if g["seq"] > after]
    holds = [g["hold_ms"] for g in groups]
    span = (groups[-1]["start_s"] + groups[-1]["hold_ms"] / 1000 - groups[0]["start_s"]) if groups else 0.0
    return {
        "groups": len(groups),
        "hold_ms": distribution(holds),
        "wait_ms": distribution([g["wait_ms"] for g in groups]),
        "commit_ms": distribution([g["commit_ms"] for g in groups]),
        "cpu_ms": distribution([g["cpu_ms"] for g in groups]),
        "off_cpu_ms": distribution([g["hold_ms"] - g["cpu_ms"] for g in groups]),
        "records": distribution([float(g["records"]) for g in groups]),
        "batches": distribution([float(g["batches"]) for g in groups]),
        "busy_share": round(sum(holds) / 1000 / span, 3) if span > 0 else None,
        "checkpoints": body.get("checkpoints"),
        "checkpoint_s": body.get("checkpoint_s"),
        "wal_pages": body.get("wal_pages"),
        "gc_pauses": body.get("gc_pauses"),
        "gc_pause_s": body.get("gc_pause_s"),
        "gc_max_pause_ms": body.get("gc_max_pause_ms"),
    }

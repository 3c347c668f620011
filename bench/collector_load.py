"""Benchmark 4: the collector under load on loopback.

For each batch size (events per request) a fresh collector and database take ``duration_s`` of
``POST /track/?verbose=1`` (form-encoded ``data=<JSON array>``, as the SDKs send it) from
``connections`` keep-alive connections. Reported: events/s *stored* (rows counted in SQLite
afterwards, divided by the run's wall time), request latency p50/p99, the collector's peak RSS
(``VmHWM``) and CPU time, and the load generator's own CPU time (both share 2 cores).

Example::

    result = run(Path("/tmp/x"), batch_sizes=(1, 50), duration_s=20, connections=16)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.common import CollectorProcess, count_events
from bench.loadgen import run_load

__all__ = ["run", "event_batch_template", "form_body_factory", "process_cpu_seconds", "TOKEN"]

TOKEN = "bench_load"
REQ_MARK = "RQRQRQRQRQRQ"  # 12 characters, replaced by the request number
USER_MARK = "USUSUS"  # 6 characters, replaced by a user bucket
USERS = 500


def event_batch_template(per_request: int, token: str, now_ms: int) -> list[dict[str, Any]]:
    """One request's events, with markers where the request number and user bucket go.
    Shaped like an SDK's events: identity, time, $insert_id, library fields, five properties."""
    return [
        {
            "event": "bench_load",
            "properties": {
                "token": token,
                "distinct_id": f"$device:{USER_MARK}-{i:04d}",
                "$device_id": f"{USER_MARK}-{i:04d}",
                "time": now_ms,
                "$insert_id": f"{REQ_MARK}-{i:04d}",
                "mp_lib": "bench",
                "$current_url": "http://127.0.0.1/bench",
                "plan": "pro", "step": 3, "price": 9.99, "beta": True, "source": "bench",
            },
        }
        for i in range(per_request)
    ]


def form_body_factory(per_request: int, token: str, now_ms: int) -> Callable[[int], bytes]:
    """``seq -> body``: form-encoded ``data=<JSON>``, unique ``$insert_id`` per event,
    users recurring over ``USERS`` buckets (so persons are created, then found)."""
    text = "data=" + quote(json.dumps(event_batch_template(per_request, token, now_ms), separators=(",", ":")),
                           safe="")

    def make(seq: int) -> bytes:
        return text.replace(REQ_MARK, f"{seq:012d}").replace(USER_MARK, f"{seq % USERS:06d}").encode("ascii")

    return make


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, from ``/proc/PID/stat``."""
    import os

    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _one(workdir: Path, per_request: int, duration_s: float, connections: int) -> dict[str, Any]:
    db = workdir / f"load_{per_request}.db"
    with CollectorProcess(db, [TOKEN]) as server:
        make = form_body_factory(per_request, TOKEN, int(time.time() * 1000))
        # warm-up: imports, the first persons, page cache (not counted: rows are counted per run)
        run_load(server.url, "/track/?verbose=1", make, content_type="application/x-www-form-urlencoded",
                 connections=2, total_requests=20)
        before = count_events(db, TOKEN)
        cpu0 = process_cpu_seconds(server.pid)

        def unique(seq: int) -> bytes:  # warm-up used request numbers 0..19
            return make(seq + 1_000_000)

        result = run_load(server.url, "/track/?verbose=1", unique, content_type="application/x-www-form-urlencoded",
                          connections=connections, duration_s=duration_s)
        cpu1 = process_cpu_seconds(server.pid)
        stored = count_events(db, TOKEN) - before
        peak = server.peak_rss_bytes()
    return {
        "events_per_request": per_request,
        "connections": connections,
        "duration_s": round(result.elapsed_s, 3),
        "requests": result.requests,
        "requests_ok": result.ok,
        "statuses": {str(k): v for k, v in sorted(result.statuses.items())},
        "connection_errors": result.errors,
        "events_sent_ok": result.ok * per_request,
        "events_stored": stored,
        "stored_events_per_s": round(stored / result.elapsed_s, 1) if result.elapsed_s else 0.0,
        "requests_per_s": round(result.requests / result.elapsed_s, 1) if result.elapsed_s else 0.0,
        **result.latency(),
        "collector_peak_rss_bytes": peak,
        "collector_cpu_s": None if cpu0 is None or cpu1 is None else round(cpu1 - cpu0, 2),
        "loadgen_cpu_s": round(result.client_cpu_s, 2),
    }


def run(workdir: Path, batch_sizes: Sequence[int] = (1, 50), duration_s: float = 20.0,
        connections: int = 16) -> dict[str, Any]:
    """Run the load at each batch size; returns ``{"runs": [...], "events_per_s_at_50": ...}``."""
    workdir.mkdir(parents=True, exist_ok=True)
    runs = [_one(workdir, size, duration_s, connections) for size in batch_sizes]
    at_50 = next((r["stored_events_per_s"] for r in runs if r["events_per_request"] == 50), None)
    return {"runs": runs, "events_per_s_at_50": at_50, "goal_events_per_s_at_50": 30_000}

"""Benchmark 4: the collector under load on loopback.

For each batch size (events per request) a fresh collector and database take ``duration_s`` of
``POST /track/?verbose=1`` (form-encoded ``data=<JSON array>``, as the SDKs send it) from
``connections`` keep-alive connections. Reported: events/s *stored* (rows counted in SQLite
afterwards, divided by the run's wall time), request latency p50/p99, the collector's peak RSS
(``VmHWM``) and CPU time, and the load generator's own CPU time (both share 2 cores).

On PostgreSQL (``run_postgres``) the same load goes to ``--workers 2`` collector processes on
one database, next to a ceiling measured in the same run: the same rows written by one client
with no HTTP in front (``COPY`` into a staging table, then ``INSERT ... ON CONFLICT DO NOTHING``
into ``events``, one transaction per 1,000 rows). The collector's and the server's CPU seconds
are both reported, so what one more core would buy can be read off.

Example::

    result = run(Path("/tmp/x"), batch_sizes=(1, 50), duration_s=20, connections=16)
    pg = run_postgres(cluster, duration_s=20, connections=16)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from bench.common import CollectorProcess, count_events, cpu_seconds
from bench.loadgen import run_load

__all__ = ["run", "run_postgres", "pg_ceiling", "event_batch_template", "form_body_factory", "process_cpu_seconds",
           "TOKEN"]

CEILING_ROWS_PER_TRANSACTION = 1000

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


def _one(workdir: Path | None, per_request: int, duration_s: float, connections: int,
         db: str | None = None, extra: Sequence[str] = (), server_pids: Callable[[], list[int]] | None = None
         ) -> dict[str, Any]:
    target: Path | str = db if db is not None else workdir / f"load_{per_request}.db"  # type: ignore[operator]
    with CollectorProcess(target, [TOKEN], extra=extra) as server:
        make = form_body_factory(per_request, TOKEN, int(time.time() * 1000))
        # warm-up: imports, the first persons, page cache (not counted: rows are counted per run)
        run_load(server.url, "/track/?verbose=1", make, content_type="application/x-www-form-urlencoded",
                 connections=2, total_requests=20)
        before = count_events(target, TOKEN)
        pids = server.pids()
        cpu0 = cpu_seconds(pids)
        db_cpu0 = cpu_seconds(server_pids()) if server_pids else None

        def unique(seq: int) -> bytes:  # warm-up used request numbers 0..19
            return make(seq + 1_000_000)

        result = run_load(server.url, "/track/?verbose=1", unique, content_type="application/x-www-form-urlencoded",
                          connections=connections, duration_s=duration_s)
        cpu1 = cpu_seconds(pids)
        db_cpu1 = cpu_seconds(server_pids()) if server_pids else None
        stored = count_events(target, TOKEN) - before
        peak = server.peak_rss_bytes()
    return {
        "collector_processes": len(pids) - 1 if len(pids) > 1 else 1,
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
        "collector_cpu_s": round(cpu1 - cpu0, 2),
        "database_cpu_s": None if db_cpu0 is None or db_cpu1 is None else round(db_cpu1 - db_cpu0, 2),
        "loadgen_cpu_s": round(result.client_cpu_s, 2),
    }


def run(workdir: Path, batch_sizes: Sequence[int] = (1, 50), duration_s: float = 20.0,
        connections: int = 16) -> dict[str, Any]:
    """Run the load at each batch size; returns ``{"runs": [...], "events_per_s_at_50": ...}``."""
    workdir.mkdir(parents=True, exist_ok=True)
    runs = [_one(workdir, size, duration_s, connections) for size in batch_sizes]
    at_50 = next((r["stored_events_per_s"] for r in runs if r["events_per_request"] == 50), None)
    return {"runs": runs, "events_per_s_at_50": at_50, "goal_events_per_s_at_50": 40_000}


def pg_ceiling(url: str, duration_s: float, per_request: int = 50) -> dict[str, Any]:
    """Rows/s PostgreSQL takes the load's rows at from one client, with no HTTP in front:
    ``COPY`` into a temporary staging table, then ``INSERT ... ON CONFLICT DO NOTHING``
    into ``events`` (the collector's table and dedup index), one transaction per
    :data:`CEILING_ROWS_PER_TRANSACTION` rows."""
    import psycopg

    template = event_batch_template(per_request, TOKEN, int(time.time() * 1000))
    rows_done = 0
    with psycopg.connect(url) as conn:
        project = conn.execute("SELECT id FROM projects WHERE token = %s", (TOKEN,)).fetchone()
        project_id = int(project[0]) if project else 1
        columns = "project_id, event, distinct_id, time_ms, dedup_time_ms, received_ms, insert_id, " \
                  "insert_id_generated, properties"
        conn.execute(f"CREATE TEMPORARY TABLE staging AS SELECT {columns} FROM events WITH NO DATA")
        conn.commit()
        started = time.perf_counter()
        seq = 0
        while time.perf_counter() - started < duration_s:
            with conn.cursor() as cur:
                with cur.copy(f"COPY staging ({columns}) FROM STDIN") as copy:
                    for _ in range(CEILING_ROWS_PER_TRANSACTION // per_request):
                        seq += 1
                        for i, record in enumerate(template):
                            props = dict(record["properties"])
                            props["$insert_id"] = f"c{seq:011d}-{i:04d}"
                            props["distinct_id"] = f"$device:{seq % USERS:06d}-{i:04d}"
                            copy.write_row((project_id, record["event"], props["distinct_id"], props["time"],
                                            props["time"], props["time"], props["$insert_id"], False,
                                            json.dumps(props, separators=(",", ":"))))
                cur.execute(f"INSERT INTO events ({columns}) SELECT {columns} FROM staging ON CONFLICT DO NOTHING")
                rows_done += cur.rowcount
                cur.execute("TRUNCATE staging")
            conn.commit()
        elapsed = time.perf_counter() - started
    return {"rows": rows_done, "seconds": round(elapsed, 3), "rows_per_s": round(rows_done / elapsed, 1),
            "rows_per_transaction": CEILING_ROWS_PER_TRANSACTION}


def run_postgres(cluster: Any, duration_s: float = 20.0, connections: int = 16, workers: int = 2,
                 per_request: int = 50) -> dict[str, Any]:
    """The 50-per-request load on ``workers`` collector processes sharing one PostgreSQL
    database, and the ceiling of the same rows with no HTTP (same run, same cluster)."""
    url = cluster.fresh_url()
    load = _one(None, per_request, duration_s, connections, db=url, extra=("--workers", str(workers)),
                server_pids=cluster.server_pids)
    from empmix_collector.store.postgres import PostgresStore

    ceiling_url = cluster.fresh_url()
    schema = PostgresStore(ceiling_url, [TOKEN])  # the collector's own tables and indexes
    schema.open()
    schema.close()
    ceiling = pg_ceiling(ceiling_url, duration_s, per_request)
    ratio = load["stored_events_per_s"] / ceiling["rows_per_s"] if ceiling["rows_per_s"] else None
    return {"load": load, "ceiling": ceiling, "ratio_to_ceiling": None if ratio is None else round(ratio, 3),
            "goal_ratio_to_ceiling": 0.6, "workers": workers}

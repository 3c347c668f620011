"""Benchmark 5: how the collector's ingest rate and query times grow with stored data.

One collector and database grow through the sizes (10^4, 10^5, 10^6 and 10^7 stored events by
default). Up to :data:`DIRECT_ABOVE` (10^6) the data is bulk-loaded over HTTP (``POST /track``
with 1,000-event JSON batches from several connections), which is itself a measurement. Past it
the collector is stopped, the events are written straight into the database by the database
itself (``bench.scaling_fill``: the rows the collector would have stored, identity tables
included), and the collector is started again: over HTTP the step to 10^7 would take minutes per
store. At each size:

* query times over HTTP (keep-alive, median of several calls): ``/api/persons/{id}/events``
  for a user with 20 events (constant result size, so growth is the lookup's),
  ``/api/funnel?steps=view,signup,purchase`` (reads every event of those names: linear) and
  ``/api/retention?born=view&returned=signup&unit=day`` (the same kind of read, two names);
* then the ingest rate at 50 events per request (a fixed number of events, 16 connections);
* the database's size and the collector's resident memory after all that.

On PostgreSQL the queries are timed twice after an HTTP load: right after it, and after ``VACUUM
(ANALYZE)`` (what autovacuum does on a running database; the data here is a minute old, and
autovacuum wakes once a minute). The second is the headline figure. After a direct fill only
the second is timed.

Data: user ``user{i // 20}`` gets events ``i .. i + 19``: a ``view``, for every third user a
``signup`` and for every 21st a ``purchase``, ``page`` otherwise; times spread over the last
4 days (``/track`` accepts 5).

With ``db`` (a ``postgresql://`` URL) the same run goes to the PostgreSQL store, so the two
stores' query times come from the same run.

Example::

    result = run(Path("/tmp/x"), sizes=(10_000, 100_000, 1_000_000, 10_000_000))
    on_pg = run(Path("/tmp/x"), sizes=(10_000, 100_000, 1_000_000), db="postgresql://...")
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench import scaling_fill
from bench.collector_load import form_body_factory
from bench.common import CollectorProcess
from bench.loadgen import run_load

__all__ = ["run", "TOKEN", "scaling_event", "DIRECT_ABOVE", "FUNNEL", "RETENTION"]

TOKEN = "bench_scale"
BULK_BATCH = 1000
EVENTS_PER_USER = 20
FUNNEL = "view,signup,purchase"
RETENTION = "born=view&returned=signup&unit=day"
DIRECT_ABOVE = 1_000_000
"""Sizes up to this are reached over HTTP; the steps past it are written straight into the
database (``bench.scaling_fill``)."""
SPAN_MS = 4 * 86_400_000


def scaling_event(i: int, t0_ms: int, spacing_ms: float) -> dict[str, Any]:
    """Event number ``i`` of the synthetic data set."""
    user, k = divmod(i, EVENTS_PER_USER)
    if k == 0:
        name = "view"
    elif k == 5 and user % 3 == 0:
        name = "signup"
    elif k == 12 and user % 21 == 0:
        name = "purchase"
    else:
        name = "page"
    return {"event": name, "properties": {
        "token": TOKEN, "distinct_id": f"user{user}", "time": int(t0_ms + i * spacing_ms), "$insert_id": f"s{i}",
        "mp_lib": "bench", "plan": "pro", "step": k, "price": 9.99, "beta": True, "source": "bench"}}


def _bulk(url: str, first: int, last: int, t0_ms: int, spacing_ms: float, connections: int) -> dict[str, Any]:
    """Send events ``first .. last - 1``; returns rate figures."""
    count = last - first
    if count <= 0:
        return {"events": 0, "seconds": 0.0, "events_per_s": None}
    batches = (count + BULK_BATCH - 1) // BULK_BATCH

    def body(seq: int) -> bytes:
        lo = first + seq * BULK_BATCH
        hi = min(lo + BULK_BATCH, last)
        events = [scaling_event(i, t0_ms, spacing_ms) for i in range(lo, hi)]
        return json.dumps(events, separators=(",", ":")).encode()

    result = run_load(url, "/track/?verbose=1", body, content_type="application/json",
                      connections=connections, total_requests=batches)
    bad = {k: v for k, v in result.statuses.items() if k != 200}
    if bad or result.errors:
        raise RuntimeError(f"bulk load failed: statuses {dict(result.statuses)}, errors {result.errors}")
    return {"events": count, "seconds": round(result.elapsed_s, 2), "events_per_s": round(count / result.elapsed_s, 1)}


def _timed_get(conn: http.client.HTTPConnection, path: str, repeats: int) -> dict[str, Any]:
    """Median and max of ``repeats`` GETs (after one warm-up), with the result size."""
    times = []
    payload: Any = None
    for attempt in range(repeats + 1):
        t0 = time.perf_counter()
        conn.request("GET", path)
        reply = conn.getresponse()
        data = reply.read()
        spent = time.perf_counter() - t0
        if reply.status != 200:
            raise RuntimeError(f"GET {path}: HTTP {reply.status} {data[:200]!r}")
        if attempt:
            times.append(spent)
        payload = json.loads(data)
    return {"median_ms": round(statistics.median(times) * 1000, 2), "max_ms": round(max(times) * 1000, 2),
            "repeats": repeats, "result": payload}


def _queries(url: str, user: str, repeats: int, funnel_repeats: int) -> dict[str, Any]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
    try:
        person = _timed_get(conn, f"/api/persons/{user}/events", repeats)
        funnel = _timed_get(conn, f"/api/funnel?steps={FUNNEL}", funnel_repeats)
        retention = _timed_get(conn, f"/api/retention?{RETENTION}", funnel_repeats)
    finally:
        conn.close()
    cohorts = retention.pop("result")["cohorts"]
    return {
        "person_events": {"user": user, "events": len(person.pop("result")["events"]), **person},
        "funnel": {"steps": funnel.pop("result")["steps"], **funnel},
        "retention": {"cohorts": len(cohorts), "born": sum(c["size"] for c in cohorts),
                      "returned_day_0": sum(c["returned"][0] for c in cohorts if c["returned"]), **retention},
    }


def _sql(db: Path | str, query: str) -> int:
    """One integer from the collector's database (read-only on SQLite)."""
    if isinstance(db, str):
        import psycopg

        with psycopg.connect(db, autocommit=True) as pg:
            row = pg.execute(query).fetchone()
    else:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
            row = conn.execute(query).fetchone()
        conn.close()
    return int(row[0]) if row and row[0] is not None else 0


def _events_after(db: Path | str, after_id: int) -> int:
    """Events stored with an id above ``after_id`` (a primary-key range: cheap at any size)."""
    return _sql(db, f"SELECT COUNT(*) FROM events WHERE id > {int(after_id)}")


def _last_id(db: Path | str) -> int:
    return _sql(db, "SELECT COALESCE(MAX(id), 0) FROM events")


def _db_bytes(db: Path | str) -> int | None:
    if isinstance(db, str):  # PostgreSQL: the schema's tables and indexes
        import psycopg

        with psycopg.connect(db, autocommit=True) as pg:
            row = pg.execute("SELECT SUM(pg_total_relation_size(c.oid)) FROM pg_class c"
                             " WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'").fetchone()
        return int(row[0]) if row and row[0] is not None else None
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def _vacuum(db: str) -> float:
    """PostgreSQL: ``VACUUM (ANALYZE)`` the collector's tables, which autovacuum does on a
    database that has been running (here the data is a minute old): the visibility map lets
    funnels read the index alone, the statistics give the planner real row counts. Seconds."""
    import psycopg

    started = time.perf_counter()
    with psycopg.connect(db, autocommit=True) as pg:
        for table in ("events", "person_distinct_ids", "persons"):
            pg.execute(f"VACUUM (ANALYZE) {table}")
    return round(time.perf_counter() - started, 2)


def _grow(server: CollectorProcess, db: Path | str, first: int, last: int, t0_ms: int, spacing: float,
          connections: int) -> tuple[CollectorProcess, dict[str, Any]]:
    """Events ``first .. last - 1``: over HTTP up to ``DIRECT_ABOVE`` stored, else straight into
    the database with the collector stopped (a new collector is returned)."""
    if last <= DIRECT_ABOVE:
        return server, {**_bulk(server.url, first, last, t0_ms, spacing, connections), "path": "http"}
    server.stop()
    filled = scaling_fill.fill(db, TOKEN, first, last, t0_ms, spacing)
    count = last - first
    rate = round(count / max(filled["seconds"], 1e-3), 1)
    bulk = {"events": count, "seconds": filled["seconds"], "events_per_s": rate, "path": "direct",
            "persons": filled["persons"]}
    return CollectorProcess(db, [TOKEN]).start(), bulk


def run(workdir: Path, sizes: Sequence[int] = (10_000, 100_000, 1_000_000, 10_000_000), ingest_events: int = 30_000,
        repeats: int = 20, funnel_repeats: int = 5, connections: int = 4, db: str | None = None) -> dict[str, Any]:
    """Grow one database (SQLite in ``workdir``, or the PostgreSQL ``db``) through ``sizes``
    and measure at each."""
    workdir.mkdir(parents=True, exist_ok=True)
    if db is None:
        db = workdir / "scaling.db"  # type: ignore[assignment]
        for old in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            old.unlink(missing_ok=True)  # type: ignore[union-attr]
    assert db is not None
    now = int(time.time() * 1000)
    t0_ms, spacing = now - SPAN_MS, SPAN_MS / max(sizes)
    steps: list[dict[str, Any]] = []
    loaded = 0  # synthetic events sent so far (event numbers 0 .. loaded - 1)
    stored = 0  # every event of the database (the synthetic ones and those of the ingest runs)
    server = CollectorProcess(db, [TOKEN]).start()
    try:
        for size in sizes:
            target = loaded + max(0, size - stored)
            before = _last_id(db)
            server, bulk = _grow(server, db, loaded, target, t0_ms, spacing, connections)
            stored += _events_after(db, before)
            loaded = target
            user = f"user{max(0, loaded // EVENTS_PER_USER - 2)}"  # a complete user of the latest load
            maintained: dict[str, Any] = {}
            if isinstance(db, str):  # PostgreSQL: as loaded (over HTTP), then as autovacuum would leave it
                if bulk["path"] == "http":
                    fresh = _queries(server.url, user, max(1, repeats // 4), max(1, funnel_repeats // 2))
                    maintained = {"funnel_before_vacuum": fresh["funnel"],
                                  "person_events_before_vacuum": fresh["person_events"]}
                maintained["vacuum_s"] = _vacuum(db)
            queries = _queries(server.url, user, repeats, funnel_repeats)
            make = form_body_factory(50, TOKEN, now)
            per_req = 50
            requests = max(1, ingest_events // per_req)
            offset = len(steps) * 10_000_000  # unique request numbers per step

            def unique(seq: int, base: int = offset, make: Callable[[int], bytes] = make) -> bytes:
                return make(seq + base)

            last = _last_id(db)
            load = run_load(server.url, "/track/?verbose=1", unique, content_type="application/x-www-form-urlencoded",
                            connections=16, total_requests=requests)
            added = _events_after(db, last)
            steps.append({
                "stored_events": stored,
                "bulk_load": bulk,
                **queries,
                **maintained,
                "ingest_50_per_request": {"events": added, "seconds": round(load.elapsed_s, 2),
                                          "events_per_s": round(added / load.elapsed_s, 1), **load.latency()},
                "db_bytes": _db_bytes(db),
                "collector_rss_bytes": server.rss_bytes(),
            })
            stored += added
    finally:
        server.stop()
    return {"sizes": list(sizes), "steps": steps, "funnel_steps": FUNNEL.split(","), "retention": RETENTION,
            "direct_above": DIRECT_ABOVE, "store": "postgres" if isinstance(db, str) else "sqlite"}

"""The funnel flood of issue 18: 16 clients ask for funnels over 10^6 events at once, while one
client reads persons (``GET /api/persons/{id}``) and one sends one-event ``/track`` requests.

The database is filled directly (``bench.funnel_data``) before the collector starts. Figures:
the persons reads' latency during the flood (goal ≤ 1 s) and without it (the reference), the
collector's peak RSS (goal ≤ 500 MB) and its RSS once the flood is over, the side ``/track``
latency, and how many funnels were answered (and with which status) within the run. Funnels
still running when the run ends are abandoned by their clients: the collector interrupts them.

Example::

    figures = run(Path("work"), events=1_000_000, clients=16, duration_s=20.0)
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from bench.common import CollectorProcess, percentile
from bench.funnel_data import STEPS, fill
from empmix_collector.store.sqlstore import HEAVY_READERS

__all__ = ["run", "TOKEN"]

TOKEN = "funnels"


def _interrupted(proc: CollectorProcess) -> int:
    return sum("its client went away" in line for line in list(proc.output))


def _ms(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "n": len(values),
        "median_ms": round(ordered[len(ordered) // 2], 1),
        "p99_ms": round(percentile(ordered, 99), 1),
        "max_ms": round(ordered[-1], 1),
    }


def _get(conn: http.client.HTTPConnection, path: str) -> tuple[int, float]:
    """(status, ms) of one GET on a kept-alive connection."""
    start = time.perf_counter()
    conn.request("GET", path)
    reply = conn.getresponse()
    reply.read()
    return reply.status, (time.perf_counter() - start) * 1000


def _persons(host: str, port: int, ids: list[str], stop: threading.Event, out: list[float]) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    rng = random.Random(1)
    try:
        while not stop.is_set():
            path = "/api/persons/" + quote(ids[rng.randrange(len(ids))], safe="") + f"?token={TOKEN}"
            status, ms = _get(conn, path)
            if status == 200:
                out.append(ms)
            time.sleep(0.05)
    finally:
        conn.close()


def _funnels(host: str, port: int, seed: int, deadline: float, statuses: Counter[int]) -> None:
    """Funnels one after the other until the deadline; the one running then is abandoned."""
    rng = random.Random(seed)
    while (left := deadline - time.monotonic()) > 0:
        conn = http.client.HTTPConnection(host, port, timeout=left)
        window = rng.choice((1, 3, 7, 30)) * 86_400_000
        try:
            status, _ = _get(conn, f"/api/funnel?steps={','.join(STEPS)}&window_ms={window}&token={TOKEN}")
            statuses[status] += 1
        except TimeoutError:
            statuses[0] += 1  # abandoned at the deadline: the collector should interrupt it
        finally:
            conn.close()


def _side_track(host: str, port: int, stop: threading.Event, out: list[float]) -> None:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    seq = 0
    try:
        while not stop.is_set():
            seq += 1
            body = (
                '[{"event":"side","properties":{"token":"%s","distinct_id":"side","$insert_id":"side-%d-%d"}}]'
                % (TOKEN, time.time_ns(), seq)
            ).encode()
            start = time.perf_counter()
            conn.request("POST", "/track", body=body, headers={"Content-Type": "application/json"})
            reply = conn.getresponse()
            reply.read()
            if reply.status == 200:
                out.append((time.perf_counter() - start) * 1000)
            time.sleep(0.02)
    finally:
        conn.close()


def run(work: Path, events: int, clients: int, duration_s: float) -> dict[str, Any]:
    """Fill a database with ``events`` events, start a collector on it, measure alone then under
    ``clients`` concurrent funnel clients for ``duration_s``; returns the figures."""
    work.mkdir(parents=True, exist_ok=True)
    db = work / "funnels.db"
    for stale in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    fill(db, TOKEN, events)
    fill_s = time.perf_counter() - started
    users = max(events // 20, 1)
    ids = [f"u{i}" if i % 3 == 0 else f"$device:d{i}" for i in range(0, users, max(users // 500, 1))]
    with CollectorProcess(db, [TOKEN], extra=["--log-level", "info"]) as proc:  # info: interrupted reads
        where = urlsplit(proc.url)
        host, port = where.hostname or "127.0.0.1", where.port or 80
        idle_rss = proc.rss_bytes() or 0
        reference: list[float] = []
        stop = threading.Event()
        reader = threading.Thread(target=_persons, args=(host, port, ids, stop, reference))
        reader.start()
        time.sleep(min(duration_s, 3.0))
        stop.set()
        reader.join()
        persons: list[float] = []
        side: list[float] = []
        statuses: Counter[int] = Counter()
        stop = threading.Event()
        deadline = time.monotonic() + duration_s
        flood = [threading.Thread(target=_funnels, args=(host, port, n, deadline, statuses)) for n in range(clients)]
        watchers = [
            threading.Thread(target=_persons, args=(host, port, ids, stop, persons)),
            threading.Thread(target=_side_track, args=(host, port, stop, side)),
        ]
        for thread in flood + watchers:
            thread.start()
        for thread in flood:
            thread.join()
        stop.set()
        for thread in watchers:
            thread.join()
        peak = proc.peak_rss_bytes() or 0
        # the funnels running at the deadline were abandoned: the collector interrupts them (SQLite
        # checks between steps of its program, so a sort under way finishes first)
        gone = time.monotonic()
        while (cancelled := _interrupted(proc)) < min(clients, HEAVY_READERS) and time.monotonic() - gone < 60:
            time.sleep(0.1)
        interrupt_s = time.monotonic() - gone
        after = proc.rss_bytes() or 0
    return {
        "events": events,
        "clients": clients,
        "duration_s": duration_s,
        "fill_s": round(fill_s, 1),
        "persons": _ms(persons),
        "persons_reference": _ms(reference),
        "side_track": _ms(side),
        "funnel_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "funnels_interrupted": cancelled,
        "interrupted_within_s": round(interrupt_s, 1),
        "peak_rss_mb": round(peak / 2**20, 1),
        "idle_rss_mb": round(idle_rss / 2**20, 1),
        "after_rss_mb": round(after / 2**20, 1),
    }

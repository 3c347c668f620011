"""The collector against a hostile visitor (issue 18): the worst requests it can send with the
public token, and an overload of large batches, each with a same-run reference.

1. **Writer hold.** Each hostile ``/engage`` request alone (40 ``$union``s of 255 numbers on one
   profile; 2,000 one-key ``$set``s on a 240 KB profile; 2,000 ``$add``s; out-of-range numbers;
   2,000 ``$remove`` + ``$append`` on 1000-item lists): how long the writer held its transaction,
   as the writer itself records it (``GET /api/writer``, ``bench/writer_stats.py``: ``BEGIN`` to
   ``COMMIT`` done, parsing and validation not included). ``hostile_max_writer_hold_ms`` is the
   worst (goal ≤ 100 ms); the reply time (which includes reading, parsing and validating the
   body) is its reference, and the longest hold during the flood is reported too.
2. **Flood.** Four connections send those requests for the run's duration while one connection
   sends one-event ``/track`` requests: their p99 is ``hostile_track_p99_ms`` (goal ≤ 50 ms); the
   reference is the same side load with no flood.
3. **Overload.** 256 connections post 2,000-record batches: peak RSS (``overload_rss_mb``, goal
   ≤ 400), the side ``/track`` p99 (``overload_track_p99_ms``, goal ≤ 200) and the 503s
   (``overload_shed_503``, goal > 0); acknowledged = stored is checked.

4. **Funnel flood** (``bench/funnel_flood.py``). 16 clients ask for funnels over 10^6 events
   (quick: 20,000) filled straight into the database: ``hostile_funnels_persons_ms`` is the p99
   of ``GET /api/persons/{id}`` meanwhile (goal ≤ 1000), ``hostile_funnels_rss_mb`` the
   collector's peak RSS (goal ≤ 500).
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from bench import funnel_flood, writer_stats
from bench.common import CollectorProcess, count_events
from bench.loadgen import LoadResult, run_load

__all__ = ["run", "summary", "markdown", "TOKEN"]

TOKEN = "hostile"
JSON = "application/json"


def _engage(records: list[dict[str, Any]]) -> bytes:
    return json.dumps([{"$token": TOKEN, **r} for r in records]).encode()


def hostile_bodies() -> dict[str, bytes]:
    """The worst ``/engage`` bodies (each ≤ 1 MiB) we could construct, by name."""
    return {
        "union": _engage(
            [{"$distinct_id": "u", "$union": {"L": list(range(i * 255, (i + 1) * 255))}} for i in range(40)]
        ),
        "set": _engage([{"$distinct_id": "big", "$set": {f"k{i % 2000}": "w"}} for i in range(2000)]),
        "add": _engage([{"$distinct_id": "n", "$add": {f"c{i % 50}": 1}} for i in range(2000)]),
        "poison": _engage(
            [{"$distinct_id": "p", "$add": {"n": 10**4000}}, {"$distinct_id": "p", "$add": {"n": 1.5}}]
            + [{"$distinct_id": "p", "$set": {"t": 10**320}}] * 100
        ),
        "remove_append": _engage(
            [{"$distinct_id": f"l{i % 4}", "$remove": {"l": i % 1000}, "$append": {"l": i % 1000}} for i in range(2000)]
        ),
    }


def _setup(url: str) -> None:
    """The 240 KB profile and the 1000-item lists the hostile requests work on."""
    big = [
        {"$distinct_id": "big", "$set": {f"k{i}": "v" * 110 for i in range(j, j + 250)}} for j in range(0, 2000, 250)
    ]
    lists = [
        {"$distinct_id": f"l{n}", "$union": {"l": list(range(j, j + 250))}}
        for j in range(0, 1000, 250)
        for n in range(4)
    ]
    for body in (_engage(big), _engage(lists)):
        run_load(url, "/engage?verbose=1", lambda seq, b=body: b, content_type=JSON, connections=1, total_requests=1)


class _SideBody:
    """One-event ``/track`` bodies (picklable: the side client runs in a process of its own)."""

    def __call__(self, seq: int) -> bytes:
        props = {"token": TOKEN, "distinct_id": f"side{seq}", "$insert_id": f"side-{time.time_ns()}-{seq}"}
        return json.dumps([{"event": "side", "properties": props}]).encode()


def _side_track(url: str, duration_s: float, box: list[LoadResult]) -> threading.Thread:
    """The side client, in a process of its own: the load generator's GIL does not delay it."""

    def measure() -> None:
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            job = pool.submit(
                run_load, url, "/track?verbose=1", _SideBody(), content_type=JSON, connections=1, duration_s=duration_s
            )
            box.append(job.result())

    thread = threading.Thread(target=measure)
    thread.start()
    return thread


def _overload_body(records: int) -> bytes:
    template = json.dumps(
        [
            {
                "event": "bulk",
                "properties": {
                    "token": TOKEN,
                    "distinct_id": f"o{i % 97}",
                    "$insert_id": f"SEQNUMBERSEQ-{i:05d}",
                    "n": i,
                },
            }
            for i in range(records)
        ]
    ).encode()
    return template


def run(work: Path, duration_s: float, quick: bool) -> dict[str, Any]:
    """All three parts on a fresh SQLite collector each; returns the figures."""
    work.mkdir(parents=True, exist_ok=True)
    bodies = hostile_bodies()
    out: dict[str, Any] = {"duration_s": duration_s}
    with CollectorProcess(work / "hostile.db", [TOKEN]) as proc:
        _setup(proc.url)
        holds: dict[str, float] = {}
        replies: dict[str, float] = {}
        for name, body in bodies.items():
            seq = writer_stats.mark(proc.url)
            times = [
                run_load(
                    proc.url,
                    "/engage?verbose=1",
                    lambda seq, b=body: b,
                    content_type=JSON,
                    connections=1,
                    total_requests=1,
                ).latency()["max_ms"]
                for _ in range(1 if quick else 3)
            ]
            replies[name] = max(times)
            holds[name] = writer_stats.summary(proc.url, seq)["hold_ms"]["max"] or 0.0
        out["writer_hold_ms"] = holds
        out["reply_ms"] = replies
        reference: list[LoadResult] = []
        _side_track(proc.url, min(duration_s, 5.0), reference).join()
        side: list[LoadResult] = []
        flood_seq = writer_stats.mark(proc.url)
        thread = _side_track(proc.url, duration_s, side)
        names = list(bodies)
        flood = run_load(
            proc.url,
            "/engage?verbose=1",
            lambda seq: bodies[names[seq % len(names)]],
            content_type=JSON,
            connections=4,
            duration_s=duration_s,
        )
        thread.join()
        out["flood"] = {
            "requests": flood.requests,
            "statuses": dict(flood.statuses),
            "side": side[0].latency(),
            "side_reference": reference[0].latency(),
            "writer": writer_stats.summary(proc.url, flood_seq),
        }
    records = 200 if quick else 2000
    template = _overload_body(records)
    with CollectorProcess(work / "overload.db", [TOKEN]) as proc:
        idle_rss = proc.rss_bytes() or 0
        side = []
        over_seq = writer_stats.mark(proc.url)
        thread = _side_track(proc.url, duration_s, side)
        load = run_load(
            proc.url,
            "/track?verbose=1",
            lambda seq: template.replace(b"SEQNUMBERSEQ", b"%012d" % seq),
            content_type=JSON,
            connections=32 if quick else 256,
            duration_s=duration_s,
        )
        thread.join()
        peak = proc.peak_rss_bytes() or 0
        acknowledged = load.statuses.get(200, 0) * records + side[0].statuses.get(200, 0)
        stored = count_events(proc.db)
        out["overload"] = {
            "requests": load.requests,
            "statuses": dict(load.statuses),
            "errors": load.errors,
            "peak_rss_mb": round(peak / 2**20, 1),
            "idle_rss_mb": round(idle_rss / 2**20, 1),
            "side": side[0].latency(),
            "acknowledged": acknowledged,
            "stored": stored,
            "writer": writer_stats.summary(proc.url, over_seq),
        }
    out["funnels"] = funnel_flood.run(
        work / "funnels", events=20_000 if quick else 1_000_000, clients=16, duration_s=max(duration_s, 2.0)
    )
    return out


def summary(result: dict[str, Any]) -> dict[str, Any]:
    """The ``summary.json`` keys of this benchmark (``None`` when it did not run)."""
    flood = result.get("flood") or {}
    over = result.get("overload") or {}
    holds = result.get("writer_hold_ms") or {}
    replies = result.get("reply_ms") or {}
    funnels = result.get("funnels") or {}
    return {
        "hostile_max_writer_hold_ms": max(holds.values()) if holds else None,
        "hostile_max_writer_hold_goal_ms": 100,
        "hostile_max_reply_ms": max(replies.values()) if replies else None,
        "hostile_flood_max_writer_hold_ms": ((flood.get("writer") or {}).get("hold_ms") or {}).get("max"),
        "overload_max_writer_hold_ms": ((over.get("writer") or {}).get("hold_ms") or {}).get("max"),
        "hostile_track_p99_ms": (flood.get("side") or {}).get("p99_ms"),
        "hostile_track_p99_reference_ms": (flood.get("side_reference") or {}).get("p99_ms"),
        "hostile_funnels_persons_ms": (funnels.get("persons") or {}).get("p99_ms"),
        "hostile_funnels_persons_reference_ms": (funnels.get("persons_reference") or {}).get("p99_ms"),
        "hostile_funnels_persons_goal_ms": 1000,
        "hostile_funnels_rss_mb": funnels.get("peak_rss_mb"),
        "hostile_funnels_rss_reference_mb": funnels.get("idle_rss_mb"),
        "hostile_funnels_rss_goal_mb": 500,
        "hostile_funnels_track_p99_ms": (funnels.get("side_track") or {}).get("p99_ms"),
        "overload_rss_mb": over.get("peak_rss_mb"),
        "overload_rss_reference_mb": over.get("idle_rss_mb"),
        "overload_track_p99_ms": (over.get("side") or {}).get("p99_ms"),
        "overload_track_p99_reference_ms": (flood.get("side_reference") or {}).get("p99_ms"),
        "overload_shed_503": (over.get("statuses") or {}).get(503, (over.get("statuses") or {}).get("503", 0)),
        "overload_acknowledged_equals_stored": over.get("acknowledged") == over.get("stored") if over else None,
    }


def markdown(result: dict[str, Any]) -> list[str]:
    """The section of the performance page."""
    s = summary(result)
    holds = result.get("writer_hold_ms") or {}
    replies = result.get("reply_ms") or {}
    lines = [
        "### Hostile requests",
        "",
        "| Request (alone) | writer hold, ms (the writer's own record) | reply, ms (parsing included) |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {ms} | {replies.get(name, '')} |" for name, ms in holds.items()]
    lines += [
        "",
        "| Figure | Value | Same-run reference | Goal |",
        "|---|---|---|---|",
        f"| longest writer hold, one request alone, ms | {s['hostile_max_writer_hold_ms']} | "
        f"{s['hostile_max_reply_ms']} (its reply) | ≤ 100 |",
        f"| longest writer hold during the flood, ms | {s['hostile_flood_max_writer_hold_ms']} | | |",
        f"| side `/track` p99 during the flood, ms | {s['hostile_track_p99_ms']} | "
        f"{s['hostile_track_p99_reference_ms']} | ≤ 50 |",
        f"| overload: peak RSS, MB | {s['overload_rss_mb']} | {s['overload_rss_reference_mb']} (idle) | ≤ 400 |",
        f"| overload: side `/track` p99, ms | {s['overload_track_p99_ms']} | "
        f"{s['overload_track_p99_reference_ms']} | ≤ 200 |",
        f"| overload: requests shed with 503 | {s['overload_shed_503']} | | > 0 |",
        f"| overload: longest writer hold, ms | {s['overload_max_writer_hold_ms']} | | |",
        f"| funnel flood: `GET /api/persons/{{id}}` p99, ms | {s['hostile_funnels_persons_ms']} | "
        f"{s['hostile_funnels_persons_reference_ms']} (no flood) | ≤ 1000 |",
        f"| funnel flood: peak RSS, MB | {s['hostile_funnels_rss_mb']} | "
        f"{s['hostile_funnels_rss_reference_mb']} (idle) | ≤ 500 |",
        f"| funnel flood: side `/track` p99, ms | {s['hostile_funnels_track_p99_ms']} | | ≤ 50 |",
        f"| overload: acknowledged = stored | {s['overload_acknowledged_equals_stored']} | | yes |",
    ]
    return lines

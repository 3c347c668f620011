"""Load shedding (both stores): past the requests or bytes in flight, 503 + Retry-After at once,
nothing of a shed request stored, and acknowledged = stored for the others.

The writer is held by a lock taken from outside, so requests stay in flight until the test
lets go: every wait is on a condition (the shedder's gauges), none on time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from tests.collector.conftest import Collector, event, form, wait_for
from tests.collector.dbs import is_postgres, rows, stored_insert_ids


@contextmanager
def writer_blocked(target: str) -> Iterator[None]:
    """Hold the events table's write lock until the block ends (the writer waits on it)."""
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        if is_postgres(target):
            import psycopg

            with psycopg.connect(target) as pg:
                pg.execute("LOCK TABLE events IN EXCLUSIVE MODE")
                taken.set()
                release.wait(60)
                pg.rollback()
            return
        from empmix_collector.store.sqlite import connect

        conn = connect(target)
        conn.execute("BEGIN IMMEDIATE")
        taken.set()
        release.wait(60)
        conn.execute("ROLLBACK")
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert taken.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join(30)


def _post_in_thread(client: Collector, records: list[Any], out: list[Any]) -> threading.Thread:
    thread = threading.Thread(target=lambda: out.append(client.http.post("/track?verbose=1", **form(records))))
    thread.start()
    return thread


def _gauges(client: Collector) -> Any:
    return client.http.app.state.load  # type: ignore[attr-defined]


def test_requests_past_the_limit_get_503_and_retry_after(make_client: Callable[..., Collector]) -> None:
    client = make_client(max_requests=3)
    batches = [[event("held", f"u{n}") for _ in range(5)] for n in range(3)]
    replies: list[Any] = []
    with writer_blocked(client.settings.db_path):
        threads = [_post_in_thread(client, batch, replies) for batch in batches]
        wait_for(lambda: _gauges(client).inflight_requests == 3, what="three requests in flight")
        shed_batch = [event("shed", "u9")]
        body = form(shed_batch)
        headers = {**body["headers"], "Origin": "https://shop.example"}
        shed = client.http.post("/track?verbose=1", content=body["content"], headers=headers)
        assert shed.status_code == 503 and shed.headers["retry-after"] == "1"
        assert shed.headers["access-control-allow-origin"] == "https://shop.example"  # the page can read it
        assert client.http.get("/healthz").status_code == 200  # probes are never shed
    for thread in threads:
        thread.join(30)
    assert sorted(r.status_code for r in replies) == [200, 200, 200]
    stored = set(stored_insert_ids(client.settings.db_path))
    assert {e["properties"]["$insert_id"] for batch in batches for e in batch} <= stored  # acknowledged = stored
    assert shed_batch[0]["properties"]["$insert_id"] not in stored
    assert (_gauges(client).inflight_requests, _gauges(client).inflight_bytes, _gauges(client).shed) == (0, 0, 1)


def test_bytes_in_flight_are_bounded(make_client: Callable[..., Collector]) -> None:
    big = [event("big", f"b{i}", pad="x" * 200) for i in range(200)]  # ~70 KB
    size = len(form(big)["content"])
    client = make_client(max_inflight_bytes=int(size * 1.5))
    replies: list[Any] = []
    with writer_blocked(client.settings.db_path):
        first = _post_in_thread(client, big, replies)
        wait_for(lambda: _gauges(client).inflight_bytes >= size, what="the first body in flight")
        second = client.http.post("/track?verbose=1", **form([event("big", "late", pad="x" * 200) for _ in range(200)]))
        assert second.status_code == 503 and second.headers["retry-after"] == "1"
        small = _post_in_thread(client, [event("small", "s1")], replies)  # still fits beside the first
        wait_for(lambda: _gauges(client).inflight_requests == 2, what="the small request in flight")
    first.join(30)
    small.join(30)
    assert sorted(r.status_code for r in replies) == [200, 200]
    count = rows(client.settings.db_path, "SELECT COUNT(*) FROM events WHERE distinct_id = 'late'")[0][0]
    assert count == 0 and len(stored_insert_ids(client.settings.db_path)) == 201

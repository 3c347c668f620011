"""The query API within bounds (both stores): expensive reads run on their own small pool, so
they cannot starve the cheap ones, and a read past its time limit is cancelled (503)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from empmix_collector.store import base, funnels
from empmix_collector.store.sqlstore import HEAVY_READERS
from tests.collector.conftest import Collector, event, wait_for


def test_expensive_reads_cannot_starve_the_cheap_ones(client: Collector, monkeypatch: pytest.MonkeyPatch) -> None:
    assert client.track([event("view", "u1")]).status_code == 200
    release, running = threading.Event(), []

    def stuck_funnel(*args: Any) -> list[Any]:
        running.append(1)
        release.wait(60)
        return []

    monkeypatch.setattr(funnels, "funnel", stuck_funnel)
    replies: list[int] = []
    threads = [
        threading.Thread(target=lambda: replies.append(client.get("/api/funnel", steps="view").status_code))
        for _ in range(HEAVY_READERS + 3)
    ]
    try:
        for thread in threads:
            thread.start()
        wait_for(lambda: len(running) == HEAVY_READERS, what="the heavy pool full")
        # every heavy thread is stuck and more funnels wait: a person still reads at once
        assert client.person("u1") is not None
        assert client.get("/api/merges").status_code == 200
        assert len(running) == HEAVY_READERS  # the waiting funnels did not take other threads
    finally:
        release.set()
        for thread in threads:
            thread.join(30)
    assert replies == [200] * (HEAVY_READERS + 3)


def test_a_read_past_its_time_limit_is_cancelled(
    make_client: Callable[..., Collector], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(base, "QUERY_TIME_LIMIT_S", 0.001)  # read when the store opens (PostgreSQL)
    client = make_client()
    for start in range(0, 6000, 2000):
        records = [event(("a", "b", "c")[i % 3], f"u{(start + i) % 700}") for i in range(2000)]
        assert client.track(records).status_code == 200
    r = client.get("/api/funnel", steps="a,b,c")
    assert r.status_code == 503 and "time limit" in r.json()["error"], r.text
    assert client.track([event("after", "u1")]).json() == {"status": 1, "error": None}  # writes go on

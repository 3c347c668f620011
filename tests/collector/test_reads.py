"""The query API within bounds (both stores): expensive reads run on their own small pool, so
they cannot starve the cheap ones; a read past its time limit is cancelled (503), one past its
row or cell limit refused (413), and one whose client has gone interrupted in the database."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn

from empmix_collector.http.app import create_app
from empmix_collector.settings import Settings
from empmix_collector.store import base, funnels
from empmix_collector.store.sqlstore import HEAVY_READERS
from tests.collector import dbs
from tests.collector.conftest import SECRET, TOKEN, Collector, event, wait_for


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


def test_a_query_past_its_row_limit_is_refused_with_413(client: Collector, monkeypatch: pytest.MonkeyPatch) -> None:
    records = [event("a", f"u{i}", time=T0 + i) for i in range(10)]
    assert client.import_(records).status_code == 200
    monkeypatch.setattr(base, "QUERY_ROW_LIMIT", 6)
    for path, params in [
        ("/api/funnel", {"steps": "a", "window_ms": 0}),
        ("/api/retention", {"born": "a", "returned": "b"}),
    ]:
        r = client.get(path, **params)
        assert r.status_code == 413 and "QUERY_ROW_LIMIT" in r.json()["error"], r.text
        narrow = client.get(path, **params, **{"from": T0, "to": T0 + 4})  # 5 events: within the limit
        assert narrow.status_code == 200, narrow.text
    assert client.get("/api/funnel", steps="a", window_ms=0, to=T0 + 4).json()["steps"] == [{"event": "a", "count": 5}]
    # a retention's returns are not bounded by to=: they count from the first cohort on
    assert client.get("/api/retention", born="a", returned="a", to=T0 + 4).status_code == 413


def test_a_retention_table_past_its_cell_limit_is_refused_with_413(
    client: Collector, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = 86_400_000
    records = [event("born", f"u{i}", time=1_704_067_200_000 + i * 3_600_000) for i in range(5)]
    records.append(event("back", "u0", time=1_704_067_200_000 + 30 * day))
    assert client.import_(records).status_code == 200
    monkeypatch.setattr(base, "RETENTION_CELL_LIMIT", 100)
    hourly = client.get("/api/retention", born="born", returned="back", unit="hour")  # 5 cohorts x ~720 hours
    assert hourly.status_code == 413 and "RETENTION_CELL_LIMIT" in hourly.json()["error"], hourly.text
    daily = client.get("/api/retention", born="born", returned="back", unit="day")  # 1 cohort x 31 days
    assert daily.status_code == 200, daily.text
    assert daily.json()["cohorts"] == [{"start": 1_704_067_200_000, "size": 5, "returned": [0] * 30 + [1]}]


T0 = 1_704_067_200_000  # 2024-01-01
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"


@contextlib.contextmanager
def serving(app: Any) -> Iterator[int]:
    """The app on a real uvicorn server in a thread (its store in this process); yields the port."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started, what="uvicorn started")
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(30)


def test_a_read_whose_client_has_gone_is_interrupted_in_the_database(
    store_kind: str, new_db: Callable[[], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over a real socket: the client closes its connection while its funnel runs (a statement
    that never ends by itself); the statement is interrupted in the database, not left to its
    30 s time limit, and the store goes on answering."""
    running = threading.Event()

    def endless_funnel(sql: Any, *args: Any) -> list[Any]:
        running.set()
        sql.one(ENDLESS)
        return []

    monkeypatch.setattr(funnels, "funnel", endless_funnel)
    target = new_db()
    app = create_app(Settings(db_path=target, tokens=(TOKEN,), secret=SECRET))
    store = app.state.store

    def active_endless() -> int:  # PostgreSQL: the server's own view of the statement
        sql = (
            "SELECT COUNT(*) FROM pg_stat_activity WHERE state = 'active' AND strpos(query, 'WITH RECURSIVE c(x)') = 1"
        )
        return int(dbs.rows(target, sql)[0][0])

    with serving(app) as port:
        sock = socket.create_connection(("127.0.0.1", port))
        head = f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {SECRET}\r\n"
        sock.sendall(f"GET /api/funnel?steps=a HTTP/1.1\r\n{head}\r\n".encode())
        assert running.wait(20)
        if store_kind == "postgres":
            wait_for(lambda: active_endless() == 1, what="the endless statement running on the server")
        assert store.interrupted_reads == 0
        sock.close()
        wait_for(lambda: store.interrupted_reads == 1, timeout=10, what="the read interrupted")
        if store_kind == "postgres":
            wait_for(lambda: active_endless() == 0, timeout=10, what="the statement gone from the server")
        with socket.create_connection(("127.0.0.1", port)) as again:  # the store still answers, on the same pool
            again.sendall(f"GET /api/persons HTTP/1.1\r\n{head}Connection: close\r\n\r\n".encode())
            reply = b""
            while chunk := again.recv(65536):
                reply += chunk
        assert reply.startswith(b"HTTP/1.1 200"), reply[:200]

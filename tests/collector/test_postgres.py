"""PostgreSQL as an operator meets it: unreachable at start, gone while running, several workers."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from tests.collector.conftest import SECRET, TOKEN, event, new_id, wait_for
from tests.collector.dbs import stored_insert_ids
from tests.collector.pgcluster import PgCluster, free_port
from tests.collector_process import CollectorProcess, launch_collector


def _post(url: str, records: list[dict[str, object]]) -> tuple[int, dict[str, str], bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=15)
    try:
        body = "data=" + quote(json.dumps(records), safe="")
        conn.request("POST", "/track/?verbose=1", body=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        reply = conn.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        conn.close()


@pytest.fixture
def pg_collector(pg_cluster: PgCluster) -> Iterator[Callable[..., CollectorProcess]]:
    started: list[CollectorProcess] = []

    def start(*args: str, db: str | None = None) -> CollectorProcess:
        proc = launch_collector(db or pg_cluster.fresh_url(), *args, tokens=[TOKEN], secret=SECRET)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


def test_unreachable_postgres_at_start_exits_2_with_one_line() -> None:
    url = f"postgresql://nobody:pw@127.0.0.1:{free_port()}/empmix"
    done = subprocess.run(
        [sys.executable, "-m", "empmix_collector", "--port", "0", "--db", url, "--token", TOKEN],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot connect to PostgreSQL" in lines[0], done.stderr
    assert "pw" not in lines[0]  # the password is not printed


def test_url_from_the_environment(pg_cluster: PgCluster) -> None:
    """No --db: ``$EMPMIX_COLLECTOR_DB`` names the database."""
    url = pg_cluster.fresh_url()
    cmd = [sys.executable, "-m", "empmix_collector", "--port", "0", "--token", TOKEN, "--secret", SECRET]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "EMPMIX_COLLECTOR_DB": url, "PYTHONUNBUFFERED": "1"})
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on " in line, line
        base = line.rsplit("listening on ", 1)[1].strip()
        record = event("env", "from-env")
        assert _post(base, [record])[0] == 200
        assert stored_insert_ids(url) == [record["properties"]["$insert_id"]]  # type: ignore[index]
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_postgres_going_away_gives_503_then_recovers_by_itself(
    pg_cluster: PgCluster, pg_collector: Callable[..., CollectorProcess]
) -> None:
    proc = pg_collector()
    before = event("before", "u1")
    assert _post(proc.url, [before])[0] == 200
    pg_cluster.stop()
    try:
        during = [event("during", "u1") for _ in range(3)]
        status, headers, body = _post(proc.url, during)
        assert status == 503, body
        assert headers.get("retry-after") == "1"
        assert json.loads(body)["status"] == 0
    finally:
        pg_cluster.start()
    # an SDK retries the refused batch: once the server is back it is taken, exactly once
    wait_for(lambda: _post(proc.url, during)[0] == 200, timeout=30, what="the collector to recover")
    assert _post(proc.url, during)[0] == 200
    stored = stored_insert_ids(proc.db)
    wanted = [r["properties"]["$insert_id"] for r in [before, *during]]  # type: ignore[index]
    assert sorted(stored) == sorted(wanted)
    assert proc.person("u1") is not None  # reads recovered too
    assert proc.process.poll() is None


def test_several_workers_on_one_port(pg_collector: Callable[..., CollectorProcess]) -> None:
    proc = pg_collector("--workers", "2")
    sent = []
    for _ in range(20):  # new connections: the kernel spreads them over both workers
        record = event("w", f"user-{new_id()[:4]}")
        assert _post(proc.url, [record])[0] == 200
        sent.append(record["properties"]["$insert_id"])  # type: ignore[index]
    assert sorted(stored_insert_ids(proc.db)) == sorted(sent)
    assert proc.stop() == 0, "".join(proc.output)
    assert "Traceback" not in "".join(proc.output)


def test_sqlite_refuses_several_workers(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "empmix_collector", "--db", f"{tmp_path}/x.db", "--token", TOKEN, "--workers", "2"],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2
    assert "--workers 2 needs PostgreSQL" in done.stderr

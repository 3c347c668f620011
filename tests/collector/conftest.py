"""Fixtures for the collector tests.

Every test that stores anything runs twice, on SQLite and on PostgreSQL
(``store_kind``): ``new_db()`` gives a fresh database of that kind (a temp file, or
a fresh schema in the session's throwaway PostgreSQL cluster, see ``pgcluster``).

In-process (fast): ``make_client(**settings)`` returns a Starlette ``TestClient``
running the app's lifespan (store open) on a fresh database; ``client`` is one
with token ``tok`` (and ``tok2``) and secret ``sec``.

Out-of-process (real HTTP, real uvicorn): ``start_collector(*args)`` starts
``python -m empmix_collector --port 0 ...`` on a temp db and waits for its
``listening on`` line; ``collector`` is one such server.
"""

from __future__ import annotations

import json
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.collector.pgcluster import PgCluster, find_bin_dir
from tests.collector_process import CollectorProcess
from tests.collector_process import launch_collector as shared_launch

with warnings.catch_warnings():  # starlette 1.x prefers httpx2; httpx is what requirements pin
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from starlette.testclient import TestClient

from empmix_collector.http.app import create_app
from empmix_collector.settings import Settings

TOKEN = "tok"
TOKEN2 = "tok2"
SECRET = "sec"
AUTH = {"Authorization": f"Bearer {SECRET}"}
STARTUP_TIMEOUT_S = 20.0


def now_ms() -> int:
    return int(time.time() * 1000)


def new_id() -> str:
    return str(uuid.uuid4())


def event(name: str, distinct_id: str | None, token: str = TOKEN, **props: Any) -> dict[str, Any]:
    """An event record as an SDK sends it (time now, fresh $insert_id unless given)."""
    properties: dict[str, Any] = {"token": token, "time": now_ms(), "$insert_id": new_id()}
    if distinct_id is not None:
        properties["distinct_id"] = distinct_id
    properties.update(props)
    return {"event": name, "properties": properties}


def form(records: Any) -> dict[str, str]:
    """Body kwargs for TestClient.post: form-urlencoded data=<JSON> (as mixpanel-python)."""
    return {
        "content": "data=" + quote(json.dumps(records), safe=""),
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }


class Collector:
    """Helpers around a TestClient for the collector's endpoints."""

    def __init__(self, http: TestClient, settings: Settings) -> None:
        self.http = http
        self.settings = settings

    def track(self, records: Any, verbose: bool = True, path: str = "/track/") -> Any:
        response = self.http.post(path + ("?verbose=1" if verbose else ""), **form(records))
        return response

    def engage(self, records: Any, verbose: bool = True) -> Any:
        return self.http.post("/engage/" + ("?verbose=1" if verbose else ""), **form(records))

    def import_(self, records: Any, secret: str | None = SECRET, **kwargs: Any) -> Any:
        auth = (secret, "") if secret is not None else None
        return self.http.post("/import", json=records, auth=auth, **kwargs)

    def get(self, path: str, **params: Any) -> Any:
        return self.http.get(path, params=params, headers=AUTH if self.settings.secret else {})

    def person(self, distinct_id: str) -> dict[str, Any] | None:
        response = self.get("/api/persons/" + quote(distinct_id, safe=""))
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return response.json()

    def person_events(self, distinct_id: str) -> list[dict[str, Any]]:
        response = self.get("/api/persons/" + quote(distinct_id, safe="") + "/events")
        assert response.status_code == 200, response.text
        return response.json()["events"]

    def merges(self) -> list[dict[str, Any]]:
        response = self.get("/api/merges")
        assert response.status_code == 200, response.text
        return response.json()["merges"]

    def same_person(self, *ids: str) -> bool:
        found = [self.person(i) for i in ids]
        return all(p is not None for p in found) and len({p["person_id"] for p in found}) == 1  # type: ignore[index]

    def event_count(self) -> int:
        return len(self.get("/api/events", limit=10_000).json()["events"])


STORES = ("sqlite", "postgres")


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """The session's PostgreSQL cluster (started on first use, removed at the end)."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.fail("PostgreSQL is not installed: run ./build.sh setup (it installs Debian's postgresql)")
    cluster = PgCluster(bin_dir)
    yield cluster
    cluster.remove()


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgres``: the store this run of the test uses."""
    return str(request.param)


@pytest.fixture
def new_db(store_kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], str]:
    """Factory: a fresh, empty database of ``store_kind`` -> its ``--db`` value."""
    made: list[str] = []

    def make() -> str:
        if store_kind == "postgres":
            cluster: PgCluster = request.getfixturevalue("pg_cluster")
            target = cluster.fresh_url()
        else:
            target = str(tmp_path / f"c{len(made)}.db")
        made.append(target)
        return target

    return make


@pytest.fixture
def make_client(new_db: Callable[[], str]) -> Iterator[Callable[..., Collector]]:
    """Factory: ``make_client(secret=..., max_ids_per_person=..., ...)`` -> Collector (lifespan running)."""
    opened: list[TestClient] = []

    def make(**overrides: Any) -> Collector:
        values: dict[str, Any] = {
            "db_path": new_db(),
            "tokens": (TOKEN, TOKEN2),
            "secret": SECRET,
        }
        values.update(overrides)
        settings = Settings(**values)
        # a loopback client, as a local tool would be (without --secret the query API answers only those)
        http = TestClient(create_app(settings), raise_server_exceptions=True, client=("127.0.0.1", 50000))
        http.__enter__()
        opened.append(http)
        return Collector(http, settings)

    yield make
    for http in reversed(opened):
        http.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., Collector]) -> Collector:
    """The collector in-process: tokens ``tok``/``tok2``, secret ``sec``."""
    return make_client()


# -- a real server process --------------------------------------------------------------


def launch_collector(
    db: Path | str, *args: str, token: str = TOKEN, secret: str | None = SECRET
) -> CollectorProcess:
    """Start the collector on a free loopback port and wait until it says it listens."""
    return shared_launch(db, *args, tokens=[token], secret=secret)


@pytest.fixture
def start_collector(new_db: Callable[[], str]) -> Iterator[Callable[..., CollectorProcess]]:
    """Factory: ``start_collector(*extra_args, db=None)`` (``db`` given: that database again,
    e.g. a restart); every process is stopped at teardown."""
    started: list[CollectorProcess] = []
    default: list[str] = []

    def start(*args: str, db: Path | str | None = None, **kwargs: Any) -> CollectorProcess:
        if db is None:
            if not default:
                default.append(new_db())
            db = default[0]
        proc = launch_collector(db, *args, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.stop()


@pytest.fixture
def collector(start_collector: Callable[..., CollectorProcess]) -> CollectorProcess:
    """One collector process (token ``tok``, secret ``sec``) on a free port."""
    return start_collector()


def wait_for(
    predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Poll until ``predicate()`` is truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")

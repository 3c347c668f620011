"""Fixtures for the collector tests.

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

from tests.collector_process import CollectorProcess
from tests.collector_process import launch_collector as shared_launch

with warnings.catch_warnings():  # starlette 1.x prefers httpx2; httpx is what requirements pin
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from starlette.testclient import TestClient

from empmix_collector.app import create_app
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


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., Collector]]:
    """Factory: ``make_client(secret=..., max_ids_per_person=..., ...)`` -> Collector (lifespan running)."""
    opened: list[TestClient] = []

    def make(**overrides: Any) -> Collector:
        values: dict[str, Any] = {
            "db_path": str(tmp_path / f"c{len(opened)}.db"),
            "tokens": (TOKEN, TOKEN2),
            "secret": SECRET,
        }
        values.update(overrides)
        settings = Settings(**values)
        http = TestClient(create_app(settings), raise_server_exceptions=True)
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


def launch_collector(db: Path, *args: str, token: str = TOKEN, secret: str | None = SECRET) -> CollectorProcess:
    """Start the collector on a free loopback port and wait until it says it listens."""
    return shared_launch(db, *args, tokens=[token], secret=secret)


@pytest.fixture
def start_collector(tmp_path: Path) -> Iterator[Callable[..., CollectorProcess]]:
    """Factory: ``start_collector(*extra_args, db=None)``; every process is stopped at teardown."""
    started: list[CollectorProcess] = []

    def start(*args: str, db: Path | None = None, **kwargs: Any) -> CollectorProcess:
        proc = launch_collector(db or tmp_path / "collector.db", *args, **kwargs)
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

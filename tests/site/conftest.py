"""Fixtures for the demo-site tests: a real collector serving build/www, and page helpers.

The collector runs as ``python -m empmix_collector --port 0 --site build/www`` on a temp database
with one token per test flow (the pages take ``?token=``), so flows don't see each other's data.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import quote

import pytest

from tests.conftest import PAGE_READY_MS, ROOT, wait_until

WWW = ROOT / "build" / "www"
ARTIFACTS = ROOT / "test-results" / "site"  # pytest-playwright empties test-results/ when a session starts
TOKENS = ["demo_token", "worker_token"]


@dataclass
class Site:
    url: str
    process: subprocess.Popen[str]
    log: Path

    def api(self, path: str, token: str = "demo_token") -> Any:
        """GET a query-API path for ``token``; None on 404."""
        sep = "&" if "?" in path else "?"
        try:
            with urllib.request.urlopen(f"{self.url}{path}{sep}token={token}", timeout=10) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def person(self, distinct_id: str, token: str = "demo_token") -> dict[str, Any] | None:
        return self.api(f"/api/persons/{quote(distinct_id, safe='')}", token)

    def event_names(self, distinct_id: str, token: str) -> list[str]:
        found = self.api(f"/api/persons/{quote(distinct_id, safe='')}/events", token)
        return [e["event"] for e in found["events"]] if found else []


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not (WWW / "pyodide" / "pyodide.mjs").exists() or not list((WWW / "dist").glob("empmix_web-*.whl")):
        pytest.skip("build/www is not laid out: run ./build.sh setup")
    shutil.copytree(ROOT / "site", WWW, dirs_exist_ok=True)  # what ./build.sh setup does
    tmp = tmp_path_factory.mktemp("site")
    log = tmp / "collector.log"
    cmd = [sys.executable, "-m", "empmix_collector", "--host", "127.0.0.1", "--port", "0",
           "--db", str(tmp / "events.db"), "--site", str(WWW)]
    for token in TOKENS:
        cmd += ["--token", token]
    with open(log, "w") as err:
        process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)
    assert process.stdout is not None
    line = process.stdout.readline()  # "empmix-collector listening on http://127.0.0.1:PORT"
    if "listening on " not in line:
        process.kill()
        raise RuntimeError(f"collector did not start: {line!r} {log.read_text()[-2000:]}")
    server = Site(line.split("listening on ", 1)[1].strip(), process, log)
    wait_until(lambda: server.api("/healthz") is not None, 20, "the collector's /healthz")
    yield server
    process.terminate()
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def base_url(site: Site) -> str:
    return site.url


@dataclass
class Watched:
    """A page with its console errors and uncaught page errors collected."""

    page: Any
    errors: list[str] = field(default_factory=list)


def open_page(context: Any, path: str) -> Watched:
    """Open ``path`` in ``context`` and wait until its Python set ``body[data-ready=true]``."""
    page = context.new_page()
    watched = Watched(page)
    page.on("console", lambda m: watched.errors.append(f"console.{m.type}: {m.text}")
            if m.type == "error" else None)
    page.on("pageerror", lambda e: watched.errors.append(f"pageerror: {e}"))
    page.goto(path)
    page.wait_for_selector("body[data-ready=true]", state="attached", timeout=PAGE_READY_MS)
    return watched


def screenshot(page: Any, name: str, **options: Any) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), **options)
    return path

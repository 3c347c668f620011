"""Fixtures for the demo-site tests: a real collector serving build/www, and page helpers.

The collector runs as ``python -m empmix_collector --port 0 --site build/www`` on a temp database
with one token per test flow (the pages take ``?token=``), so flows don't see each other's data.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.collector_process import CollectorProcess, launch_collector
from tests.conftest import PAGE_READY_MS, ROOT, wait_until
from tools import site_pages

WWW = ROOT / "build" / "www"
ARTIFACTS = ROOT / "test-results" / "site"  # pytest-playwright empties test-results/ when a session starts
TOKENS = ["demo_token", "worker_token", "mpy_token", "mpy_worker_token", "forms_token"]


class Site(CollectorProcess):
    """The collector serving build/www; query-API calls default to the demo token."""

    def api(self, path: str, token: str | None = "demo_token") -> Any:
        return super().api(path, token)

    def person(self, distinct_id: str, token: str | None = "demo_token") -> dict[str, Any] | None:
        return super().person(distinct_id, token)

    def event_names(self, distinct_id: str, token: str) -> list[str]:
        return [e["event"] for e in self.events_of(distinct_id, token)]


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not (WWW / "pyodide" / "pyodide.mjs").exists() or not list((WWW / "dist").glob("empmix_web-*.whl")):
        pytest.skip("build/www is not laid out: run ./build.sh setup")
    shutil.copytree(ROOT / "site", WWW, dirs_exist_ok=True)  # what ./build.sh setup does
    site_pages.main(str(WWW))
    tmp = tmp_path_factory.mktemp("site")
    proc = launch_collector(tmp / "events.db", "--site", str(WWW), tokens=TOKENS, cwd=ROOT)
    server = Site(proc.process, proc.url, proc.db, proc.output)
    wait_until(lambda: server.api("/healthz") is not None, 20, "the collector's /healthz")
    yield server
    server.stop()


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

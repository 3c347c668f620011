"""Fixtures for the demo-site tests: a real collector serving build/www, and page helpers.

The collector runs as ``python -m empmix_collector --port 0 --site build/www`` on a temp database
with one token per test flow (the pages take ``?token=``), so flows don't see each other's data.
"""

from __future__ import annotations

import fcntl
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.collector_process import CollectorProcess, launch_collector
from tests.conftest import PAGE_READY_MS, ROOT, wait_until
from tools import site_pages

WWW = ROOT / "build" / "www"
ARTIFACTS = ROOT / "test-results" / "site"  # pytest-playwright empties test-results/ when a session starts
TOKENS = ["demo_token", "worker_token", "mpy_token", "mpy_worker_token", "forms_token",
          "mpy_consent_token", "reject_token"]
CONFIRM_MS = 20_000  # an action until the collector confirmed its batch (loaded CI machine)
# what the identity panel shows before a choice on the consent banner (cookieless="until_consent")
COOKIELESS = {"state": "anonymous", "distinct_id": "$cookieless", "device_id": "none", "user": "anonymous"}
NOTHING = {"local": [], "session": [], "cookie": ""}  # stored_keys() of a page that stores nothing
COOKIELESS_PREFIX = "$cookieless:"  # the ids the collector makes for cookieless visitors
# another browser: on one machine (one IP) the same browser build is one cookieless visitor
OTHER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Other"


class Site(CollectorProcess):
    """The collector serving build/www; query-API calls default to the demo token."""

    def api(self, path: str, token: str | None = "demo_token") -> Any:
        return super().api(path, token)

    def person(self, distinct_id: str, token: str | None = "demo_token") -> dict[str, Any] | None:
        return super().person(distinct_id, token)

    def event_names(self, distinct_id: str, token: str) -> list[str]:
        return [e["event"] for e in self.events_of(distinct_id, token)]


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Site]:
    if not (WWW / "pyodide" / "pyodide.mjs").exists() or not list((WWW / "dist").glob("empmix_web-*.whl")):
        pytest.skip("build/www is not laid out: run ./build.sh setup")
    # in a parallel run the first worker lays the pages out, once: a copy while another worker's
    # collector serves them could hand a page a half-written (or not yet pinned) file
    run = getattr(request.config, "workerinput", {}).get("testrun_uid")
    with open(WWW.parent / "site.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        done = WWW.parent / "site.laid-out"
        if run is None or not done.exists() or done.read_text() != run:
            shutil.copytree(ROOT / "site", WWW, dirs_exist_ok=True)  # what ./build.sh setup does
            site_pages.main(str(WWW))
            done.write_text(run or "")
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


# -- the app's page, as a visitor uses it --------------------------------------------------------
def identity(page: Any) -> dict[str, str]:
    return page.evaluate("""() => ({
        state: document.querySelector('#identity').dataset.state,
        distinct_id: document.querySelector('#id-distinct').textContent,
        device_id: document.querySelector('#id-device').textContent,
        user: document.querySelector('#id-user').textContent})""")


def anonymous(ident: dict[str, str]) -> bool:
    return (ident["state"] == "anonymous" and ident["user"] == "anonymous"
            and ident["distinct_id"] == "$device:" + ident["device_id"])


def consent(page: Any) -> str:
    """The consent state the identity panel shows: "none" (no choice: cookieless), "in", "out"."""
    return str(page.get_attribute("#identity", "data-consent"))


def stored_keys(page: Any) -> dict[str, list[str]]:
    """What the page's origin has stored, read in the page."""
    return page.evaluate("""() => ({local: Object.keys(localStorage).sort(),
        session: Object.keys(sessionStorage).sort(), cookie: document.cookie})""")


def wait_confirmed(page: Any, seq: int) -> None:
    """Action ``seq`` ran and the collector confirmed everything tracked up to it."""
    status = page.locator("#status")
    expect(status).to_have_attribute("data-seq", str(seq))
    expect(status).to_have_attribute("data-confirmed", str(seq), timeout=CONFIRM_MS)


def act(page: Any, selector: str, **fill: str) -> None:
    """Fill inputs (``{"#id": value}`` passed as keyword names with '_' for '-'), click, wait."""
    seq = int(page.get_attribute("#status", "data-seq"))
    for name, value in fill.items():
        page.fill("#" + name.replace("_", "-"), value)
    page.click(selector)
    wait_confirmed(page, seq + 1)


def choose(page: Any, button: str, state: str) -> None:
    """Click a consent banner button: the banner goes, the panel shows ``state``."""
    expect(page.locator("#consent")).to_be_visible()
    assert consent(page) == "none" and identity(page) == COOKIELESS, identity(page)
    act(page, button)
    expect(page.locator("#consent")).to_be_hidden()
    assert consent(page) == state


def accept(page: Any) -> None:
    """ "Accept": persistent from now on (``opt_in_tracking()``); the visit so far joins the device."""
    choose(page, "#consent-accept", "in")


def reject(page: Any) -> None:
    """ "Reject": cookieless for good (``opt_out_tracking()``); only the choice is stored."""
    choose(page, "#consent-reject", "out")


def signup(page: Any, name: str, company: str = "") -> None:
    act(page, "#signup-submit", signup_user=name, signup_company=company)


def login(page: Any, name: str) -> None:
    act(page, "#login-submit", login_user=name)


def upgrade(page: Any) -> None:
    """The timed step: open the dialog (``time_event``), confirm (``track('Upgrade')``)."""
    act(page, "#upgrade-open")
    expect(page.locator("#upgrade-dialog")).to_be_visible()
    act(page, "#upgrade-confirm")
    expect(page.locator("#upgrade-dialog")).to_be_hidden()


def reload(page: Any, path: str) -> None:
    """A new page load of ``path`` in the same tab, until its Python is ready."""
    page.goto(path)
    page.wait_for_selector("body[data-ready=true]", state="attached", timeout=PAGE_READY_MS)


def split_ids(person: dict[str, Any]) -> tuple[set[str], list[str]]:
    """A person's distinct ids: the others, and the cookieless ones the collector made."""
    ids = person["distinct_ids"]
    return ({i for i in ids if not i.startswith(COOKIELESS_PREFIX)},
            [i for i in ids if i.startswith(COOKIELESS_PREFIX)])


def props_of(site: Site, distinct_id: str, name: str, token: str = "demo_token") -> list[dict[str, Any]]:
    """The properties of every ``name`` event of the person of ``distinct_id``."""
    return [e["properties"] for e in site.events_of(distinct_id, token) if e["event"] == name]


def set_visibility(page: Any, state: str) -> None:
    """What a tab switch does to the page (headless Chromium never hides a page by itself).

    The state must stay "hidden" for a while, as in a real tab switch: a worker's handler reads it
    only after the main thread has dispatched the event."""
    page.evaluate("""state => {
        Object.defineProperty(document, 'visibilityState', {value: state, configurable: true});
        document.dispatchEvent(new Event('visibilitychange')); }""", state)

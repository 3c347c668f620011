"""Cookieless operation (issue 19) in real Chromium, both interpreters, against the real collector:
what the page holds (nothing, or only the refusal), and who the collector says the visitor is.

Each test has its own project token (a collector of this module accepts them), so funnels count
only that test's visitors. The boot script runs in every page, configured by ``data-config``
like the SDK (``EmpMixClient().init()`` takes it from there).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.browser.conftest import Py
from tests.collector_process import CollectorProcess, launch_collector
from tests.conftest import PAGE_READY_MS, wait_until

TOKENS = [f"cookieless_{n}" for n in range(12)]
OTHER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) OtherBrowser/1.0"
# what the page holds; IndexedDB less PyScript's own databases (its file system and package cache,
# "IDBMap/..."), which it keeps whatever the page does: the SDK opens none
STORED = """async () => [localStorage.length, sessionStorage.length, document.cookie,
                         (await indexedDB.databases()).map(d => d.name).filter(n => !n.startsWith("IDBMap/"))]"""


@pytest.fixture(scope="module")
def cl_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    server = launch_collector(tmp_path_factory.mktemp("cookieless") / "events.db", tokens=TOKENS)
    yield server
    server.stop()


_tokens = itertools.cycle(TOKENS)


@pytest.fixture
def project() -> str:
    """This test's own token (one per test and interpreter)."""
    return next(_tokens)


def load(context: Any, collector: CollectorProcess, token: str, mode: str) -> Py:
    """A page load: the boot script and the SDK, both in ``mode``; returns the page's Python with
    ``c`` initialised."""
    config = quote(json.dumps({"api_host": collector.url, "cookieless": mode}))
    page = context.new_page()
    page.goto(f"/test/sdk-{context.interp}.html?token={token}&config={config}")
    page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
    py = Py(page)
    py.run("c = EmpMixClient()\nc.init(flush_interval_ms=100)\nc.track_pageview()")
    return py


def flush_close(py: Py) -> None:
    assert py("ok = await c.flush(20000)", "ok") is True
    py.page.close()


def person_of(collector: CollectorProcess, token: str, insert_id: str) -> int:
    """The collector's person for the event with ``insert_id`` (after identity merges)."""

    def find() -> Any:
        events = collector.api("/api/events?limit=1000", token)["events"]
        return next((e["person_id"] for e in events if e["insert_id"] == insert_id), None)

    return int(wait_until(find, 20, f"event {insert_id} stored"))


def funnel(collector: CollectorProcess, token: str, *steps: str) -> list[int]:
    reply = collector.api("/api/funnel?steps=" + quote(",".join(steps)), token)
    return [step["count"] for step in reply["steps"]]


def test_always_a_whole_visit_stores_nothing_and_counts_the_visitor_once(context, cl_collector, project):
    py = load(context, cl_collector, project, "always")
    assert py.page.evaluate(STORED) == [0, 0, "", []]
    user = "usr_" + project
    py(f"c.alias({user!r})\nc.identify({user!r})\nc.track('Signed Up')\nawait c.flush(20000)\nc.reset()")
    py("c.identify(" + repr(user) + ")\nc.track('Logged In')")
    assert py.page.evaluate(STORED) == [0, 0, "", []]  # read in the page, after the whole flow
    flush_close(py)
    names = wait_until(
        lambda: (
            sorted(e["event"] for e in cl_collector.events_of(user, project))
            if len(cl_collector.events_of(user, project)) >= 6
            else None
        ),
        20,
        "the visit's events",
    )
    assert {"$mp_web_page_view", "Signed Up", "Logged In", "$cookieless_reset"} <= set(names)
    assert funnel(cl_collector, project, "$mp_web_page_view", "Signed Up", "Logged In") == [1, 1, 1]
    person = cl_collector.person(user, project)
    assert person is not None and any(i.startswith("$cookieless:") for i in person["distinct_ids"])


def test_until_consent_joins_the_visit_before_consent_to_the_visitor_after(context, cl_collector, project):
    first = load(context, cl_collector, project, "until_consent")
    views = [first.page.evaluate("window.empmixBoot.pageview")]
    assert first.page.evaluate(STORED)[:3] == [0, 0, ""]
    flush_close(first)
    second = load(context, cl_collector, project, "until_consent")
    views.append(second.page.evaluate("window.empmixBoot.pageview"))
    assert second.page.evaluate(STORED)[:3] == [0, 0, ""]  # still nothing before consent
    user = "usr_" + project
    device = second("c.opt_in_tracking()", "c.get_device_id()")
    stored = second.page.evaluate("Object.keys(localStorage).filter(k => k.includes('_identity'))")
    assert device and stored  # persistent from consent on
    second(f"c.alias({user!r})\nc.identify({user!r})\nc.track('Signed Up')")
    flush_close(second)
    wait_until(lambda: cl_collector.person(user, project), 20, "the user")
    owner = person_of(cl_collector, project, views[0])
    assert person_of(cl_collector, project, views[1]) == owner  # one person: both views and the user
    assert cl_collector.person(user, project)["person_id"] == owner
    assert funnel(cl_collector, project, "$mp_web_page_view", "Signed Up") == [1, 1]


def test_a_refusal_is_the_only_thing_stored_in_every_tab(context, cl_collector, project):
    first = load(context, cl_collector, project, "until_consent")
    first("c.opt_out_tracking()\nc.track('Browsed')\nawait c.flush(20000)")
    other = load(context, cl_collector, project, "until_consent")  # a second tab of the site
    other("c.track('Browsed too')\nawait c.flush(20000)")
    assert other("", "c.has_opted_out()") is True
    for py in (first, other):
        keys = py.page.evaluate("Object.keys(localStorage)")
        assert keys == [f"empmix_{project}_consent"]
        assert py.page.evaluate(STORED)[1:] == [0, "", []]


def test_another_user_agent_is_another_person(browser, base_url, interp, cl_collector, project):
    views = []
    for agent in (None, OTHER_UA):
        ctx = browser.new_context(base_url=base_url, **({"user_agent": agent} if agent else {}))
        ctx.interp = interp
        py = load(ctx, cl_collector, project, "always")
        views.append(py.page.evaluate("window.empmixBoot.pageview"))
        flush_close(py)
        ctx.close()
    assert person_of(cl_collector, project, views[0]) != person_of(cl_collector, project, views[1])


def test_shared_computer_the_next_visitor_is_not_the_previous_user(context, cl_collector, project):
    user = "usr_" + project
    a = load(context, cl_collector, project, "always")
    a(f"c.alias({user!r})\nc.identify({user!r})\nc.track('Signed Up')\nawait c.flush(20000)\nc.reset()")
    flush_close(a)
    wait_until(lambda: cl_collector.person(user, project), 20, "the user")
    nxt = load(context, cl_collector, project, "always")  # the next visitor, same browser and IP
    view = nxt.page.evaluate("window.empmixBoot.pageview")
    nxt("c.track('Browsed')")
    flush_close(nxt)
    user_person = cl_collector.person(user, project)["person_id"]
    assert person_of(cl_collector, project, view) != user_person
    by_person = funnel(cl_collector, project, "$mp_web_page_view", "Browsed")
    assert by_person == [2, 1]  # two people viewed a page; the one who browsed is not the user
    again = load(context, cl_collector, project, "always")  # a later login by the user
    login = again("c.identify(" + repr(user) + ")\nc.track('Logged In')", "None")
    assert login is None
    flush_close(again)
    wait_until(
        lambda: "Logged In" in [e["event"] for e in cl_collector.events_of(user, project)],
        20,
        "the login under the user",
    )

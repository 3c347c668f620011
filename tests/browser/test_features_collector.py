"""Issue 11 end to end: the SDK in Chromium (both interpreters) against a real collector
started with custom routes, asserting what the collector stored, and the server-set cookie
(``Set-Cookie`` only for a same-site page and a value it validated)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

import pytest

from tests.browser.conftest import Py
from tests.collector_process import CollectorProcess, launch_collector
from tests.conftest import open_sdk_page, wait_until

TOKEN = "features_test"
ROUTES = {"track": "e/", "engage": "p/", "groups": "g/", "cookie": "c"}


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    args: list[str] = []
    for name, path in ROUTES.items():
        args += ["--api-route", f"{name}={path}"]
    server = launch_collector(tmp_path_factory.mktemp("routed") / "events.db", *args, tokens=[TOKEN])
    yield server
    server.stop()


def start(context: Any, base: str, collector: CollectorProcess, **options: Any) -> Py:
    py = Py(open_sdk_page(context, base, context.interp))
    opts = {"api_host": collector.url, "flush_interval_ms": 100, "api_routes": ROUTES, **options}
    py.run(f"c = EmpMixClient({TOKEN!r}, **{opts!r})")
    return py


def test_groups_sessions_and_routes_are_stored(context, base_url, routed):
    for blocked in ("**/track/**", "**/engage/**", "**/groups/**"):  # what an ad blocker matches
        context.route(blocked, lambda route: route.abort("blockedbyclient"))
    py = start(context, base_url, routed)
    run = uuid.uuid4().hex[:8]
    user, company = f"usr_grp_{run}", f"acme_{run}"
    join, upgrade = f"Join {run}", f"Upgrade {run}"
    py.run(f"c.track('Page'); c.identify({user!r}); c.set_group('company', {company!r})"
           f"\nc.get_group('company', {company!r}).set({{'name': 'Acme {run}'}})"
           f"\nc.track({join!r}); c.time_event({upgrade!r}); c.track({upgrade!r})"
           f"\nc.reset(); c.identify({user + '_b'!r}); c.set_group('company', {company!r}); c.track({join!r})")
    assert py("r = await c.flush(timeout_ms=20000)", "r") is True
    group = routed.api(f"/api/groups/company/{company}", TOKEN)
    assert group["properties"]["name"] == f"Acme {run}"
    events = {e["event"]: e["properties"] for e in routed.events_of(user, TOKEN)}
    assert events[join]["company"] == [company] and isinstance(events[upgrade]["$duration"], float)
    sessions = routed.api(f"/api/persons/{user}/sessions", TOKEN)["sessions"]
    assert len(sessions) == 1 and sessions[0]["session_id"] == events["Page"]["$session_id"]
    assert sessions[0]["events"] == len(routed.events_of(user, TOKEN))
    steps = quote(f"{join},{upgrade}")
    by_person = routed.api(f"/api/funnel?steps={steps}", TOKEN)
    by_group = routed.api(f"/api/funnel?steps={steps}&by=group&group_key=company", TOKEN)
    assert [s["count"] for s in by_person["steps"]] == [2, 1]  # two members of one company
    assert [s["count"] for s in by_group["steps"]] == [1, 1]  # counted once, by company id
    assert routed.person(user, TOKEN)["properties"]["company"] == [company]


def cookie_replies(page: Any) -> list[tuple[int, str | None]]:
    """The replies to the SDK's cookie requests (the first one, made by init, may be missed)."""
    replies: list[tuple[int, str | None]] = []
    page.on("response", lambda r: replies.append((r.status, r.all_headers().get("set-cookie")))
            if r.url.endswith("/c") and r.request.method == "POST" else None)
    return replies


def test_the_collector_sets_the_identity_cookie_for_a_same_site_page(context, base_url, routed):
    py = start(context, base_url, routed, server_cookie=True)  # 127.0.0.1:A and 127.0.0.1:B: same site
    replies = cookie_replies(py.page)
    py.run("c.identify('usr_cookie_' + c.get_device_id()[:8])")  # init asked once already
    wait_until(lambda: any(h and "usr_cookie_" in unquote(h) for _s, h in replies), 10,
               "the cookie request after identify", page=py.page)
    status, header = replies[-1]
    assert status == 200 and header is not None
    name, _, rest = header.partition("=")
    value = unquote(rest.split(";", 1)[0])
    assert name == f"empmix_{TOKEN}" and json.loads(value)["distinct_id"].startswith("usr_cookie_")
    assert "Max-Age=31536000" in header and "SameSite=Lax" in header and "Path=/" in header
    jar = {c["name"]: c for c in context.cookies(routed.url)}
    assert json.loads(unquote(jar[f"empmix_{TOKEN}"]["value"]))["distinct_id"].startswith("usr_cookie_")
    # the same page posting a value the SDK would never write gets no cookie
    forged = json.dumps({"distinct_id": "undefined", "$device_id": "x", "$user_id": "undefined"})
    got = py.page.evaluate(
        """async ([url, body]) => { const r = await fetch(url, {method: 'POST', body,
        credentials: 'include', headers: {'Content-Type': 'application/x-www-form-urlencoded'}});
        return [r.status, r.headers.get('set-cookie')] }""",
        [routed.url + "/c", f"token={TOKEN}&value={quote(forged)}"],
    )
    assert got[0] == 400 and got[1] is None
    assert "undefined" not in unquote({c["name"]: c for c in context.cookies(routed.url)}[f"empmix_{TOKEN}"]["value"])


def test_no_cookie_for_a_cross_site_page_or_a_value_the_collector_did_not_validate(browser, wire, routed, interp):
    cross = wire.url.replace("127.0.0.1", "shop.example.test")  # another site than the collector's
    context = browser.new_context(base_url=cross)
    context.interp = interp
    try:
        py = start(context, cross, routed, server_cookie=True)
        replies = cookie_replies(py.page)
        py.run("c.identify('usr_cross')")
        wait_until(lambda: replies, 10, "the cookie request", page=py.page)
        assert replies[0][0] == 403 and replies[0][1] is None
        assert py("", "c.get_distinct_id()") == "usr_cross"  # the SDK keeps its own cookie
        own = [c for c in context.cookies() if c["name"] == f"empmix_{TOKEN}"]
        assert own and "usr_cross" in unquote(own[0]["value"])
    finally:
        context.close()

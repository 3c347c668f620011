"""The demo site driven like a person would, against a real collector (tests/site/conftest.py).

One story on the main-thread app (two browsers, three users), then the dashboard must show the
persons, identity graphs and funnels that story produced; the worker variant runs the same
identity flow; the page-hide beacon is checked on both. Assertions poll the DOM or the query API
(Playwright's expect / wait_until), never fixed sleeps.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT, wait_until
from tests.site.conftest import (
    CONFIRM_MS,
    NOTHING,
    OTHER_UA,
    Site,
    Watched,
    accept,
    act,
    anonymous,
    identity,
    login,
    open_page,
    props_of,
    reload,
    screenshot,
    set_visibility,
    signup,
    split_ids,
    stored_keys,
    upgrade,
    wait_confirmed,
)
from tools import site_pages


def group_funnel(site: Site, steps: str, token: str = "demo_token") -> list[int]:
    body = site.api(f"/api/funnel?steps={quote(steps)}&by=group&group_key=company", token)
    return [s["count"] for s in body["steps"]]


@pytest.fixture(scope="module")
def dashboard(browser: Any, site: Site) -> Any:
    """The dashboard, opened before the story so that it has to update live."""
    context = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 1000})
    watched = open_page(context, "/dashboard.html")
    yield watched
    context.close()


def test_pages_share_markup_and_wheel_name() -> None:
    """The four app pages are one markup with another script tag; both configs name the built
    wheel."""
    index = (ROOT / "site" / "index.html").read_text()
    ids = lambda html: sorted(re.findall(r'id="([^"]+)"', html))  # noqa: E731
    pages = {page: site_pages.variant(index, page) for page in site_pages.VARIANTS}
    for html in pages.values():
        assert ids(html) == ids(index)
    assert '<script type="py" worker src="/app.py" config="/app.toml">' in pages["worker.html"]
    assert '<script type="mpy" src="/app.py" config="/app-mpy.toml">' in pages["mpy.html"]
    assert '<script type="mpy" worker src="/app.py" config="/app-mpy.toml">' in pages["mpy-worker.html"]
    assert '<a href="/mpy.html" aria-current="page">' in pages["mpy.html"]
    latest = ROOT / "build" / "www" / "dist" / "empmix_web-latest.json"
    if latest.exists():  # Pyodide: the wheel with bytecode for it; MicroPython: the plain one
        wheels = json.loads(latest.read_text())
        configs = (("app.toml", "pyodide_wheel"), ("app-mpy.toml", "wheel"), ("dashboard.toml", "pyodide_wheel"))
        for config, key in configs:
            assert f'".{wheels[key]}"' in (ROOT / "site" / config).read_text(), config


@pytest.fixture(scope="module")
def story(browser: Any, site: Site, dashboard: Watched) -> dict[str, Any]:
    """The app's identity story, played once by whichever test needs it first (with the dashboard
    already open, so that it has to update live): what the visitors did and the ids it made."""
    dash = dashboard.page
    # the dashboard counts its own visit (boot script + SDK, like every demo page): the only person yet
    own = json.loads(dash.evaluate("localStorage.getItem('empmix_demo_token_identity')"))["distinct_id"]
    expect(dash.locator("#persons .person")).to_have_count(1, timeout=CONFIRM_MS)
    expect(dash.locator(f'#persons .person .node[data-id="{own}"]')).to_have_count(1)

    # an anonymous visitor: two page loads, cookieless (nothing stored, read in the page), then
    # "Accept": a $device: id, stored, from here on (test_consent.py has the MicroPython one)
    a_ctx = browser.new_context(base_url=site.url)
    a = open_page(a_ctx, "/")
    for load in range(2):
        if load:
            reload(a.page, "/")
        wait_confirmed(a.page, 1)
        assert stored_keys(a.page) == NOTHING, stored_keys(a.page)
    accept(a.page)
    first = identity(a.page)
    assert anonymous(first), first
    assert json.loads(a.page.evaluate("localStorage.getItem('empmix_demo_token_identity')"))["$device_id"] == (
        first["device_id"])
    expect(dash.locator(f'.person .node[data-id="{first["distinct_id"]}"]')).to_have_count(1, timeout=CONFIRM_MS)

    # sign up with a company: alias + identify + set_group + 'Signed Up'; the device id stays
    signup(a.page, "Alice", "Acme")
    assert identity(a.page) == {"state": "identified", "distinct_id": "usr_alice",
                                "device_id": first["device_id"], "user": "usr_alice"}
    expect(a.page.locator("#whoami")).to_have_text("usr_alice")
    act(a.page, "#btn-create-note")
    upgrade(a.page)  # time_event('Upgrade') on open, track('Upgrade') on confirm

    # log out: reset() mints a new anonymous visitor, which survives a reload
    act(a.page, "#logout")
    second = identity(a.page)
    assert anonymous(second) and second["device_id"] != first["device_id"], second
    expect(a.page.locator("#signup-form")).to_be_visible()

    # alice logs in again from a second browser (another user agent: another cookieless visitor)
    b_ctx = browser.new_context(base_url=site.url, user_agent=OTHER_UA)
    b = open_page(b_ctx, "/")
    accept(b.page)
    device_b = identity(b.page)["device_id"]
    # ... arriving by the campaign link first: its page view carries the UTM parameters
    b.page.click("#campaign-link")
    b.page.wait_for_url(re.compile(r"utm_source=newsletter"))
    b.page.wait_for_selector("body[data-ready=true]", state="attached")
    wait_confirmed(b.page, 1)
    assert identity(b.page)["device_id"] == device_b
    login(b.page, "alice")
    assert identity(b.page) == {"state": "identified", "distinct_id": "usr_alice",
                                "device_id": device_b, "user": "usr_alice"}
    assert not b.errors, b.errors
    b_ctx.close()

    # bob logs in on the first browser; then the app "forgets" reset() and carol logs in
    login(a.page, "bob")
    assert identity(a.page)["distinct_id"] == "usr_bob"
    act(a.page, "#logout-noreset")
    expect(a.page.locator("#login-form")).to_be_visible()
    assert identity(a.page)["user"] == "usr_bob"  # the SDK still holds bob
    login(a.page, "carol")
    assert identity(a.page) == {"state": "identified", "distinct_id": "usr_carol",
                                "device_id": second["device_id"], "user": "usr_carol"}
    screenshot(a.page, "app.png", full_page=True)

    # carol comes back later (a new page load, batching mode: the SDK sends every 10 min) and
    # leaves at once: the page-hide beacon delivers what was queued
    reload(a.page, "/?flush_ms=600000")
    assert identity(a.page)["distinct_id"] == "usr_carol"
    a.page.click("#btn-create-note")
    expect(a.page.locator("#status")).to_have_attribute("data-seq", "2")
    a.page.goto("about:blank")
    wait_until(lambda: "Created Note" in site.event_names("usr_carol", "demo_token"), 15, "the page-hide beacon")
    assert not a.errors, a.errors
    a_ctx.close()

    alice, bob, carol = site.person("usr_alice"), site.person("usr_bob"), site.person("usr_carol")
    assert alice is not None and bob is not None and carol is not None
    links = {m["to_id"]: m["from_id"] for m in site.api("/api/merges")["merges"]
             if m["kind"] == "cookieless" and m["result"] == "merged"}
    sessions = site.api("/api/persons/usr_alice/sessions")["sessions"]
    return {"first": first, "second": second, "device_b": device_b, "links": links, "sessions": sessions,
            "a1": first["distinct_id"], "a2": second["distinct_id"], "b": "$device:" + device_b,
            "a0": links.get(first["distinct_id"]), "b0": links.get("$device:" + device_b),
            "alice": alice["person_id"], "bob": bob["person_id"], "carol": carol["person_id"],
            "alice_sessions": len(sessions)}


def test_app_identity_flow(site: Site, story: dict[str, Any]) -> None:
    first, second, device_b, links = story["first"], story["second"], story["device_b"], story["links"]
    # what the collector made of it; alice: both devices, and the cookieless visit before each "Accept"
    alice = site.person("usr_alice")
    ids, cookieless = split_ids(alice)
    assert ids == {"usr_alice", first["distinct_id"], "$device:" + device_b} and len(cookieless) == 2, alice
    assert set(cookieless) == {links[first["distinct_id"]], links["$device:" + device_b]}, links
    views = props_of(site, "usr_alice", "$mp_web_page_view")  # a's two loads before "Accept" are alice's
    assert [v["distinct_id"] for v in views].count(links[first["distinct_id"]]) == 2, views
    assert all("$device_id" not in v for v in views if v["distinct_id"] in cookieless), views
    assert alice["identified"] and alice["properties"]["logins_count"] == 1
    bob = site.person("usr_bob")
    assert set(bob["distinct_ids"]) == {"usr_bob", second["distinct_id"]}
    carol = site.person("usr_carol")
    assert carol is not None and second["distinct_id"] not in carol["distinct_ids"]
    refused = [m for m in site.api("/api/merges")["merges"] if m["result"] == "refused"]
    assert [(m["kind"], m["from_id"], m["to_id"]) for m in refused] == [
        ("link", second["distinct_id"], "usr_carol")], refused

    # context: alice's company group, the timed upgrade, the campaign page view, sessions
    assert site.api("/api/groups/company/Acme")["properties"] == {"name": "Acme"}
    assert alice["properties"]["company"] == ["Acme"]
    assert [p["company"] for p in props_of(site, "usr_alice", "Signed Up")] == [["Acme"]]
    (upgraded,) = props_of(site, "usr_alice", "Upgrade")
    assert upgraded["company"] == ["Acme"] and upgraded["plan"] == "Pro"
    assert isinstance(upgraded["$duration"], float) and 0 < upgraded["$duration"] < 60, upgraded
    assert group_funnel(site, "Signed Up,Created Note,Upgrade") == [1, 1, 1]
    campaign = [p for p in views if p.get("utm_source") == "newsletter"]
    assert len(campaign) == 1 and campaign[0]["distinct_id"] == "$device:" + device_b, views
    assert (campaign[0]["utm_medium"], campaign[0]["utm_campaign"]) == ("email", "spring")
    assert all("utm_source" not in p for p in views if p is not campaign[0])
    sessions = story["sessions"]
    by_session: dict[str, int] = {}
    for e in site.events_of("usr_alice", "demo_token"):
        by_session[e["properties"]["$session_id"]] = by_session.get(e["properties"]["$session_id"], 0) + 1
    assert {s["session_id"]: s["events"] for s in sessions} == by_session and len(sessions) >= 2, sessions
    assert [s["start"] for s in sessions] == sorted(s["start"] for s in sessions)


def funnel_counts(page: Any, selector: str) -> list[int]:
    return [int(c) for c in page.eval_on_selector_all(f"{selector} .step", "els => els.map(e => e.dataset.count)")]


def test_dashboard(site: Site, dashboard: Watched, story: dict[str, Any]) -> None:
    page = dashboard.page
    # funnel page view -> Signed Up -> Logged In: alice went through all of it on two devices,
    # carol viewed a page after logging in, the dashboard's visitor viewed the dashboard; by raw
    # distinct_id nobody gets past the page view (alice's are two cookieless ids and a device)
    wait_until(lambda: funnel_counts(page, "#funnel-person") == [3, 1, 1], 15, "the person funnel",
               page=page)
    wait_until(lambda: funnel_counts(page, "#funnel-distinct") == [5, 0, 0], 15, "the distinct_id funnel",
               page=page)

    # start-up: every page load of the story was counted, none left before Python was ready
    # (everyone waited), and each Pyodide load reported its ready time
    events = site.api("/api/events?limit=1000")["events"]
    views = sum(e["event"] == "$mp_web_page_view" for e in events)
    readies = sum(e["event"] == "$python_ready" and e["properties"].get("$interpreter") == "pyodide" for e in events)
    stats = page.locator("#startup .startup-stats")
    expect(stats).to_have_attribute("data-visits", str(views))
    expect(stats).to_have_attribute("data-left", "0")
    expect(page.locator('#startup tr[data-interpreter="pyodide"]')).to_have_attribute("data-count", str(readies))
    assert views == readies >= 5, (views, readies)  # one $python_ready per page load

    # Signed Up -> Created Note -> Upgrade: alice did it all, for herself and for Acme
    wait_until(lambda: funnel_counts(page, "#funnel-product-person") == [1, 1, 1], 15, "the product funnel",
               page=page)
    wait_until(lambda: funnel_counts(page, "#funnel-product-company") == [1, 1, 1], 15, "the company funnel",
               page=page)
    acme = page.locator('#groups tr[data-group-id="Acme"]')
    expect(acme).to_have_attribute("data-members", "1")
    expect(acme).to_have_attribute("data-member-labels", "usr_alice")
    expect(acme.locator("td").nth(1)).to_have_text("Acme")

    alice = page.locator(f'.person[data-person-id="{story["alice"]}"]')
    expect(alice).to_have_attribute("data-identified", "true", timeout=10_000)
    expect(alice.locator(".sessions")).to_have_attribute("data-count", str(story["alice_sessions"]))
    expect(alice.locator(".graph svg .node")).to_have_count(5)
    for did in ("usr_alice", story["a1"], story["b"], story["a0"], story["b0"]):
        expect(alice.locator(f'.node:not(.ghost)[data-id="{did}"]')).to_have_count(1)
    for before, device in ((story["a0"], story["a1"]), (story["b0"], story["b"])):  # joined by "Accept"
        expect(alice.locator(f'.edge.merged[data-from="{before}"][data-to="{device}"]')).to_have_attribute(
            "data-kinds", re.compile(r"\bcookieless\b"))
    expect(alice.locator(".badge.cookieless")).to_have_count(0)  # not counted only thanks to cookieless
    expect(alice.locator(f'.edge.merged[data-from="{story["a1"]}"][data-to="usr_alice"]')).to_have_attribute(
        "data-kinds", re.compile(r"\balias\b"))
    expect(alice.locator(f'.edge.merged[data-from="{story["b"]}"][data-to="usr_alice"]')).to_have_attribute(
        "data-kinds", re.compile(r"\bidentify\b"))
    expect(alice.locator(".edge.refused")).to_have_count(0)

    # bob's device was refused to carol: a red edge to a ghost node, in both graphs
    bob = page.locator(f'.person[data-person-id="{story["bob"]}"]')
    expect(bob.locator(f'.edge.merged[data-from="{story["a2"]}"][data-to="usr_bob"]')).to_have_count(1)
    expect(bob.locator(f'.edge.refused[data-from="{story["a2"]}"][data-to="usr_carol"]')).to_have_attribute(
        "data-refused", "link")
    expect(bob.locator('.node.ghost[data-id="usr_carol"]')).to_have_count(1)
    carol = page.locator(f'.person[data-person-id="{story["carol"]}"]')
    expect(carol.locator(f'.node.ghost[data-id="{story["a2"]}"]')).to_have_count(1)
    expect(page.locator(f'#refused tr.refused[data-from="{story["a2"]}"][data-to="usr_carol"]')).to_have_count(1)

    # the event stream (the newest 40) resolves each event's distinct_id to its person now: the
    # second browser's page view before "Accept" is alice's
    row = page.locator(f'#events tr[data-event="$mp_web_page_view"][data-distinct-id="{story["b0"]}"]')
    expect(row).to_have_attribute("data-person-id", str(story["alice"]))
    expect(page.locator('#events tr[data-event="Signed Up"]')).to_have_attribute("data-person-id", str(story["alice"]))

    screenshot(page, "dashboard.png", full_page=True)
    docs_png = ROOT / "docs" / "dashboard.png"
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") or not docs_png.exists():
        docs_png.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(docs_png))  # the viewport: funnels and the first graphs
        assert docs_png.stat().st_size < 300_000
    assert not dashboard.errors, dashboard.errors


@pytest.mark.parametrize("page_name,token,runtime", [
    ("worker.html", "worker_token", "Python in a worker"),
    ("mpy-worker.html", "mpy_worker_token", "MicroPython in a worker"),
])
def test_worker_identity_flow(browser: Any, site: Site, page_name: str, token: str, runtime: str) -> None:
    """The same app.py in a PyScript worker (Pyodide and MicroPython), on the page's real
    storage and events."""
    context = browser.new_context(base_url=site.url)
    w = open_page(context, f"/{page_name}?token={token}")
    page = w.page
    expect(page.locator("#runtime")).to_have_text(runtime)
    assert page.evaluate("crossOriginIsolated") is True
    wait_confirmed(page, 1)
    accept(page)  # opt_in_tracking() in the worker: the page's real storage from here on
    first = identity(page)
    assert anonymous(first), first

    signup(page, "Dave", "Initech")
    assert identity(page) == {"state": "identified", "distinct_id": "usr_dave",
                              "device_id": first["device_id"], "user": "usr_dave"}
    # the worker wrote the page's real localStorage and cookie
    stored = json.loads(page.evaluate(f"localStorage.getItem('empmix_{token}_identity')"))
    assert stored["distinct_id"] == "usr_dave" and stored["$device_id"] == first["device_id"]
    assert f"empmix_{token}" in {c["name"] for c in context.cookies()}

    act(page, "#logout")
    second = identity(page)
    assert anonymous(second) and second["device_id"] != first["device_id"]
    login(page, "dave")
    assert identity(page)["distinct_id"] == "usr_dave"
    screenshot(page, "worker.png", full_page=True)

    # a new page load finds the login (stored by one worker, read back by the next), in batching
    # mode: a tab switch sends the queue by beacon at once
    reload(page, f"/{page_name}?token={token}&flush_ms=600000")
    assert identity(page) == {"state": "identified", "distinct_id": "usr_dave",
                              "device_id": second["device_id"], "user": "usr_dave"}
    page.click("#btn-create-note")
    expect(page.locator("#status")).to_have_attribute("data-seq", "2")
    set_visibility(page, "hidden")
    wait_until(lambda: "Created Note" in site.event_names("usr_dave", token), 15, "the tab-switch beacon")
    set_visibility(page, "visible")

    # leaving the page: the worker's page-hide handler runs too late (the worker is gone with the
    # page), so the queue stays in localStorage and the next page of the origin sends it
    page.click("#btn-share-note")
    expect(page.locator("#status")).to_have_attribute("data-seq", "3")
    page.goto("about:blank")
    again = open_page(context, f"/{page_name}?token={token}")
    wait_until(lambda: "Shared Note" in site.event_names("usr_dave", token), 30, "the next page to send it")
    startup = site.api("/api/startup", token)  # three loads, the boot script on the main thread
    assert (startup["visits"], startup["left_before_ready"]) == (3, 0), startup  # left after ready
    assert not w.errors + again.errors, w.errors + again.errors
    context.close()

    dave = site.person("usr_dave", token)  # and the cookieless visit before "Accept"
    ids, cookieless = split_ids(dave)
    assert ids == {"usr_dave", first["distinct_id"], second["distinct_id"]} and len(cookieless) == 1, dave
    assert dave["properties"]["logins_count"] == 1
    assert site.api("/api/groups/company/Initech", token)["properties"] == {"name": "Initech"}
    assert [p["company"] for p in props_of(site, "usr_dave", "Signed Up", token)] == [["Initech"]]


def test_micropython_app_identity_flow(browser: Any, site: Site) -> None:
    """mpy.html: the same app.py under MicroPython on the main thread: sign-up, logout, login,
    the page-hide beacon, and what the collector made of it."""
    token = "mpy_token"
    context = browser.new_context(base_url=site.url)
    m = open_page(context, f"/mpy.html?token={token}")
    page = m.page
    expect(page.locator("#runtime")).to_have_text("MicroPython on the main thread")
    wait_confirmed(page, 1)
    accept(page)
    first = identity(page)
    assert anonymous(first), first
    signup(page, "Erin", "Globex")
    assert identity(page) == {"state": "identified", "distinct_id": "usr_erin",
                              "device_id": first["device_id"], "user": "usr_erin"}
    upgrade(page)
    act(page, "#logout")
    second = identity(page)
    assert anonymous(second) and second["device_id"] != first["device_id"], second
    login(page, "erin")
    assert identity(page)["distinct_id"] == "usr_erin"
    screenshot(page, "mpy.png", full_page=True)
    reload(page, f"/mpy.html?token={token}&flush_ms=600000")
    page.click("#btn-create-note")
    expect(page.locator("#status")).to_have_attribute("data-seq", "2")
    page.goto("about:blank")
    wait_until(lambda: "Created Note" in site.event_names("usr_erin", token), 15, "the page-hide beacon")
    assert not m.errors, m.errors
    context.close()
    erin = site.person("usr_erin", token)  # and the cookieless visit before "Accept"
    ids, cookieless = split_ids(erin)
    assert ids == {"usr_erin", first["distinct_id"], second["distinct_id"]} and len(cookieless) == 1, erin
    assert erin["identified"] and erin["properties"]["logins_count"] == 1
    assert {"Signed Up", "Logged Out", "Logged In", "Created Note"} <= set(site.event_names("usr_erin", token))
    assert site.api("/api/groups/company/Globex", token)["properties"] == {"name": "Globex"}
    (upgraded,) = props_of(site, "usr_erin", "Upgrade", token)
    assert upgraded["company"] == ["Globex"] and isinstance(upgraded["$duration"], float)
    assert upgraded["$duration"] > 0 and upgraded["$session_id"]
    assert group_funnel(site, "Signed Up,Upgrade", token) == [1, 1]
    startup = site.api("/api/startup", token)  # two page loads, both reached MicroPython
    assert (startup["visits"], startup["left_before_ready"]) == (2, 0), startup
    assert [(r["interpreter"], r["count"]) for r in startup["ready"]] == [("micropython", 2)], startup

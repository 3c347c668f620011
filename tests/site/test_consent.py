"""The demo's consent banner, in Chromium against the real collector (tests/site/conftest.py).

The app's pages run ``cookieless="until_consent"`` (the boot script's ``data-config``, taken over
by ``EmpMix.init()``): until the visitor chooses, nothing is stored and the collector counts the
visit under a cookieless id. "Accept" joins that visit to the persistent identity from then on;
"Reject" keeps the visitor cookieless, and the choice is all that is stored, in every tab. Each
test has its own project (token), so its cookieless visitor is its own.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from playwright.sync_api import expect

from tests.site.conftest import (
    COOKIELESS,
    NOTHING,
    Site,
    accept,
    act,
    anonymous,
    consent,
    identity,
    open_page,
    props_of,
    reject,
    reload,
    signup,
    split_ids,
    stored_keys,
    wait_confirmed,
)


def funnel(site: Site, steps: str, token: str) -> list[int]:
    return [s["count"] for s in site.api(f"/api/funnel?steps={quote(steps)}", token)["steps"]]


def test_accept_joins_the_visit_before(browser: Any, site: Site) -> None:
    """MicroPython: two anonymous page loads store nothing; "Accept", then a sign-up: one person
    holds both page views and the user, and the device id is stored (and sent) only from consent
    on. (The Pyodide page does the same as the first visitor of test_site's story, on its way.)"""
    token = "mpy_consent_token"
    url = f"/mpy.html?token={token}"
    context = browser.new_context(base_url=site.url)
    w = open_page(context, url)
    page = w.page
    for load in range(2):
        if load:
            reload(page, url)
        expect(page.locator("#consent")).to_be_visible()
        assert identity(page) == COOKIELESS and consent(page) == "none", identity(page)
        wait_confirmed(page, 1)  # this load's page view reached the collector
        assert stored_keys(page) == NOTHING, stored_keys(page)

    accept(page)
    device = identity(page)
    assert anonymous(device), device
    local = stored_keys(page)["local"]
    assert {f"empmix_{token}_identity", f"empmix_{token}_consent"} <= set(local), local
    assert page.evaluate(f"localStorage.getItem('empmix_{token}_consent')") == "in"
    signup(page, "Frank")
    assert identity(page) == {"state": "identified", "distinct_id": "usr_frank",
                              "device_id": device["device_id"], "user": "usr_frank"}  # fmt: skip
    kept = json.loads(page.evaluate(f"localStorage.getItem('empmix_{token}_identity')"))
    assert kept["distinct_id"] == "usr_frank" and kept["$device_id"] == device["device_id"], kept
    assert f"empmix_{token}" in {c["name"] for c in context.cookies()}
    assert not w.errors, w.errors
    context.close()

    frank = site.person("usr_frank", token)
    assert frank is not None and frank["identified"] and not frank["cookieless"], frank
    ids, (before,) = split_ids(frank)
    assert ids == {"usr_frank", device["distinct_id"]}, frank
    views = props_of(site, "usr_frank", "$mp_web_page_view", token)
    assert [v["distinct_id"] for v in views] == [before, before], views  # both loads, one visitor
    assert all("$device_id" not in v for v in views), views  # nothing persistent before consent
    (opted_in,) = props_of(site, "usr_frank", "$opt_in", token)
    assert opted_in["$device_id"] == device["device_id"] and opted_in["$cookieless_link"] is True
    (signed_up,) = props_of(site, "usr_frank", "Signed Up", token)
    assert signed_up["$device_id"] == device["device_id"]
    assert funnel(site, "$mp_web_page_view,Signed Up", token) == [1, 1]  # one person, start to end
    assert site.api("/api/cookieless", token) == {"persons": 1, "cookieless_only": 0}


def test_reject_stores_only_the_choice(browser: Any, site: Site) -> None:
    """ "Reject" on the Pyodide page, then a second tab (MicroPython): only the consent key is
    stored in either, the banner stays away, the events reach the collector as one cookieless
    person, and the dashboard marks that person and counts them in its cookieless panel."""
    token = "reject_token"
    only_choice = {"local": [f"empmix_{token}_consent"], "session": [], "cookie": ""}
    context = browser.new_context(base_url=site.url)
    first = open_page(context, f"/?token={token}")
    wait_confirmed(first.page, 1)
    assert stored_keys(first.page) == NOTHING
    reject(first.page)
    assert identity(first.page) == COOKIELESS, identity(first.page)  # cookieless for good
    act(first.page, "#btn-pricing")  # still counted
    assert stored_keys(first.page) == only_choice, stored_keys(first.page)
    assert first.page.evaluate(f"localStorage.getItem('empmix_{token}_consent')") == "out"

    # another tab, another interpreter: the stored choice hides the banner from the first paint
    second = open_page(context, f"/mpy.html?token={token}")
    assert second.page.evaluate("document.documentElement.dataset.consent") == "out"
    expect(second.page.locator("#consent")).to_be_hidden()
    assert identity(second.page) == COOKIELESS and consent(second.page) == "out"
    wait_confirmed(second.page, 1)
    act(second.page, "#btn-tour")
    for tab in (first, second):
        assert stored_keys(tab.page) == only_choice, stored_keys(tab.page)
        assert not tab.errors, tab.errors
        tab.page.close()

    # the collector: one person, every id of it cookieless, with all of both tabs
    persons = site.api("/api/persons", token)["persons"]
    assert len(persons) == 1 and persons[0]["cookieless"] and not persons[0]["identified"], persons
    (visitor,) = persons[0]["distinct_ids"]
    names = site.event_names(visitor, token)
    assert sorted(n for n in names if not n.startswith("$python")) == [
        "$mp_web_page_view", "$mp_web_page_view", "Viewed Pricing", "Watched Tour"], names  # fmt: skip
    assert site.api("/api/cookieless", token) == {"persons": 1, "cookieless_only": 1}

    # the dashboard (the operator's page: no cookieless mode, and quiet for this opted-out browser)
    dash = open_page(context, f"/dashboard.html?token={token}")
    card = dash.page.locator(f'.person[data-person-id="{persons[0]["person_id"]}"]')
    expect(card).to_have_attribute("data-cookieless", "true", timeout=15_000)
    expect(card.locator(".badge.cookieless")).to_have_text("cookieless")
    expect(card.locator(f'.node[data-id="{visitor}"]')).to_have_count(1)
    stats = dash.page.locator("#cookieless .cookieless-stats")
    expect(stats).to_have_attribute("data-cookieless-only", "1")
    expect(stats).to_have_attribute("data-persons", "1")
    assert not dash.errors, dash.errors
    context.close()

"""Cookieless ids under the merge rules (issue 19), on both stores: resets on a shared computer,
the link at consent, never an identified user's id, and what the query API reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from empmix_collector.domain import identity
from empmix_collector.domain.cookieless import RESET_EVENT
from tests.collector.conftest import Collector, event
from tests.collector.cookieless_helpers import (
    COOKIELESS,
    COOKIELESS_PREFIX,
    DAY,
    PAGE,
    UA_B,
    Browser,
    at_day,
    view,
)


def _merges(client: Collector, kind: str) -> list[dict[str, Any]]:
    return [m for m in client.merges() if m["kind"] == kind]


def _identify(user: str) -> dict[str, Any]:
    return event("$identify", user, **{"$anon_distinct_id": COOKIELESS})


def _consent(device: str, **props: Any) -> dict[str, Any]:
    """The SDK's first record after consent: the new device id, and the link flag."""
    return event(
        "$mp_web_page_view",
        "$device:" + device,
        **{"$device_id": device, "$cookieless_link": True, "$current_url": PAGE, **props},
    )


def test_a_login_joins_the_visit_and_a_reset_starts_a_new_anonymous_visitor(
    make_client: Callable[..., Collector],
) -> None:
    client = make_client()
    at_day(client, DAY)
    browser = Browser(client)
    before = browser.visit()
    browser.send(_identify("user-a"))
    assert client.same_person(before, "user-a")
    assert browser.visit() == before  # without a reset, the day's visits stay user A's
    reset = event(RESET_EVENT, COOKIELESS)
    assert browser.send(reset) == [before]  # the reset itself is the last record of A's visit
    after = browser.visit()
    assert after != before and after.startswith(COOKIELESS_PREFIX)
    assert not client.same_person(after, "user-a")
    assert browser.visit() == after  # a later page load: the same new visitor
    browser.post("/track", [reset])  # a retried reset moves nothing
    assert browser.visit() == after
    node = make_client(db_path=client.settings.db_path)  # another node knows the generation
    at_day(node, DAY)
    assert Browser(node).visit() == after
    person = client.person(after)
    assert person is not None and not person["identified"] and person["cookieless"]
    browser.send(_identify("user-a"))  # A logs in again: joins A
    assert client.same_person(after, before, "user-a")
    browser.send(event(RESET_EVENT, COOKIELESS))
    third = browser.visit()
    assert third not in (before, after) and not client.same_person(third, "user-a")
    at_day(client, DAY + 1)  # a new day: the generations of yesterday do not carry over
    assert browser.visit() not in (before, after, third)


def test_consent_links_the_visit_to_the_device(client: Collector) -> None:
    at_day(client, DAY)
    browser = Browser(client)
    visit = browser.visit()
    assert browser.visit() == visit
    browser.send(_consent("d1"))
    assert client.same_person(visit, "$device:d1")
    linked = _merges(client, "cookieless")
    assert [(m["from_id"], m["to_id"], m["result"]) for m in linked] == [(visit, "$device:d1", "merged")]
    person = client.person("$device:d1")
    assert person is not None and not person["identified"] and not person["cookieless"]
    browser.send(event("$identify", "user-b", **{"$anon_distinct_id": "$device:d1"}))  # sign-up after consent
    assert client.same_person(visit, "$device:d1", "user-b")
    browser.post("/track", [_consent("d1")])  # the record again: one person, no new merge
    assert len([m for m in _merges(client, "cookieless") if m["result"] == "merged"]) == 1


def test_a_link_from_another_browser_links_only_that_browsers_visit(client: Collector) -> None:
    at_day(client, DAY)
    mine = Browser(client).visit()
    other = Browser(client, user_agent=UA_B)
    theirs = other.visit()
    assert theirs != mine and not client.same_person(mine, theirs)  # another user agent: another person
    other.send(_consent("d2"))
    assert client.same_person(theirs, "$device:d2") and not client.same_person(mine, "$device:d2")
    # a link that names an id is not a link: only `true` is, and the id is always computed
    other.send(_consent("d3", **{"$cookieless_link": mine}), _consent("d4", **{"$cookieless_link": "true"}))
    for device in ("$device:d3", "$device:d4"):
        person = client.person(device)
        assert person is not None and person["distinct_ids"] == [device]
    # the flag without a device id links nothing
    other.send(view(**{"$cookieless_link": True}))
    assert client.person(mine)["distinct_ids"] == [mine]  # type: ignore[index]


def test_consent_after_a_cookieless_login_joins_the_user(client: Collector) -> None:
    at_day(client, DAY)
    browser = Browser(client)
    visit = browser.visit()
    browser.send(_identify("user-c"))
    browser.send(_consent("d5", **{"$user_id": "user-c"}))
    assert client.same_person(visit, "user-c", "$device:d5")
    assert client.person("$device:d5")["identified"]  # type: ignore[index]


def test_consent_on_an_identity_event_links_too(client: Collector) -> None:
    at_day(client, DAY)
    browser = Browser(client)
    visit = browser.visit()
    signup = event("$identify", "user-d", **{"$anon_distinct_id": "$device:d6", "$device_id": "d6"})
    signup["properties"]["$cookieless_link"] = True
    browser.send(signup)
    assert client.same_person(visit, "$device:d6", "user-d")
    assert [m["result"] for m in _merges(client, "cookieless")] == ["merged"]


def test_a_cookieless_id_is_never_an_identified_users_id(client: Collector) -> None:
    at_day(client, DAY)
    browser = Browser(client)
    visit = browser.visit()
    browser.send(
        event("$identify", COOKIELESS, **{"$anon_distinct_id": "$device:e1"}),  # the sentinel as the user
        event("$identify", visit, **{"$anon_distinct_id": "$device:e2"}),
        event("$create_alias", "$device:e3", alias=COOKIELESS_PREFIX + "made-up"),
        event("$mp_web_page_view", "$device:e4", **{"$device_id": "e4", "$user_id": visit}),
    )
    refused = [m for m in client.merges() if m["result"] == "refused"]
    assert len(refused) == 4 and {m["reason"] for m in refused} == {identity.ILLEGAL_ID}
    assert all("anonymous $cookieless id" in m["detail"] for m in refused)
    person = client.person(visit)
    assert person is not None and not person["identified"] and person["distinct_ids"] == [visit]
    decision = identity.decide(
        "cookieless", "$device:x", "$device:y", from_person=None, to_person=None, cap=500
    )  # only a cookieless id joins a device this way
    assert decision.result == "refused"
    both = identity.decide(
        "cookieless",
        visit,
        "$device:y",
        from_person=identity.PersonView(1, True, 2),
        to_person=identity.PersonView(2, True, 2),
        cap=500,
    )
    assert both.reason == identity.ALREADY_IDENTIFIED


def test_a_merge_of_two_cookieless_ids_stays_anonymous(client: Collector) -> None:
    at_day(client, DAY)
    first = Browser(client).visit()
    second = Browser(client, user_agent=UA_B).visit()
    merge = event("$merge", None)
    merge["properties"]["$distinct_ids"] = [first, second]
    reply = client.import_([merge])
    assert reply.status_code == 200, reply.text
    person = client.person(first)
    assert client.same_person(first, second) and person is not None and not person["identified"]


def test_the_query_api_marks_and_counts_cookieless_persons(client: Collector) -> None:
    at_day(client, DAY)
    only = Browser(client).visit()
    consented = Browser(client, user_agent=UA_B)
    linked = consented.visit()
    consented.send(_consent("f1"))
    client.track([event("$mp_web_page_view", "$device:f2")])
    persons = {tuple(p["distinct_ids"]): p["cookieless"] for p in client.get("/api/persons").json()["persons"]}
    assert persons == {(only,): True, (linked, "$device:f1"): False, ("$device:f2",): False}
    assert client.get("/api/cookieless").json() == {"persons": 3, "cookieless_only": 1}
    assert client.get("/api/cookieless", token="tok2").json() == {"persons": 0, "cookieless_only": 0}
    assert client.http.get("/api/cookieless").status_code == 401  # the query API's secret, as everywhere

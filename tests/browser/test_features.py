"""Issue 11 in real Chromium under both interpreters: what crosses the wire for sessions,
campaigns and first touch, timed events, bootstrap, groups and custom routes (the collector's
side is in test_features_collector.py)."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Py
from tests.conftest import PAGE_READY_MS, open_sdk_page, wait_until


def reload(py: Py, url: str | None = None) -> Py:
    if url is None:
        py.page.reload()
    else:
        py.page.goto(url)
    py.page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
    return Py(py.page)


def test_two_tabs_share_one_session_and_a_short_timeout_rotates_it(py, sdk_context, base_url, wire, token):
    other = Py(open_sdk_page(sdk_context, base_url, py.interp))
    try:
        py(f"c = mk({token!r}, session_timeout_ms=1500); c.track('tab 1')")
        assert other(f"o = mk({token!r}, session_timeout_ms=1500); o.track('tab 2')\nok = await o.flush(5000)",
                     "ok") is True
        py.page.wait_for_timeout(1800)  # the session's own timeout, not a wait for the SDK
        assert py("c.track('after the timeout')\nok = await c.flush(5000)", "ok") is True
        sid = {e["event"]: e["properties"]["$session_id"] for e in wire.events(token)}
        assert sid["tab 1"] == sid["tab 2"] and len(sid["tab 1"]) == 36 and sid["tab 1"][14] == "7"
        assert sid["after the timeout"] != sid["tab 1"]
        assert other("", "o.get_session_id()") == sid["after the timeout"]  # the other tab follows
        py("c.reset()")
        assert py("", "c.get_session_id()") not in sid.values()
    finally:
        other.page.close()


def test_a_session_ends_at_session_max_ms_however_busy(py, wire, token):
    """Events every few tens of milliseconds (never near the 60 s inactivity timeout): the session
    still ends session_max_ms after it began, and every tab of the origin follows."""
    first = py(f"c = mk({token!r}, session_max_ms=1500, session_timeout_ms=60000); c.track('busy')",
               "c.get_session_id()")

    def rotated() -> bool:
        return py("c.track('busy')", "c.get_session_id()") != first

    wait_until(rotated, 15, "the session to end at session_max_ms", page=py.page)
    second = py("", "c.get_session_id()")
    assert py("c.track('next')\nok = await c.flush(5000)", "ok") is True
    sessions = [e["properties"]["$session_id"] for e in wire.events(token)]
    assert sessions[0] == first and sessions[-1] == second != first
    assert set(sessions) == {first, second}  # one rotation, no gap: the same run of events
    assert sessions == sorted(sessions, key=lambda s: s != first)  # first's events, then second's only
    assert f'"{second}"' in py("", f"js.localStorage.getItem('empmix_{token}_session')")  # for every tab


def test_campaigns_and_first_touch_keep_the_first_campaign(py, sdk_context, base_url, wire, token):
    page = open_sdk_page(sdk_context, base_url, py.interp)
    first = reload(Py(page), f"{base_url}/test/sdk-{py.interp}.html?utm_source=first&utm_medium=mail&gclid=g1")
    try:
        assert first(f"c = mk({token!r}, track_marketing=True); c.track('landed')\nok = await c.flush(5000)",
                     "ok") is True
        second = reload(first, f"{base_url}/test/sdk-{py.interp}.html?utm_source=second&utm_campaign=spring")
        assert second(f"c = mk({token!r}, track_marketing=True); c.track('came back');"
                      f" c.identify('usr_utm_' + {token!r})\nok = await c.flush(5000)", "ok") is True
        ev = {e["event"]: e["properties"] for e in wire.events(token)}
        landed, back = ev["landed"], ev["came back"]
        assert landed["utm_source"] == "first" and landed["gclid"] == "g1" and landed["$referrer"] == "$direct"
        assert landed["$referring_domain"] == "$direct" and landed["initial_utm_medium"] == "mail"
        assert back["utm_source"] == "second" and back["utm_campaign"] == "spring" and "gclid" not in back
        assert back["initial_utm_source"] == "first" and "initial_utm_campaign" not in back
        (once,) = [p["$set_once"] for p in wire.profiles(token) if "$set_once" in p]
        assert once == {"$initial_referrer": "$direct", "$initial_referring_domain": "$direct",
                        "initial_utm_source": "first", "initial_utm_medium": "mail"}
    finally:
        page.close()


def test_a_timed_event_survives_a_reload(py, sdk_context, base_url, wire, token):
    page = open_sdk_page(sdk_context, base_url, py.interp)
    tab = Py(page)
    try:
        tab(f"c = mk({token!r}); c.time_event('Upgrade')")
        page.wait_for_timeout(1200)
        tab = reload(tab)
        assert tab(f"c = mk({token!r}); c.track('Upgrade'); c.track('Upgrade')\nok = await c.flush(5000)",
                   "ok") is True
        durations = [e["properties"].get("$duration") for e in wire.events(token) if e["event"] == "Upgrade"]
        assert isinstance(durations[0], float) and 1.2 <= durations[0] < 30 and durations[1] is None
    finally:
        page.close()


def test_a_bootstrapped_page_sends_no_identify_for_a_user_it_already_was(py, sdk_context, base_url, wire, token):
    page = open_sdk_page(sdk_context, base_url, py.interp)
    tab = Py(page)
    boot = {"device_id": "srv-" + token, "user_id": "usr_boot_" + token}
    try:
        ids = tab(
            f"c = mk({token!r}, bootstrap={boot!r})\nok = await c.flush(5000)",
            "[ok, c.get_device_id(), c.get_distinct_id()]",
        )
        assert ids == [True, boot["device_id"], boot["user_id"]]
        tab = reload(tab)
        assert tab(f"c = mk({token!r}, bootstrap={boot!r}); c.track('again')\nok = await c.flush(5000)",
                   "ok") is True
        identifies = [e for e in wire.events(token) if e["event"] == "$identify"]
        assert (
            len(identifies) == 1 and identifies[0]["properties"]["$anon_distinct_id"] == "$device:" + boot["device_id"]
        )
        assert [e["properties"]["distinct_id"] for e in wire.events(token) if e["event"] == "again"] == [
            boot["user_id"]
        ]
    finally:
        page.close()


def test_groups_cross_the_wire(py, wire, token):
    assert py(
        f"c = mk({token!r}); c.identify('usr_grp'); c.set_group('company', 'acme')"
        "\nc.get_group('company', 'acme').set({'name': 'Acme'})"
        "\nc.track_with_groups('Bought', {'n': 1}, {'team': 't1'}); c.track('plain')\nok = await c.flush(5000)",
        "ok",
    ) is True
    ev = {e["event"]: e["properties"] for e in wire.events(token)}
    assert ev["Bought"]["company"] == ["acme"] and ev["Bought"]["team"] == ["t1"]
    assert ev["plain"]["company"] == ["acme"] and "team" not in ev["plain"]
    (group,) = wire.groups(token)
    assert group["$group_key"] == "company" and group["$group_id"] == "acme" and group["$set"] == {"name": "Acme"}
    assert len(group["$insert_id"]) == 32
    assert [r.path for r in wire.for_token(token) if r.records and "$group_key" in r.records[0]] == ["/groups/"]
    assert {"company": ["acme"]} in [p.get("$set") for p in wire.profiles(token)]


@pytest.mark.parametrize("blocked", ["**/track/**", "**/engage/**"])
def test_custom_routes_deliver_where_the_default_paths_are_blocked(py, sdk_page, wire, token, blocked):
    sdk_page.route(blocked, lambda route: route.abort("blockedbyclient"))  # what an ad blocker does
    try:
        assert py(
            f"c = mk({token!r}, api_routes={{'track': 'e/', 'engage': 'p/', 'groups': 'g/'}})"
            "\nc.identify('usr_route'); c.set_user_properties({'a': 1}); c.track('through e')"
            "\nc.get_group('company', 'x').set({'n': 1})\nok = await c.flush(5000)",
            "ok",
        ) is True
        paths = {r.path for r in wire.for_token(token)}
        assert paths == {"/e/", "/p/", "/g/"}
        assert [e["event"] for e in wire.events(token)] == ["$identify", "through e"]
    finally:
        sdk_page.unroute(blocked)

"""Issue 11's SDK features on CPython through the fake Browser: groups, sessions, campaigns and
first touch, timed events, get_property, bootstrap, custom routes, the server-set cookie."""

from __future__ import annotations

from typing import Any

import pytest

from empmix_web.browser import HttpReply, NetworkError
from empmix_web.sessions import uuid7
from tests.unit.conftest import run, tab, until
from tests.unit.fake_browser import Origin


def events(origin: Origin, name: str | None = None) -> list[dict[str, Any]]:
    found = [r for url, r in origin.received if "/track/" in url or "/e/" in url]
    return [e for e in found if name is None or e["event"] == name]


def sent_to(origin: Origin, part: str) -> list[dict[str, Any]]:
    return [r for url, r in origin.received if part in url]


# -- groups -----------------------------------------------------------------------------------
def test_set_add_remove_group_keep_a_super_property_and_the_profile(origin):
    async def body():
        c, _ = tab(origin)
        c.set_group("company", "acme")
        c.add_group("company", "globex")
        c.add_group("company", "globex")
        c.track("with groups")
        c.identify("usr_g")
        c.remove_group("company", "acme")
        c.remove_group("company", "globex")
        c.track("without")
        assert await c.flush(2000)
        assert events(origin, "with groups")[0]["properties"]["company"] == ["acme", "globex"]
        assert "company" not in events(origin, "without")[0]["properties"]
        ops = [
            [k for k in r if k.startswith("$") and k in ("$set", "$union", "$remove")][0]
            for r in sent_to(origin, "/engage/")
        ]
        assert ops == ["$set", "$union", "$remove", "$remove"]  # held while anonymous, in order (unions merged)
        assert sent_to(origin, "/engage/")[0]["$set"] == {"company": ["acme"]}
        assert c.get_property("company") is None

    run(body)


def test_group_profiles_go_to_groups_exactly_once(origin):
    async def body():
        c, _ = tab(origin)
        g = c.get_group("company", "acme")
        g.set({"name": "Acme"})
        g.set_once({"founded": 1999})
        g.unset("old")
        g.union({"tags": ["b2b"]})
        g.remove({"tags": "x"})
        g.delete()
        assert await c.flush(2000)
        records = sent_to(origin, "/groups/")
        assert [r["$group_key"] for r in records] == ["company"] * 6 and {r["$group_id"] for r in records} == {"acme"}
        assert [
            [k for k in r if k in ("$set", "$set_once", "$unset", "$union", "$remove", "$delete")][0] for r in records
        ] == ["$set", "$set_once", "$unset", "$union", "$remove", "$delete"]
        assert len({r["$insert_id"] for r in records}) == 6 and records[0]["$token"] == "tok"

    run(body)


def test_track_with_groups_is_for_one_event_and_arguments_are_checked(origin):
    async def body():
        c, _ = tab(origin)
        c.track_with_groups("Bought", {"price": 5}, {"company": "acme", "team": ["a", "b"]})
        c.track("later")
        assert await c.flush(2000)
        p = events(origin, "Bought")[0]["properties"]
        assert p["company"] == ["acme"] and p["team"] == ["a", "b"] and p["price"] == 5
        assert "company" not in events(origin, "later")[0]["properties"]
        for bad, kind in (
            (lambda: c.set_group("", "x"), ValueError),
            (lambda: c.set_group("k", 1.5), TypeError),
            (lambda: c.set_group(3, "x"), TypeError),
            (lambda: c.get_group("k", None), TypeError),
            (lambda: c.track_with_groups("e", None, ["x"]), TypeError),
            (lambda: c.get_group("k", "x").set(["no"]), TypeError),
        ):
            with pytest.raises(kind):
                bad()

    run(body)


# -- sessions ---------------------------------------------------------------------------------
def test_sessions_are_shared_by_tabs_rotate_on_idle_and_on_length_and_on_reset(origin):
    async def body():
        a, _ = tab(origin, session_timeout_ms=60_000, session_max_ms=300_000)
        b, _ = tab(origin, session_timeout_ms=60_000, session_max_ms=300_000)
        a.track("a1")
        b.track("b1")
        first = a.get_session_id()
        assert b.get_session_id() == first and first[14] == "7"
        origin.advance(59_000)
        b.track("b2")  # keeps it alive for both
        origin.advance(59_000)
        a.track("a2")
        assert a.get_session_id() == first
        origin.advance(61_000)
        a.track("a3")  # idle too long: a new session, which tab b adopts
        second = a.get_session_id()
        assert second != first and b.get_session_id() == second
        for _ in range(6):
            origin.advance(55_000)
            a.track("busy")
        assert a.get_session_id() != second  # longer than session_max_ms
        third = a.get_session_id()
        a.reset()
        assert a.get_session_id() not in (third, second, first)
        assert await a.flush(2000) and await b.flush(2000)
        sids = {
            e["event"]: e["properties"]["$session_id"]
            for e in events(origin)
            if e["event"] in ("a1", "b1", "b2", "a2", "a3")
        }
        assert sids["a1"] == sids["b1"] == sids["b2"] == sids["a2"] == first and sids["a3"] == second

    run(body)


def test_uuid7_layout():
    u = uuid7(0x0123456789AB, bytes(10))
    assert u.startswith("01234567-89ab-7") and u[19] in "89ab" and len(u) == 36


# -- campaigns and first touch ------------------------------------------------------------------
def test_campaign_referrer_and_first_touch(origin):
    async def body():
        url = "https://shop.example/p?utm_source=news&utm_medium=email&gclid=abc&other=1"
        c, _ = tab(origin, url=url, referrer="https://www.google.com/search?q=x", track_marketing=True)
        c.track("landed")
        assert await c.flush(2000)
        p = events(origin, "landed")[0]["properties"]
        assert p["utm_source"] == "news" and p["utm_medium"] == "email" and p["gclid"] == "abc" and "other" not in p
        assert p["$referrer"] == "https://www.google.com/search?q=x" and p["$referring_domain"] == "www.google.com"
        assert p["$initial_referring_domain"] == "www.google.com" and p["initial_utm_source"] == "news"
        assert "initial_utm_campaign" not in p
        # a second campaign later: the first touch stays, as one group
        d, _ = tab(origin, url="https://shop.example/?utm_campaign=second", track_marketing=True)
        d.track("second visit")
        d.identify("usr_c")
        assert await d.flush(2000)
        q = events(origin, "second visit")[0]["properties"]
        assert q["utm_campaign"] == "second" and "utm_source" not in q
        assert q["initial_utm_source"] == "news" and "initial_utm_campaign" not in q and q["$referrer"] == "$direct"
        (once,) = [r["$set_once"] for r in sent_to(origin, "/engage/") if "$set_once" in r]
        assert once == {
            "$initial_referrer": "https://www.google.com/search?q=x",
            "$initial_referring_domain": "www.google.com",
            "initial_utm_source": "news",
            "initial_utm_medium": "email",
        }

    run(body)


def test_track_marketing_false_turns_all_of_it_off(origin):
    async def body():
        c, _ = tab(
            origin, url="https://shop.example/?utm_source=x", referrer="https://r.example/", track_marketing=False
        )
        c.track("e")
        c.identify("usr_m")
        assert await c.flush(2000)
        p = events(origin, "e")[0]["properties"]
        assert not [k for k in p if "utm" in k or "initial" in k or k == "$referring_domain"]
        assert not [r for r in sent_to(origin, "/engage/") if "$set_once" in r]

    run(body)


# -- timed events, get_property ------------------------------------------------------------------
def test_time_event_measures_across_a_reload_and_restarts(origin):
    async def body():
        c, _ = tab(origin)
        c.time_event("Upgrade")
        origin.advance(1500)
        c2, _ = tab(origin)  # a reload
        origin.advance(1000)
        c2.track("Upgrade")
        c2.track("Upgrade")  # the timer was used up
        c2.time_event("Upgrade")
        origin.advance(250)
        c2.time_event("Upgrade")  # restarts
        origin.advance(500)
        c2.track("Upgrade")
        assert await c2.flush(2000)
        durations = [e["properties"].get("$duration") for e in events(origin, "Upgrade")]
        assert durations == [2.5, None, 0.5]
        c2.register({"plan": "pro"})
        assert c2.get_property("plan") == "pro" and c2.get_property("nope") is None

    run(body)


# -- bootstrap ------------------------------------------------------------------------------------
def test_bootstrap_device_and_user_from_the_server(origin):
    async def body():
        c, _ = tab(origin, bootstrap={"device_id": "srv-device-1", "user_id": "usr_b"})
        assert c.get_device_id() == "srv-device-1" and c.get_distinct_id() == "usr_b"
        assert await c.flush(2000)
        (ident,) = events(origin, "$identify")
        assert ident["properties"]["$anon_distinct_id"] == "$device:srv-device-1"
        again, _ = tab(origin, bootstrap={"device_id": "other-device", "user_id": "usr_b"})  # already that user
        assert again.get_device_id() == "srv-device-1"
        assert await again.flush(2000)
        assert len(events(origin, "$identify")) == 1
        switched, b = tab(origin, bootstrap={"user_id": "usr_other"})
        assert switched.get_distinct_id() == "usr_other" and any("reset()" in w for w in b.warnings())
        assert await switched.flush(2000)
        assert len(events(origin, "$identify")) == 1
        for bad in ({"device_id": "$device:x"}, {"user_id": "undefined"}, {"nope": 1}, ["x"]):
            with pytest.raises((ValueError, TypeError)):
                tab(origin, token="t2", bootstrap=bad)

    run(body)


# -- routes and the server-set cookie ------------------------------------------------------------
def test_api_routes_are_used_for_sends_and_beacons(origin):
    origin.server = lambda url, records: HttpReply(200, "{}")

    async def body():
        c, b = tab(origin, api_routes={"track": "e/", "engage": "p/", "groups": "g/"}, flush_interval_ms=60_000)
        c.identify("usr_r")
        c.set_user_properties({"a": 1})
        c.get_group("company", "x").set({"n": 1})
        assert await c.flush(2000)
        c.track("beaconed")
        b.hide()
        urls = {url for url, _r in origin.received}
        assert urls == {
            "http://127.0.0.1/e/?verbose=1",
            "http://127.0.0.1/p/?verbose=1",
            "http://127.0.0.1/g/?verbose=1",
        }
        for bad in ({"track": "https://evil.example/t"}, {"nope": "x/"}, {"track": ""}, {"track": 3}):
            with pytest.raises((ValueError, TypeError)):
                tab(origin, token="t3", api_routes=bad)

    run(body)


def test_server_cookie_asks_the_collector_with_credentials(origin):
    async def body():
        import asyncio

        unhandled: list[dict[str, Any]] = []
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: unhandled.append(context))
        c, browser = tab(origin, server_cookie=True, api_routes={"cookie": "c/id"}, debug=True)
        c.identify("usr_s")
        c.reset()
        posts = origin.cookie_posts
        await until(lambda: len(posts) == 3)
        assert [p[0] for p in posts] == ["http://127.0.0.1/c/id"] * 3 and all(p[2] for p in posts)
        assert [p[1]["token"] for p in posts] == ["tok"] * 3
        assert '"usr_s"' in posts[1][1]["value"] and '"usr_s"' not in posts[2][1]["value"]
        origin.server = lambda url, records: (_ for _ in ()).throw(NetworkError("down"))
        c.identify("usr_t")  # a failing cookie request changes nothing for the page
        await until(lambda: any("/c/id failed" in m for _, m in browser.console_lines))  # handled by the SDK
        assert len(posts) == 4 and '"usr_t"' in posts[3][1]["value"]
        assert c.get_distinct_id() == "usr_t" and unhandled == []

    run(body)

"""The SDK's decisions on CPython through the in-memory ``FakeBrowser``: every row of the SDK guide's
identity-rule and delivery tables (docs/guide.md), and each case of issue 9, in seconds."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest

from empmix_web.browser import HttpReply, NetworkError
from empmix_web.storage import COOKIE_MAX_AGE_S
from tests.unit.conftest import run, tab
from tests.unit.fake_browser import FakeBrowser, Origin


def events(origin: Origin, name: str | None = None) -> list[dict[str, Any]]:
    found = [r for url, r in origin.received if "/track/" in url]
    return [e for e in found if name is None or e["event"] == name]


def profiles(origin: Origin) -> list[dict[str, Any]]:
    return [r for url, r in origin.received if "/engage/" in url]


def cookie_value(origin: Origin, name: str = "empmix_tok") -> dict[str, Any] | None:
    from empmix_web.percent import unquote

    for (n, _domain), value in origin.cookies.items():
        if n == name:
            return json.loads(unquote(value))
    return None


# -- identity rules ---------------------------------------------------------------------------
def test_rule_1_first_init_mints_ids_that_reloads_and_tabs_keep(origin):
    async def body():
        c, _ = tab(origin)
        did, device = c.get_distinct_id(), c.get_device_id()
        assert did == "$device:" + device and len(device) == 36 and device[14] == "4"
        assert c.get_user_id() is None
        again, _ = tab(origin)
        assert [again.get_distinct_id(), again.get_device_id()] == [did, device]
    run(body)


def test_rule_2_cookie_wins_and_localstorage_restores_a_cleared_cookie(origin):
    async def body():
        c, _ = tab(origin)
        did = c.get_distinct_id()
        origin.local["empmix_tok_identity"] = json.dumps(
            {"distinct_id": "$device:from-ls", "$device_id": "from-ls", "$user_id": None, "state": "anonymous"})
        assert c.get_distinct_id() == did
        assert did in origin.local["empmix_tok_identity"]  # repaired from the cookie
        origin.cookies.clear()
        again, _ = tab(origin)
        assert again.get_distinct_id() == did and cookie_value(origin)["distinct_id"] == did
    run(body)


def test_rule_3_identify_links_once_and_switching_users_does_not_link(origin):
    async def body():
        c, b = tab(origin)
        anon = c.get_distinct_id()
        c.track("before")
        c.identify("usr_1", {"name": "Ann"})
        c.identify("usr_1")
        c.identify(42)
        assert await c.flush(2000)
        assert [e["event"] for e in events(origin)] == ["before", "$identify"]
        ident = events(origin, "$identify")[0]["properties"]
        assert ident["distinct_id"] == "usr_1" and ident["$anon_distinct_id"] == anon
        assert [p.get("$set") for p in profiles(origin)] == [{"name": "Ann"}]
        assert c.get_distinct_id() == "42"  # switched, not linked
        assert any("reset()" in w for w in b.warnings())
        assert len(events(origin, "$identify")) == 1
    run(body)


@pytest.mark.parametrize("bad", ["", "  ", "undefined", "null", "None", "0", "-1", "[object Object]", "NaN",
                                 "'undefined'", "$device:abc", "x" * 256, "a\x00b"])
def test_rule_3_illegal_ids_raise_and_change_nothing(origin, bad):
    async def body():
        c, _ = tab(origin)
        before = dict(origin.local)
        for method in (c.identify, c.alias):
            with pytest.raises(ValueError):
                method(bad)
        with pytest.raises(TypeError):
            c.identify(None)  # type: ignore[arg-type]
        assert origin.local == before and origin.received == []
    run(body)


def test_rule_4_alias_then_identify_sends_one_link_and_refuses_the_rest(origin):
    async def body():
        c, b = tab(origin)
        anon = c.get_distinct_id()
        c.alias("usr_new")
        assert c.get_distinct_id() == anon
        c.alias("usr_new")
        c.alias("usr_other")  # a second alias to another id: refused
        c.identify("usr_new")
        c.alias("usr_third")  # while identified: refused
        assert await c.flush(2000)
        assert [e["event"] for e in events(origin)] == ["$create_alias"]
        assert events(origin)[0]["properties"]["alias"] == "usr_new"
        assert len([w for w in b.warnings() if "refused" in w]) == 2
    run(body)


def test_rule_5_reset_leaves_nothing_of_the_user_and_still_delivers(origin):
    async def body():
        c, _ = tab(origin, flush_interval_ms=60_000)
        device = c.get_device_id()
        c.identify("usr_r")
        c.register({"team": "secret-red"})
        c.set_user_properties({"plan": "Pro"})
        c.track("work")
        c.reset()
        left = origin.everything_stored()
        for value in ("usr_r", device, "secret-red"):
            assert value not in left
        assert c.get_distinct_id() != "usr_r" and c.get_device_id() != device
        assert await c.flush(2000)
        work = events(origin, "work")[0]["properties"]
        assert work["distinct_id"] == "usr_r" and work["team"] == "secret-red"
        c.track("after")
        assert await c.flush(2000)
        after = events(origin, "after")[0]["properties"]
        assert "team" not in after and "$user_id" not in after
    run(body)


def test_rule_5_reset_with_storage_full_leaves_nothing(origin):
    """Issue 9 case 4: in memory-fallback mode removals still reach localStorage and cookies."""
    async def body():
        c, _ = tab(origin)
        device = c.get_device_id()
        c.identify("usr_full")
        c.register({"sp": "secret-value"})
        origin.quota_chars = origin.stored_chars()  # nothing more fits
        c.track("now full")
        c.reset()
        left = origin.everything_stored()
        for value in ("usr_full", device, "secret-value"):
            assert value not in left
        nxt, _ = tab(origin)  # the next load, quota still full
        nxt.track("next visitor")
        assert await nxt.flush(2000) and await c.flush(2000)
        p = events(origin, "next visitor")[0]["properties"]
        assert "sp" not in p and p["distinct_id"] != "usr_full" and p["$device_id"] != device
    run(body)


def test_rule_6_track_stamps_at_call_time(origin):
    async def body():
        c, _ = tab(origin, flush_interval_ms=60_000)
        c.register({"plan": "free", "src": "super"})
        c.track("Clicked", {"src": "call"})
        stamped = origin.clock_ms
        origin.advance(5000)
        assert await c.flush(2000)
        p = events(origin)[0]["properties"]
        assert p["time"] == int(stamped) and p["src"] == "call" and p["plan"] == "free"
        assert p["mp_lib"] == "empmix-web" and len(p["$insert_id"]) == 32
        assert p["$current_url"] == "http://127.0.0.1/page" and p["$screen_width"] == 1280
    run(body)


def test_rule_7_held_operations_replay_in_call_order(origin):
    """Issue 9 case 3."""
    async def body():
        c, _ = tab(origin)
        c.set_user_properties({"a": 1})
        c.unset(["a"])
        c.set_user_properties_once({"a": 2})
        c.delete_user()  # nothing to delete while anonymous: ignored
        assert profiles(origin) == []
        c.identify("usr_h")
        assert await c.flush(2000)
        ops = [[k for k in p if k in ("$set", "$unset", "$set_once")][0] for p in profiles(origin)]
        assert ops == ["$set", "$unset", "$set_once"]
        assert "empmix_tok_people" not in origin.local
        assert all(len(p["$insert_id"]) == 32 for p in profiles(origin))
    run(body)


# -- exactly once ---------------------------------------------------------------------------
def test_a_lost_reply_is_resent_with_the_same_insert_id(origin):
    """Issue 9 case 1: the collector dedups by $insert_id, so the retry is applied once."""
    calls: list[str] = []

    def lose_first(url: str, records: list[dict[str, object]]) -> HttpReply:
        calls.append(url)
        if len(calls) == 2:  # the /engage reply is lost after the server got it
            origin.received.extend((url, r) for r in records)
            raise NetworkError("Failed to fetch")
        return HttpReply(200, '{"status":1}')

    origin.server = lose_first

    async def body():
        c, _ = tab(origin)
        c.identify("usr_l")
        c.increment("logins_count", 1)
        assert await c.flush(5000)
        sent = profiles(origin)
        assert len(sent) == 2 and sent[0]["$insert_id"] == sent[1]["$insert_id"]
    run(body)


def test_every_profile_operation_rides_a_beacon_and_a_redirect_resend_is_the_same_record(origin):
    """Issue 9 case 2: a page left mid-request is resent by the next load, same $insert_id."""
    origin.server = lambda url, records: (_ for _ in ()).throw(NetworkError("navigated away"))

    async def body():
        c, b = tab(origin, flush_interval_ms=60_000)
        c.identify("usr_redirect")
        c.increment("logins_count", 1)
        c.append({"pages": "/"})
        b.hide()  # the redirect: page hide -> beacons, including $add and $append
        beaconed = [r for url, r in origin.received if "/engage/" in url]
        assert [k for r in beaconed for k in r if k in ("$add", "$append")] == ["$add", "$append"]
        b.close()
        origin.server = lambda url, records: HttpReply(200, "{}")
        nxt, _ = tab(origin)
        await nxt._c("scan").tabs.scan()
        assert await nxt.flush(2000)
        resent = [r for url, r in origin.received if "/engage/" in url][len(beaconed):]
        assert {r["$insert_id"] for r in resent} == {r["$insert_id"] for r in beaconed}
        assert not [k for k in origin.local if "_q_" in k]
    run(body)


# -- consent and tabs ----------------------------------------------------------------------------
def test_opt_out_in_one_tab_holds_in_every_tab_and_nothing_is_written(origin):
    """Issue 9 case 5."""
    async def body():
        a, _ = tab(origin)
        b, _ = tab(origin, locks=False)
        b.track("queued in b")
        a.opt_out_tracking()
        assert b.has_opted_out() is True
        b.track("after")
        b.register({"x": 1})
        b.identify("usr_o")
        await b._c("scan").tabs.scan()  # no heartbeat either
        assert origin.local == {"empmix_tok_consent": "out"} and origin.cookies == {}
        assert await b.flush(500) and events(origin) == []
        a.opt_in_tracking()
        assert b.has_opted_out() is False
        b.track("back in")
        assert await b.flush(2000)
        assert [e["event"] for e in events(origin) if e["event"] != "$opt_in"] == ["back in"]
    run(body)


def test_opt_out_by_default_writes_nothing_until_opt_in(origin):
    async def body():
        c, _ = tab(origin, opt_out_by_default=True)
        c.track("x")
        c.set_user_properties({"a": 1})
        c.register({"s": 1})
        did = c.get_distinct_id()
        assert origin.local == {} and origin.cookies == {}
        c.opt_in_tracking()
        c.track("y")
        assert await c.flush(2000)
        assert [e["event"] for e in events(origin)] == ["$opt_in", "y"]
        assert events(origin)[1]["properties"]["distinct_id"] == did and events(origin)[1]["properties"]["s"] == 1
    run(body)


def test_a_sibling_tabs_reset_is_seen_by_the_very_next_track(origin):
    """Issue 9 case 6: super properties are never served stale across a sibling's logout."""
    async def body():
        a, _ = tab(origin)
        a.identify("usr_s")
        a.register({"plan": "secret"})
        a.track("warm")
        b, _ = tab(origin)
        b.reset()
        a.track("after")
        assert await a.flush(2000)
        p = events(origin, "after")[0]["properties"]
        assert "plan" not in p and p["distinct_id"] == b.get_distinct_id() and "$user_id" not in p
    run(body)


def test_a_sibling_tabs_login_is_seen_by_the_very_next_track(origin):
    async def body():
        a, _ = tab(origin)
        a.track("warm")
        b, _ = tab(origin)
        b.identify("usr_sib")
        a.track("after")
        assert await a.flush(2000)
        assert events(origin, "after")[0]["properties"]["distinct_id"] == "usr_sib"
    run(body)


def test_a_closed_tabs_records_are_adopted_once_and_its_lock_released(origin):
    origin.server = lambda url, records: HttpReply(503, "")

    async def body():
        a, ab = tab(origin, flush_interval_ms=60_000)
        for n in range(5):
            a.track("d", {"n": n})
        b, _ = tab(origin)
        assert await b._c("scan").tabs.scan() == 0  # a is alive: its lock is held
        ab.close()
        assert await b._c("scan").tabs.scan() == 5
        assert await b._c("scan").tabs.scan() == 0  # never twice
        origin.server = lambda url, records: HttpReply(200, "{}")
        assert await b.flush(3000)
        await b._c("scan").tabs.scan()
        assert [k for k in origin.locks if ab.held_locks[0] == k] == []  # released once delivered
        assert sorted(e["properties"]["n"] for e in events(origin)) == list(range(5))
    run(body)


def test_heartbeats_do_not_pile_up_without_web_locks(origin):
    """Issue 9 case 8: ten page views leave at most the live tab's heartbeat."""
    async def body():
        for _ in range(10):
            c, b = tab(origin, locks=False)
            c.track("view")
            await c._c("scan").tabs.scan()
            assert await c.flush(2000)
            b.hide()
            b.close()
            c._c("stop").stop()
        c, b = tab(origin, locks=False)
        await c._c("scan").tabs.scan()
        origin.advance(30_000)
        await c._c("scan").tabs.scan()
        assert len([k for k in origin.local if "_alive_" in k]) == 1
    run(body)


def test_stale_heartbeat_tabs_are_adopted_with_their_heartbeat(origin):
    origin.server = lambda url, records: HttpReply(503, "")

    async def body():
        a, ab = tab(origin, locks=False, flush_interval_ms=60_000)
        a.track("orphan")
        await a._c("scan").tabs.scan()
        a._c("stop").stop()  # a crashed: no page hide, its heartbeat stays
        b, _ = tab(origin, locks=False)
        assert await b._c("scan").tabs.scan() == 0  # still fresh
        origin.advance(25_000)
        assert await b._c("scan").tabs.scan() == 1
        assert len([k for k in origin.local if "_alive_" in k]) == 1
    run(body)


def test_a_dead_tabs_heartbeat_without_records_is_swept(origin):
    """Issue 20, 8: a tab that died without pagehide and left no records (tabs.py's sweep)."""
    async def body():
        a, _ = tab(origin, locks=False)  # as on a plain-http origin: heartbeats, no Web Locks
        a._c("stop").stop()
        a_tabs = a._c("scan").tabs
        await a_tabs.scan()  # its heartbeat; it tracked nothing, so no records; then it dies
        assert [k for k in origin.local if k.startswith("empmix_tok_q_")] == []
        beat = a_tabs.heartbeat_prefix + a._c("tab").tab_id
        b, _ = tab(origin, locks=False)
        b._c("stop").stop()
        b_beat = a_tabs.heartbeat_prefix + b._c("tab").tab_id
        await b._c("scan").tabs.scan()
        assert beat in origin.local and b_beat in origin.local  # still fresh
        origin.advance(25_000)
        assert await b._c("scan").tabs.scan() == 0  # nothing to adopt
        assert beat not in origin.local and b_beat in origin.local
    run(body)


# -- hostile state ----------------------------------------------------------------------------
def test_a_deep_cookie_under_the_length_bound_stops_at_the_nesting_guard(origin, monkeypatch):
    """Issue 20, 1: 3,000 raw ``[`` (3 KB, a cookie a sibling subdomain can set) pass the length
    check, so the nesting guard is what keeps them from the recursive parser."""
    from empmix_web import compat
    from empmix_web.storage import MAX_COOKIE_CHARS

    deep = "[" * 3000
    assert len(deep) < MAX_COOKIE_CHARS
    origin.cookies[("empmix_tok", "")] = deep
    parsed: list[str] = []
    real = compat._loads
    monkeypatch.setattr(compat, "_loads", lambda text: parsed.append(text) or real(text))
    c, _ = tab(origin)
    assert c.get_distinct_id().startswith("$device:")
    assert parsed and deep not in parsed  # other values were parsed; this one never reached the parser
    assert compat.loads_bounded(deep, MAX_COOKIE_CHARS) is None


@pytest.mark.parametrize("where", ["cookie", "empmix_tok_identity", "empmix_tok_props", "empmix_tok_people",
                                   "empmix_tok_q_dead_0000000001e"])
def test_hostile_stored_values_are_data(origin, where):
    """Issue 9 case 7."""
    deep = "[" * 3000
    if where == "cookie":
        origin.cookies[("empmix_tok", "")] = quote(deep)
    else:
        origin.local[where] = deep

    async def body():
        c, b = tab(origin)
        assert c.get_distinct_id().startswith("$device:")
        c.set_user_properties({"a": 1})
        c.track("fine")
        await c._c("scan").tabs.scan()
        assert await c.flush(2000)
        assert [e["event"] for e in events(origin)] == ["fine"]
        assert deep not in origin.everything_stored()
    run(body)


def test_identities_with_illegal_or_inconsistent_ids_are_discarded_once(origin):
    origin.cookies[("empmix_tok", "")] = quote(json.dumps({"distinct_id": "undefined", "$device_id": "d",
                                                            "$user_id": "undefined", "state": "identified"}))
    origin.local["empmix_tok_identity"] = json.dumps({"distinct_id": "usr_x", "$device_id": "d", "$user_id": "usr_y"})

    async def body():
        c, b = tab(origin)
        assert c.get_distinct_id().startswith("$device:")
        assert len([w for w in b.warnings() if "malformed identity" in w]) == 1
    run(body)


# -- storage ----------------------------------------------------------------------------------
def test_storage_failing_partway_keeps_every_record(origin):
    async def body():
        c, b = tab(origin, flush_interval_ms=60_000)
        for n in range(3):
            c.track("d", {"n": n})
        origin.quota_chars = origin.stored_chars()
        for n in range(3, 6):
            c.track("d", {"n": n})
        assert await c.flush(2000)
        got = [(e["properties"]["n"], e["properties"].get("$persistence")) for e in events(origin)]
        assert got == [(0, None), (1, None), (2, None), (3, "memory"), (4, "memory"), (5, "memory")]
        assert len([w for w in b.warnings() if "refused a write" in w]) == 1
    run(body)


def test_storage_that_throws_on_access_falls_back_to_memory(origin):
    origin.storage_broken = True

    async def body():
        c, _ = tab(origin)
        c.identify("usr_m")
        c.track("d")
        assert await c.flush(2000)
        assert events(origin, "d")[0]["properties"]["$persistence"] == "memory"
        assert cookie_value(origin)["distinct_id"] == "usr_m"  # cookies still keep the identity
    run(body)


def test_the_queue_is_capped_in_records_and_characters_adopted_included(origin):
    origin.server = lambda url, records: HttpReply(503, "")

    async def body():
        c, b = tab(origin, max_queue_size=10, flush_interval_ms=60_000)
        for n in range(25):
            c.track("d", {"n": n})
        core = c._c("cap")
        assert len(core.queue) == 10 and core.queue.dropped == 15
        assert len([k for k in origin.local if "_q_" in k]) == 10
        core.queue.max_chars = 3000
        c.track("big", {"pad": "x" * 2000})
        assert core.queue.chars <= 3000 and len(core.queue) <= 2
        b.close()
        small, _ = tab(origin, max_queue_size=3)
        await small._c("scan").tabs.scan()
        assert len(small._c("cap").queue) <= 3
        assert len([w for w in b.warnings() if "queue full" in w]) == 1
    run(body)


# -- replies and lifecycle --------------------------------------------------------------------
@pytest.mark.parametrize("status,body,kept", [
    (400, '{"failed_records":[{"index":1,"message":"bad"}]}', [0, 2]),
    (400, "no details", []),
    (404, "", []),
    (408, "", [0, 1, 2]),
    (500, "", [0, 1, 2]),
])
def test_replies_decide_what_is_dropped_and_what_is_retried(origin, status, body, kept):
    replies = [HttpReply(status, body)]
    origin.server = lambda url, records: replies.pop(0) if replies else HttpReply(200, "{}")

    async def run_body():
        c, _ = tab(origin, flush_interval_ms=60_000)
        for n in range(3):
            c.track("d", {"n": n})
        assert await c.flush(3000)
        delivered = [e["properties"]["n"] for e in events(origin)][3:]  # after the refused first try
        assert delivered == kept
    run(run_body)


def test_413_splits_and_drops_a_lone_oversized_record(origin):
    requests: list[tuple[int, list[object]]] = []  # (status, the event names of the request)
    stored: list[dict[str, Any]] = []  # what the server accepted

    def server(url: str, records: list[dict[str, object]]) -> HttpReply:
        status = 413 if len(json.dumps(records)) > 5000 else 200
        requests.append((status, [r["event"] for r in records]))
        if status == 200:
            stored.extend(records)
        return HttpReply(status, "")

    origin.server = server

    async def body():
        c, b = tab(origin, flush_interval_ms=60_000)
        for n in range(8):
            c.track("d", {"n": n, "pad": "p" * 900})
        c.track("huge", {"pad": "q" * 6000})
        c.track("d", {"n": 8})
        assert await c.flush(3000)
        assert len(c._c("q").queue) == 0
        assert any("too large" in w for w in b.warnings())
        assert [e["properties"]["n"] for e in stored] == list(range(9))  # each once, in order, no "huge"
        assert requests[0] == (413, ["d"] * 8 + ["huge", "d"])  # the whole batch first
        assert (413, ["huge"]) in requests  # alone, it is dropped
        assert len(requests[1][1]) == 5  # split in two
        assert all(len(names) < 10 for _, names in requests[1:])
    run(body)


def test_retry_after_is_honoured(origin):
    import time

    seen: list[float] = []

    def server(url: str, records: list[dict[str, object]]) -> HttpReply:
        seen.append(time.monotonic())
        return HttpReply(429, "", "1") if len(seen) == 1 else HttpReply(200, "{}")

    origin.server = server

    async def body():
        c, _ = tab(origin)
        c.track("d")
        assert await c.flush(5000)
        assert seen[1] - seen[0] >= 0.95
    run(body)


def test_a_second_init_is_refused_with_a_warning(origin):
    async def body():
        c, b = tab(origin)
        first = c._c("x")
        c.init("tok", api_host="http://elsewhere.example")
        assert c._c("x") is first and first.sender.api_host == "http://127.0.0.1"
        assert len(b.hide_callbacks) == 1
        assert any("refused" in w for w in b.warnings())
    run(body)


def test_the_default_api_host_is_the_pages_origin(origin):
    async def body():
        c, _ = tab(origin)
        c.track("d")
        assert await c.flush(2000)
        assert origin.received[0][0] == "http://127.0.0.1/track/?verbose=1"
        with pytest.raises(ValueError):
            tab(origin, token="t2", api_host="ftp://x")
    run(body)


def test_page_hide_beacons_within_the_budget(origin):
    origin.server = lambda url, records: HttpReply(503, "")

    async def body():
        c, b = tab(origin, flush_interval_ms=60_000)
        for n in range(120):
            c.track("d", {"n": n, "pad": "b" * 900})
        b.hide()
        assert sum(len(body) for _url, body in origin.beacons) <= 64 * 1024
        assert 0 < len(origin.beacons)
        assert len([k for k in origin.local if "_q_" in k]) == 120  # still queued until confirmed
    run(body)


def test_cookie_written_domain_wide_expires_the_host_only_copy():
    origin = Origin(host="shop.example.test")

    async def body():
        c, _ = tab(origin)
        assert [d for (n, d) in origin.cookies if n == "empmix_tok"] == [""]
        c2, _ = tab(origin, token="tok", cross_subdomain_cookie=True)
        c2.identify("usr_d")
        assert [d for (n, d) in origin.cookies if n == "empmix_tok"] == [".example.test"]
        assert COOKIE_MAX_AGE_S == 365 * 24 * 3600
        c2.reset()
        assert [d for (n, d) in origin.cookies if n == "empmix_tok"] == [".example.test"]
        assert "usr_d" not in origin.everything_stored()
    run(body)


def test_a_cookie_only_change_reaches_getters_at_once_and_track_within_the_recheck(origin, monkeypatch):
    """Rule 2: a sibling subdomain that shares only the cookie logs in."""
    from empmix_web.identity import COOKIE_RECHECK_S

    monkeypatch.setattr(FakeBrowser, "monotonic", lambda self: self.origin.clock_ms / 1000)  # the page's clock

    async def body():
        c, _ = tab(origin, flush_interval_ms=60_000)
        c.track("warm")
        other = {"distinct_id": "from_cookie", "$device_id": "0b5e3b0e-3e5c-4f57-9a53-1d2b6a0c9e11",
                 "$user_id": "from_cookie", "state": "identified"}
        origin.cookies[("empmix_tok", "")] = quote(json.dumps(other))
        c.track("within the recheck")  # the localStorage copy is unchanged: served from memory
        origin.advance(COOKIE_RECHECK_S * 1000)
        c.track("after the recheck")
        assert c.get_distinct_id() == "from_cookie"
        assert await c.flush(2000)
        ids = [e["properties"]["distinct_id"] for e in events(origin)]
        assert ids[1].startswith("$device:") and ids[2] == "from_cookie"
        assert "from_cookie" in origin.local["empmix_tok_identity"]  # localStorage repaired
    run(body)

"""Identity rules 1-5 in real Chromium: ids, persistence, identify, alias, reset."""

from __future__ import annotations

import re
import time

import pytest

from tests.browser.conftest import Py, cookie, cookie_identity
from tests.conftest import open_sdk_page, wait_until

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_first_init_mints_a_uuid4_device_id_and_anonymous_distinct_id(py, sdk_context, token):
    ids = py(f"c = mk({token!r})", "[c.get_distinct_id(), c.get_device_id(), c.get_user_id()]")
    distinct_id, device_id, user_id = ids
    assert UUID4.match(device_id)
    assert distinct_id == "$device:" + device_id
    assert user_id is None
    stored = py("", f"stored('empmix_{token}_')")
    assert set(stored) == {f"empmix_{token}_identity"}
    assert f'"distinct_id":"{distinct_id}"' in stored[f"empmix_{token}_identity"]
    jar = cookie(sdk_context, f"empmix_{token}")
    assert jar is not None and jar["sameSite"] == "Lax" and jar["path"] == "/" and not jar["secure"]
    assert 364 * 86400 < jar["expires"] - time.time() <= 365 * 86400 + 5
    assert cookie_identity(sdk_context, f"empmix_{token}") == {
        "distinct_id": distinct_id, "$device_id": device_id, "$user_id": None, "state": "anonymous"}


def test_reload_and_another_tab_keep_the_ids(py, sdk_context, base_url, token):
    first = py(f"c = mk({token!r})", "[c.get_distinct_id(), c.get_device_id()]")
    other = Py(open_sdk_page(sdk_context, base_url, py.interp))  # another tab of the same origin
    try:
        assert other(f"c = mk({token!r})", "[c.get_distinct_id(), c.get_device_id()]") == first
        other.page.reload()
        other.page.wait_for_function("window.sdkReady === true", timeout=60_000)
        other = Py(other.page)
        assert other("", "INTERPRETER") == py("", "INTERPRETER")
        assert other(f"c = mk({token!r})", "[c.get_distinct_id(), c.get_device_id()]") == first
    finally:
        other.page.close()


def test_the_cookie_wins_over_localstorage(py, sdk_context, token):
    py(f"c = mk({token!r})")
    py.run(f"""
import json
js.localStorage.setItem('empmix_{token}_identity', json.dumps({{"distinct_id": "$device:from-ls",
    "$device_id": "from-ls", "$user_id": None, "state": "anonymous"}}))
""")
    cookie_id = cookie_identity(sdk_context, f"empmix_{token}")["distinct_id"]
    assert py("", f"clients[{token!r}].get_distinct_id()") == cookie_id
    assert py(f"c1 = mk({token!r})", "c1.get_distinct_id()") == cookie_id  # a new page load
    assert cookie_id in py("", f"js.localStorage.getItem('empmix_{token}_identity')")  # repaired
    # with the cookie gone (cleared by the user), localStorage restores it
    sdk_context.clear_cookies(name=f"empmix_{token}")
    assert py(f"c2 = mk({token!r})", "c2.get_distinct_id()") == cookie_id
    assert cookie_identity(sdk_context, f"empmix_{token}")["distinct_id"] == cookie_id


def test_a_sibling_tabs_identify_and_reset_are_seen(py, sdk_context, base_url, wire, token):
    anon = py(f"c = mk({token!r})", "c.get_distinct_id()")
    other = Py(open_sdk_page(sdk_context, base_url, py.interp))
    try:
        other(f"o = mk({token!r}); o.identify('sib_user_1')")
        assert py("", f"clients[{token!r}].get_distinct_id()") == "sib_user_1"
        assert py(f"clients[{token!r}].track('after sibling identify')\nok = await clients[{token!r}].flush(5000)",
                  "ok") is True
        event = next(e for e in wire.events(token) if e["event"] == "after sibling identify")
        assert event["properties"]["distinct_id"] == "sib_user_1"
        assert event["properties"]["$user_id"] == "sib_user_1"
        other("o.reset()")
        fresh = py("", f"clients[{token!r}].get_distinct_id()")
        assert fresh.startswith("$device:") and fresh != anon
        assert other("", "o.get_distinct_id()") == fresh
    finally:
        other.page.close()


def test_identify_links_the_anonymous_id_once(py, wire, token):
    anon, device = py(f"c = mk({token!r})", "[c.get_distinct_id(), c.get_device_id()]")
    assert py("c.track('before login'); c.identify('usr_1', {'name': 'Ann', 'email': 'ann@example.com'})"
              "\nc.identify('usr_1')\nok = await c.flush(5000)", "ok") is True
    events = wire.events(token)
    assert [e["event"] for e in events] == ["before login", "$identify"]
    before, ident = events
    assert before["properties"]["distinct_id"] == anon and "$user_id" not in before["properties"]
    props = ident["properties"]
    assert props["distinct_id"] == "usr_1" and props["$anon_distinct_id"] == anon
    assert props["$device_id"] == device and props["$user_id"] == "usr_1"
    profiles = wire.profiles(token)
    assert len(profiles) == 1
    assert profiles[0]["$distinct_id"] == "usr_1" and profiles[0]["$set"] == {"name": "Ann", "email": "ann@example.com"}
    # the profile $set left after the $identify
    mine = wire.for_token(token)
    track_at = next(
        i for i, r in enumerate(mine) if r.path.startswith("/track") and r.records[-1]["event"] == "$identify"
    )
    engage_at = next(i for i, r in enumerate(mine) if r.path.startswith("/engage"))
    assert track_at < engage_at
    assert py("", "[c.get_distinct_id(), c.get_user_id(), c.get_device_id()]") == ["usr_1", "usr_1", device]


def test_identify_as_someone_else_switches_without_linking(py, sdk_page, wire, token):
    warnings: list[str] = []
    sdk_page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    assert py(f"c = mk({token!r}); c.identify('usr_a'); c.identify('usr_b'); c.track('as b')"
              "\nok = await c.flush(5000)", "ok") is True
    events = wire.events(token)
    assert [e["event"] for e in events] == ["$identify", "as b"]
    assert events[0]["properties"]["distinct_id"] == "usr_a"
    assert events[1]["properties"]["distinct_id"] == "usr_b"
    assert all(e["properties"].get("$anon_distinct_id") != "usr_a" for e in events)
    wait_until(lambda: any("reset()" in w and "usr_b" in w for w in warnings), 5, "the reset() warning", page=sdk_page)


def test_int_ids_become_strings(py, wire, token):
    assert py(f"c = mk({token!r}); c.identify(90125)\nok = await c.flush(5000)", "ok") is True
    assert wire.events(token)[0]["properties"]["distinct_id"] == "90125"


BAD_IDS = [
    "''",
    "'   '",
    "'undefined'",
    "'null'",
    "'None'",
    "'none'",
    "'UNDEFINED'",
    "'anonymous'",
    "'0'",
    "'-1'",
    "'[object Object]'",
    "'\"undefined\"'",
    "'NaN'",
    "'guest'",
    "'00000000-0000-0000-0000-000000000000'",
    "'$device:abc'",
    "'x' * 256",
    "'a\\x00b'",
]


@pytest.mark.parametrize("method", ["identify", "alias"])
def test_illegal_ids_raise_and_change_nothing(py, wire, token, method):
    before = py(f"c = mk({token!r})", f"stored('empmix_{token}_')")
    for bad in BAD_IDS:
        err = py.raises(f"c.{method}({bad})")
        assert err and err.startswith("ValueError"), (bad, err)
    for bad in ["None", "1.5", "['u']", "True", "{'id': 1}"]:
        err = py.raises(f"c.{method}({bad})")
        assert err and err.startswith("TypeError") and ("user_id" in err or "new_id" in err), (bad, err)
    assert py("ok = await c.flush(2000)", f"[ok, stored('empmix_{token}_')]") == [True, before]
    assert wire.for_token(token) == []


def test_alias_at_sign_up_then_identify_sends_one_link(py, wire, token):
    anon = py(f"c = mk({token!r})", "c.get_distinct_id()")
    py("c.alias('usr_new')")
    assert py("", "c.get_distinct_id()") == anon  # alias alone does not switch
    py("c.alias('usr_new')")  # replay: nothing more
    assert py("c.identify('usr_new'); c.track('Signed Up')\nok = await c.flush(5000)", "ok") is True
    events = wire.events(token)
    assert [e["event"] for e in events] == ["$create_alias", "Signed Up"]
    assert events[0]["properties"]["distinct_id"] == anon and events[0]["properties"]["alias"] == "usr_new"
    assert events[1]["properties"]["distinct_id"] == "usr_new"
    assert events[1]["properties"]["$user_id"] == "usr_new"
    # alias to the current id is a no-op; alias while identified as someone else is refused
    assert py("c.alias('usr_new'); c.alias('usr_other')\nok = await c.flush(2000)", "ok") is True
    assert len(wire.events(token)) == 2
    assert py("", "c.get_distinct_id()") == "usr_new"


def test_reset_clears_the_user_and_delivers_what_was_tracked(py, sdk_context, wire, token):
    old_anon, old_device = py(f"c = mk({token!r}, flush_interval_ms=60000)", "[c.get_distinct_id(), c.get_device_id()]")
    py("c.register({'team': 'red'}); c.identify('usr_r'); c.track('work')\nc.reset()")
    assert py("", "len(c._core.queue)") == 2  # still queued when reset ran
    new_anon, new_device = py("", "[c.get_distinct_id(), c.get_device_id()]")
    assert new_device != old_device and new_anon == "$device:" + new_device
    assert py("c.track('after logout')\nok = await c.flush(5000)", "ok") is True
    events = {e["event"]: e["properties"] for e in wire.events(token)}
    assert events["work"]["distinct_id"] == "usr_r" and events["work"]["team"] == "red"
    assert events["after logout"]["distinct_id"] == new_anon
    assert "team" not in events["after logout"] and "$user_id" not in events["after logout"]
    leftovers = py("", "stored('empmix_')")
    for key, value in leftovers.items():
        assert "usr_r" not in value and old_device not in value, key
    for c in sdk_context.cookies():
        assert "usr_r" not in c["value"] and old_device not in c["value"]


def test_shared_computer_keeps_two_users_apart(py, wire, token):
    py(f"c = mk({token!r})")
    a_device = py("c.identify('alice'); c.track('alice event')", "c.get_device_id()")
    py("c.reset()")
    b_device = py("c.identify('bob'); c.track('bob event')", "c.get_device_id()")
    assert py("ok = await c.flush(5000)", "ok") is True
    alice_ids, bob_ids = {"alice", "$device:" + a_device, a_device}, {"bob", "$device:" + b_device, b_device}
    for event in wire.events(token):
        p = event["properties"]
        carried = {p.get("distinct_id"), p.get("$device_id"), p.get("$user_id"), p.get("$anon_distinct_id")}
        if p["distinct_id"] == "bob":
            assert not carried & alice_ids, event
        if p["distinct_id"] == "alice":
            assert not carried & bob_ids, event
    assert {e["event"] for e in wire.events(token)} == {"$identify", "alice event", "bob event"}


def test_using_a_client_before_init_raises(py):
    err = py.raises("EmpMixClient().track('x')")
    assert err.startswith("NotInitializedError") and "init" in err


def test_two_tokens_do_not_share_state(py, wire, token):
    other = token + "b"
    assert py(
        f"a = mk({token!r}); b = mk({other!r}); a.identify('only_a'); a.register({{'s': 1}})"
        "\nb.track('b event'); a.track('a event')\nok = [await a.flush(5000), await b.flush(5000)]",
        "ok",
    ) == [True, True]
    (b_event,) = wire.events(other)
    assert b_event["properties"]["distinct_id"].startswith("$device:") and "s" not in b_event["properties"]
    assert py("", "[a.get_distinct_id(), b.get_user_id()]") == ["only_a", None]


def test_a_cookie_only_change_reaches_track_and_the_getters(py, wire, token):
    """A sibling subdomain sharing only the cookie logs in: the cookie wins over localStorage.
    ``track`` re-reads the cookie at least once a second (no getter runs first); the getters read
    it at once."""
    py(f"c = mk({token!r}); c.track('warm')")
    write = """
import json
js.document.cookie = 'empmix_{token}=' + js.encodeURIComponent(json.dumps({{"distinct_id": "{user}",
    "$device_id": "0b5e3b0e-3e5c-4f57-9a53-1d2b6a0c9e11", "$user_id": "{user}", "state": "identified"}})) + '; path=/'
"""
    py.run(write.format(token=token, user="from_cookie"))

    def tracked_as_the_cookie() -> bool:
        assert py("c.track('after')\nok = await c.flush(5000)", "ok") is True
        return wire.events(token)[-1]["properties"]["distinct_id"] == "from_cookie"

    wait_until(tracked_as_the_cookie, 10, "an event under the cookie's identity", page=py.page)
    assert '"from_cookie"' in py("", f"js.localStorage.getItem('empmix_{token}_identity')")  # repaired
    assert py("", "[c.get_distinct_id(), c.get_user_id()]") == ["from_cookie", "from_cookie"]

    py.run(write.format(token=token, user="from_cookie_2"))  # the getters: at once
    assert py("", "[c.get_distinct_id(), c.get_user_id()]") == ["from_cookie_2", "from_cookie_2"]
    assert py("c.track('after 2')\nok = await c.flush(5000)", "ok") is True
    assert wire.events(token)[-1]["properties"]["distinct_id"] == "from_cookie_2"


def test_a_pyodide_tab_and_a_micropython_tab_share_one_identity(browser, base_url, wire, token):
    """Mixed interpreters on one origin (a site with both kinds of page): one visitor, and a
    login in either tab is seen by the other."""
    context = browser.new_context(base_url=base_url)
    try:
        on_py, on_mpy = Py(open_sdk_page(context, base_url, "py")), Py(open_sdk_page(context, base_url, "mpy"))
        assert [on_py("", "INTERPRETER"), on_mpy("", "INTERPRETER")] == ["cpython", "micropython"]
        ids = on_py(f"c = mk({token!r})", "[c.get_distinct_id(), c.get_device_id()]")
        assert on_mpy(f"c = mk({token!r})", "[c.get_distinct_id(), c.get_device_id()]") == ids
        on_mpy("c.identify('usr_mixed')")
        assert on_py("", "c.get_distinct_id()") == "usr_mixed"
        assert on_py("c.track('from pyodide')\nok = await c.flush(5000)", "ok") is True
        (event,) = [e for e in wire.events(token) if e["event"] == "from pyodide"]
        assert event["properties"]["distinct_id"] == "usr_mixed" and event["properties"]["$device_id"] == ids[1]
    finally:
        context.close()

"""Issue 9: the SDK keeps its promises where real sites break SDKs. Real Chromium, the real
collector (what it stored is the outcome), faults made with Playwright routing and page controls;
every test runs under Pyodide and MicroPython."""

from __future__ import annotations

import json
import urllib.request
import uuid
from typing import Any
from urllib.parse import unquote, urlencode

import pytest

from tests.browser.conftest import Py
from tests.browser.test_delivery import CORS, FILL_QUOTA, TOKEN, fault, stored_numbers, track
from tests.conftest import PAGE_READY_MS, open_sdk_page, wait_until


@pytest.fixture
def context(browser, base_url, interp):
    ctx = browser.new_context(base_url=base_url)
    ctx.interp = interp
    ctx.base = base_url
    yield ctx
    ctx.close()


def page(context: Any, collector: Any, url: str | None = None, **options: Any) -> Py:
    return init(Py(open_sdk_page(context, url or context.base, context.interp)), collector, **options)


def init(py: Py, collector: Any, **options: Any) -> Py:
    """``c``: the page's client, sending to ``collector``."""
    opts = {"api_host": collector.url, "flush_interval_ms": 100, **options}
    py.run(f"c = EmpMixClient({TOKEN!r}, **{opts!r})")
    return py


def raw_cookie(context: Any, name: str) -> str | None:
    """The cookie's value as the browser keeps it (not decoded)."""
    return next((c["value"] for c in context.cookies() if c["name"] == name), None)


def profile(collector: Any, distinct_id: str) -> dict[str, Any]:
    person = collector.person(distinct_id)
    return person["properties"] if person else {}


def everything_stored(py: Py, context: Any) -> str:
    """Every localStorage value and cookie value of the origin (less FILL_QUOTA's filler), as
    one text; read in JavaScript: megabytes of filler need not cross into Python."""
    values = py.page.evaluate("Object.entries(localStorage).filter(([k]) => !/^(filler_|small_|t[0-9])/.test(k))"
                              ".map(([k, v]) => v)")
    return "\n".join(values + [unquote(c["value"]) for c in context.cookies()])


def uid(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# -- 1, 2: exactly once for profile operations ------------------------------------------------
def test_1_a_lost_engage_reply_is_applied_once(context, collector):
    answered: list[int] = []

    def lose_first_reply(route):
        response = route.fetch()  # the collector commits it...
        answered.append(response.status)
        if len(answered) == 1:
            route.abort("connectionreset")  # ...and the reply never reaches the page
        else:
            route.fulfill(response=response)

    context.route("**/engage/**", lose_first_reply)
    py = page(context, collector)
    user = uid("lost")
    py.run(f"c.identify({user!r}); c.increment('logins_count', 1)")
    assert py("r = await c.flush(timeout_ms=30000)", "r") is True
    assert len(answered) >= 2  # it was sent again
    assert profile(collector, user).get("logins_count") == 1


def test_2_a_login_redirect_mid_request_is_applied_once(context, collector):
    held: list[Any] = []

    def commit_then_hang(route):
        if not held:
            route.fetch()  # committed by the collector; the page navigates before the reply
            held.append(route)
        else:
            route.continue_()

    context.route("**/engage/**", commit_then_hang)
    py = page(context, collector, flush_interval_ms=10)
    user = uid("redirect")
    py.run(f"c.identify({user!r}); c.increment('logins_count', 1)")
    wait_until(lambda: held, 15, "the /engage request to be in flight", page=py.page)
    py.page.goto(py.page.url)  # the usual redirect after a login form
    py.page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
    again = Py(py.page)
    again.run(f"c = EmpMixClient({TOKEN!r}, api_host={collector.url!r}, flush_interval_ms=100)")
    wait_until(lambda: again("await c._core.tabs.scan()", f"stored('empmix_{TOKEN}_q_')") == {}
               and profile(collector, user).get("logins_count"), 30, "the resend", page=again.page)
    assert profile(collector, user)["logins_count"] == 1
    for route in held:
        try:
            route.abort()
        except Exception:
            pass


def test_2b_a_lost_groups_reply_is_applied_once(context, collector):
    """The group operation whose reply was lost is not applied again when the SDK resends it: a
    newer value another client set meanwhile stays (group operations are idempotent one by one,
    so a replay shows only by undoing a later change)."""
    held: list[Any] = []
    answered: list[int] = []

    def commit_and_hold_the_first_reply(route):
        response = route.fetch()  # the collector commits it...
        answered.append(response.status)
        if len(answered) == 1:
            held.append(route)  # ...and the reply is held, then lost
        else:
            route.fulfill(response=response)

    context.route("**/groups/**", commit_and_hold_the_first_reply)
    py = page(context, collector)
    group = uid("grp")
    py.run(f"c.get_group('company', {group!r}).set({{'plan': 'old'}})")
    wait_until(lambda: held, 15, "the /groups request to be committed", page=py.page)
    newer = [{"$token": TOKEN, "$group_key": "company", "$group_id": group, "$insert_id": uuid.uuid4().hex,
              "$set": {"plan": "new"}}]
    post_form(collector.url + "/groups/", newer)  # another client, after the first commit
    assert collector.api(f"/api/groups/company/{group}", TOKEN)["properties"] == {"plan": "new"}
    held[0].abort("connectionreset")
    assert py("r = await c.flush(timeout_ms=30000)", "r") is True
    assert len(answered) >= 2  # it was sent again
    assert collector.api(f"/api/groups/company/{group}", TOKEN)["properties"] == {"plan": "new"}


def post_form(url: str, records: list[dict[str, Any]]) -> None:
    body = urlencode({"data": json.dumps(records)}).encode()
    with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=10) as reply:
        assert reply.status == 200


# -- 3: held operations keep their order ----------------------------------------------------
def test_3_held_profile_operations_replay_in_call_order(context, collector):
    py = page(context, collector)
    user = uid("held")
    py.run("c.set_user_properties({'a': 1}); c.unset(['a']); c.set_user_properties_once({'a': 2})"
           f"\nc.increment('n', 1); c.set_user_properties({{'n': 10}}); c.increment('n', 5)"
           f"\nc.identify({user!r})")
    assert py("r = await c.flush(timeout_ms=20000)", "r") is True
    props = profile(collector, user)
    assert props["a"] == 2 and props["n"] == 15


# -- 4: reset leaves nothing, even when storage is full ---------------------------------------
def test_4_reset_with_full_storage_leaves_nothing_of_the_user(context, collector):
    py = page(context, collector)
    user, secret = uid("shared"), uid("secretprop")
    device = py(f"c.identify({user!r}); c.register({{'sp': {secret!r}}}); c.track('as user')",
                "c.get_device_id()")
    py.page.evaluate(FILL_QUOTA)
    py.run("c.track('storage now full'); c.reset()")
    left = everything_stored(py, context)
    for value in (user, device, secret):
        assert value not in left
    assert py("r = await c.flush(timeout_ms=20000)", "r") is True  # the user's events still arrive
    assert {"as user", "storage now full"} <= {e["event"] for e in collector.events_of(user)}
    # the next load, quota still full, starts as someone new with nothing of the old user
    py.page.reload()
    py.page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
    nxt = Py(py.page)
    nxt.run(f"c = EmpMixClient({TOKEN!r}, api_host={collector.url!r}, flush_interval_ms=100)"
            "\nc.track('next visitor')")
    assert nxt("r = await c.flush(timeout_ms=20000)", "[r, c.get_user_id()]") == [True, None]
    did = nxt("", "c.get_distinct_id()")
    (event,) = [e for e in collector.events_of(did) if e["event"] == "next visitor"]
    assert "sp" not in event["properties"] and event["properties"]["$device_id"] != device
    assert user not in everything_stored(nxt, context)


# -- 5, 6: consent and logout hold in every tab ------------------------------------------------
def test_5_opt_out_in_one_tab_holds_in_every_tab(context, collector):
    a = page(context, collector)
    b = page(context, collector)
    run = uid("optout")
    a.run("c.opt_out_tracking()")
    # another tab's localStorage write reaches this one asynchronously (another renderer process)
    wait_until(lambda: b("", "c.has_opted_out()") is True, 10, "tab B to see the opt-out")
    track(b, run, range(3))
    b.run("c.register({'x': 1}); c.identify('u_' + " + repr(run) + ")")
    assert b("await c.flush(timeout_ms=1000)", f"stored('empmix_{TOKEN}_')") == {f"empmix_{TOKEN}_consent": "out"}
    assert [c for c in context.cookies() if c["name"].startswith("empmix_")] == []
    assert collector.events_of("u_" + run) == []
    a.run("c.opt_in_tracking()")  # and back in, from tab A: tab B resumes at its next call
    wait_until(lambda: b("", "c.has_opted_out()") is False, 10, "tab B to see the opt-in")
    track(b, run, range(3, 5))
    assert b("r = await c.flush(timeout_ms=20000)", "r") is True
    assert stored_numbers(collector, b("", "c.get_distinct_id()"), run) == [3, 4]


def test_6_a_sibling_tabs_logout_takes_the_super_properties_with_it(context, collector):
    a = page(context, collector)
    user, secret = uid("sib"), uid("plan")
    a.run(f"c.identify({user!r}); c.register({{'plan': {secret!r}}}); c.track('warm')")
    b = page(context, collector)
    b.run("c.reset()")
    a.run("c.track('right after the sibling logout')")
    assert a("r = await c.flush(timeout_ms=20000)", "r") is True
    did = a("", "c.get_distinct_id()")
    assert did.startswith("$device:")
    (event,) = [e for e in collector.events_of(did) if e["event"] == "right after the sibling logout"]
    assert "plan" not in event["properties"] and event["properties"].get("$user_id") is None
    assert event["properties"]["distinct_id"] == did


# -- 7: hostile stored state is data ------------------------------------------------------------
DEEP = "[" * 3000


HOSTILE_KEYS = ("identity", "props", "people", "q_deadtab_0000000001e")  # the localStorage ones


def test_7_deeply_nested_stored_values_do_not_crash_the_page(context, collector):
    """3,000 ``[`` in the cookie and in every stored key at once: one page load, and each value is
    read on its own path (identity, super properties, held profile operations, a dead tab's queue),
    so every guard must hold for the page to track."""
    # the cookie raw, not percent-encoded: 3 KB, under the 4 KB a browser keeps per cookie
    script = f"document.cookie = 'empmix_{TOKEN}=' + {DEEP!r} + '; path=/';" + "".join(
        f"localStorage.setItem('empmix_{TOKEN}_{key}', {DEEP!r});" for key in HOSTILE_KEYS)
    context.add_init_script(script)
    py = Py(open_sdk_page(context, context.base, context.interp))
    assert raw_cookie(context, f"empmix_{TOKEN}") == DEEP  # the hostile values reach the SDK
    keys = [f"empmix_{TOKEN}_{key}" for key in HOSTILE_KEYS]
    assert py.page.evaluate("keys => keys.map(k => localStorage.getItem(k))", keys) == [DEEP] * len(keys)
    init(py, collector)
    run = uid("hostile")
    did = py("c.set_user_properties({'a': 1})", "c.get_distinct_id()")
    assert did.startswith("$device:")
    track(py, run, range(3))
    assert py("r = await c.flush(timeout_ms=20000)", "[r, 6 * 7]") == [True, 42]  # Python still runs
    assert stored_numbers(collector, did, run) == [0, 1, 2]
    assert DEEP not in everything_stored(py, context)


def test_7_a_4_kb_cookie_and_foreign_ids_are_discarded(context, collector):
    """The longest cookie a browser keeps (4 KB, raw JSON that is no identity) and an identity of
    foreign ids in localStorage: both discarded, a fresh device minted, the cookie replaced."""
    bad = json.dumps({"distinct_id": "undefined", "$device_id": "x", "$user_id": "undefined", "state": "identified"})
    long_value = "{" + '"a":1,' * 660 + '"b":2}'  # 3,967 characters: with the name, just under 4,096
    context.add_init_script(f"document.cookie = 'empmix_{TOKEN}=' + {long_value!r} + '; path=/';"
                            f"localStorage.setItem('empmix_{TOKEN}_identity', {bad!r});")
    py = Py(open_sdk_page(context, context.base, context.interp))
    assert raw_cookie(context, f"empmix_{TOKEN}") == long_value  # the browser kept it: the SDK reads it
    init(py, collector)
    did = py("", "c.get_distinct_id()")
    left = everything_stored(py, context)
    assert did.startswith("$device:") and "undefined" not in left and '"a":1' not in left
    assert did in unquote(raw_cookie(context, f"empmix_{TOKEN}") or "")


# -- 8: without Web Locks, bookkeeping does not grow with page views ---------------------------
def test_8_heartbeats_do_not_pile_up_without_web_locks(browser, wire, collector, interp):
    plain_http = wire.url.replace("127.0.0.1", "a.example.test")  # not a secure context: no locks
    context = browser.new_context(base_url=plain_http)
    context.interp = interp
    try:
        py = page(context, collector, url=plain_http)
        assert py("", "c._core.tabs.use_locks") is False
        # the same code under both; Pyodide pages cost 4-5 s: 3 loads there (a pile-up would leave 3)
        views = 10 if interp == "mpy" else 2
        for _ in range(views):
            py.page.reload()
            py.page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
            py = Py(py.page)
            py.run(f"c = EmpMixClient({TOKEN!r}, api_host={collector.url!r}); c.track('view')")
        py.run("await c._core.tabs.scan()")
        alive = [k for k in py("", f"stored('empmix_{TOKEN}_alive_')")]
        assert len(alive) <= 2, alive
        py.run("c.opt_out_tracking()")
        py.page.reload()
        py.page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
        py = Py(py.page)
        py.run(f"c = EmpMixClient({TOKEN!r}, api_host={collector.url!r})\nawait c._core.tabs.scan()")
        assert py("", f"stored('empmix_{TOKEN}_')") == {f"empmix_{TOKEN}_consent": "out"}
    finally:
        context.close()


# -- 9: one set of id rules ---------------------------------------------------------------------
def test_9_ids_the_collector_links_are_accepted_by_the_sdk(context, collector):
    py = page(context, collector)
    for user in ("Nan", "nan", "Null", "NULL", "NONE"):
        device = py(f"c.reset(); c.identify({user!r})", "c.get_device_id()")
        assert py("r = await c.flush(timeout_ms=20000)", "r") is True
        person = collector.person(user)
        assert person is not None and "$device:" + device in person["distinct_ids"], user
    for bad in ("null", "None", "undefined", "UNDEFINED", "[object Object]"):
        assert py.raises(f"c.identify({bad!r})").startswith("ValueError"), bad


# -- replies the SDK must read right --------------------------------------------------------------
REPLIES = [  # (status, a failed_records body?, the numbers stored of 0-3)
    (400, True, [0, 2, 3]),   # only the named record is dropped, the rest sent again
    (400, False, []),         # the whole batch is dropped
    (403, False, []),         # other 4xx: dropped
    (408, False, [0, 1, 2, 3]),  # a timeout: retried
]


def test_replies_decide_what_is_dropped_and_what_is_retried(context, collector):
    """One page, one batch of four events per reply kind: the first send of each batch gets that
    reply, later sends reach the collector."""
    fault_next: list[tuple[int, bool]] = []

    def handler(route):
        if not fault_next:
            route.continue_()
            return
        status, details = fault_next.pop()
        if details:
            body = json.dumps({"status": 0, "num_records_imported": 0,
                               "failed_records": [{"index": 1, "message": "bad"}]})
            route.fulfill(status=status, headers=CORS, body=body)
        else:
            fault(route, status)

    context.route("**/track/**", handler)
    py = page(context, collector, flush_interval_ms=60000)
    did = py("", "c.get_distinct_id()")
    for status, details, stored in REPLIES:
        run = uid("reply")
        fault_next.append((status, details))
        track(py, run, range(4))
        assert py("r = await c.flush(timeout_ms=30000)", "[r, len(c._core.queue)]") == [True, 0], status
        assert not fault_next, "the batch was not sent"
        if stored:
            wait_until(lambda: stored_numbers(collector, did, run), 15, "the stored events", page=py.page)  # noqa: B023
        assert stored_numbers(collector, did, run) == stored, (status, details)


def test_page_hide_beacons_stay_within_64_kib_and_the_rest_follows(context, collector):
    # count what the page hands to sendBeacon, in localStorage (it outlives the closed page)
    context.add_init_script("""
const send = navigator.sendBeacon.bind(navigator);
navigator.sendBeacon = (url, data) => {
  const ok = send(url, data);
  if (ok) localStorage.setItem('beacon_bytes', String(Number(localStorage.getItem('beacon_bytes') || 0) + data.size));
  return ok;
};""")
    context.route("**/track/**", lambda route: fault(route, 503) if route.request.resource_type == "fetch"
                  else route.continue_())  # normal sends fail; beacons go through
    py = page(context, collector, flush_interval_ms=600000)
    run = uid("beacon")
    track(py, run, range(120), pad="b" * 900)  # ~130 KB queued: more than one page's budget
    did = py("", "c.get_distinct_id()")
    py.page.close()
    pump = context.new_page()  # no SDK: lets Playwright run the route handler while this waits
    wait_until(lambda: stored_numbers(collector, did, run), 30, "the beaconed events", page=pump)  # slow when loaded
    beaconed = len(stored_numbers(collector, did, run))  # counted before another page can resend
    assert 0 < beaconed < 120
    context.unroute("**/track/**")
    nxt = page(context, collector)
    assert 0 < int(nxt.page.evaluate("localStorage.getItem('beacon_bytes')")) <= 64 * 1024
    wait_until(lambda: len(stored_numbers(collector, did, run)) == 120, 60, "the rest", page=nxt.page)
    assert stored_numbers(collector, did, run) == list(range(120))


def test_storage_failing_partway_loses_nothing(context, collector):
    py = page(context, collector, flush_interval_ms=60000)
    run = uid("partway")
    track(py, run, range(5))
    py.page.evaluate(FILL_QUOTA)
    track(py, run, range(5, 10))
    assert py("r = await c.flush(timeout_ms=20000)", "r") is True
    did = py("", "c.get_distinct_id()")
    assert stored_numbers(collector, did, run) == list(range(10))
    memory = [e["properties"].get("$persistence") for e in collector.events_of(did)
              if e["properties"].get("run") == run and e["properties"]["n"] >= 5]
    assert memory == ["memory"] * 5


def test_a_second_init_is_refused_and_one_sender_runs(context, collector, wire):
    warnings: list[str] = []
    py = page(context, collector)
    py.page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    run = uid("twice")
    py.run(f"c.init({TOKEN!r}, api_host={wire.url!r})")
    wait_until(lambda: [w for w in warnings if "init(" in w and "refused" in w], 5, "the warning", page=py.page)
    track(py, run, range(3))
    assert py("r = await c.flush(timeout_ms=20000)", "r") is True
    assert stored_numbers(collector, py("", "c.get_distinct_id()"), run) == [0, 1, 2]
    assert not [r for r in wire.requests if any(rec.get("properties", {}).get("run") == run for rec in r.records)]


def test_cookie_domain_options_on_real_host_names(browser, wire, collector, interp):
    host = wire.url.replace("127.0.0.1", "shop.example.test")
    context = browser.new_context(base_url=host)
    context.interp = interp
    try:
        py = page(context, collector, url=host)  # host-only first
        host_only = [c for c in context.cookies() if c["name"] == f"empmix_{TOKEN}"]
        assert [c["domain"] for c in host_only] == ["shop.example.test"]
        did = py("", "c.get_distinct_id()")
        py.page.reload()
        py.page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
        py = Py(py.page)
        py.run(f"c = EmpMixClient({TOKEN!r}, api_host={collector.url!r}, cross_subdomain_cookie=True)"
               "\nc.identify('domain_user')")
        jar = [c for c in context.cookies() if c["name"] == f"empmix_{TOKEN}"]
        assert [c["domain"] for c in jar] == [".example.test"]  # the host-only copy cannot shadow it
        assert json.loads(unquote(jar[0]["value"]))["$device_id"] == did.split(":", 1)[1]
        py.run("c.reset()")
        jar = [c for c in context.cookies() if c["name"] == f"empmix_{TOKEN}"]
        assert len(jar) == 1 and "domain_user" not in unquote(jar[0]["value"])
    finally:
        context.close()

"""Delivery that loses nothing (issue 4): real Chromium, the real collector, faults made with
Playwright routing and page controls. Each scenario tracks a known set of events (property
``n``) and asserts through the collector's query API that every one is stored exactly once."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import parse_qs

import pytest

from tests.browser.conftest import Py
from tests.conftest import PAGE_READY_MS, open_sdk_page, wait_until

TOKEN = "delivery_test"
CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Expose-Headers": "Retry-After"}


def fault(route: Any, status: int, **headers: str) -> None:
    """Answer like a collector in trouble would (with its CORS headers)."""
    route.fulfill(status=status, headers={**CORS, **headers}, body="fault")


def start(context: Any, base_url: str, collector: Any, **options: Any) -> tuple[Py, str]:
    """A fresh SDK page whose client ``c`` sends to the collector; returns (py, run id)."""
    py = Py(open_sdk_page(context, base_url, context.interp))
    opts = {"api_host": collector.url, "flush_interval_ms": 100, **options}
    py.run(f"c = EmpMixClient({TOKEN!r}, **{opts!r})")
    return py, uuid.uuid4().hex[:8]


def track(py: Py, run: str, numbers: range, **extra: Any) -> None:
    props = {"run": run, **extra}
    py.run(f"for n in {list(numbers)!r}:\n    p = dict({props!r})\n    p['n'] = n\n    c.track('d', p)")


def stored_numbers(collector: Any, distinct_id: str, run: str) -> list[int]:
    return sorted(e["properties"]["n"] for e in collector.events_of(distinct_id)
                  if e["event"] == "d" and e["properties"].get("run") == run)


def assert_exactly_once(collector: Any, distinct_id: str, run: str, expected: list[int], timeout: float = 60,
                        page: Any = None) -> None:
    wait_until(lambda: len(stored_numbers(collector, distinct_id, run)) >= len(expected), timeout,
               f"{len(expected)} events stored", page=page)
    assert stored_numbers(collector, distinct_id, run) == sorted(expected)


def test_server_errors_for_20_s_then_recovery(context, base_url, collector):
    failing_until = time.monotonic() + 20
    attempts: list[float] = []

    def handler(route):
        attempts.append(time.monotonic())
        if time.monotonic() < failing_until:
            fault(route, 500)
        else:
            route.continue_()

    context.route("**/track/**", handler)
    py, run = start(context, base_url, collector)
    track(py, run, range(30))
    assert py("r = await c.flush(timeout_ms=1500)", "r") is False  # not confirmed yet; stays queued
    did = py("", "c.get_distinct_id()")
    assert_exactly_once(collector, did, run, list(range(30)), timeout=90, page=py.page)
    failed = [t for t in attempts if t < failing_until]
    assert 3 <= len(failed) <= 8, f"back-off, not a hot loop: {len(failed)} attempts in 20 s"


def test_429_with_retry_after_is_honoured(context, base_url, collector):
    attempts: list[float] = []

    def handler(route):
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            fault(route, 429, **{"Retry-After": "3"})
        else:
            route.continue_()

    context.route("**/track/**", handler)
    py, run = start(context, base_url, collector)
    track(py, run, range(5))
    assert py("r = await c.flush(timeout_ms=20000)", "r") is True
    assert attempts[1] - attempts[0] >= 2.9
    assert_exactly_once(collector, py("", "c.get_distinct_id()"), run, list(range(5)))


def test_offline_for_a_while(context, base_url, collector):
    py, run = start(context, base_url, collector)
    context.set_offline(True)
    track(py, run, range(20))
    assert py("r = await c.flush(timeout_ms=2500)", "r") is False
    assert py("", "len(c._core.queue)") == 20
    context.set_offline(False)
    assert py("r = await c.flush(timeout_ms=30000)", "r") is True
    assert_exactly_once(collector, py("", "c.get_distinct_id()"), run, list(range(20)))


def test_reload_in_the_middle_of_a_flush(context, base_url, collector):
    py, run = start(context, base_url, collector, batch_size=20, flush_interval_ms=60000)
    track(py, run, range(200))
    did = py("", "c.get_distinct_id()")
    with py.page.expect_request("**/track/**"):
        py.start("await c.flush()")
    py.page.reload()
    py.page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
    again = Py(py.page)
    again.run(f"c = EmpMixClient({TOKEN!r}, api_host={collector.url!r}, flush_interval_ms=100)")
    assert_exactly_once(collector, did, run, list(range(200)))
    wait_until(lambda: again("", f"stored('empmix_{TOKEN}_q_')") == {}, 30, "the queue to drain")


def test_page_closed_with_records_pending(context, base_url, collector):
    py, run = start(context, base_url, collector, flush_interval_ms=600000)
    track(py, run, range(30))
    did = py("", "c.get_distinct_id()")
    assert py("", f"len(stored('empmix_{TOKEN}_q_'))") == 30  # persisted before track returned
    py.page.close()  # pagehide -> sendBeacon
    assert_exactly_once(collector, did, run, list(range(30)), timeout=20)
    # the next load finds the records (not dequeued by the beacon), resends, and drains them
    nxt, _ = start(context, base_url, collector)
    wait_until(lambda: nxt("", f"stored('empmix_{TOKEN}_q_')") == {}, 30, "the next load to drain the queue")
    assert stored_numbers(collector, did, run) == list(range(30))


def test_two_tabs_tracking_500_each(context, base_url, collector):
    sent: dict[str, int] = {}

    def on_request(request):
        if "/track/" in request.url and request.method == "POST":
            for record in json.loads(parse_qs(request.post_data)["data"][0]):
                insert_id = record["properties"]["$insert_id"]
                sent[insert_id] = sent.get(insert_id, 0) + 1

    context.on("request", on_request)
    tabs = [start(context, base_url, collector, flush_interval_ms=200)[0] for _ in range(2)]
    run = uuid.uuid4().hex[:8]
    code = """
import asyncio
for n in range({lo}, {hi}):
    c.track('d', {{'run': {run!r}, 'n': n}})
    if n % 25 == 0:
        await asyncio.sleep(0.01)
"""
    for i, tab in enumerate(tabs):
        tab.start(code.format(lo=i * 500, hi=(i + 1) * 500, run=run))
    for tab in tabs:
        tab.wait()
    did = tabs[0]("", "c.get_distinct_id()")
    assert tabs[1]("", "c.get_distinct_id()") == did
    assert_exactly_once(collector, did, run, list(range(1000)))
    assert max(sent.values()) == 1, "a record was sent by two tabs"


FILL_QUOTA = """
try { for (let i = 0; ; i++) localStorage.setItem('filler_' + i, 'x'.repeat(1 << 20)); } catch (e) {}
try { for (let i = 0; ; i++) localStorage.setItem('small_' + i, 'x'.repeat(1024)); } catch (e) {}
try { for (let i = 0; ; i++) localStorage.setItem('t' + i, ''); } catch (e) {}
"""
THROWING_STORAGE = """
Object.defineProperty(window, 'localStorage', {get() { throw new DOMException('denied', 'SecurityError'); }});
"""


@pytest.mark.parametrize("init_script", [FILL_QUOTA, THROWING_STORAGE], ids=["quota-full", "access-throws"])
def test_broken_localstorage_falls_back_to_memory(context, base_url, collector, init_script):
    context.add_init_script(init_script)
    errors: list[str] = []
    py = Py(open_sdk_page(context, base_url, context.interp))
    py.page.on("pageerror", lambda e: errors.append(str(e)))
    run = uuid.uuid4().hex[:8]
    py.run(f"c = EmpMixClient({TOKEN!r}, api_host={collector.url!r}, flush_interval_ms=100)")
    py.run(f"c.identify('mem_{run}')")
    track(py, run, range(10))
    assert py("r = await c.flush(timeout_ms=10000)", "r") is True
    events = [e for e in collector.events_of(f"mem_{run}") if e["event"] == "d"]
    assert sorted(e["properties"]["n"] for e in events) == list(range(10))
    assert all(e["properties"]["$persistence"] == "memory" for e in events)
    assert errors == []


def test_corrupted_sdk_state_is_discarded(context, base_url, collector):
    context.add_init_script(f"""
localStorage.setItem('empmix_{TOKEN}_identity', '{{corrupt');
localStorage.setItem('empmix_{TOKEN}_props', 'not json');
localStorage.setItem('empmix_{TOKEN}_people', '[');
localStorage.setItem('empmix_{TOKEN}_q_deadtab_0000000001e', '{{{{{{');
document.cookie = 'empmix_{TOKEN}=%7Bbad; path=/';
""")
    py, run = start(context, base_url, collector)
    did = py("", "c.get_distinct_id()")
    assert did.startswith("$device:")
    py.run("c.set_user_properties({'a': 1})")
    track(py, run, range(5))
    assert py("r = await c.flush(timeout_ms=10000)", "r") is True
    assert_exactly_once(collector, did, run, list(range(5)))
    gone = f"empmix_{TOKEN}_q_deadtab_0000000001e"
    wait_until(lambda: gone not in py("", "stored()"), 15, "the corrupted record to go")


def test_413_splits_a_large_batch_and_drops_a_lone_oversized_record(context, base_url, collector):
    def handler(route):
        body = route.request.post_data or ""
        if len(body) > 40_000:
            fault(route, 413)
        else:
            route.continue_()

    context.route("**/track/**", handler)
    py, run = start(context, base_url, collector, batch_size=50, flush_interval_ms=60000)
    track(py, run, range(40), pad="p" * 1500)  # ~2 KB each: 80 KB a batch, 413 until split
    py.run(f"c.track('d', {{'run': {run!r}, 'n': 999, 'pad': 'q' * 60000}})")
    track(py, run, range(40, 45))
    assert py("r = await c.flush(timeout_ms=20000)", "r") is True
    assert_exactly_once(collector, py("", "c.get_distinct_id()"), run, list(range(45)))
    assert py("", "len(c._core.queue)") == 0


def test_opt_out_by_default_then_opt_in(context, base_url, collector):
    py = Py(open_sdk_page(context, base_url, context.interp))
    run = uuid.uuid4().hex[:8]
    py.run(f"c = EmpMixClient({TOKEN!r}, api_host={collector.url!r}, flush_interval_ms=100, opt_out_by_default=True)")
    track(py, run, range(3))
    py.run("c.set_user_properties({'x': 1}); c.register({'s': 1})")
    assert py("", "[c.has_opted_out(), stored()]") == [True, {}]
    assert context.cookies() == []
    did = py("", "c.get_distinct_id()")
    py.run("c.opt_in_tracking()")
    track(py, run, range(3, 6))
    assert py("r = await c.flush(timeout_ms=10000)", "r") is True
    assert_exactly_once(collector, did, run, [3, 4, 5])
    assert any(e["event"] == "$opt_in" for e in collector.events_of(did))
    # the choice survives a reload; opting out clears the queue and stops sending, across reset()
    py.page.reload()
    py.page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
    py = Py(py.page)
    py.run(f"c = EmpMixClient({TOKEN!r}, api_host={collector.url!r}, flush_interval_ms=100, opt_out_by_default=True)")
    assert py("", "[c.has_opted_out(), c.get_distinct_id()]") == [False, did]
    py.run("c.opt_out_tracking(); c.reset()")
    track(py, run, range(6, 9))
    assert py("", "[c.has_opted_out(), stored()]") == [True, {f"empmix_{TOKEN}_consent": "out"}]
    assert py("r = await c.flush(timeout_ms=1000)", "r") is True
    assert stored_numbers(collector, did, run) == [3, 4, 5]


def test_the_cap_drops_the_oldest_and_says_so(context, base_url, collector):
    blocked = {"on": True}
    context.route("**/track/**", lambda route: fault(route, 503) if blocked["on"] else route.continue_())
    py, run = start(context, base_url, collector, max_queue_size=10)
    warnings: list[str] = []
    py.page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    track(py, run, range(25))
    assert py("", "[len(c._core.queue), c._core.queue.dropped]") == [10, 15]
    assert py("", f"len(stored('empmix_{TOKEN}_q_'))") == 10
    wait_until(lambda: [w for w in warnings if "max_queue_size=10" in w], 5, "the cap warning", page=py.page)
    assert len([w for w in warnings if "max_queue_size" in w]) == 1
    blocked["on"] = False
    assert py("r = await c.flush(timeout_ms=60000)", "r") is True
    assert_exactly_once(collector, py("", "c.get_distinct_id()"), run, list(range(15, 25)))


def test_identity_events_keep_their_order_under_retries(context, base_url, collector):
    delivered: list[str] = []
    failures = {"left": 3}

    def handler(route):
        if failures["left"]:
            failures["left"] -= 1
            fault(route, 502)
            return
        delivered.extend(r["event"] for r in json.loads(parse_qs(route.request.post_data)["data"][0]))
        route.continue_()

    context.route("**/track/**", handler)
    py, run = start(context, base_url, collector, batch_size=2)
    user = f"order_{run}"
    py.run(
        f"c.track('d', {{'run': {run!r}, 'n': 0}}); c.alias({user!r}); c.identify({user!r})"
        f"\nfor n in range(1, 6): c.track('d', {{'run': {run!r}, 'n': n}})"
    )
    assert py("r = await c.flush(timeout_ms=60000)", "r") is True
    assert delivered == ["d", "$create_alias", "d", "d", "d", "d", "d"]
    assert_exactly_once(collector, user, run, list(range(6)))


def test_a_live_tabs_records_are_never_taken_and_a_closed_tabs_are(context, base_url, collector):
    blocked = {"on": True}
    context.route("**/track/**", lambda route: fault(route, 503) if blocked["on"] else route.continue_())
    tab1, run = start(context, base_url, collector)
    track(tab1, run, range(10))
    did = tab1("", "c.get_distinct_id()")
    tab2, _ = start(context, base_url, collector)
    assert tab2("n = await c._core.tabs.scan()", "[n, len(c._core.queue)]") == [0, 0]  # tab 1 holds its lock
    tab1.page.close()
    wait_until(
        lambda: tab2("await c._core.tabs.scan()", "len(c._core.queue)") == 10,
        15,
        "tab 2 to adopt the closed tab's records",
        page=tab2.page,
    )
    blocked["on"] = False
    assert tab2("r = await c.flush(timeout_ms=30000)", "r") is True
    assert_exactly_once(collector, did, run, list(range(10)), page=tab2.page)
    assert tab2("", f"stored('empmix_{TOKEN}_q_')") == {}

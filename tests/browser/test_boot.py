"""The boot script and the SDK together (issue 17), under both interpreters, in real Chromium
against the real collector: a visitor is counted from the first page view, once per load,
whether they leave before Python is ready or after.

The SDK test page runs its boot script when given ``?token=`` (tests/pages/sdk.template.html);
``data-config`` points it at the collector. Python is held back where a test needs the visitor
to leave first: the interpreter is then never served (``?stall=``).
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

from tests.browser.conftest import Py
from tests.conftest import PAGE_READY_MS, wait_until

TOKEN = "delivery_test"  # the shared collector's token: each test has its own browser context


def boot_query(collector: Any, **config: Any) -> str:
    return f"token={TOKEN}&config=" + quote(json.dumps({"api_host": collector.url, **config}))


def booted_page(
    context: Any, base_url: str, collector: Any, hold_python: bool = False, route_track: Any = None, **config: Any
) -> Any:
    """A test page whose boot script ran; with ``hold_python`` its Python never starts;
    ``route_track`` handles the page's requests to the collector's /track."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    if route_track is not None:
        page.route(lambda url: url.startswith(collector.url + "/track"), route_track)
    stall = "&stall=/test/stalled" if hold_python else ""  # PyScript never arrives: Python never starts
    page.goto(
        f"{base_url}/test/sdk-{context.interp}.html?{boot_query(collector, **config)}{stall}", wait_until="commit"
    )
    page.wait_for_function("window.empmixBoot && window.empmixBoot.pageview", timeout=10_000)
    page.errors = errors
    return page


def stored(collector: Any, device: str, name: str | None = None) -> list[dict[str, Any]]:
    events = collector.events_of("$device:" + device, TOKEN)
    return [e for e in events if name is None or e["event"] == name]


def names(collector: Any, device: str) -> list[str]:
    return sorted(e["event"] for e in stored(collector, device))


def test_leave_before_python_is_ready_counts_the_page_view_and_the_leave(context, base_url, collector):
    page = booted_page(context, base_url, collector, hold_python=True)
    started = page.evaluate("performance.now()")
    page.wait_for_timeout(max(0, 300 - started))  # the visitor leaves 0.3 s after navigation
    boot = page.evaluate("window.empmixBoot")
    page.close()
    device = boot["device"]
    wait_until(lambda: len(stored(collector, device)) >= 2, 20, "the page view and the page leave")
    leave = stored(collector, device, "$mp_page_leave")
    assert names(collector, device) == ["$mp_page_leave", "$mp_web_page_view"]  # each once
    assert leave[0]["properties"]["$left_before_ready"] is True
    assert isinstance(leave[0]["properties"]["$time_on_page_ms"], int)
    assert leave[0]["properties"]["$time_on_page_ms"] >= 300
    view = stored(collector, device, "$mp_web_page_view")[0]
    assert view["properties"]["$insert_id"] == boot["pageview"]


def test_leave_after_ready_counts_the_page_view_once_and_python_ready_once(context, base_url, collector):
    lost: list[int] = []

    def lose_first_reply(route: Any) -> None:  # the boot's send is stored, its reply lost
        if lost:
            route.continue_()
            return
        lost.append(1)
        route.fetch()
        route.abort()

    page = booted_page(context, base_url, collector, route_track=lose_first_reply)
    page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
    py = Py(page)
    boot = page.evaluate("window.empmixBoot")
    result = py(
        "c = EmpMixClient()\nc.init(flush_interval_ms=100)\nc.track_pageview()\nok = await c.flush(20000)",
        "[ok, c.get_device_id(), c.get_distinct_id()]",
    )
    assert result == [True, boot["device"], "$device:" + boot["device"]]  # the boot's identity kept
    assert lost  # the boot's send did arrive, and the SDK sent the page view again
    page.close()
    device = boot["device"]
    wait_until(lambda: len(stored(collector, device)) >= 2, 20, "the page view and $python_ready")
    assert names(collector, device) == ["$mp_web_page_view", "$python_ready"]  # no leave, nothing twice
    ready = stored(collector, device, "$python_ready")[0]["properties"]
    assert ready["$interpreter"] == ("pyodide" if context.interp == "py" else "micropython")
    assert isinstance(ready["$ready_ms"], int) and ready["$ready_ms"] > 0


def test_a_returning_identified_visitor_is_counted_under_the_user_id(context, base_url, collector, token):
    user = "usr_" + token
    first = booted_page(context, base_url, collector)
    first.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
    Py(first)(f"c = EmpMixClient()\nc.init(flush_interval_ms=100)\nc.identify({user!r})\nawait c.flush(20000)")
    first.close()
    again = booted_page(context, base_url, collector, hold_python=True)  # before Python starts
    pageview = again.evaluate("window.empmixBoot.pageview")
    again.close()

    def the_view() -> list[dict[str, Any]]:
        return [e for e in collector.events_of(user, TOKEN) if e["properties"].get("$insert_id") == pageview]

    (view,) = wait_until(the_view, 20, "the second load's page view")
    assert view["properties"]["distinct_id"] == user and view["properties"]["$user_id"] == user


def test_an_opted_out_visitor_is_neither_stored_nor_sent(context, base_url, collector, token):
    first = booted_page(context, base_url, collector)
    first.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
    device = first.evaluate("window.empmixBoot.device")
    Py(first)("c = EmpMixClient()\nc.init(flush_interval_ms=100)\nawait c.flush(20000)\nc.opt_out_tracking()")
    first.close()
    sent: list[str] = []
    page = context.new_page()
    page.on("request", lambda r: sent.append(r.url) if r.method == "POST" else None)
    page.goto(f"{base_url}/test/sdk-{context.interp}.html?{boot_query(collector)}")
    page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
    assert page.evaluate("window.empmixBoot.out") is True
    assert Py(page)("c = EmpMixClient()\nc.init(flush_interval_ms=100)\nc.track_pageview()", "c.has_opted_out()")
    page.close()  # no page leave either
    assert sent == []
    assert names(collector, device) == ["$mp_web_page_view", "$python_ready"]  # the first load only


def test_a_throttled_network_with_the_tab_closed_at_1_s(context, base_url, collector):
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {  # 20 Mbps, 20 ms: Python is seconds away
            "offline": False,
            "latency": 20,
            "downloadThroughput": 20e6 / 8,
            "uploadThroughput": 20e6 / 8,
        },
    )
    began = time.monotonic()
    page.goto(f"{base_url}/test/sdk-{context.interp}.html?{boot_query(collector)}", wait_until="commit")
    page.wait_for_function("window.empmixBoot && window.empmixBoot.pageview", timeout=10_000)
    boot = page.evaluate("window.empmixBoot")
    page.wait_for_timeout(max(0, 1000 - (time.monotonic() - began) * 1000))
    assert page.evaluate("window.sdkReady") is not True  # still loading: the visitor leaves first
    page.close()
    device = boot["device"]
    wait_until(lambda: len(stored(collector, device)) >= 2, 30, "the page view and the page leave")
    assert names(collector, device) == ["$mp_page_leave", "$mp_web_page_view"]


def test_a_boot_script_for_another_token_is_ignored(context, base_url, collector, token):
    page = booted_page(context, base_url, collector)
    page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
    warnings: list[str] = []
    page.on("console", lambda m: warnings.append(m.text) if m.type == "warning" else None)
    boot = page.evaluate("window.empmixBoot")
    result = Py(page)(f"c = mk({token!r})\nc.track_pageview()\nok = await c.flush(20000)", "[ok, c.get_device_id()]")
    assert result[0] is True and result[1] != boot["device"]
    wait_until(lambda: any("ignoring the boot script" in w for w in warnings), 5, "the warning", page=page)
    assert page.evaluate("window.empmixBoot.ready") is not True  # not taken over


def test_init_without_a_token_or_a_boot_script_names_token(py):
    assert py.raises("EmpMixClient().init()").startswith("ValueError: token")


def test_track_ready_false_sends_no_python_ready(context, base_url, collector):
    page = booted_page(context, base_url, collector)
    page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
    device = page.evaluate("window.empmixBoot.device")
    Py(page)("c = EmpMixClient()\nc.init(flush_interval_ms=100, track_ready=False)\nc.track('x')\nawait c.flush(20000)")
    page.close()
    wait_until(lambda: "x" in names(collector, device), 20, "the event")
    assert names(collector, device) == ["$mp_web_page_view", "x"]

"""The hot path's page guard (``JsBrowser.local_set_event``) in real Chromium, both interpreters.

Once ``track()`` has run the full path, the next events are stored by one call into the page,
which writes only while the stored identity and the page's URL are the ones the template
assumes. These tests arm the hot path (and check that it ran), then change what it assumes
from outside this tab's Python, WITHIN the once-a-second re-check window: the very next
``track()`` must be refused by the page (the full path runs) and go out under the new state.

``watch_guard`` records what each guarded write returned (True: stored by the hot path;
False: refused by the guard) and freezes the hot path's clock at its arming, so the re-check
window cannot expire under a loaded machine: every refusal seen is the page guard's.
"""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import Py
from tests.conftest import open_sdk_page

WATCH_GUARD = """
def watch_guard(client):
    browser = client._core.browser
    calls = []
    write = browser.local_set_event

    def counted(*args):
        size = write(*args)
        calls.append(size > 0)
        return size

    browser.local_set_event = counted
    now = browser.monotonic()
    browser.monotonic = lambda: now  # the hot path's clock only (identity, props keep theirs)
    return calls
"""


def stored_identity_is(page: Any, token: str, js_test: str) -> None:
    """Wait until this page sees the identity a sibling wrote (a write in another tab reaches
    this one asynchronously); ``js_test`` is a JS expression over ``v`` (the stored text or null)."""
    page.wait_for_function(f"(v => {js_test})(localStorage.getItem('empmix_{token}_identity'))", timeout=10_000)


def arm(py: Py, token: str, before: str = "pass") -> None:
    """``c``: a client whose hot path is armed (the second event was stored by the guarded write)."""
    py(
        WATCH_GUARD + f"\nc = mk({token!r}, flush_interval_ms=60000); calls = watch_guard(c)\n{before}"
        "\nc.track('warm'); c.track('hot')"
    )
    assert py("", "calls") == [True], "the hot path was not armed"  # (no getter after this: it would disarm)


def test_a_siblings_login_logout_and_opt_out_within_the_recheck_reach_the_next_track(
    py, sdk_context, base_url, wire, token
):
    sibling = Py(open_sdk_page(sdk_context, base_url, py.interp))
    try:
        sibling(f"o = mk({token!r}, flush_interval_ms=60000)")  # before the first tab arms
        arm(py, token, before="c.register({'plan': 'secret'})")

        sibling("o.identify('usr_sib')")
        stored_identity_is(py.page, token, "v !== null && v.includes('usr_sib')")
        py("c.track('after login')")
        assert py("", "calls") == [True, False]  # refused by the page: the full path ran
        py("c.track('hot again')")
        assert py("", "calls") == [True, False, True]  # re-armed under the new identity

        sibling("o.reset()")
        stored_identity_is(py.page, token, "v !== null && !v.includes('usr_sib')")
        py("c.track('after logout')")
        assert py("", "calls")[-1] is False
        py("c.track('hot 3')")
        assert py("", "calls")[-1] is True
        assert py("ok = await c.flush(5000)", "ok") is True

        sibling("o.opt_out_tracking()")
        stored_identity_is(py.page, token, "v === null")
        py("c.track('after opt-out')")
        assert py("", "calls")[-1] is False
        assert py("", "c.has_opted_out()") is True
        assert not [v for v in py("", f"stored('empmix_{token}_')").values() if "after opt-out" in v]

        ev = {e["event"]: e["properties"] for e in wire.events(token)}
        anon = ev["warm"]["distinct_id"]  # read from the wire: a getter here would re-read the identity
        assert anon.startswith("$device:") and ev["hot"]["distinct_id"] == anon and ev["hot"]["plan"] == "secret"
        assert ev["after login"]["distinct_id"] == ev["after login"]["$user_id"] == "usr_sib"
        assert ev["hot again"]["distinct_id"] == "usr_sib"
        logout = ev["after logout"]
        assert logout["distinct_id"].startswith("$device:") and logout["distinct_id"] != anon
        assert "$user_id" not in logout and "plan" not in logout
        assert ev["hot 3"]["distinct_id"] == logout["distinct_id"]
        assert "after opt-out" not in ev
    finally:
        sibling.page.close()


def test_a_single_page_apps_navigation_reaches_the_next_event(py, wire, token):
    first_url = py.page.url
    arm(py, token)
    try:
        py.page.evaluate("history.pushState({}, '', '/test/spa/next?tab=2')")
        next_url = py.page.url
        assert next_url != first_url
        py("c.track('after navigation')")
        assert py("", "calls") == [True, False]  # refused by the page: the full path ran
        py("c.track('hot again')")
        assert py("", "calls") == [True, False, True]
        assert py("ok = await c.flush(5000)", "ok") is True
        urls = {e["event"]: e["properties"]["$current_url"] for e in wire.events(token)}
        assert urls == {"warm": first_url, "hot": first_url, "after navigation": next_url, "hot again": next_url}
    finally:
        py.page.evaluate(f"history.replaceState({{}}, '', {first_url!r})")

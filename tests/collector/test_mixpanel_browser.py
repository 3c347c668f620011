"""The ``mixpanel-browser`` npm package (unmodified) in headless Chromium against the collector.

The page and a copy of the library are served by the collector's own ``--site`` option, so
page and API share one origin (and the site's CSP/COOP/COEP headers are exercised too).
"""

from __future__ import annotations

import json
import shutil
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.collector.conftest import TOKEN, CollectorProcess, launch_collector, wait_for

ROOT = Path(__file__).resolve().parents[2]
MIXPANEL_DIST = ROOT / "node_modules" / "mixpanel-browser" / "dist" / "mixpanel.umd.js"

pytestmark = pytest.mark.skipif(
    not MIXPANEL_DIST.exists(), reason="node_modules/mixpanel-browser missing: run `npm ci` (./build.sh setup)"
)

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>mixpanel-browser vs empmix-collector</title>
<script src="/mixpanel.umd.js"></script>
<script src="/harness.js"></script>
</head><body>mixpanel-browser harness</body></html>
"""
HARNESS = """
// inline scripts are blocked by the site's CSP, so the harness is a file
window.startMixpanel = function (token, batch) {
  return new Promise(function (resolve) {
    mixpanel.init(token, {
      api_host: location.origin, batch_requests: batch, batch_flush_interval_ms: 50,
      debug: false, persistence: 'localStorage', ip: false,
      loaded: function () { resolve(mixpanel.get_distinct_id()); }
    });
  });
};
window.harnessReady = true;
"""


@pytest.fixture(scope="module")
def browser_collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    root = tmp_path_factory.mktemp("mp-browser")
    site = root / "www"
    site.mkdir()
    (site / "index.html").write_text(PAGE)
    (site / "harness.js").write_text(HARNESS)
    shutil.copy(MIXPANEL_DIST, site / "mixpanel.umd.js")
    proc = launch_collector(root / "collector.db", "--site", str(site))
    yield proc
    proc.stop()



def quoted(distinct_id: str) -> str:
    return urllib.request.quote(distinct_id, safe="")


@pytest.mark.parametrize("batch", [False, True], ids=["xhr-per-call", "batched"])
def test_identify_people_reset_alias(browser: Any, browser_collector: CollectorProcess, batch: bool) -> None:
    run = uuid.uuid4().hex[:8]
    user, signup = f"mp-user-{run}", f"mp-signup-{run}"
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(browser_collector.url + "/index.html")
        page.wait_for_function("window.harnessReady === true")
        assert page.evaluate("() => self.crossOriginIsolated") is True  # COOP/COEP from --site
        device1 = page.evaluate("([t, b]) => startMixpanel(t, b)", [TOKEN, batch])
        assert device1.startswith("$device:")

        page.evaluate("() => { mixpanel.track('view', {page: 'home'}); mixpanel.people.set({plan: 'pro'}); }")
        page.evaluate(
            "(u) => { mixpanel.identify(u); mixpanel.track('buy'); mixpanel.people.increment('orders', 2); }", user
        )
        page.evaluate("() => { mixpanel.reset(); mixpanel.track('view', {page: 'after-logout'}); }")
        device2 = page.evaluate("() => mixpanel.get_distinct_id()")
        assert device2.startswith("$device:") and device2 != device1
        page.evaluate(
            "(u) => { mixpanel.alias(u); mixpanel.track('welcome'); mixpanel.people.set({name: 'new'}); }", signup
        )

        def user_done() -> Any:
            person = browser_collector.api(f"/api/persons/{quoted(user)}")
            if person is None or person["properties"].get("orders") != 2 or "plan" not in person["properties"]:
                return None
            events = browser_collector.api(f"/api/persons/{quoted(user)}/events")["events"]
            return (person, events) if {"view", "$identify", "buy"} <= {e["event"] for e in events} else None

        person, events = wait_for(user_done, timeout=30, what=f"{user} identified with profile")
        assert set(person["distinct_ids"]) == {user, device1}
        assert person["identified"] is True
        assert {k: person["properties"][k] for k in ("plan", "orders")} == {"plan": "pro", "orders": 2}
        assert person["properties"]["$browser"] == "Chrome"  # mixpanel-browser's own $set defaults
        # calls in one tick may share a millisecond and travel in separate requests: compare as sets
        assert sorted(e["event"] for e in events) == ["$identify", "buy", "view"]
        assert [e["time"] for e in events] == sorted(e["time"] for e in events)
        assert all(e["properties"]["mp_lib"] == "web" for e in events)

        def signup_done() -> Any:
            person = browser_collector.api(f"/api/persons/{quoted(signup)}")
            if person is None or person["properties"].get("name") != "new":
                return None
            events = browser_collector.api(f"/api/persons/{quoted(signup)}/events")["events"]
            return (person, events) if "welcome" in {e["event"] for e in events} else None

        person2, events2 = wait_for(signup_done, timeout=30, what=f"{signup} aliased")
        assert set(person2["distinct_ids"]) == {signup, device2}
        assert person2["person_id"] != person["person_id"]  # reset() separated the two people
        assert {"view", "$create_alias", "welcome"} <= {e["event"] for e in events2}
        assert "after-logout" not in json.dumps(events)  # nothing of the new person on the old one

        log = [m for m in browser_collector.api("/api/merges")["merges"] if user in m["to_id"] or signup in m["to_id"]]
        merged = {(m["kind"], m["from_id"], m["to_id"]) for m in log if m["result"] == "merged"}
        assert ("identify", device1, user) in merged and ("alias", device2, signup) in merged
        assert not [m for m in log if m["result"] == "refused"]
    finally:
        context.close()

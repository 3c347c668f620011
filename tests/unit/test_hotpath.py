"""The one-call hot path of ``track()`` (``empmix_web.hotpath``): what it stores is what the full
path would have stored, and every change it cannot see by itself sends the call down the full path.
"""

from __future__ import annotations

import json
from typing import Any

from empmix_web.client import EmpMixClient
from tests.unit.conftest import run, tab
from tests.unit.fake_browser import FakeBrowser, Origin

# the methods of the Browser protocol that cross into the page (the FFI) in a real browser
CROSSINGS = (
    "local_get",
    "local_set",
    "local_remove",
    "local_keys",
    "get_cookies",
    "set_cookie",
    "page_url",
    "set_guard",
    "set_template",
    "local_set_event",
    "send_beacon",
    "post_form",
)
PER_EVENT = ("time", "$insert_id")


def counting(browser: FakeBrowser) -> list[str]:
    """Record the name of every crossing ``browser`` makes from now on."""
    calls: list[str] = []
    for name in CROSSINGS:
        method = getattr(browser, name)

        def counted(*args: Any, _name: str = name, _method: Any = method) -> Any:
            calls.append(_name)
            return _method(*args)

        setattr(browser, name, counted)
    return calls


def stored_events(origin: Origin) -> list[dict[str, Any]]:
    keys = sorted(k for k in origin.local if k.startswith("empmix_tok_q_") and k.endswith("e"))
    return [json.loads(origin.local[k]) for k in keys]


def last_props(origin: Origin) -> dict[str, Any]:
    props: dict[str, Any] = stored_events(origin)[-1]["properties"]
    return props


def without(props: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in props.items() if k not in keys}


def hot(client: EmpMixClient) -> bool:
    """True when the next track() of ``client`` can take the hot path."""
    return client._core.hot._template is not None  # type: ignore[union-attr]


def test_after_the_first_event_each_track_is_one_call_into_the_page(paused):
    a, browser = tab(paused)
    a.register({"plan": "pro"})
    a.track("first", {"n": 0})
    calls = counting(browser)
    for i in range(1, 6):
        a.track("next", {"n": i})
    assert calls == ["local_set_event"] * 5
    assert [e["properties"]["n"] for e in stored_events(paused)] == [0, 1, 2, 3, 4, 5]


def test_the_hot_path_stores_what_the_full_path_would(paused):
    a, browser = tab(
        paused, url="http://127.0.0.1/p?utm_source=news", referrer="https://ref.example/x", track_marketing=True
    )
    a.identify("usr_h")
    a.register({"plan": "pro", "nested": {"a": [1, "é"]}})
    props = {"price": 9.99, "beta": True, "tags": ["x", "y"], "none": None, "text": 'q"\\\u2028'}
    a.track("e", props)
    assert hot(a) and browser.guarded_writes == 0
    a.track("e", props)
    assert browser.guarded_writes == 1  # the second event took the hot path
    full, fast = stored_events(paused)[-2:]
    assert fast["event"] == full["event"] == "e"
    assert without(fast["properties"], *PER_EVENT) == without(full["properties"], *PER_EVENT)
    assert fast["properties"]["$insert_id"] != full["properties"]["$insert_id"]
    assert fast["properties"]["utm_source"] == "news" and fast["properties"]["$user_id"] == "usr_h"


def test_a_navigation_is_seen_by_the_next_event(paused):
    a, browser = tab(paused, url="http://127.0.0.1/one", track_marketing=True)
    a.track("e")
    a.track("e")
    assert browser.guarded_writes == 1  # the hot path is live when the page navigates
    browser.url = "http://127.0.0.1/two?utm_campaign=spring"
    a.track("e")
    props = last_props(paused)
    assert props["$current_url"] == browser.url and props["utm_campaign"] == "spring"


def test_this_tabs_register_and_unregister_reach_the_next_event(paused):
    a, browser = tab(paused)
    a.track("e")
    a.track("e")
    assert browser.guarded_writes == 1
    a.register({"plan": "pro"})
    a.track("e")
    assert last_props(paused)["plan"] == "pro"
    a.unregister("plan")
    a.track("e")
    assert "plan" not in last_props(paused)


def test_a_siblings_register_is_seen_within_the_recheck(paused, monkeypatch):
    monkeypatch.setattr(FakeBrowser, "monotonic", lambda self: self.origin.clock_ms / 1000)
    a, browser = tab(paused)
    a.track("e")
    a.track("e")
    b, _ = tab(paused)
    b.register({"plan": "team"})
    a.track("e")
    assert "plan" not in last_props(paused)  # within the second: the cached value
    assert browser.guarded_writes == 2
    paused.advance(1001)
    a.track("e")
    assert last_props(paused)["plan"] == "team"


def test_a_siblings_login_logout_and_opt_out_are_seen_by_the_next_call(paused):
    a, browser = tab(paused)
    a.register({"plan": "secret"})
    a.track("e")
    a.track("e")
    assert browser.guarded_writes == 1  # the hot path is live when the sibling logs in
    b, _ = tab(paused)
    b.identify("usr_sib")
    a.track("after_login")
    assert last_props(paused)["distinct_id"] == "usr_sib"
    b.reset()
    a.track("after_logout")
    props = last_props(paused)
    assert props["distinct_id"] == b.get_distinct_id() and "$user_id" not in props and "plan" not in props
    b.opt_out_tracking()
    a.track("after_opt_out")
    assert stored_events(paused) == [] and a.has_opted_out()
    assert not any("after_opt_out" in v for v in paused.local.values())


def test_properties_named_like_templated_ones_win(paused):
    a, browser = tab(paused)
    a.track("e")
    a.track("e", {"$current_url": "custom", "$screen_width": 1, "time": 5})
    assert browser.guarded_writes == 0  # built whole: the template would repeat those keys
    props = last_props(paused)
    assert props["$current_url"] == "custom" and props["$screen_width"] == 1 and props["time"] == 5


def test_a_super_property_named_like_a_per_event_one_wins_on_every_event(paused, monkeypatch):
    monkeypatch.setattr(FakeBrowser, "monotonic", lambda self: self.origin.clock_ms / 1000)
    a, browser = tab(paused)
    a.register({"time": 7, "$session_id": "mine"})
    a.track("e")
    a.track("e")
    a.track("e", {"$insert_id": "given"})
    assert browser.guarded_writes == 0  # built whole: the page writes time, $insert_id and $session_id
    events = [e["properties"] for e in stored_events(paused)]
    assert [(p["time"], p["$session_id"]) for p in events] == [(7, "mine")] * 3
    assert events[2]["$insert_id"] == "given" and events[0]["$insert_id"] != events[1]["$insert_id"]
    for text in (v for k, v in paused.local.items() if k.startswith("empmix_tok_q_")):  # no key twice
        names = [k for k, _ in json.loads(text, object_pairs_hook=list)[1][1]]
        assert len(names) == len(set(names)), names


def test_a_timed_event_carries_its_duration_once(paused):
    a, browser = tab(paused)
    a.track("warm")
    a.time_event("step")
    paused.advance(1500)
    a.track("step")
    assert last_props(paused)["$duration"] == 1.5 and browser.guarded_writes == 0
    a.track("step")
    assert "$duration" not in last_props(paused) and browser.guarded_writes == 1


def test_a_full_quota_after_arming_keeps_the_event_in_memory_and_says_so(origin):
    async def body() -> None:
        a, _ = tab(origin, flush_interval_ms=60_000)
        a.track("warm")
        origin.quota_chars = origin.stored_chars()
        a.track("refused", {"n": 1})
        assert not any("refused" in v for v in origin.local.values())
        assert await a.flush(2000)
        got = [r for url, r in origin.received if "/track/" in url and r["event"] == "refused"]
        assert got[0]["properties"]["$persistence"] == "memory"  # type: ignore[index]

    run(body)

"""One encoder of events (issue 20, 9): the hot path stores, byte for byte, what the full path
stores for the same inputs, over generated super properties and event properties; and with
``debug=True`` the SDK says why an event took the full path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from empmix_web.browser import NetworkError
from empmix_web.queue import parse_key
from empmix_web.records import PAGE_FIELDS
from tests.unit.conftest import tab
from tests.unit.fake_browser import FakeBrowser, Origin

# names the SDK itself sets (shared and per-event), so that generated properties collide with them
RESERVED = [
    "time",
    "$insert_id",
    "$session_id",
    "$duration",
    "$persistence",
    "$current_url",
    "$screen_width",
    "$referrer",
    "token",
    "distinct_id",
    "$device_id",
    "mp_lib",
    "$lib_version",
    "$user_id",
]
NAMES = st.one_of(st.sampled_from(RESERVED + ["plan", "n", "é", ""]), st.text(max_size=6))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(NAMES, inner, max_size=3), max_leaves=6
)
PROPS = st.dictionaries(NAMES, VALUES, max_size=5)


def down(url: str, records: Any) -> Any:
    raise NetworkError("offline")


def last_two(origin: Origin, prefix: str = "empmix_tok_q_") -> list[str]:
    """The texts of the two newest queued records, as stored."""
    keys = sorted((k for k in origin.local if k.startswith(prefix)), key=lambda k: parse_key(prefix, k)[1])
    return [origin.local[k] for k in keys[-2:]]


def pairs(text: str) -> list[tuple[str, Any]]:
    """An event's properties in stored order, duplicates kept."""
    event: list[tuple[str, Any]] = json.loads(text, object_pairs_hook=list)
    return dict(event)["properties"]  # type: ignore[no-any-return]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(super_props=PROPS, first=PROPS, props=PROPS, user=st.booleans())
def test_the_hot_path_stores_the_full_paths_bytes(
    super_props: dict[str, Any], first: dict[str, Any], props: dict[str, Any], user: bool
) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FakeBrowser, "monotonic", lambda self: self.origin.clock_ms / 1000)
        origin = Origin()
        origin.server = down
        c, browser = tab(origin, url="http://127.0.0.1/p?utm_source=s", track_marketing=True)
        if user:
            c.identify("usr_b")
        if super_props:
            c.register(super_props)
        c.track("warm")
        core = c._core
        assert core is not None
        ids = core.records.insert_ids
        c.track("e", first)  # the full path, whose template the next event may use
        writes = browser.guarded_writes
        template = core.hot._template
        c.track("e", props)  # the hot path (the page assembles the event), where the template serves
        served = template is not None and template.names.union(PAGE_FIELDS).isdisjoint(props)
        assert template is not None or not set(PAGE_FIELDS).isdisjoint(super_props)  # armed, but for those
        assert browser.guarded_writes == writes + served  # it took what it can serve
        core.hot.disarm()
        ids._count -= 1  # the same $insert_id on both paths (the clock stands still)
        c.track("e", props)  # the full path
        hot, full = last_two(origin)
        assert hot == full
        assert full == json.dumps(json.loads(full), separators=(",", ":"), ensure_ascii=False)  # as dumps writes it
        stored = pairs(full)
        names = [k for k, _ in stored]
        assert len(names) == len(set(names))  # no property twice
        got = json.loads(full)["properties"]
        assert all(got[k] == v for k, v in props.items())  # the event's own win
        assert all(got[k] == v for k, v in super_props.items() if k not in props)  # then super properties
        for key, value in (("mp_lib", "empmix-web"), ("$current_url", browser.url), ("utm_source", "s")):
            if key not in props and key not in super_props:
                assert got[key] == value


def test_debug_logs_why_the_hot_path_did_not_run(origin: Origin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FakeBrowser, "monotonic", lambda self: self.origin.clock_ms / 1000)
    origin.server = down
    c, browser = tab(origin, debug=True)
    c.track("first")
    c.track("hot")
    c.time_event("timed")
    c.track("timed")
    c.track("over", {"$current_url": "mine"})
    c.register({"plan": "pro"})
    c.track("registered")
    origin.advance(1000)
    c.track("recheck")
    browser.url = "http://127.0.0.1/next"
    c.track("navigated")
    lines = [m for level, m in browser.console_lines if "the full path" in m]
    said = {line.split("'")[1]: line.split("hot path: ", 1)[1] for line in lines}
    assert "hot" not in said and set(said) == {"first", "timed", "over", "registered", "recheck", "navigated"}
    assert said["first"].startswith("no template yet")
    assert said["timed"].startswith("a time_event() timer runs")
    assert said["over"].startswith("the event's properties override shared ones")
    assert said["registered"].startswith("super properties changed")
    assert said["recheck"].startswith("the once-a-second re-read")
    assert said["navigated"].startswith("the page's guard refused")


def test_without_debug_nothing_is_logged(origin: Origin) -> None:
    origin.server = down
    c, browser = tab(origin)
    c.track("first")
    c.time_event("timed")
    c.track("timed")
    assert not [m for _, m in browser.console_lines if "full path" in m]

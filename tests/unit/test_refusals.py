"""A programming error changes nothing: every public call checks its arguments (and ``track()``
encodes its properties) before a timer, the session, the queue or a flag changes (issue 20, 10).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.conftest import tab
from tests.unit.fake_browser import FakeBrowser, Origin
from tests.unit.test_handover import booted, start

NAN = float("nan")


def events(origin: Origin) -> list[dict[str, Any]]:
    keys = sorted(
        (k for k in origin.local if k.startswith("empmix_tok_q_") and k.endswith("e")),
        key=lambda k: int(k.rsplit("_", 1)[1][:-1]),
    )
    return [json.loads(origin.local[k]) for k in keys]


def test_a_refused_track_leaves_its_timer_running_and_nothing_changed(paused: Origin) -> None:
    c, _ = tab(paused)
    c.time_event("step")
    paused.advance(1500)  # a session touch now would write the session's last activity
    before = dict(paused.local)
    with pytest.raises(ValueError, match=r"properties\['v'\]"):
        c.track("step", {"v": NAN})
    assert paused.local == before
    c.track("step")
    assert events(paused)[-1]["properties"]["$duration"] == 1.5


def test_a_refused_track_on_the_hot_path_changes_nothing(paused: Origin, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(FakeBrowser, "monotonic", lambda self: self.origin.clock_ms / 1000)
    c, browser = tab(paused)
    c.track("warm")
    c.track("warm")
    assert browser.guarded_writes == 1  # the hot path is live
    paused.advance(500)  # within the second: still the hot path, and its session write is not due
    sessions = c._core.sessions  # type: ignore[union-attr]
    before, last = dict(paused.local), sessions._cached.last  # type: ignore[union-attr]
    with pytest.raises(ValueError, match=r"properties\['v'\]\[0\]"):
        c.track("e", {"v": [NAN]})
    assert paused.local == before and browser.guarded_writes == 1
    assert sessions._cached.last == last  # type: ignore[union-attr]  # the session was not touched
    c.track("e", {"v": [1]})
    assert browser.guarded_writes == 2 and events(paused)[-1]["properties"]["v"] == [1]


def test_a_refused_track_keeps_the_link_to_the_cookieless_visit(origin: Origin) -> None:
    a, _ = tab(origin, cookieless="until_consent")
    b, _ = tab(origin, cookieless="until_consent")
    a.track("A before")
    b.opt_in_tracking()  # consent in the sibling: a's next event joins its cookieless visit
    with pytest.raises(ValueError):
        a.track("A refused", {"v": NAN})
    a.track("A after")
    after = [e for e in events(origin) if e["event"] == "A after"]
    assert after and after[0]["properties"].get("$cookieless_link") is True


def test_a_refused_page_view_in_a_booted_page_keeps_the_boot_page_view(origin: Origin) -> None:
    c = start(booted(origin))
    with pytest.raises(ValueError, match=r"properties\['v'\]"):
        c.track_pageview({"v": NAN})
    assert c._core is not None and c._core.boot_pageview  # the load's page view is still counted once
    c.track_pageview()
    assert not c._core.boot_pageview


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda c: c.identify("usr_1", {"v": NAN}), ValueError),
        (lambda c: c.identify("usr_1", signature="nope"), ValueError),
        (lambda c: c.register({"v": NAN}), ValueError),
        (lambda c: c.set_group("company", [1.5]), TypeError),
        (lambda c: c.add_group("company", None), TypeError),
        (lambda c: c.increment({"a": 1, "b": NAN}), ValueError),
        (lambda c: c.union({"a": 1}), TypeError),
        (lambda c: c.track_with_groups("e", {"v": NAN}, {"company": 1}), ValueError),
        (lambda c: c.track_with_groups("e", {}, {"company": 1.5}), TypeError),
        (lambda c: c.get_group("company", 1).set({"v": NAN}), ValueError),
        (lambda c: c.time_event(""), ValueError),
        (lambda c: c.alias("null"), ValueError),
    ],
)
def test_every_refused_call_changes_nothing(paused: Origin, call: Any, error: type[Exception]) -> None:
    c, _ = tab(paused)
    c.time_event("t")
    c.track("warm")
    paused.advance(1500)
    before, cookies = dict(paused.local), dict(paused.cookies)
    with pytest.raises(error):
        call(c)
    assert paused.local == before and paused.cookies == cookies

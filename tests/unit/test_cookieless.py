"""Cookieless operation (``init(cookieless=...)``, issue 19) on the in-memory browser: what is
stored (nothing, or only the refusal), what goes out, and the switch at consent."""

from __future__ import annotations

from typing import Any

import pytest

from empmix_web.client import EmpMixClient
from tests.unit.conftest import run, tab
from tests.unit.fake_browser import FakeBrowser, Origin


class Recording(FakeBrowser):
    """A tab that records every storage and cookie write it is asked for (probes included)."""

    def __init__(self, origin: Origin, **kwargs: Any) -> None:
        super().__init__(origin, **kwargs)
        self.writes: list[str] = []

    def local_set(self, key: str, value: str) -> None:
        self.writes.append(key)
        super().local_set(key, value)

    def set_cookie(self, cookie: str) -> None:
        self.writes.append(cookie.split("=", 1)[0])
        super().set_cookie(cookie)


def client(origin: Origin, mode: str, **options: Any) -> tuple[EmpMixClient, Recording]:
    browser = Recording(origin)
    options.setdefault("flush_interval_ms", 10)
    options.setdefault("track_marketing", False)
    return EmpMixClient("tok", browser=browser, cookieless=mode, **options), browser


def sent(origin: Origin, endpoint: str = "/track/") -> list[dict[str, Any]]:
    return [r for url, r in origin.received if endpoint in url]


def test_always_stores_nothing_through_a_whole_visit(origin: Origin) -> None:
    async def body() -> None:
        c, browser = client(origin, "always", track_marketing=True)
        c.track_pageview()
        c.register({"plan": "free"})
        c.set_user_properties({"name": "Ann"})  # held, in memory
        c.track("Signed Up")
        c.identify("usr_ann")
        c.track("Logged In")
        c.reset()
        c.track("Browsed")
        c.opt_in_tracking()
        assert await c.flush(2000)
        assert browser.writes == [] and origin.local == {} and origin.cookies == {}
        events = sent(origin)
        assert [e["event"] for e in events] == [
            "$mp_web_page_view",
            "Signed Up",
            "$identify",
            "Logged In",
            "$cookieless_reset",
            "Browsed",
        ]
        assert all("$device_id" not in e["properties"] for e in events)
        ids = [e["properties"]["distinct_id"] for e in events]
        assert ids == ["$cookieless", "$cookieless", "usr_ann", "usr_ann", "$cookieless", "$cookieless"]
        assert events[2]["properties"]["$anon_distinct_id"] == "$cookieless"
        assert events[1]["properties"]["plan"] == "free"  # super properties, in memory
        assert "plan" not in events[5]["properties"]  # gone with reset()
        sessions = {e["properties"]["$session_id"] for e in events[:4]}
        assert len(sessions) == 1 and events[5]["properties"]["$session_id"] not in sessions
        profiles = sent(origin, "/engage/")  # first touch ($set_once) and the $set, held until identify
        assert {"$set", "$set_once"} <= {op for p in profiles for op in p if op.startswith("$set")}
        assert all(p["$distinct_id"] == "usr_ann" and "$device_id" not in p for p in profiles)
        assert c.get_distinct_id() == "$cookieless" and c.get_device_id() is None

    run(body)


def test_until_consent_is_cookieless_then_persistent_from_consent_on(origin: Origin) -> None:
    async def body() -> None:
        c, browser = client(origin, "until_consent")
        c.track_pageview()
        c.track_pageview()
        assert browser.writes == [] and c.get_distinct_id() == "$cookieless"
        c.opt_in_tracking()
        device = c.get_device_id()
        c.track("Signed Up")
        assert await c.flush(2000)
        events = sent(origin)
        assert [e["event"] for e in events] == ["$mp_web_page_view", "$mp_web_page_view", "$opt_in", "Signed Up"]
        assert [e["properties"]["distinct_id"] for e in events[:2]] == ["$cookieless", "$cookieless"]
        opt_in = events[2]["properties"]
        assert opt_in["$cookieless_link"] is True and opt_in["$device_id"] == device  # joins the visit
        assert "$cookieless_link" not in events[3]["properties"]  # the first record only
        assert origin.local["empmix_tok_consent"] == "in"
        assert device is not None and device in origin.local["empmix_tok_identity"]
        assert browser.writes[0] == "empmix_tok_consent"  # nothing was written before consent

    run(body)


def test_a_refusal_is_the_one_thing_stored_and_tracking_stays_cookieless(origin: Origin) -> None:
    async def body() -> None:
        c, browser = client(origin, "until_consent")
        c.track_pageview()
        c.opt_out_tracking()
        c.track("Browsed")
        assert await c.flush(2000)
        assert origin.local == {"empmix_tok_consent": "out"} and origin.cookies == {}
        assert c.has_opted_out() and c.get_distinct_id() == "$cookieless"
        assert [e["properties"]["distinct_id"] for e in sent(origin)] == ["$cookieless", "$cookieless"]
        again, _ = client(origin, "until_consent")  # a returning visitor who refused: cookieless
        again.track("Back")
        assert again.get_distinct_id() == "$cookieless" and origin.local == {"empmix_tok_consent": "out"}

    run(body)


def test_a_returning_visitor_who_consented_starts_persistent(origin: Origin) -> None:
    async def body() -> None:
        first, _ = client(origin, "until_consent")
        first.opt_in_tracking()
        device = first.get_device_id()
        again, _ = client(origin, "until_consent")
        again.track("Back")
        assert again.get_device_id() == device
        assert await again.flush(2000)
        back = [e for e in sent(origin) if e["event"] == "Back"][0]["properties"]
        assert back["$device_id"] == device and "$cookieless_link" not in back

    run(body)


def test_consent_in_one_tab_holds_in_every_tab_at_their_next_call(origin: Origin) -> None:
    async def body() -> None:
        a, _ = client(origin, "until_consent")
        b, _ = client(origin, "until_consent")
        b.track("B before")
        a.opt_in_tracking()
        b.track("B after")  # the sibling's consent, seen at this call
        assert b.get_device_id() == a.get_device_id() is not None
        a.opt_out_tracking()  # and a refusal, after consent
        b.track("B refused")
        assert await a.flush(2000) and await b.flush(2000)
        events = {e["event"]: e["properties"] for e in sent(origin)}
        assert events["B before"]["distinct_id"] == "$cookieless"
        assert events["B after"]["$device_id"] == a.get_device_id() or events["B after"]["$cookieless_link"]
        assert events["B after"]["$cookieless_link"] is True
        assert events["B refused"]["distinct_id"] == "$cookieless" and "$device_id" not in events["B refused"]
        assert origin.local == {"empmix_tok_consent": "out"} and origin.cookies == {}

    run(body)


def test_identified_while_cookieless_stays_identified_at_consent(origin: Origin) -> None:
    async def body() -> None:
        c, _ = client(origin, "until_consent")
        c.identify("usr_bo")
        c.opt_in_tracking()
        c.track("After")
        assert await c.flush(2000)
        assert c.get_user_id() == "usr_bo" and c.get_device_id() is not None
        names = [(e["event"], e["properties"]["distinct_id"]) for e in sent(origin)]
        assert ("$identify", "usr_bo") in names and names[-1] == ("After", "usr_bo")
        links = [e["properties"] for e in sent(origin) if e["properties"].get("$anon_distinct_id")]
        assert {p["$anon_distinct_id"] for p in links} == {"$cookieless", "$device:" + str(c.get_device_id())}

    run(body)


def test_always_with_opt_out_sends_nothing_more_and_stores_nothing(origin: Origin) -> None:
    async def body() -> None:
        c, browser = client(origin, "always")
        c.track("Before")
        assert await c.flush(2000)
        c.opt_out_tracking()  # as without cookieless mode, also drops what is still queued
        c.track("After")
        assert await c.flush(500)
        assert [e["event"] for e in sent(origin)] == ["Before"] and c.has_opted_out()
        assert browser.writes == []

    run(body)


@pytest.mark.parametrize("value", ["sometimes", "", "ALWAYS"])
def test_an_unknown_mode_raises_naming_cookieless(origin: Origin, value: str) -> None:
    with pytest.raises(ValueError, match="cookieless"):
        tab(origin, cookieless=value)
    assert origin.local == {} and origin.received == []


def test_a_mode_that_is_not_a_string_raises_naming_cookieless(origin: Origin) -> None:
    with pytest.raises(TypeError, match="cookieless"):
        tab(origin, cookieless=True)


@pytest.mark.parametrize("mode", ["always", "until_consent"])
def test_opt_out_by_default_with_cookieless_raises(origin: Origin, mode: str) -> None:
    with pytest.raises(ValueError, match="opt_out_by_default"):
        tab(origin, cookieless=mode, opt_out_by_default=True)


def test_never_is_todays_behaviour(origin: Origin) -> None:
    async def body() -> None:
        c, _ = tab(origin, cookieless="never")
        c.track("x")
        assert await c.flush(2000)
        assert sent(origin)[0]["properties"]["distinct_id"].startswith("$device:")
        assert "empmix_tok_identity" in origin.local

    run(body)

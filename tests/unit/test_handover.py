"""``init()`` in a page where the boot script ran (``handover.py``), on the in-memory browser.

The boot script's effects are written here as it writes them (identity, one queued page view
under its own tab, ``window.empmixBoot``); that the real script writes exactly this is what
tests/browser/test_boot_contract.py checks in Chromium.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from empmix_web.browser import HttpReply
from empmix_web.client import EmpMixClient
from empmix_web.identity import Identity
from tests.unit.conftest import run
from tests.unit.fake_browser import FakeBrowser, Origin

BOOT_TAB = "b0075c1a7e11"
DEVICE = "5a7e0bd7-1417-4fc0-80c6-f8fade943af0"
PAGEVIEW_ID = "51b2e565348735668dbe000000000001"


def booted(
    origin: Origin, token: str = "tok", config: dict[str, Any] | None = None, *, out: bool = False, store: bool = True
) -> FakeBrowser:
    """A tab whose boot script has run: what it stores, and the state it publishes."""
    browser = FakeBrowser(origin)
    state: dict[str, Any] = {"token": token, "config": config or {}}
    if out:
        state["out"] = True
    else:
        ident = json.dumps(Identity.anonymous(DEVICE).to_json(), separators=(",", ":"))
        view = {
            "event": "$mp_web_page_view",
            "properties": {
                "token": token,
                "distinct_id": "$device:" + DEVICE,
                "$device_id": DEVICE,
                "time": 1,
                "$insert_id": PAGEVIEW_ID,
            },
        }
        if store:
            origin.local[f"empmix_{token}_identity"] = ident
            origin.local[f"empmix_{token}_q_{BOOT_TAB}_0000000001e"] = json.dumps(view)
        state.update(tab=BOOT_TAB, device=DEVICE, pageview=PAGEVIEW_ID)
    browser.boot = state
    return browser


def sent(origin: Origin, name: str | None = None) -> list[dict[str, Any]]:
    return [r for url, r in origin.received if "/track/" in url and (name is None or r["event"] == name)]


def start(browser: FakeBrowser, token: str | None = None, **options: Any) -> EmpMixClient:
    client = EmpMixClient(browser=browser)
    options.setdefault("flush_interval_ms", 10)
    options.setdefault("track_marketing", False)
    client.init(token, **options)
    return client


def test_init_without_token_adopts_the_boot_script(origin: Origin) -> None:
    async def body() -> None:
        browser = booted(origin)
        c = start(browser)
        assert c.get_device_id() == DEVICE  # no second device id
        c.track_pageview()  # this load's page view: the boot script counted it
        assert await c.flush(2000)
        names = [e["event"] for e in sent(origin)]
        assert names == ["$mp_web_page_view", "$python_ready"]
        assert sent(origin)[0]["properties"]["$insert_id"] == PAGEVIEW_ID  # the boot's record
        ready = sent(origin, "$python_ready")[0]["properties"]
        assert ready["$ready_ms"] == 1235 and ready["$interpreter"] == "pyodide"
        assert ready["$device_id"] == DEVICE
        assert browser.boot is not None and browser.boot["ready"] is True
        assert not [k for k in origin.local if "_q_" in k]  # delivered: nothing left queued
        c.track_pageview()  # a later page view (a single-page app's navigation) counts
        assert await c.flush(2000)
        assert [e["event"] for e in sent(origin)].count("$mp_web_page_view") == 2

    run(body)


def test_the_sdk_goes_on_with_the_boot_scripts_tab(origin: Origin) -> None:
    async def body() -> None:
        origin.server = lambda url, records: HttpReply(503, "", None)
        c = start(booted(origin), "tok")
        c.track("Next")
        keys = sorted(k for k in origin.local if "_q_" in k)
        # the boot's record is adopted under its key; new ones follow it on the same tab
        assert keys[0] == f"empmix_tok_q_{BOOT_TAB}_0000000001e"
        assert all(k.startswith(f"empmix_tok_q_{BOOT_TAB}_") for k in keys) and len(keys) == 3
        assert c._core is not None and c._core.tab_id == BOOT_TAB
        assert c._core.tabs.own_lock_held  # the boot script holds the tab's lock

    run(body)


def test_explicit_arguments_win_over_data_config(origin: Origin) -> None:
    async def body() -> None:
        config = {"api_host": "https://collector.example", "opt_out_by_default": True}
        c = start(booted(origin, config=config), api_host="https://mine.example", opt_out_by_default=False)
        c.track("Clicked")
        assert await c.flush(2000)
        urls = {url.split("/track/")[0] for url, r in origin.received}
        assert urls == {"https://mine.example"}

    run(body)


def test_data_config_options_apply(origin: Origin) -> None:
    async def body() -> None:
        config = {"api_host": "https://collector.example", "track_marketing": True}
        c = start(booted(origin, config=config), track_marketing=None)  # None: not given
        assert await c.flush(2000)
        assert {url.split("/track/")[0] for url, r in origin.received} == {"https://collector.example"}
        assert c._core is not None and c._core.config.track_marketing is True

    run(body)


def test_opt_out_by_default_in_data_config_sends_nothing(origin: Origin) -> None:
    async def body() -> None:
        c = start(booted(origin, config={"opt_out_by_default": True}, out=True))
        c.track_pageview()
        c.track("Clicked")
        assert await c.flush(500)
        assert origin.received == [] and c.has_opted_out()
        assert not [k for k in origin.local if k.startswith("empmix_tok_") and not k.endswith("_consent")]

    run(body)


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"api_host": "ftp://x.example"}, "api_host"),
        ({"session_timeout_ms": "30"}, "data-config session_timeout_ms"),
        ({"api_routes": {"nope": "x/"}}, "api_routes"),
    ],
)
def test_a_bad_data_config_value_raises_naming_it(origin: Origin, config: dict[str, Any], error: str) -> None:
    with pytest.raises((TypeError, ValueError), match=error):
        start(booted(origin, config=config))
    assert origin.received == []


def test_without_token_or_boot_script_init_raises_naming_token(origin: Origin) -> None:
    with pytest.raises(ValueError, match="token"):
        EmpMixClient(browser=FakeBrowser(origin)).init()
    assert origin.local == {} and origin.cookies == {}


def test_a_boot_script_for_another_token_is_ignored_with_a_warning(origin: Origin) -> None:
    async def body() -> None:
        browser = booted(origin, token="other")
        c = start(browser, "tok")
        assert any("other" in w and "ignoring the boot script" in w for w in browser.warnings())
        assert c.get_device_id() != DEVICE
        c.track_pageview()  # not counted by a boot script of this token: tracked
        assert await c.flush(2000)
        mine = [e for e in sent(origin) if e["properties"]["token"] == "tok"]
        assert [e["event"] for e in mine] == ["$mp_web_page_view"]
        assert browser.boot is not None and "ready" not in browser.boot  # left alone
        assert c._core is not None and c._core.tab_id != BOOT_TAB

    run(body)


def test_track_ready_false_tracks_no_ready_event(origin: Origin) -> None:
    async def body() -> None:
        browser = booted(origin)
        c = start(browser, track_ready=False)
        assert await c.flush(2000)
        assert [e["event"] for e in sent(origin)] == ["$mp_web_page_view"]
        assert browser.boot is not None and browser.boot["ready"] is True  # still taken over

    run(body)


def test_a_second_client_of_the_page_neither_adopts_nor_reports_ready(origin: Origin) -> None:
    async def body() -> None:
        browser = booted(origin)
        first = start(browser)
        second = start(browser)
        assert second._core is not None and second._core.tab_id != BOOT_TAB
        second.track_pageview()  # not this client's load to skip twice
        assert await first.flush(2000) and await second.flush(2000)
        names = [e["event"] for e in sent(origin)]
        assert names.count("$python_ready") == 1 and names.count("$mp_web_page_view") == 2

    run(body)


def test_page_view_properties_in_a_booted_page_are_dropped_with_a_warning(origin: Origin) -> None:
    async def body() -> None:
        browser = booted(origin)
        c = start(browser)
        c.track_pageview({"page_type": "pricing"})
        assert await c.flush(2000)
        assert [e["event"] for e in sent(origin)].count("$mp_web_page_view") == 1
        assert any("pageview_properties" in w and "page_type" in w for w in browser.warnings())
        with pytest.raises(TypeError):
            c.track_pageview({"bad": object()})  # still checked first

    run(body)


def test_the_boot_scripts_device_is_kept_when_storage_refuses_everything(origin: Origin) -> None:
    async def body() -> None:
        origin.storage_broken = True
        browser = booted(origin, store=False)
        c = start(browser)
        assert c.get_device_id() == DEVICE
        assert await c.flush(2000)
        assert sent(origin, "$python_ready")[0]["properties"]["$device_id"] == DEVICE

    run(body)


def test_an_unknown_data_config_option_is_ignored_with_a_warning(origin: Origin) -> None:
    async def body() -> None:
        browser = booted(origin, config={"api_hots": "https://typo.example", "pageview_properties": {"a": 1}})
        c = start(browser)
        assert await c.flush(2000)
        assert any("api_hots" in w for w in browser.warnings())
        assert not any("pageview_properties" in w for w in browser.warnings())  # the boot's own
        assert {url.split("/track/")[0] for url, r in origin.received} == {"http://127.0.0.1"}

    run(body)


def test_hostile_boot_state_is_data(origin: Origin) -> None:
    async def body() -> None:
        browser = FakeBrowser(origin)
        browser.boot = {"token": "tok", "config": "not a dict", "tab": "x" * 500, "device": 7, "pageview": [1]}
        c = start(browser)
        assert c._core is not None and c._core.tab_id != "x" * 500
        c.track_pageview()  # the state names no page view of this load: tracked
        assert await c.flush(2000)
        assert sorted(e["event"] for e in sent(origin)) == ["$mp_web_page_view", "$python_ready"]

    run(body)

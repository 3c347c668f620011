"""The guide's and the collector page's Python blocks that the Chromium docs test does not run
(``tests/browser/test_docs_flows.py`` runs the README's quick start and the Groups block), run
here as written, with only their placeholders bound: a change to the documented call is a
change to what runs."""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from empmix_web.client import EmpMixClient
from tests.conftest import ROOT
from tests.unit.conftest import run
from tests.unit.fake_browser import FakeBrowser, Origin

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)


def python_blocks(page: str) -> list[str]:
    return [block for lang, block in FENCE.findall((ROOT / "docs" / page).read_text()) if lang == "python"]


def the_block(page: str, marker: str) -> str:
    (block,) = [block for block in python_blocks(page) if marker in block]
    return block


def run_init_block(block: str, origin: Origin, **names: Any) -> tuple[EmpMixClient, FakeBrowser]:
    """``block`` executed with ``EmpMix`` a fresh client on the fake browser and ``"TOKEN"`` the token."""
    browser = FakeBrowser(origin)
    client = EmpMixClient(browser=browser)
    exec(compile(block, "guide.md", "exec"), {"EmpMix": client, **names})
    return client, browser


def test_every_python_block_of_the_docs_is_run_somewhere():
    guide = python_blocks("guide.md")
    markers = ("set_group(", "bootstrap=", "api_routes=")  # set_group: the Chromium docs test
    assert len(guide) == len(markers) and all(any(m in b for b in guide) for m in markers)
    assert len(python_blocks("collector.md")) == 1


def test_the_bootstrap_block_adopts_the_servers_device_and_user(origin):
    block = the_block("guide.md", "bootstrap=")

    async def body():
        client, _ = run_init_block(block, origin, server_device_id="srv-7f3a", server_user_id="usr_42")
        assert client.get_device_id() == "srv-7f3a"
        assert client.get_distinct_id() == client.get_user_id() == "usr_42"
        client.track("Viewed")
        assert await client.flush(2000)
        events = [
            (r["event"], r["properties"]["distinct_id"], r["properties"]["$device_id"])
            for _url, r in origin.received
            if "event" in r
        ]
        assert ("$identify", "usr_42", "srv-7f3a") in events and ("Viewed", "usr_42", "srv-7f3a") in events
        identify = next(r for _url, r in origin.received if r.get("event") == "$identify")
        assert identify["properties"]["$anon_distinct_id"] == "$device:srv-7f3a"

    run(body)


def test_the_api_routes_block_sends_each_kind_to_its_route(origin):
    block = the_block("guide.md", "api_routes=")

    async def body():
        client, _ = run_init_block(block, origin)
        client.track("Viewed")
        client.identify("usr_1")  # profile updates wait for an identified user
        client.set_user_properties({"plan": "Pro"})
        client.get_group("company", "acme").set({"name": "Acme"})
        assert await client.flush(2000)
        paths = sorted({url.split("?")[0] for url, _ in origin.received})
        assert paths == ["http://127.0.0.1/e/", "http://127.0.0.1/g/", "http://127.0.0.1/p/"]

    run(body)


def test_the_signature_line_is_sign_identity():
    from empmix_collector import sign_identity

    block = the_block("collector.md", "hmac.new(")
    line = block.splitlines()[0].split("#")[0].strip()
    secret, user_id = "s3cret-\u00e9", "usr_\u00fc42"
    names = {"hmac": hmac, "hashlib": hashlib, "secret": secret, "user_id": user_id}
    assert eval(line, names) == sign_identity(secret, user_id)
    assert "sign_identity(secret, user_id)" in block

"""The user documentation's sign-up, login and logout flows, run verbatim inside PyScript."""

from __future__ import annotations

import pytest

from tests.conftest import PAGE_READY_MS
from tests.harness import INTERPRETERS


@pytest.mark.parametrize("interp", INTERPRETERS)
def test_documentation_flows_in_pyscript(browser, base_url, wire, token, interp):
    context = browser.new_context(base_url=base_url)
    errors: list[str] = []
    try:
        context.add_init_script(f"window.testToken = {token!r};")
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"/test/docs_flows-{interp}.html")
        status = page.locator("#status")
        status.filter(has_text="ready").wait_for(timeout=PAGE_READY_MS)
        anon = page.evaluate(
            f"JSON.parse(decodeURIComponent(document.cookie.split('empmix_{token}=')[1].split(';')[0])).distinct_id"
        )

        page.click("#signup")
        status.filter(has_text="signed-up usr_abc123").wait_for(timeout=10_000)
        page.click("#logout")
        status.filter(has_text="logged-out $device:").wait_for(timeout=10_000)
        second_anon = status.inner_text().split()[-1]
        page.click("#login")
        status.filter(has_text="logged-in db_user_89012").wait_for(timeout=10_000)

        events = [(e["event"], e["properties"]["distinct_id"]) for e in wire.events(token)]
        assert events == [
            ("Page Viewed", anon),
            ("$create_alias", anon),
            ("Signed Up", "usr_abc123"),
            ("$identify", "db_user_89012"),
        ]
        create_alias = wire.events(token)[1]["properties"]
        assert create_alias["alias"] == "usr_abc123"
        identify = wire.events(token)[3]["properties"]
        assert identify["$anon_distinct_id"] == second_anon != anon
        # each visitor's first touch goes out as $set_once once identified (track_marketing=True)
        touches = [p for p in wire.profiles(token) if "$set_once" in p]
        assert [(p["$distinct_id"], p["$set_once"]["$initial_referrer"]) for p in touches] == [
            ("usr_abc123", "$direct"),
            ("db_user_89012", "$direct"),
        ]
        profiles = [p for p in wire.profiles(token) if "$set_once" not in p]
        assert [p["$distinct_id"] for p in profiles] == ["db_user_89012"] * 3
        assert profiles[0]["$set"] == {"name": "Dana", "email": "dana@example.com"}
        assert profiles[1]["$set"]["plan"] == "Pro" and profiles[1]["$set"]["last_login_date"].startswith("20")
        assert profiles[2]["$add"] == {"logins_count": 1}
        assert errors == []
    finally:
        context.close()

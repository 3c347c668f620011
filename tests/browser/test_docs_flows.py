"""The documentation's own code, run in PyScript: the README's quick start (boot script, init, the
sign-up, login and logout flows) and the SDK guide's Groups example, extracted from the Markdown
at test time (``docs_blocks``), so a change to the documented code is a change to what runs."""

from __future__ import annotations

import json
import re
import textwrap

import pytest

from tests.conftest import PAGE_READY_MS, ROOT
from tests.harness import INTERPRETERS

FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
SCRIPT = re.compile(r'<script type="(py|mpy)"[^>]*>\n(.*?)</script>', re.S)


def uncommented(python: str) -> list[str]:
    """The lines of ``python`` without their comments (the two pages comment the same calls differently)."""
    return [line for line in (re.sub(r"\s*#.*$", "", row) for row in python.splitlines()) if line.strip()]


def docs_blocks() -> dict[str, str]:
    """The documented Python the page runs: ``quickstart`` (the README's MicroPython page, whose
    Python its Pyodide page starts with) and ``groups`` (the guide's Groups block)."""
    readme = (ROOT / "README.md").read_text()
    scripts = {kind: textwrap.dedent(code) for lang, block in FENCE.findall(readme) if lang == "html"
               for kind, code in SCRIPT.findall(block)}
    assert set(scripts) == {"py", "mpy"}, "the README's quick start pages were not found"
    code = [uncommented(kind) for kind in (scripts["py"], scripts["mpy"])]
    assert code[1][: len(code[0])] == code[0], "the MicroPython page does not start with the Pyodide page's Python"
    guide = (ROOT / "docs" / "guide.md").read_text()
    (groups,) = [block for lang, block in FENCE.findall(guide) if lang == "python" and "set_group(" in block]
    return {"quickstart": scripts["mpy"], "groups": groups}


def test_the_documented_code_is_found():
    blocks = docs_blocks()
    for name in ("on_sign_up", "on_login", "on_logout"):
        assert f"def {name}(" in blocks["quickstart"]
    assert "EmpMix.init()" in blocks["quickstart"] and "EmpMix.get_group(" in blocks["groups"]


@pytest.mark.parametrize("interp", INTERPRETERS)
def test_documentation_flows_in_pyscript(browser, base_url, wire, token, interp):
    context = browser.new_context(base_url=base_url)
    errors: list[str] = []
    try:
        context.add_init_script(f"window.docsCode = {json.dumps(json.dumps(docs_blocks()))};")
        page = context.new_page()
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"/test/docs_flows-{interp}.html?token={token}")
        status = page.locator("#status")
        status.filter(has_text="ready").wait_for(timeout=PAGE_READY_MS)
        anon = page.evaluate(
            f"JSON.parse(decodeURIComponent(document.cookie.split('empmix_{token}=')[1].split(';')[0])).distinct_id"
        )

        page.click("#signup")
        status.filter(has_text="signed-up True usr_abc123").wait_for(timeout=10_000)
        page.click("#logout")
        status.filter(has_text="logged-out True $device:").wait_for(timeout=10_000)
        second_anon = status.inner_text().split()[-1]
        page.click("#login")
        status.filter(has_text="logged-in True db_user_89012").wait_for(timeout=10_000)
        page.click("#groups")
        status.filter(has_text="groups True db_user_89012").wait_for(timeout=10_000)

        events = [(e["event"], e["properties"]["distinct_id"]) for e in wire.events(token)
                  if e["event"] != "$python_ready"]
        assert events == [
            ("$mp_web_page_view", anon),  # the boot script's; the SDK's track_pageview() counts it once
            ("$create_alias", anon),
            ("Signed Up", "usr_abc123"),
            ("$identify", "db_user_89012"),
            ("Invoice Paid", "db_user_89012"),
        ]
        props = {e["event"]: e["properties"] for e in wire.events(token)}
        assert props["$create_alias"]["alias"] == "usr_abc123"
        assert props["$identify"]["$anon_distinct_id"] == second_anon != anon
        assert props["Invoice Paid"]["company"] == ["acme"] and props["Invoice Paid"]["amount"] == 120
        # each visitor's first touch goes out as $set_once once identified (track_marketing defaults on)
        touches = [p for p in wire.profiles(token) if "$set_once" in p]
        assert [(p["$distinct_id"], p["$set_once"]["$initial_referrer"]) for p in touches] == [
            ("usr_abc123", "$direct"),
            ("db_user_89012", "$direct"),
        ]
        profiles = [p for p in wire.profiles(token) if "$set_once" not in p]
        assert [p["$distinct_id"] for p in profiles] == ["db_user_89012"] * 6
        assert profiles[0]["$set"] == {"name": "Ann", "email": "ann@example.com"}
        assert profiles[1]["$set"] == {"last_login_date": "2026-11-28T10:00:00Z", "plan": "Pro"}
        assert profiles[2]["$add"] == {"logins_count": 1}
        assert profiles[3]["$set"] == {"company": ["acme"]}
        assert profiles[4]["$union"] == {"company": ["globex"]}
        assert profiles[5]["$remove"] == {"company": "acme"}
        (group,) = wire.groups(token)
        assert (group["$group_key"], group["$group_id"]) == ("company", "acme")
        assert group["$set"] == {"name": "Acme", "plan": "Enterprise"}
        assert errors == []
    finally:
        context.close()

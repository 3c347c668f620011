"""The boot script on hostile storage, with consent, and when the page goes before Python is
ready, in real Chromium (the boot-only page, no Python). Hostile values: the page never breaks
(no page error, no console error), a fresh identity is minted (kept in memory when storage
throws) exactly as the SDK would on the same state, and the page view is still sent."""

from __future__ import annotations

import json
from typing import Any

import pytest

from empmix_web.consent import Consent
from empmix_web.storage import Storage
from tests.browser.boot_support import (
    UUID4,
    BootResult,
    Case,
    assert_same_pageview,
    boot_context,
    boot_page_url,
    cookie_raw,
    new_token,
    python_pageview,
    run_boots,
    sdk_json,
)
from tests.conftest import wait_until
from tests.unit.fake_browser import FakeBrowser, Origin

D1 = "0b9c6ad2-5c67-4b5e-9a57-6f1f1c0a0d11"
ANON = sdk_json("$device:" + D1, D1)


@pytest.fixture(scope="module")
def context(browser: Any, base_url: str) -> Any:
    ctx = boot_context(browser, base_url)
    yield ctx
    ctx.close()


def watch(page: Any) -> Any:
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda m: m.type in ("error", "warning") and page.errors.append(m.text))
    return page


@pytest.fixture(scope="module")
def page(context: Any) -> Any:
    return watch(context.new_page())


@pytest.fixture(autouse=True)
def no_page_errors(page: Any) -> Any:
    yield
    errors, page.errors[:] = list(page.errors), []
    assert errors == []


def view_of(wire: Any, token: str, page: Any) -> BootResult:
    wait_until(lambda: wire.events(token), page=page, what="the page view")
    return BootResult(None, {}, [], wire.events(token))


# -- hostile stored values -----------------------------------------------------------------------
def _long_identity() -> str:
    short = sdk_json("$device:" + D1, D1, pad="")
    return short[:-2] + "x" * (5000 - len(short)) + '"}'


HOSTILE: dict[str, dict[str, Any]] = {
    "[ x3000 in localStorage": {"local": {"identity": "[" * 3000}},
    "{ x3000 in localStorage": {"local": {"identity": '{"a":' * 3000}},
    "[ x3000, closed (valid JSON, too deep)": {"local": {"identity": "[" * 3000 + "]" * 3000}},
    "an identity of 5,000 characters": {"local": {"identity": _long_identity()}},
    "broken JSON": {"local": {"identity": ANON[:-1]}},
    "broken JSON in both": {"local": {"identity": '{"distinct_id":'}, "cookie": "%7B%22distinct_id%22%3A"},
    "trailing garbage": {"local": {"identity": ANON + "x"}},
    "not JSON at all": {"local": {"identity": "undefined"}, "cookie": "[object%20Object]"},
    "a number": {"local": {"identity": "1e999"}},
    "wrong types": {"local": {"identity": json.dumps({"distinct_id": ["$device:x"], "$device_id": {"x": 1}})}},
    "ids as booleans": {
        "local": {"identity": json.dumps({"distinct_id": True, "$device_id": False, "$user_id": None})}
    },
    "a cookie of 4,000 characters": {"cookie": "x" * 4000},
    "lone surrogates (escaped)": {"local": {"identity": ANON.replace(D1, "\\ud800")}},
    "[ x3000 in super properties and the session, identity valid": {
        "local": {"identity": ANON, "props": "[" * 3000, "session": "[" * 3000}
    },
    "a 300 KB super property": {"local": {"identity": ANON, "props": json.dumps({"big": "x" * 300_000})}},
}


@pytest.fixture(scope="module")
def hostile_runs(context: Any, page: Any, base_url: str, wire: Any) -> dict[str, Any]:
    cases = {name: Case(name, s.get("local", {}), s.get("cookie")) for name, s in HOSTILE.items()}
    done = run_boots(context, page, base_url, wire, list(cases.values()))
    return {name: (case, done[case.token], page.url) for name, case in cases.items()}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_stored_values_are_discarded_as_the_sdk_does(hostile_runs: Any, name: str) -> None:
    case, boot, url = hostile_runs[name]
    view = boot.pageview
    py = python_pageview(case, url, screen=(view["$screen_width"], view["$screen_height"]))
    assert_same_pageview(boot, py, case)
    if case.local.get("identity") != ANON and "surrogates" not in name:  # a fresh identity
        assert UUID4.match(view["$device_id"]) and view["$device_id"] not in json.dumps(case.local)
    assert json.loads(boot.local["identity"])["$device_id"] == view["$device_id"]


def test_a_3000_bracket_cookie_is_replaced_by_a_fresh_identity(
    context: Any, page: Any, base_url: str, wire: Any
) -> None:
    case = Case("brackets cookie", cookie="[" * 3000)
    context.add_cookies([{"name": case.cookie_name, "value": case.cookie, "url": base_url + "/"}])
    (before,) = [c for c in context.cookies() if c["name"] == case.cookie_name]
    assert before["value"] == "[" * 3000  # about 3 KB, there before the boot runs
    page.goto(boot_page_url(base_url, case.token))
    boot = view_of(wire, case.token, page)
    boot.state = page.evaluate("window.empmixBoot")
    boot.local = {"identity": page.evaluate("k => localStorage.getItem(k)", f"empmix_{case.token}_identity")}
    boot.cookies = [c for c in context.cookies() if c["name"] == case.cookie_name]
    py = python_pageview(case, page.url)
    assert_same_pageview(boot, py, case)
    assert UUID4.match(boot.pageview["$device_id"])
    assert json.loads(boot.local["identity"])["$device_id"] == boot.pageview["$device_id"]


# -- storage that throws -------------------------------------------------------------------------
THROWS = {
    "localStorage getter throws SecurityError": (
        'Object.defineProperty(window, "localStorage", { configurable: true, get() {'
        ' throw new DOMException("The operation is insecure.", "SecurityError"); } });',
        "broken",
    ),
    "setItem throws QuotaExceededError": (
        'Storage.prototype.setItem = function () { throw new DOMException("full", "QuotaExceededError"); };',
        "full",
    ),
    "document.cookie throws": (
        'Object.defineProperty(Document.prototype, "cookie", { configurable: true,'
        ' get() { throw new DOMException("denied", "SecurityError"); },'
        ' set(v) { throw new DOMException("denied", "SecurityError"); } });',
        "cookies",
    ),
}
STORED = {
    "nothing stored": (None, None),
    "identity in the cookie": (None, cookie_raw(ANON)),
    "identity in localStorage": (ANON, None),
}


@pytest.mark.parametrize("stored", list(STORED))
@pytest.mark.parametrize("fault", list(THROWS))
def test_storage_that_throws_never_breaks_the_page(
    context: Any, base_url: str, wire: Any, fault: str, stored: str
) -> None:
    script, mode = THROWS[fault]
    local, cookie = STORED[stored]
    case = Case(f"{fault}, {stored}", {"identity": local} if local else {}, cookie)
    if cookie:
        context.add_cookies([{"name": case.cookie_name, "value": cookie, "url": base_url + "/"}])
    if local:
        with_page(
            context,
            lambda p: (
                p.goto(base_url + "/test/boot.template.html"),
                p.evaluate("([k, v]) => localStorage.setItem(k, v)", [f"empmix_{case.token}_identity", local]),
            ),
        )
    page = watch(context.new_page())
    try:
        page.add_init_script(script)
        page.goto(boot_page_url(base_url, case.token))
        boot = view_of(wire, case.token, page)
        assert page.errors == []
        boot.state = page.evaluate("window.empmixBoot")
    finally:
        page.close()
    # what stayed in the browser, read from a page where storage works
    boot.local, boot.cookies = (
        with_page(
            context,
            lambda p: (
                p.goto(base_url + "/test/boot.template.html"),
                p.evaluate(
                    "t => Object.fromEntries(Object.entries(localStorage).filter(([k]) => k.startsWith(t))"
                    ".map(([k, v]) => [k.slice(t.length), v]))",
                    f"empmix_{case.token}_",
                ),
            ),
        )[1],
        [c for c in context.cookies() if c["name"] == case.cookie_name],
    )
    view = boot.pageview
    py = python_pageview(
        case,
        view["$current_url"],
        screen=(view["$screen_width"], view["$screen_height"]),
        storage=mode if mode != "cookies" else "ok",
        cookies_throw=mode == "cookies",
    )
    assert_same_pageview(boot, py, case)
    if mode != "cookies":
        assert view["$persistence"] == "memory"
        assert set(boot.local) <= {"identity"}  # nothing new written (a removal may have happened)
    else:
        assert "$persistence" not in view
    kept = KEPT[(mode, stored)]
    assert (view["$device_id"] == D1) is kept
    if not kept:
        assert UUID4.match(view["$device_id"])


# (fault, what was stored) -> the stored identity is kept (else a fresh one is minted)
KEPT = {
    ("broken", "nothing stored"): False,
    ("broken", "identity in the cookie"): True,
    ("broken", "identity in localStorage"): False,  # unreadable
    ("full", "nothing stored"): False,
    ("full", "identity in the cookie"): True,
    ("full", "identity in localStorage"): False,  # the SDK's probe finds localStorage unusable
    ("cookies", "nothing stored"): False,
    ("cookies", "identity in the cookie"): False,  # unreadable
    ("cookies", "identity in localStorage"): True,
}


def with_page(context: Any, action: Any) -> Any:
    page = context.new_page()
    try:
        return action(page)
    finally:
        page.close()


# -- consent -------------------------------------------------------------------------------------
CONSENT = {
    "consent out": ("out", {}),
    "opt_out_by_default, no choice": (None, {"opt_out_by_default": True}),
    "opt_out_by_default, consent in": ("in", {"opt_out_by_default": True}),
    "consent in": ("in", {}),
    "opt_out_by_default, an unknown choice": ("maybe", {"opt_out_by_default": True}),
    "an unknown choice": ("maybe", {}),
    "consent out, identity stored": ("out", {}),
}


@pytest.fixture(scope="module")
def consent_runs(context: Any, page: Any, base_url: str, wire: Any) -> dict[str, Any]:
    cases = {}
    for name, (choice, config) in CONSENT.items():
        local = {"consent": choice} if choice is not None else {}
        cases[name] = Case(name, local, cookie_raw(ANON) if "identity" in name else None, config=config)
    out = [c for c in cases.values() if opted_out(c)]
    done = run_boots(context, page, base_url, wire, out, sent=False)
    done.update(run_boots(context, page, base_url, wire, [c for c in cases.values() if c not in out]))
    page.goto(base_url + "/test/boot.template.html")  # the boots above hide: their beacons go now
    barrier = Case("barrier")
    run_boots(context, page, base_url, wire, [barrier])  # sent after anything the others sent
    return {name: (case, done[case.token]) for name, case in cases.items()}


def opted_out(case: Case) -> bool:
    origin = Origin()
    origin.local.update(case.keyed())
    return Consent(Storage(FakeBrowser(origin)), case.token, bool(case.config.get("opt_out_by_default"))).opted_out


@pytest.mark.parametrize("name", list(CONSENT))
def test_opted_out_stores_nothing_and_sends_nothing(consent_runs: Any, wire: Any, name: str) -> None:
    case, boot = consent_runs[name]
    assert boot.state is not None and boot.state["token"] == case.token
    if opted_out(case):
        assert boot.state.get("out") is True and "pageview" not in boot.state
        assert [r for r in wire.requests if case.token in json.dumps(r.records) or case.token in r.path] == []
        assert boot.local == ({"consent": case.local["consent"]} if "consent" in case.local else {})
        if case.cookie is None:
            assert boot.cookies == []
    else:
        assert not boot.state.get("out")
        assert [e["event"] for e in wire.events(case.token)][:1] == ["$mp_web_page_view"]
        assert "identity" in boot.local


# -- leaving before Python is ready ----------------------------------------------------------
@pytest.mark.parametrize("leave", ["close", "navigate away"])
def test_leaving_before_ready_sends_the_page_view_and_a_page_leave(
    context: Any, base_url: str, wire: Any, leave: str
) -> None:
    token = new_token()
    page = watch(context.new_page())
    page.goto(boot_page_url(base_url, token))
    if leave == "close":
        page.close(run_before_unload=False)
    else:
        page.goto(base_url + "/test/boot.template.html")
    events = wait_until(
        lambda: (
            {"$mp_page_leave", "$mp_web_page_view"} <= {e["event"] for e in wire.events(token)} and wire.events(token)
        ),
        page=None if leave == "close" else page,
        what="the page view and the page leave",
    )
    # the beacon may carry the page view again (its reply not in yet): one $insert_id, stored once
    events = list({e["properties"]["$insert_id"]: e for e in events}.values())
    assert sorted(e["event"] for e in events) == ["$mp_page_leave", "$mp_web_page_view"]
    (view,) = [e["properties"] for e in events if e["event"] == "$mp_web_page_view"]
    (left,) = [e["properties"] for e in events if e["event"] == "$mp_page_leave"]
    assert left["$left_before_ready"] is True
    assert type(left["$time_on_page_ms"]) is int and 0 <= left["$time_on_page_ms"] < 60_000
    for key in ("distinct_id", "$device_id", "$session_id", "$current_url"):
        assert left[key] == view[key]
    assert left["$insert_id"][:20] == view["$insert_id"][:20] and left["$insert_id"] != view["$insert_id"]
    if leave != "close":
        assert page.errors == []
        page.close()


def test_no_page_leave_once_the_sdk_is_ready(context: Any, base_url: str, wire: Any) -> None:
    token = new_token()
    page = watch(context.new_page())
    page.goto(boot_page_url(base_url, token))
    wait_until(lambda: wire.events(token), page=page, what="the page view")
    page.evaluate("window.empmixBoot.ready = true")  # what the SDK's handover sets
    page.goto(base_url + "/test/boot.template.html")  # pagehide
    barrier = new_token()
    page.goto(boot_page_url(base_url, barrier))
    wait_until(lambda: wire.events(barrier), page=page, what="a later page view")
    assert [e["event"] for e in wire.events(token)] == ["$mp_web_page_view"]
    assert page.errors == []
    page.close()

"""The boot script (``empmix_web/boot.js``, minified in ``build/www/empmix-boot.js``) against the
Python it repeats, in real Chromium: on the same stored state, its page view and what it writes
back are what ``EmpMixClient.init`` + ``track_pageview()`` produce (run here through the fake
browser, ``tests/unit/fake_browser.py``). A change to either side's format or rule fails a case.

Most cases run many boots in one page load (one script tag and one token each,
``tests/browser/boot_support.py``); cases that depend on the page's URL or referrer navigate.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from empmix_web import campaigns, ids
from empmix_web import wire as wire_rules
from empmix_web.compat import MAX_DEPTH, loads_bounded
from empmix_web.queue import OutboundQueue, parse_key, queue_prefix
from empmix_web.records import EVENT
from empmix_web.sessions import DEFAULT_MAX_MS, DEFAULT_TIMEOUT_MS
from empmix_web.storage import Storage, probe_cookie_domain
from empmix_web.validation import is_token
from empmix_web.version import VERSION
from tests.browser.boot_support import (
    BOOT_JS,
    BootResult,
    Case,
    assert_same_identity,
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
from tests.unit.test_pure import ID_CASES

ROOT = Path(__file__).resolve().parents[2]
D1 = "0b9c6ad2-5c67-4b5e-9a57-6f1f1c0a0d11"
D2 = "7d1e2f30-4a5b-4c6d-8e7f-8091a2b3c4d5"


@pytest.fixture(scope="module")
def context(browser: Any, base_url: str) -> Any:
    ctx = boot_context(browser, base_url)
    yield ctx
    ctx.close()


@pytest.fixture(scope="module")
def page(context: Any) -> Any:
    """One page for the module; no test may leave a page error or a console error behind."""
    p = context.new_page()
    p.errors = []  # type: ignore[attr-defined]
    p.on("pageerror", lambda exc: p.errors.append(str(exc)))  # type: ignore[attr-defined]
    p.on("console", lambda m: m.type in ("error", "warning") and p.errors.append(m.text))  # type: ignore[attr-defined]
    return p


@pytest.fixture(autouse=True)
def no_page_errors(page: Any) -> Any:
    yield
    errors, page.errors[:] = list(page.errors), []
    assert errors == []


def anon(device: str = D1, **extra: Any) -> str:
    return sdk_json("$device:" + device, device, **extra)


def user(uid: str, device: str = D1, **extra: Any) -> str:
    return sdk_json(uid, device, uid, **extra)


def nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"k": value}
    return value


def jdump(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


# -- identity: every stored state the SDK can write, and the hostile ones next to them ---------
IDENTITY_STATES: dict[str, dict[str, Any]] = {
    "nothing stored": {},
    "anonymous, both equal": {"local": anon(), "cookie": cookie_raw(anon())},
    "identified, both equal": {"local": user("usr_1"), "cookie": cookie_raw(user("usr_1"))},
    "aliased, both equal": {"local": anon(alias="usr_new"), "cookie": cookie_raw(anon(alias="usr_new"))},
    "identified with alias": {
        "local": user("usr_1", alias="usr_1"),
        "cookie": cookie_raw(user("usr_1", alias="usr_1")),
    },
    "cookie only, anonymous": {"cookie": cookie_raw(anon())},
    "cookie only, identified": {"cookie": cookie_raw(user("usr_c"))},
    "localStorage only, anonymous": {"local": anon()},
    "localStorage only, identified": {"local": user("usr_l")},
    "both different: the cookie wins": {"local": user("usr_l", D2), "cookie": cookie_raw(anon())},
    "both different, both identified": {"local": user("usr_l"), "cookie": cookie_raw(user("usr_c"))},
    "cookie malformed, localStorage valid": {"local": user("usr_l"), "cookie": "garbage"},
    "cookie valid, localStorage malformed": {"local": "{", "cookie": cookie_raw(user("usr_c"))},
    "unicode user id": {"local": user("Émile-中文-ß"), "cookie": cookie_raw(user("Émile-中文-ß"))},
    "200 emoji user id (400 UTF-16 units)": {"local": user("😀" * 200)},
    "255 emoji user id": {"local": user("😀" * 255)},
    "120 emoji user id, cookie only": {"cookie": cookie_raw(user("😀" * 120))},
    "256 emoji user id": {"local": user("😀" * 256)},
    "quotes in the user id": {"local": user("o\"brien 'x'"), "cookie": cookie_raw(user("o\"brien 'x'"))},
    "user id in double quotes": {"local": user('"usr_q"')},
    "255-character user id": {"local": user("u" * 255)},
    "256-character user id": {"local": user("u" * 256)},
    "247-character device id (distinct_id of 255)": {"local": anon("d" * 247)},
    "248-character device id (distinct_id of 256)": {"local": anon("d" * 248)},
    "256-character device id, identified": {"local": user("usr_d", "d" * 256)},
    "empty device id": {"local": sdk_json("usr_e", "", "usr_e")},
    "ASCII white space around the user id": {"local": user(" \t usr_ws \n")},
    "blank user id": {"local": user(" \t\n\r\x0b\x0c ")},
    "no-break space user id (not ASCII white space)": {"local": user("\u00a0")},
    "NUL in the user id": {"local": user("a\x00b")},
    "Kelvin sign: uNKNOWN lowers to unknown": {"local": user("UN\u212aNOWN")},
    "$device: user id": {"local": sdk_json("$device:abc", "abc", "$device:abc")},
    "$device: alias": {"local": anon(alias="$device:zzz")},
    "illegal alias": {"local": anon(alias="undefined")},
    "anonymous distinct_id not the device": {"local": sdk_json("$device:other", D1)},
    "identified distinct_id not the user": {"local": sdk_json("usr_x", D1, "usr_y")},
    "user id without its distinct_id": {"local": sdk_json("$device:" + D1, D1, "usr_z")},
    "extra keys": {"local": anon(extra={"a": [1, {"b": None}]}, state="whatever", v=2)},
    f"{MAX_DEPTH} deep inside an extra key": {"local": anon(extra=nested(MAX_DEPTH - 1))},
    f"{MAX_DEPTH + 1} deep inside an extra key": {"local": anon(extra=nested(MAX_DEPTH))},
    "deep brackets inside a string": {"local": anon(extra="[" * 100 + "{" * 100)},
    "4096 characters": {"local": anon(pad="x" * (4096 - len(anon(pad=""))))},
    "4097 characters": {"local": anon(pad="x" * (4097 - len(anon(pad=""))))},
    "4096 code points, 2000 of them emoji": {"local": anon(pad="😀" * 2000 + "x" * (2096 - len(anon(pad=""))))},
    "NaN in an extra key (not JSON)": {"local": anon()[:-1] + ',"n":NaN}'},
    "-Infinity in an extra key, in the cookie": {
        "cookie": cookie_raw(anon()[:-1] + ',"n":-Infinity}'),
        "local": user("u"),
    },
    "distinct_id a number": {"local": jdump({"distinct_id": 5, "$device_id": D1, "$user_id": None})},
    "device id a number": {"local": jdump({"distinct_id": "$device:5", "$device_id": 5, "$user_id": None})},
    "user id a number": {"local": jdump({"distinct_id": "5", "$device_id": D1, "$user_id": 5})},
    "alias a list": {"local": anon(**{"$alias": ["usr"]})},
    "a JSON list": {"local": jdump([anon()])},
    "a JSON string": {"local": jdump(anon())},
    "JSON null": {"local": "null", "cookie": "null"},
    "SDK cookie, raw JSON (not percent-encoded)": {"cookie": user("usr_raw")},
    "malformed escape kept as text (100%)": {"cookie": user("100%")},
    "percent-encoded twice": {"cookie": cookie_raw(cookie_raw(user("usr_2x"))), "local": anon()},
    "escape of invalid UTF-8": {"cookie": cookie_raw(user("usr_ff")) + "%FF", "local": anon()},
    "escape of a surrogate": {"cookie": "%ED%A0%80" + cookie_raw(user("usr_s")), "local": anon()},
}


def _id_cases() -> dict[str, str]:
    """Every id in the SDK's illegal lists (and the legal ones next to them), from ids.py itself."""
    found: dict[str, str] = {}
    for value in ID_CASES + sorted(ids.ILLEGAL_WORDS) + sorted(ids.ILLEGAL_EXACT):
        found.setdefault(repr(value)[:40], value)
    for word in sorted(ids.ILLEGAL_WORDS):
        for variant in (word.upper(), f"'{word}'", f' "{word}" ', f"\t{word}\n", f"{word}x"):
            found.setdefault(repr(variant), variant)
    for exact in sorted(ids.ILLEGAL_EXACT):
        for variant in (exact.upper(), f'"{exact}"', f" {exact} ", f"{exact}1"):
            found.setdefault(repr(variant), variant)
    return found


ID_VALUES = _id_cases()
for _label, _value in ID_VALUES.items():
    IDENTITY_STATES["user id " + _label] = {"local": user(_value)}
    IDENTITY_STATES["device id " + _label] = {"cookie": cookie_raw(anon(_value))}


@pytest.fixture(scope="module")
def identity_runs(context: Any, page: Any, base_url: str, wire: Any) -> dict[str, tuple[Case, BootResult]]:
    cases = {
        name: Case(name, {"identity": s["local"]} if "local" in s else {}, s.get("cookie"))
        for name, s in IDENTITY_STATES.items()
    }
    done = run_boots(context, page, base_url, wire, list(cases.values()))
    results: dict[str, Any] = {name: (case, done[case.token]) for name, case in cases.items()}
    results["url"] = page.url  # type: ignore[assignment]
    return results


@pytest.mark.parametrize("state", list(IDENTITY_STATES))
def test_the_boot_keeps_or_mints_the_identity_as_the_sdk_does(identity_runs: Any, state: str) -> None:
    case, boot = identity_runs[state]
    py = python_pageview(case, identity_runs["url"])
    assert_same_identity(boot, py, case)
    assert boot.pageview["token"] == case.token


def test_the_illegal_lists_are_ids_py_own() -> None:
    """The boot's lists are ids.ILLEGAL_WORDS and ILLEGAL_EXACT, word for word (the cases above
    bind the behaviour; this names a missing or extra word)."""
    source = (ROOT / "empmix_web" / "boot.js").read_text()
    words = re.search(r"const WORDS = /\^\((.*)\)\$/;", source)
    exact = re.search(r"const EXACT = /\^\((.*)\)\$/;", source)
    assert words and exact
    assert set(words.group(1).replace("\\/", "/").split("|")) == ids.ILLEGAL_WORDS
    listed = {re.sub(r"\\(.)", r"\1", w) for w in exact.group(1).split("|")}
    listed = {"00000000-0000-0000-0000-000000000000" if w.startswith("0{8}") else w for w in listed}
    assert listed == ids.ILLEGAL_EXACT


# -- sessions --------------------------------------------------------------------------------
SID = "01939aa2-8f3e-7abc-9def-0123456789ab"


def _session(start_ago_ms: float, last_ago_ms: float, sid: str = SID) -> str:
    now = time.time() * 1000
    return jdump({"id": sid, "start": int(now - start_ago_ms), "last": int(now - last_ago_ms)})


MIN = 60_000
SESSION_STATES: dict[str, tuple[Any, dict[str, Any]]] = {
    "valid": (lambda: _session(10 * MIN, MIN), {}),
    "written under a second ago": (lambda: _session(10 * MIN, 200), {}),
    "expired by the timeout": (lambda: _session(40 * MIN, DEFAULT_TIMEOUT_MS + MIN), {}),
    "just inside the timeout": (lambda: _session(40 * MIN, DEFAULT_TIMEOUT_MS - MIN), {}),
    "expired by data-config session_timeout_ms": (lambda: _session(5 * MIN, 2 * MIN), {"session_timeout_ms": MIN}),
    "inside data-config session_timeout_ms": (lambda: _session(5 * MIN, MIN // 4), {"session_timeout_ms": MIN}),
    "expired by the max age": (lambda: _session(DEFAULT_MAX_MS + MIN, MIN), {}),
    "expired by data-config session_max_ms": (lambda: _session(2 * 60 * MIN, MIN), {"session_max_ms": 60 * MIN}),
    "start 2 minutes in the future": (lambda: _session(-2 * MIN, MIN), {}),
    "start 20 s in the future (clock skew)": (lambda: _session(-MIN / 3, MIN), {}),
    "last in the future": (lambda: _session(MIN, -10 * MIN), {}),
    "not JSON": (lambda: "{id:", {}),
    "id too short": (lambda: _session(MIN, MIN, SID[:-1]), {}),
    "id of 36 emoji": (lambda: _session(MIN, MIN, "😀" * 36), {}),
    "id of 18 emoji (36 UTF-16 units)": (lambda: _session(MIN, MIN, "😀" * 18), {}),
    "start a string": (lambda: re.sub(r'"start":\d+', '"start":"1"', _session(MIN, MIN)), {}),
    "last true": (lambda: re.sub(r'"last":\d+', '"last":true', _session(MIN, MIN)), {}),
    "start null": (lambda: re.sub(r'"start":\d+', '"start":null', _session(MIN, MIN)), {}),
    "start beyond a float (Infinity in JS)": (
        lambda: re.sub(r'"start":\d+', '"start":1' + "0" * 400, _session(MIN, MIN)),
        {},
    ),
    "last beyond a float": (lambda: re.sub(r'"last":\d+', '"last":1' + "0" * 400, _session(MIN, MIN)), {}),
    "start NaN (not JSON)": (lambda: re.sub(r'"start":\d+', '"start":NaN', _session(MIN, MIN)), {}),
    "last Infinity (not JSON)": (lambda: re.sub(r'"last":\d+', '"last":Infinity', _session(MIN, MIN)), {}),
    "last 1e400": (lambda: re.sub(r'"last":\d+', '"last":1e400', _session(MIN, MIN)), {}),
    "fractional ms (as Python writes them)": (
        lambda: jdump({"id": SID, "start": time.time() * 1000 - MIN + 0.25, "last": time.time() * 1000 - MIN + 0.5}),
        {},
    ),
    "a JSON list": (lambda: jdump([SID, 0, 0]), {}),
    "over 512 characters": (lambda: _session(MIN, MIN)[:-1] + ',"pad":"' + "x" * 500 + '"}', {}),
    f"{MAX_DEPTH + 1} deep": (lambda: _session(MIN, MIN)[:-1] + ',"d":' + jdump(nested(MAX_DEPTH)) + "}", {}),
}


@pytest.fixture(scope="module")
def session_runs(context: Any, page: Any, base_url: str, wire: Any) -> dict[str, Any]:
    cases = {}
    for name, (make, config) in SESSION_STATES.items():
        cases[name] = Case(name, {"session": make(), "identity": anon()}, config=config)
    done = run_boots(context, page, base_url, wire, list(cases.values()))
    return {name: (case, done[case.token], page.url) for name, case in cases.items()}


@pytest.mark.parametrize("state", list(SESSION_STATES))
def test_the_session_is_kept_or_new_as_sessions_touch_decides(session_runs: Any, state: str) -> None:
    case, boot, url = session_runs[state]
    py = python_pageview(case, url)  # Sessions.touch on the same state, at (about) the same time
    stored = loads_bounded(case.local["session"], 10_000)
    sid = stored.get("id") if isinstance(stored, dict) else None
    assert (boot.pageview["$session_id"] == sid) == (py.pageview["$session_id"] == sid)
    if py.pageview["$session_id"] != sid:  # a new one: a UUIDv7 of now
        new = boot.pageview["$session_id"]
        assert re.match(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$", new), new
        assert abs(int(new.replace("-", "")[:12], 16) - boot.pageview["time"]) < 5_000
    # what it stored is a session the SDK reads back as this one
    again = json.loads(boot.local["session"])
    assert again["id"] == boot.pageview["$session_id"] and isinstance(again["last"], int)


# -- campaigns, referrer, first touch, super properties -------------------------------------
CAMPAIGN_QUERIES = {
    "no query parameters": "",
    "every utm key and click id": "&" + "&".join(f"{k}=v_{k}" for k in campaigns.UTM_KEYS + campaigns.CLICK_IDS),
    "repeated parameter: the first wins": "&utm_source=first&utm_source=second&gclid=a&gclid=b",
    "plus is a space": "&utm_campaign=spring+sale&utm_term=a+b%2Bc",
    "valid escapes": "&utm_source=%C3%A9t%C3%A9%20%F0%9F%98%80&utm_medium=a%26b%3Dc",
    "malformed escapes are kept as text": "&utm_source=100%&utm_medium=%zz&utm_term=%E9&utm_content=%",
    "escaped parameter name": "&utm%5Fsource=named&%75tm_medium=m",
    "empty values are left out": "&utm_source=&utm_medium&gclid=",
    "over 255 code points": "&utm_source=" + "%F0%9F%98%80" * 300 + "&utm_medium=" + "x" * 256,
    "other parameters ignored": "&utm=x&utm_source_x=y&UTM_SOURCE=z&fbclid=f",
    "in the fragment: not a campaign": "#?utm_source=frag",
    "a second question mark": "&utm_source=a?b=c&utm_medium=m=n",
    "unicode, raw in the URL": "&utm_source=日本&utm_term=é",
}


@pytest.mark.parametrize("name", list(CAMPAIGN_QUERIES))
def test_campaign_properties_are_campaigns_campaign_of_the_url(page: Any, base_url: str, wire: Any, name: str) -> None:
    case = Case(name)
    page.goto(boot_page_url(base_url, case.token, query=CAMPAIGN_QUERIES[name]))
    wait_until(lambda: wire.events(case.token), page=page, what="the page view")
    href = page.evaluate("location.href")
    boot = BootResult(None, {}, [], wire.events(case.token))
    found = {k: v for k, v in boot.pageview.items() if k in campaigns.UTM_KEYS + campaigns.CLICK_IDS}
    assert found == campaigns.campaign(href)
    assert boot.pageview["$current_url"] == href
    initial = {k: v for k, v in boot.pageview.items() if k.startswith("initial_")}
    assert initial == {k: v for k, v in campaigns.first_touch("", href, {}).items() if k.startswith("initial_")}
    py = python_pageview(case, href, screen=(boot.pageview["$screen_width"], boot.pageview["$screen_height"]))
    assert {
        k: v
        for k, v in boot.pageview.items()
        if k not in ("time", "$insert_id", "$session_id", "distinct_id", "$device_id")
    } == {
        k: v
        for k, v in py.pageview.items()
        if k not in ("time", "$insert_id", "$session_id", "distinct_id", "$device_id")
    }


REFERRERS = {
    "no referrer": None,
    "same origin, with path and query": "{base}/test/boot.template.html?from=here&q=a%20b#frag",
    "another site (its origin only, by referrer policy)": "http://Shop.Example.test:{port}/test/boot.template.html?x=1",
    "another site with no-referrer-when-downgrade": "http://shop.example.test:{port}/test/boot.template.html?full=1",
}


@pytest.mark.parametrize("name", list(REFERRERS))
def test_referrer_properties_are_campaigns_referrer_props(
    context: Any, page: Any, base_url: str, wire: Any, name: str
) -> None:
    case = Case(name)
    target = boot_page_url(base_url, case.token, query="&utm_source=ref")
    source = REFERRERS[name]
    if source is None:
        page.goto(target)
    else:
        port = base_url.rsplit(":", 1)[1]
        page.goto(source.format(base=base_url, port=port))
        if "downgrade" in name:
            page.evaluate(
                "() => { const m = document.createElement('meta'); m.name = 'referrer';"
                " m.content = 'no-referrer-when-downgrade'; document.head.append(m); }"
            )
        page.evaluate("url => { location.href = url; }", target)
    wait_until(lambda: wire.events(case.token), page=page, what="the page view")
    referrer = page.evaluate("document.referrer")
    if source is not None:
        assert referrer, "the navigation carried a referrer"
    view = BootResult(None, {}, [], wire.events(case.token)).pageview
    assert {k: view[k] for k in ("$referrer", "$referring_domain")} == campaigns.referrer_props(referrer)
    href = page.evaluate("location.href")
    assert {k: view[k] for k in view if k.startswith("$initial_") or k.startswith("initial_")} == campaigns.first_touch(
        referrer, href, {}
    )
    py = python_pageview(case, href, referrer=referrer, screen=(view["$screen_width"], view["$screen_height"]))
    skip = ("time", "$insert_id", "$session_id", "distinct_id", "$device_id")
    assert {k: v for k, v in view.items() if k not in skip} == {k: v for k, v in py.pageview.items() if k not in skip}


SUPER_PROPS: dict[str, tuple[str | None, dict[str, Any]]] = {
    "none stored": (None, {}),
    "plain super properties": (jdump({"plan": "pro", "n": 3, "ok": True, "tags": ["a", "b"], "x": None}), {}),
    "first touch already registered": (
        jdump(
            {
                "$initial_referrer": "https://old.example/",
                "$initial_referring_domain": "old.example",
                "initial_utm_source": "old",
            }
        ),
        {},
    ),
    "only the referrer registered": (
        jdump({"$initial_referrer": "$direct", "$initial_referring_domain": "$direct"}),
        {},
    ),
    "only a utm registered": (jdump({"initial_utm_term": "t"}), {}),
    "super properties override the SDK's": (
        jdump(
            {"$current_url": "override", "mp_lib": "other", "$referrer": "r", "$screen_width": 1, "utm_source": "super"}
        ),
        {},
    ),
    "unicode and emoji": (jdump({"é": "😀" * 10, "k": "\u2028"}), {}),
    "malformed": ("{not json", {}),
    "a JSON list": (jdump(["plan"]), {}),
    "JSON null": ("null", {}),
    f"{MAX_DEPTH + 1} deep": (jdump({"deep": nested(MAX_DEPTH)}), {}),
    f"{MAX_DEPTH} deep": (jdump({"deep": nested(MAX_DEPTH - 1)}), {}),
    "track_marketing false": (jdump({"plan": "pro"}), {"track_marketing": False}),
    "track_marketing false, first touch registered": (jdump({"$initial_referrer": "x"}), {"track_marketing": False}),
    "pageview_properties": (
        jdump({"plan": "pro", "page_type": "super"}),
        {"pageview_properties": {"page_type": "landing", "plan": "own"}},
    ),
}


@pytest.fixture(scope="module")
def super_runs(context: Any, page: Any, base_url: str, wire: Any) -> dict[str, Any]:
    cases = {}
    for name, (props, config) in SUPER_PROPS.items():
        local = {"identity": user("usr_" + name[:8])}
        if props is not None:
            local["props"] = props
        cases[name] = Case(name, local, config=config)
    done = run_boots(context, page, base_url, wire, list(cases.values()), query="?utm_source=spring&utm_medium=mail")
    return {name: (case, done[case.token], page.url) for name, case in cases.items()}


@pytest.mark.parametrize("name", list(SUPER_PROPS))
def test_super_properties_and_first_touch_merge_as_record_factory_event_does(super_runs: Any, name: str) -> None:
    case, boot, url = super_runs[name]
    view = boot.pageview
    py = python_pageview(
        case, url, screen=(view["$screen_width"], view["$screen_height"]), props=case.config.get("pageview_properties")
    )
    assert_same_pageview(boot, py, case)
    if case.config.get("track_marketing") is False:
        assert view["$referrer"] == "" and "utm_source" not in view and "$referring_domain" not in view


# -- tokens ------------------------------------------------------------------------------------
def _tokens() -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {
        "plain": "tok" + tag,
        "dots, dashes, underscores": f"a.b-c_d{tag}",
        "128 characters": tag + "x" * 118,
        "129 characters": tag + "x" * 119,
        "empty": "",
        "a space": "bad token" + tag,
        "non-ASCII": "é" + tag,
        "a slash": "tok/" + tag,
        "a digit in another script": "tok٣" + tag,
        "angle brackets": f"<b>{tag}",
    }


TOKENS = _tokens()


@pytest.mark.parametrize("name", list(TOKENS))
def test_the_boot_acts_only_on_a_valid_token(context: Any, page: Any, base_url: str, wire: Any, name: str) -> None:
    token = TOKENS[name]
    case = Case(name, token=token)
    results = run_boots(context, page, base_url, wire, [case], sent=is_token(token))
    result = results[token]
    if is_token(token):
        assert result.state is not None and result.state["token"] == token
        assert [e["event"] for e in result.events] == ["$mp_web_page_view"]
        assert result.local.get("identity") and result.cookies
    else:
        assert result.state is None
        assert page.evaluate("t => Object.keys(localStorage).filter(k => k.includes(t))", token or "\0") == []
        assert not any(token and token in json.dumps(r.records) for r in wire.requests)


# -- cookie domain and Secure ----------------------------------------------------------------
class PageCookies(FakeBrowser):
    """probe_cookie_domain's Browser, on the real page's document.cookie (so Chromium's own
    public-suffix rules answer)."""

    def __init__(self, page: Any) -> None:
        super().__init__(Origin(host=page.evaluate("location.hostname")))
        self.page = page

    def set_cookie(self, cookie: str) -> None:
        self.page.evaluate("c => { document.cookie = c; }", cookie)

    def get_cookies(self) -> str:
        return str(self.page.evaluate("document.cookie"))


DOMAIN_CONFIGS: dict[str, dict[str, Any]] = {
    "host only (default)": {},
    "cross_subdomain_cookie": {"cross_subdomain_cookie": True},
    "cookie_domain": {"cookie_domain": ".b.example.test"},
    "cookie_domain wins over cross_subdomain_cookie": {
        "cookie_domain": ".b.example.test",
        "cross_subdomain_cookie": True,
    },
    "empty cookie_domain: host only, no probe": {"cookie_domain": "", "cross_subdomain_cookie": True},
}


@pytest.mark.parametrize("name", list(DOMAIN_CONFIGS))
def test_the_cookie_domain_is_the_sdk_choice(context: Any, page: Any, base_url: str, wire: Any, name: str) -> None:
    config = DOMAIN_CONFIGS[name]
    port = base_url.rsplit(":", 1)[1]
    host_base = f"http://a.b.example.test:{port}"
    case = Case(name, config=config)
    # a stale copy on the host and one on the widest domain: what the SDK's write expires
    stale = cookie_raw(user("usr_stale")).replace("usr", "%00")  # unreadable: the boot must write
    context.add_cookies(
        [
            {"name": case.cookie_name, "value": stale, "url": host_base + "/"},
            {"name": case.cookie_name, "value": stale, "domain": ".example.test", "path": "/"},
        ]
    )
    page.goto(host_base + "/test/boot.template.html")  # no boot: the SDK's probe, on this host
    origin = Origin(host="a.b.example.test")
    for c in context.cookies(host_base):
        if c["name"] == case.cookie_name:
            origin.cookies[(c["name"], "" if not c["domain"].startswith(".") else c["domain"])] = c["value"]
    domain = config.get("cookie_domain")
    if domain is None and config.get("cross_subdomain_cookie"):
        domain = probe_cookie_domain(PageCookies(page))
    from empmix_web.storage import CookieJar

    CookieJar(FakeBrowser(origin), domain, False).set(case.cookie_name, "v")
    expected = sorted(d for (n, d), _ in origin.cookies.items() if n == case.cookie_name)
    page.goto(boot_page_url(host_base, case.token, config))
    wait_until(lambda: wire.events(case.token), page=page, what="the page view")
    jar = [c for c in context.cookies(host_base) if c["name"] == case.cookie_name]
    got = sorted("" if not c["domain"].startswith(".") else c["domain"] for c in jar)
    assert got == expected
    assert all(c["value"] != stale for c in jar)
    if config.get("cross_subdomain_cookie") and not config.get("cookie_domain", "x") == "":
        assert got == [config.get("cookie_domain") or ".example.test"]


@pytest.mark.parametrize(
    ("config", "secure"),
    [({}, False), ({"secure_cookie": True}, True), ({"secure_cookie": False}, False), ({"secure_cookie": 0}, False)],
    ids=["http default", "secure_cookie true", "secure_cookie false", "secure_cookie 0"],
)
def test_secure_cookie(context: Any, page: Any, base_url: str, wire: Any, config: dict[str, Any], secure: bool) -> None:
    case = Case("secure", config=config)
    page.goto(boot_page_url(base_url, case.token, config))  # 127.0.0.1: Chromium keeps Secure cookies
    wait_until(lambda: wire.events(case.token), page=page, what="the page view")
    (jar,) = [c for c in context.cookies() if c["name"] == case.cookie_name]
    assert jar["secure"] is secure and jar["sameSite"] == "Lax" and jar["path"] == "/"
    assert 364 * 86400 < jar["expires"] - time.time() <= 365 * 86400 + 5


# -- delivery: wire.outcome decides whether the queued record stays ---------------------------
REPLIES = [
    (200, '{"status":1,"error":null}'),
    (204, ""),
    (400, '{"status":0,"error":"bad"}'),
    (400, '{"status":0,"failed_records":[{"index":0,"message":"no"}]}'),
    (401, ""),
    (404, ""),
    (413, ""),
    (408, ""),
    (429, ""),
    (500, ""),
    (502, ""),
    (503, ""),
    (None, ""),
]


@pytest.mark.parametrize(
    ("status", "body"),
    REPLIES,
    ids=[f"{s or 'network error'}{' failed_records' if 'failed' in b else ''}" for s, b in REPLIES],
)
def test_the_queued_page_view_stays_only_when_wire_outcome_retries(
    context: Any, base_url: str, status: int | None, body: str
) -> None:
    page = context.new_page()
    # a sign that the boot's own reply handler has run: a task queued after the reply's callbacks
    page.add_init_script("""{ const f = window.fetch; window.fetch = (...a) => { const p = f(...a);
        p.then(() => setTimeout(() => { window.replied = true; }), () => setTimeout(() => { window.replied = true; }));
        return p; }; }""")

    def reply(route: Any) -> None:
        if status is None:
            route.abort("connectionreset")
        else:
            route.fulfill(status=status, body=body, content_type="application/json")

    page.route("**/track/**", reply)
    try:
        token = new_token()
        page.goto(boot_page_url(base_url, token))
        page.wait_for_function("window.replied === true")
        state = page.evaluate("window.empmixBoot")
        key = f"empmix_{token}_q_{state['tab']}_0000000001e"
        stored = page.evaluate("k => localStorage.getItem(k)", key)
        retry = status is None or wire_rules.outcome(status, body)[0] == wire_rules.RETRY
        assert (stored is not None) == retry, (status, stored)
        if retry:  # the record is one the SDK adopts: its key and its text
            assert parse_key(queue_prefix(token), key) == (state["tab"], 1, EVENT)
            record = loads_bounded(stored, 1_000_000)
            assert isinstance(record, dict) and record["event"] == "$mp_web_page_view"
            assert record["properties"]["$insert_id"] == state["pageview"]
            origin = Origin()
            origin.local[key] = stored
            queue = OutboundQueue(Storage(FakeBrowser(origin)), token, state["tab"], 5000)
            assert queue.resume() == 1 and [r.body for r in queue] == [stored] and queue.head(50)[0].kind is EVENT
    finally:
        page.close()


def test_the_boot_version_is_the_package_version(page: Any, base_url: str, wire: Any) -> None:
    source = (ROOT / "empmix_web" / "boot.js").read_text()
    assert re.search(r'const VERSION = "([^"]+)";', source).group(1) == VERSION  # type: ignore[union-attr]
    assert f'"{VERSION}"' in (ROOT / "build" / "www" / "empmix-boot.js").read_text(), "rerun ./build.sh setup"
    token = new_token()
    page.goto(boot_page_url(base_url, token))
    (view,) = wait_until(lambda: wire.events(token), page=page)
    assert view["properties"]["$lib_version"] == VERSION and view["properties"]["mp_lib"] == "empmix-web"


# -- the collector cannot tell which side recorded it -----------------------------------------
def test_a_boot_page_view_is_the_sdk_track_pageview_on_the_same_state(context: Any, base_url: str, wire: Any) -> None:
    """The same URL, stored state and browser: the boot's page view (the boot-only page served at
    the SDK page's URL) and the SDK's own ``track_pageview()`` (the real SDK page, which has no
    boot without ``?token``) carry the same properties, equal but for the per-event ones."""
    from tests.browser.conftest import Py
    from tests.conftest import PAGE_READY_MS

    token = new_token("x")
    url = f"{base_url}/test/sdk-py.html?utm_source=news&utm_campaign=spring+sale&gclid=g%20c"
    page = context.new_page()
    try:
        page.goto(base_url + "/test/boot.template.html")
        page.evaluate(
            "([k, v, p, pv]) => { localStorage.setItem(k, v); localStorage.setItem(p, pv); }",
            [f"empmix_{token}_identity", user("usr_same"), f"empmix_{token}_props", jdump({"plan": "pro", "n": 1})],
        )
        source = BOOT_JS.read_text()
        html = f'<!doctype html><html><head><script data-token="{token}">{source}</script></head></html>'
        page.route(url, lambda route: route.fulfill(status=200, content_type="text/html", body=html), times=1)
        page.goto(url)
        (boot_view,) = wait_until(lambda: wire.events(token), page=page, what="the boot's page view")
        # delivered (its queued copy gone), so the SDK page has nothing of the boot's to adopt
        page.wait_for_function("k => !Object.keys(localStorage).some(s => s.startsWith(k))", arg=f"empmix_{token}_q_")
        page.goto(url)  # the same URL, now the SDK page (no route: its own HTML, no boot)
        page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
        page.interp = "py"  # type: ignore[attr-defined]
        Py(page)(f"c = mk({token!r}, track_marketing=True)\nc.track_pageview()\nawait c.flush(10000)")
        views = wait_until(
            lambda: [e for e in wire.events(token) if e["event"] == "$mp_web_page_view"][1:],
            page=page,
            what="the SDK's",
        )
        b, p = dict(boot_view["properties"]), dict(views[0]["properties"])
        assert set(b) == set(p)
        for k in PER_EVENT_KEYS:
            assert type(b.pop(k)) is type(p.pop(k))
        assert b == p
        assert b["distinct_id"] == "usr_same" and b["plan"] == "pro" and b["utm_campaign"] == "spring sale"
    finally:
        page.close()


PER_EVENT_KEYS = ("time", "$insert_id")

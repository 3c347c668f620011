"""Running the boot script (``build/www/empmix-boot.js``) in Chromium, and the SDK's Python on the
same stored state through the fake browser, so that tests compare the two sides' outcomes.

One Chromium page can run many boots at once: :func:`run_boots` inserts one inline copy of the
minified script per case, each with its own ``data-token`` (hence its own storage keys and
cookie) and ``data-config``, and records ``window.empmixBoot`` after each. Cases
whose page URL or referrer matters navigate one page each (:func:`boot_page_url`).
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode

from empmix_web.client import EmpMixClient
from tests.conftest import wait_until
from tests.unit.conftest import run
from tests.unit.fake_browser import FakeBrowser, Origin
from tests.wire_server import WWW

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
IDENTITY_KEYS = ("distinct_id", "$device_id", "$user_id")
PER_EVENT = ("time", "$insert_id")


def new_token(tag: str = "b") -> str:
    return tag + uuid.uuid4().hex[:12]


def sdk_json(distinct_id: str, device_id: str, user_id: str | None = None, **extra: Any) -> str:
    """The identity text the SDK writes (``Identity.to_json`` through ``compat.dumps``)."""
    from empmix_web.compat import dumps
    from empmix_web.identity import Identity

    data = Identity(distinct_id, device_id, user_id, extra.pop("alias", None)).to_json()
    data.update(extra)
    return dumps(data)


@dataclass
class Case:
    """One boot: what is stored for its token before it runs, and its data-config."""

    name: str
    local: dict[str, str] = field(default_factory=dict)  # key suffix ("identity") -> value
    cookie: str | None = None  # the raw cookie value of empmix_<token>, as document.cookie shows it
    config: dict[str, Any] = field(default_factory=dict)
    token: str = field(default_factory=new_token)

    def keyed(self) -> dict[str, str]:
        return {f"empmix_{self.token}_{k}": v for k, v in self.local.items()}

    @property
    def cookie_name(self) -> str:
        return "empmix_" + self.token


@dataclass
class BootResult:
    state: dict[str, Any] | None  # window.empmixBoot right after this boot ran
    local: dict[str, str]  # the token's localStorage keys once its page view was sent
    cookies: list[dict[str, Any]]  # context.cookies() named empmix_<token>
    events: list[dict[str, Any]]  # what reached the wire for the token

    @property
    def pageview(self) -> dict[str, Any]:
        (view,) = [e["properties"] for e in self.events if e["event"] == "$mp_web_page_view"]
        return view

    def cookie_value(self) -> str | None:
        values = [c["value"] for c in self.cookies]
        assert len(values) <= 1, self.cookies
        return values[0] if values else None


def seed(context: Any, page: Any, base: str, cases: list[Case]) -> None:
    """Store each case's values before its boot runs (``page`` is on the origin, without a boot)."""
    cookies = [{"name": c.cookie_name, "value": c.cookie, "url": base + "/"} for c in cases if c.cookie is not None]
    if cookies:
        context.add_cookies(cookies)
    local = {k: v for c in cases for k, v in c.keyed().items()}
    if local:
        page.evaluate("items => { for (const [k, v] of Object.entries(items)) localStorage.setItem(k, v); }", local)


# the boot script under test; EMPMIX_BOOT_JS names another copy (a mutant, to see a test fail)
# without touching the build/www one other test runs load
BOOT_JS = Path(os.environ.get("EMPMIX_BOOT_JS") or WWW / "empmix-boot.js")


def boot_context(browser: Any, base_url: str) -> Any:
    """A context whose pages load :data:`BOOT_JS` as /empmix-boot.js."""
    context = browser.new_context(base_url=base_url)
    if os.environ.get("EMPMIX_BOOT_JS"):
        context.route(
            "**/empmix-boot.js",
            lambda route: route.fulfill(status=200, content_type="text/javascript", body=BOOT_JS.read_text()),
        )
    return context


RUN_BOOTS = """([source, cases]) => {
  window.boots = {};
  for (const [token, config] of cases) {  // an inline script runs as soon as it is inserted
    const script = document.createElement("script");
    script.dataset.token = token;
    script.dataset.config = config;
    script.text = source;
    document.head.append(script);
    window.boots[token] = window.empmixBoot ? JSON.parse(JSON.stringify(window.empmixBoot)) : null;
    window.empmixBoot = undefined;
  }
}"""


def viewed(wire: Any, since: int) -> set[str]:
    """Tokens with a page view among the requests the wire received from index ``since`` on."""
    return {
        str(rec["properties"].get("token"))
        for r in wire.requests[since:]
        for rec in r.records
        if isinstance(rec, dict) and rec.get("event") == "$mp_web_page_view" and isinstance(rec.get("properties"), dict)
    }


def collect(
    context: Any, page: Any, wire: Any, cases: list[Case], sent: bool = True, since: int = 0
) -> dict[str, BootResult]:
    """Each case's outcome, once the page view of every case that records one has arrived."""
    if sent:
        tokens = {c.token for c in cases}
        wait_until(lambda: tokens <= viewed(wire, since), what="the page views on the wire", page=page)
    states, stored = page.evaluate(
        "prefixes => [window.boots || {}, Object.fromEntries(Object.entries(localStorage).filter("
        "([k]) => prefixes.some(p => k.startsWith(p))))]",
        [f"empmix_{c.token}_" for c in cases],
    )
    jar = context.cookies()
    results = {}
    for case in cases:
        prefix = f"empmix_{case.token}_"
        results[case.token] = BootResult(
            states.get(case.token),
            {k[len(prefix) :]: v for k, v in stored.items() if k.startswith(prefix)},
            [c for c in jar if c["name"] == case.cookie_name],
            wire.events(case.token),
        )
    return results


def run_boots(
    context: Any, page: Any, base: str, wire: Any, cases: list[Case], sent: bool = True, query: str = ""
) -> dict[str, BootResult]:
    """Seed every case, then run one boot per case in the page (the minified script, inline:
    ``document.currentScript`` is each one's element), on ``/test/boot.template.html<query>``."""
    url = f"{base}/test/boot.template.html{query}"
    results: dict[str, BootResult] = {}
    for chunk in chunks(cases):
        page.goto(url)  # no data-token: the page's own boot does nothing; a new keepalive quota
        seed(context, page, base, chunk)
        since = len(wire.requests)
        page.evaluate(RUN_BOOTS, [BOOT_JS.read_text(), [[c.token, json.dumps(c.config)] for c in chunk]])
        try:
            results.update(collect(context, page, wire, chunk, sent, since))
        finally:  # Chromium keeps 180 cookies a host: make room for the next cases
            context.clear_cookies(name=re.compile("^(" + "|".join(re.escape(c.cookie_name) for c in chunk) + ")$"))
    return results


def chunks(cases: list[Case]) -> list[list[Case]]:
    """Cases whose page views fit one page's keepalive quota (64 KB for all its fetches, held
    while a reply's body is unread)."""
    out: list[list[Case]] = [[]]
    size = 0
    for case in cases:
        grown = 1200 + 3 * sum(map(len, case.local.values())) // 2 + len(case.cookie or "")
        if out[-1] and size + grown > 52_000:
            out.append([])
            size = 0
        out[-1].append(case)
        size += grown
    return out


def boot_page_url(base: str, token: str, config: dict[str, Any] | None = None, query: str = "") -> str:
    """The boot-only test page (tests/pages/boot.template.html) for ``token``."""
    params = urlencode({"token": token, "config": json.dumps(config or {})})
    return f"{base}/test/boot.template.html?{params}{query}"


# -- the SDK's side, on the same state ----------------------------------------------------------


class PageLikeBrowser(FakeBrowser):
    """The fake browser with the real page's screen."""

    def __init__(self, origin: Origin, url: str, referrer: str, screen: tuple[int, int]) -> None:
        super().__init__(origin, url=url, referrer=referrer)
        self._screen = screen

    def screen_size(self) -> tuple[int, int]:
        return self._screen

    cookies_throw = False  # document.cookie throws: the bridge reads "" and drops writes

    def get_cookies(self) -> str:
        return "" if self.cookies_throw else super().get_cookies()

    def set_cookie(self, cookie: str) -> None:
        if self.cookies_throw:
            return
        name_value = cookie.split(";", 1)[0]
        if len(name_value.encode()) - 1 <= 4096:  # Chromium keeps no cookie longer than 4 KB
            super().set_cookie(cookie)


@dataclass
class PyResult:
    pageview: dict[str, Any]
    local: dict[str, str]  # the token's keys, suffixes as in BootResult
    cookies: dict[str, str]  # domain ("" = host-only) -> raw value of empmix_<token>
    origin: Origin


def python_pageview(
    case: Case,
    url: str,
    referrer: str = "",
    screen: tuple[int, int] = (1280, 720),
    host: str = "127.0.0.1",
    https: bool = False,
    storage: str = "ok",
    props: dict[str, Any] | None = None,
    cookies_throw: bool = False,
) -> PyResult:
    """What ``EmpMixClient.init`` + ``track_pageview()`` do on the case's stored state.

    ``storage``: "ok", "broken" (every localStorage call throws), "full" (every write refused)."""
    origin = Origin(host=host, https=https)
    origin.clock_ms = time.time() * 1000
    origin.local.update(case.keyed())
    if case.cookie is not None:
        origin.cookies[(case.cookie_name, "")] = case.cookie
    if storage == "broken":
        origin.storage_broken = True
    elif storage == "full":
        origin.quota_chars = 0
    browser = PageLikeBrowser(origin, url, referrer, screen)
    browser.cookies_throw = cookies_throw
    options = {k: v for k, v in case.config.items() if k != "pageview_properties"}

    async def body() -> list[dict[str, Any]]:
        client = EmpMixClient(case.token, browser=browser, flush_interval_ms=600_000, **options)
        client.track_pageview(props)
        core = client._core
        assert core is not None
        records = [json.loads(r.body) for r in core.queue]
        core.stop()
        return records

    records = run(body)
    (view,) = [r["properties"] for r in records if r.get("event") == "$mp_web_page_view"]
    prefix = f"empmix_{case.token}_"
    local = {k[len(prefix) :]: v for k, v in origin.local.items() if k.startswith(prefix)}
    cookies = {d: v for (n, d), v in origin.cookies.items() if n == case.cookie_name}
    return PyResult(view, local, cookies, origin)


def seeded_text(case: Case) -> str:
    """Everything stored for the case, decoded (to tell a kept id from a minted one)."""
    return "\n".join(list(case.local.values()) + ([unquote(case.cookie)] if case.cookie is not None else []))


def minted(props: dict[str, Any], case: Case) -> bool:
    """True when the page view's device id is new (stored nowhere before)."""
    device, text = str(props["$device_id"]), seeded_text(case)
    forms = (device, json.dumps(device)[1:-1], json.dumps(device, ensure_ascii=False)[1:-1])
    return all(form not in text for form in forms)


def assert_same_identity(boot: BootResult, py: PyResult, case: Case) -> None:
    """Kept vs minted, which identity, and what was written back where: the same on both sides."""
    b, p = boot.pageview, py.pageview
    assert minted(b, case) == minted(p, case), ("minted", b["$device_id"], p["$device_id"])
    if minted(p, case):
        device = b["$device_id"]
        assert UUID4.match(device), device
        assert (b["distinct_id"], b.get("$user_id")) == ("$device:" + device, None)
        assert "$user_id" not in p
        swap = {p["$device_id"]: device}  # the same text, but for the random device id
    else:
        assert {k: b.get(k) for k in IDENTITY_KEYS} == {k: p.get(k) for k in IDENTITY_KEYS}
        swap = {}

    def same(text: str | None) -> str | None:
        for old, new in swap.items():
            text = None if text is None else text.replace(old, new)
        return text

    assert boot.state is not None and boot.state["device"] == b["$device_id"]
    assert boot.local.get("identity") == same(py.local.get("identity")), "localStorage identity"
    assert boot.cookie_value() == same(py.cookies.get("")), "identity cookie"


def assert_same_pageview(boot: BootResult, py: PyResult, case: Case, session_id: str | None = None) -> None:
    """Same property keys; same values but for the per-event ones (and random new ids)."""
    assert_same_identity(boot, py, case)
    b, p = dict(boot.pageview), dict(py.pageview)
    assert set(b) == set(p), (sorted(set(b) - set(p)), sorted(set(p) - set(b)))
    for key in PER_EVENT:
        assert type(b.pop(key)) is type(p.pop(key)), key
    if minted(p, case):
        for key in IDENTITY_KEYS:
            b.pop(key, None), p.pop(key, None)
    b_kept, p_kept = b.pop("$session_id") == session_id, p.pop("$session_id") == session_id
    assert b_kept == p_kept, ("session kept", b_kept, p_kept)
    assert b == p


def cookie_raw(value: str) -> str:
    """A cookie value the way the SDK writes it (encodeURIComponent)."""
    return quote(value, safe="-_.!~*'()")

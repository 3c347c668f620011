"""The demo before Python is ready, in Chromium against the real collector: the boot script
counts the visit, the forms stay shut (nothing typed reaches the URL), and the dashboard's
start-up panel shows what the collector stored.

Python is held back deterministically: Playwright holds PyScript's request for ``/app.py`` until
the test releases it, so "before ready" lasts exactly as long as the test needs (no sleeps).
"""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Route, expect

from tests.conftest import PAGE_READY_MS, ROOT, wait_until
from tests.site.conftest import Site, Watched, open_page
from tools import site_pages

TOKEN = "forms_token"
CONTROLS = ["#signup-user", "#signup-company", "#signup-submit", "#login-user", "#login-plan", "#login-submit",
            "#btn-pricing", "#btn-tour", "#consent-accept", "#consent-reject"]  # fmt: skip


def held_page(context: Any, path: str) -> tuple[Any, list[Route]]:
    """``path`` opened with its ``app.py`` held back: the page as the visitor sees it while
    Python loads. Returns the page and the held requests (release them with ``continue_()``)."""
    page = context.new_page()
    held: list[Route] = []
    page.route(re.compile(r"/app\.py(\?|$)"), lambda route: held.append(route))
    page.goto(path)
    wait_until(lambda: held, PAGE_READY_MS / 1000, "PyScript to ask for app.py", page=page)
    return page, held


def stored(site: Site, name: str, **props: Any) -> list[dict[str, Any]]:
    """The events ``name`` of the forms project that have all of ``props``."""
    events = site.api("/api/events?limit=1000", TOKEN)["events"]
    return [e for e in events if e["event"] == name and all(e["properties"].get(k) == v for k, v in props.items())]


def test_every_page_loads_the_boot_script_before_pyscript() -> None:
    """The boot script tag (written by boot-tag.js with the page's ?token= and the tag's
    data-config: cookieless="until_consent" on the app's four pages) comes before PyScript's
    core.js on every page, and the forms post: a submit never puts their fields in the URL."""
    index = (ROOT / "site" / "index.html").read_text()
    pages = {page: site_pages.variant(index, page) for page in site_pages.VARIANTS}
    pages.update({"index.html": index, "dashboard.html": (ROOT / "site" / "dashboard.html").read_text()})
    app_tag = """<script src="/boot-tag.js" data-config='{"cookieless": "until_consent"}'></script>"""
    for name, html in pages.items():
        tag = app_tag if name != "dashboard.html" else '<script src="/boot-tag.js"></script>'
        boot = html.find(tag)  # a classic script: it runs first
        assert 0 < boot < html.find('<script type="module" src="/pyscript/core.js">'), name
        assert ('id="consent-accept"' in html) == (name != "dashboard.html"), name  # the banner: the app's pages
    tag = (ROOT / "site" / "boot-tag.js").read_text()
    assert 'document.write(\'<script src="/empmix-boot.js" data-token="\' + token' in tag
    assert re.findall(r"<form [^>]*>", index) == [
        '<form id="signup-form" autocomplete="off" method="post">',
        '<form id="login-form" autocomplete="off" method="post">',
    ]


def test_forms_are_shut_until_python_is_ready(browser: Any, site: Site) -> None:
    context = browser.new_context(base_url=site.url)
    page, held = held_page(context, f"/?token={TOKEN}")
    start = page.url
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    expect(page.locator("#loading")).to_be_visible()
    for selector in CONTROLS:
        expect(page.locator(selector)).to_be_disabled()

    # what a visitor does on a form that looks ready: click the button, click a field, type, Enter
    page.click("#signup-submit", force=True)
    for field in ("#signup-user", "#login-user"):
        page.click(field, force=True)
        page.keyboard.type("alice")
        page.keyboard.press("Enter")
    page.locator("#login-submit").dispatch_event("click")  # a click event straight at the button
    assert page.evaluate("[...document.querySelectorAll('input')].map(i => i.value).join('')") == ""
    assert page.evaluate("document.activeElement === document.body")  # no field took the focus
    # ... and the boot script counted the visit meanwhile
    wait_until(lambda: stored(site, "$mp_web_page_view", **{"$current_url": start}), 15, "the boot page view")
    assert page.url == start and navigations == [], navigations

    # Python starts: the same form now works, through the SDK, and still leaves the URL alone
    for route in held:
        route.continue_()
    page.wait_for_selector("body[data-ready=true]", state="attached", timeout=PAGE_READY_MS)
    for selector in CONTROLS:
        expect(page.locator(selector)).to_be_enabled()
    page.fill("#signup-user", "Alice")
    page.press("#signup-user", "Enter")
    expect(page.locator("#status")).to_have_attribute("data-confirmed", "2", timeout=20_000)
    assert page.url == start and navigations == [], navigations
    assert "usr_alice" in {e["distinct_id"] for e in stored(site, "Signed Up")}
    views = stored(site, "$mp_web_page_view", **{"$current_url": start})
    assert len(views) == 1, views  # the boot script's, adopted by the SDK: one page load, one view
    context.close()


def test_a_submit_before_ready_keeps_the_fields_out_of_the_url(browser: Any, site: Site) -> None:
    """Even a form submitted by script before ready (the fieldset stops people, not code) posts:
    the user name goes in no URL, so no ``$current_url`` ever carries it."""
    context = browser.new_context(base_url=site.url)
    page, held = held_page(context, f"/?token={TOKEN}&via=script")
    start = page.url
    with page.expect_request(lambda r: r.url.startswith(site.url) and r.is_navigation_request()) as sent:
        # submitted from a timer, so that evaluate() has returned before the page navigates
        page.evaluate("""() => { document.querySelector('#signup-user').value = 'mallory';
                                 setTimeout(() => document.querySelector('#signup-form').requestSubmit()); }""")
    request = sent.value
    assert request.method == "POST" and request.url == start and "mallory" not in request.url
    # the held app.py belongs to the page that navigated away: let it go, or closing the
    # context can wait on it (seen under load: context.close() hung)
    page.unroute_all(behavior="ignoreErrors")
    for route in held:
        try:
            route.abort()
        except Exception:  # the request went with its page
            pass
    context.close()


def test_startup_panel_shows_what_the_collector_stored(browser: Any, site: Site) -> None:
    context = browser.new_context(base_url=site.url)
    # a visitor who leaves while Python still loads: a page view and an early page leave
    page, _ = held_page(context, f"/?token={TOKEN}&visit=early")
    page.goto("about:blank")
    wait_until(lambda: stored(site, "$mp_page_leave", **{"$left_before_ready": True}), 15, "the early page leave")
    page.close()
    # a visitor who stays until Python is ready: a page view and $python_ready
    ready = open_page(context, f"/?token={TOKEN}&visit=ready")
    wait_until(lambda: stored(site, "$python_ready", **{"$interpreter": "pyodide"}), 20, "$python_ready")

    dash: Watched = open_page(context, f"/dashboard.html?token={TOKEN}")
    panel = dash.page.locator("#startup .startup-stats")
    expect(panel).to_have_attribute("data-visits", re.compile(r"[1-9]"), timeout=15_000)

    def shown() -> tuple[str | None, ...]:
        return tuple(
            dash.page.evaluate("""() => {
            const stats = document.querySelector('#startup .startup-stats').dataset;
            const row = document.querySelector('#startup tr[data-interpreter="pyodide"]');
            return [stats.visits, stats.left, row ? row.dataset.count : null]; }""")
        )

    def expected() -> tuple[str, ...]:  # counted here from the stored events, the dashboard's own included
        return (str(len(stored(site, "$mp_web_page_view"))),
                str(len(stored(site, "$mp_page_leave", **{"$left_before_ready": True}))),
                str(len(stored(site, "$python_ready", **{"$interpreter": "pyodide"}))))  # fmt: skip

    wait_until(lambda: shown() == expected(), 20, "the panel to show the stored counts", page=dash.page)
    visits, left, _ = (int(n) for n in expected())
    assert left >= 1 and visits >= 3  # this test's early leaver, its ready visit, the dashboard
    share = float(panel.get_attribute("data-share") or "nan")
    assert share == left / visits
    bars = dash.page.locator("#startup svg .bucket")
    assert sum(int(n) for n in bars.evaluate_all("els => els.map(e => e.dataset.count)")) == int(expected()[2])
    assert not ready.errors + dash.errors, ready.errors + dash.errors
    context.close()

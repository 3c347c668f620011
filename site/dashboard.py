"""The collector dashboard: polls the query API every 2 s and redraws what changed.

Markup comes from dashview.py (pure Python); this file only fetches and swaps it into the page.
``?token=`` selects the project when the collector serves several (default: its first).
"""

import asyncio
from datetime import datetime
from urllib.parse import parse_qs, quote, urlencode

from pyodide.http import pyfetch
from pyscript import document, window

import dashview
from empmix_web import EmpMix

STEPS = ["$mp_web_page_view", "Signed Up", "Logged In"]
PRODUCT_STEPS = ["Signed Up", "Created Note", "Upgrade"]  # counted by person and by company
GROUP_KEY = "company"
SESSIONS_FOR = 12  # persons whose sessions are fetched (the first cards shown)
POLL_S = 2.0
params = parse_qs(str(window.location.search).lstrip("?"))
TOKEN = params.get("token", [None])[0]
shown: dict[str, str] = {}


# the dashboard is a page of the demo too: the boot script counted this load under ?token= (default
# demo_token); the SDK takes over from it and tracks $python_ready
EmpMix.init(api_host=str(window.location.origin))
EmpMix.track_pageview()  # this load's page view is the boot script's: counted once


def q(selector):
    return document.querySelector(selector)


async def get(path, key=None, **query):
    if TOKEN:
        query["token"] = TOKEN
    url = path + ("?" + urlencode(query) if query else "")
    response = await pyfetch(url, headers={"Accept": "application/json"})
    if not response.ok:
        raise RuntimeError(f"GET {path}: HTTP {response.status}")
    data = await response.json()
    if key is not None and isinstance(data, dict):  # {"persons": [...]} or a bare list
        data = data.get(key, [])
    return data


def put(selector, markup):
    """Replace an element's content only when it changed (no flicker, text selection survives)."""
    if shown.get(selector) != markup:
        q(selector).innerHTML = markup
        shown[selector] = markup


async def sessions_of(persons):
    """person_id -> its sessions, for the persons whose cards come first."""
    shown = [p for p in dashview.ordered_persons(persons)[:SESSIONS_FOR] if p.get("distinct_ids")]
    answers = await asyncio.gather(*(
        get("/api/persons/" + quote(p["distinct_ids"][0], safe="") + "/sessions", "sessions") for p in shown))
    return {p["person_id"]: found for p, found in zip(shown, answers)}


async def refresh():
    (startup, events, persons, merges, by_person, by_distinct, product_person, product_company,
     groups, cookieless) = await asyncio.gather(
        get("/api/startup"),
        get("/api/events", "events", limit=40),
        get("/api/persons", "persons"),
        get("/api/merges", "merges"),
        get("/api/funnel", "steps", steps=",".join(STEPS)),
        get("/api/funnel", "steps", steps=",".join(STEPS), by="distinct_id"),
        get("/api/funnel", "steps", steps=",".join(PRODUCT_STEPS)),
        get("/api/funnel", "steps", steps=",".join(PRODUCT_STEPS), by="group", group_key=GROUP_KEY),
        get("/api/groups", "groups", group_key=GROUP_KEY),
        get("/api/cookieless"),
    )
    sessions = await sessions_of(persons)
    put("#startup", dashview.startup_html(startup))
    put("#cookieless", dashview.cookieless_html(cookieless))
    put("#funnel-person", dashview.funnel_html(by_person))
    put("#funnel-distinct", dashview.funnel_html(by_distinct))
    put("#funnel-product-person", dashview.funnel_html(product_person))
    put("#funnel-product-company", dashview.funnel_html(product_company))
    put("#groups tbody", dashview.groups_rows(groups, persons))
    put("#persons", dashview.persons_html(persons, merges, sessions=sessions))
    put("#refused tbody", dashview.refused_rows(merges))
    put("#events tbody", dashview.events_rows(events, persons))


async def poll():
    status = q("#dash-status")
    polls = 0
    while True:
        try:
            await refresh()
            polls += 1
            status.dataset.polls = str(polls)
            status.dataset.state = "live"
            status.textContent = f"Live · updated {datetime.now().strftime('%H:%M:%S')} · every {POLL_S:.0f} s"
        except Exception as exc:  # collector restarting, a bad reply: keep polling
            status.dataset.state = "error"
            status.textContent = f"Collector unreachable ({exc}); retrying…"
        document.body.dataset.ready = "true"
        await asyncio.sleep(POLL_S)


asyncio.ensure_future(poll())

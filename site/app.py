"""Acme Notes: the empmix-web example app, one file for every page: index.html (Pyodide, main
thread), worker.html (Pyodide in a worker), mpy.html and mpy-worker.html (MicroPython).

PyScript's ``window``/``document`` are the page's real ones everywhere (in a worker they are
synchronous proxies, which need a cross-origin-isolated page). The file keeps to the Python both
interpreters run (no ``re``, ``urllib`` or ``datetime``: see docs/guide.md, "Pyodide and MicroPython").

Query parameters: ``?token=`` (default ``demo_token``: the page's boot script tag carries it, and
``EmpMix.init()`` takes it from there, with ``cookieless="until_consent"`` from the tag's
``data-config``: nothing is stored until "Accept" on the consent banner), ``?flush_ms=N`` (the SDK's
flush_interval_ms; with it the app stops flushing after each action, so you can watch batching
and the page-hide beacon). Campaign parameters (``?utm_source=...``, as the campaign link has)
are read by the SDK itself.
"""

import asyncio
import sys
import time

from pyscript import document, when, window
from pyscript.context import RUNNING_IN_WORKER

from empmix_web import EmpMix

MICROPYTHON = sys.implementation.name == "micropython"


def query_params(search):
    """``?a=1&b=2`` -> ``{"a": "1", "b": "2"}`` (the demo's parameters need no decoding)."""
    params = {}
    for part in search.lstrip("?").split("&"):
        key, _, value = part.partition("=")
        if key and key not in params:
            params[key] = value
    return params


params = query_params(str(window.location.search))
FLUSH_MS = params.get("flush_ms", "1000")
FLUSH_MS = int(FLUSH_MS) if FLUSH_MS.isdigit() and int(FLUSH_MS) > 0 else 1000
EAGER = "flush_ms" not in params  # confirm each action with EmpMix.flush()


# no token: the boot script's data-token (index.html writes it from ?token=) and data-config
# (cookieless="until_consent": the boot script and the SDK follow the same mode); the boot script
# already counted this page load, sends to the same origin by default, and the SDK adopts its
# identity and queue
EmpMix.init(api_host=str(window.location.origin), flush_interval_ms=FLUSH_MS)


def q(selector):
    return document.querySelector(selector)


def user_id_for(name):
    """What the pretend backend returns for a user name (the docs' ``response.data.id``)."""
    slug = ""
    for ch in name.strip().lower():
        ok = "a" <= ch <= "z" or "0" <= ch <= "9" or ch == "_"
        slug += ch if ok else ("_" if not slug.endswith("_") else "")
    slug = slug.strip("_")
    return f"usr_{slug}" if slug else None


def now_iso():
    return "%04d-%02d-%02dT%02d:%02d:%02d+00:00" % time.gmtime()[:6]


def spawn(coro):
    return asyncio.get_event_loop().create_task(coro)


# -- what the page shows -------------------------------------------------------------------------
class Session:
    """The app's own login state. It normally matches the SDK's user, except after the
    "forgot reset()" logout, which shows what the documentation warns about."""

    user = None


CONSENT = {"none": "no choice yet: cookieless, nothing stored", "in": "accepted: remembered in this browser",
           "out": "rejected: cookieless, only the choice stored"}


def consent_state():
    """``"in"`` (accepted: persistent identity), ``"out"`` (rejected: cookieless for good, the
    choice stored) or ``"none"`` (no choice stored yet: cookieless), as the SDK sees it."""
    if EmpMix.has_opted_out():
        return "out"
    return "in" if EmpMix.get_device_id() else "none"


def show_identity():
    user = EmpMix.get_user_id()
    consent = consent_state()
    q("#id-distinct").textContent = EmpMix.get_distinct_id()
    q("#id-device").textContent = EmpMix.get_device_id() or "none"  # none while cookieless
    q("#id-user").textContent = user or "anonymous"
    q("#id-consent").textContent = CONSENT[consent]
    q("#identity").dataset.state = "identified" if user else "anonymous"
    q("#identity").dataset.consent = consent
    q("#consent").hidden = consent != "none"  # the banner shows until a choice is stored
    q("#whoami").textContent = Session.user or ""
    q("#signed-in").hidden = not Session.user
    q("#signed-out").hidden = bool(Session.user)
    if not Session.user:
        q("#upgrade-dialog").hidden = True


def log_calls(*calls):
    item = document.createElement("li")
    for call in calls:
        code = document.createElement("code")
        code.textContent = call
        item.append(code, document.createElement("br"))
    item.lastChild.remove()
    box = q("#calls")
    box.prepend(item)
    while box.children.length > 12:
        box.lastElementChild.remove()


class Status:
    """The status line: which action the collector has confirmed last."""

    seq = 0
    confirmed = 0

    @classmethod
    def action(cls, *calls):
        cls.seq += 1
        log_calls(*calls)
        show_identity()
        el = q("#status")
        el.dataset.seq = str(cls.seq)
        if EAGER:
            el.textContent = f"Action #{cls.seq}: sending…"
            spawn(cls.confirm(cls.seq))
        else:
            el.textContent = (f"Action #{cls.seq} queued; the SDK sends a batch every {FLUSH_MS} ms, "
                              "or by beacon when the page is hidden.")

    @classmethod
    async def confirm(cls, seq):
        delivered = await EmpMix.flush(timeout_ms=15_000)
        if seq <= cls.confirmed:
            return
        el = q("#status")
        if delivered:
            cls.confirmed = seq
            el.dataset.confirmed = str(seq)
            stamp = "%02d:%02d:%02d" % time.localtime()[3:6]
            el.textContent = f"✓ Action #{seq} delivered: the collector confirmed the last batch at {stamp}."
        else:
            el.textContent = f"Action #{seq} not confirmed yet; the SDK keeps it queued and retries."


def form_value(selector):
    return str(q(selector).value).strip()


# -- handlers (Python, via pyscript.when) ------------------------------------------------------------
# A worker receives DOM events after the browser dispatched them, too late for preventDefault():
# the "invoke" option makes PyScript call it on the main thread, synchronously.
SUBMIT = {"invoke": "preventDefault"}


def no_default(event):
    if not RUNNING_IN_WORKER:
        event.preventDefault()


@when("submit", "#signup-form", **SUBMIT)
def on_signup(event):
    no_default(event)
    name = form_value("#signup-user")
    company = form_value("#signup-company")
    user_id = user_id_for(name)
    if user_id is None or Session.user:
        return
    # the documentation's sign-up flow: alias once, identify, join the company, then track
    EmpMix.alias(user_id)
    EmpMix.identify(user_id)
    calls = [f"EmpMix.alias({user_id!r})", f"EmpMix.identify({user_id!r})"]
    if company:
        # the user is in the company's group: every later event carries {"company": [company]}
        EmpMix.set_group("company", company)
        EmpMix.get_group("company", company).set({"name": company})
        calls += [f"EmpMix.set_group('company', {company!r})",
                  f"EmpMix.get_group('company', {company!r}).set({{'name': {company!r}}})"]
    EmpMix.track("Signed Up")
    EmpMix.set_user_properties({"$name": name, "plan": "Free", "signup_date": now_iso()})
    Session.user = user_id
    q("#signup-form").reset()
    Status.action(*(calls + ["EmpMix.track('Signed Up')", "EmpMix.set_user_properties({...})"]))


@when("submit", "#login-form", **SUBMIT)
def on_login(event):
    no_default(event)
    name = form_value("#login-user")
    plan = form_value("#login-plan")
    user_id = user_id_for(name)
    if user_id is None:
        return
    EmpMix.identify(user_id, {"$name": name})
    EmpMix.set_user_properties({"last_login_date": now_iso(), "plan": plan})
    EmpMix.increment("logins_count", 1)
    EmpMix.track("Logged In", {"plan": plan})
    Session.user = user_id
    q("#login-form").reset()
    Status.action(f"EmpMix.identify({user_id!r}, {{'$name': {name!r}}})",
                  f"EmpMix.set_user_properties({{'last_login_date': ..., 'plan': {plan!r}}})",
                  "EmpMix.increment('logins_count', 1)", "EmpMix.track('Logged In')")


@when("click", "#logout")
def on_logout():
    EmpMix.track("Logged Out")
    EmpMix.reset()
    Session.user = None
    Status.action("EmpMix.track('Logged Out')", "EmpMix.reset()")


@when("click", "#logout-noreset")
def on_logout_without_reset():
    # The bug the documentation warns about: the next person to log in on this browser is
    # identify()-ed on top of the previous user (same device id); the collector refuses to merge
    # two identified users and logs the refused link, which the dashboard shows in red.
    EmpMix.track("Logged Out")
    Session.user = None
    Status.action("EmpMix.track('Logged Out')", "# reset() forgotten: the SDK still holds the old user")


@when("click", "#consent-accept")
def on_accept():
    # persistent from now on: the first event after it ($opt_in) carries the new device id and
    # $cookieless_link, so the collector joins this visit's page views so far to the device
    EmpMix.opt_in_tracking()
    Status.action("EmpMix.opt_in_tracking()  # Accept")


@when("click", "#consent-reject")
def on_reject():
    # stays cookieless for good; the refusal (empmix_<token>_consent = "out") is all that is stored
    EmpMix.opt_out_tracking()
    Status.action("EmpMix.opt_out_tracking()  # Reject")


@when("click", "#upgrade-open")
def on_upgrade_open():
    # a timed step: the Upgrade event tracked on confirm carries $duration (seconds since now)
    EmpMix.time_event("Upgrade")
    q("#upgrade-dialog").hidden = False
    Status.action("EmpMix.time_event('Upgrade')")


@when("click", "#upgrade-confirm")
def on_upgrade_confirm():
    EmpMix.track("Upgrade", {"plan": "Pro"})
    q("#upgrade-dialog").hidden = True
    Status.action("EmpMix.track('Upgrade', {'plan': 'Pro'})  # + $duration")


@when("click", "#upgrade-cancel")
def on_upgrade_cancel():
    q("#upgrade-dialog").hidden = True


def campaign_href():
    """The campaign link keeps this page and its ``?token=``."""
    link = str(window.location.pathname) + "?"
    if "token" in params:
        link += "token=" + params["token"] + "&"
    return link + "utm_source=newsletter&utm_medium=email&utm_campaign=spring"


def product_button(button):
    name = str(button.dataset.event)  # read now: a worker gets the event after dispatch

    def on_click():
        EmpMix.track(name)
        Status.action(f"EmpMix.track({name!r})")

    when("click", button)(on_click)


for btn in document.querySelectorAll(".track-btn"):
    product_button(btn)

# -- start ---------------------------------------------------------------------------------------
q("#campaign-link").setAttribute("href", campaign_href())
Session.user = EmpMix.get_user_id()  # still logged in from an earlier visit
EmpMix.track_pageview()
Status.action("EmpMix.track_pageview()")
q("#runtime").textContent = ("MicroPython" if MICROPYTHON else "Python") + (
    " in a worker" if RUNNING_IN_WORKER else " on the main thread")
q("#loading").remove()
for control in document.querySelectorAll("[data-needs-python]"):  # disabled in the markup until now
    control.disabled = False
document.body.dataset.ready = "true"
window.appReady = True

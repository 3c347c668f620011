"""Benchmark 7: visitors who leave early (issue 17). Is a visit counted when the tab closes T s
after navigation, with the boot script (``empmix-boot.js``) and without it, next to
mixpanel-browser?

* Four page kinds, side by side in one run, on the collector of :class:`BenchBrowser` (the real
  ``python -m empmix_collector``):

  - ``pyodide_boot``: the demo's ``/`` (``build/www/index.html``: its boot script tag, then
    PyScript under Pyodide);
  - ``micropython_boot``: the demo's ``/mpy.html`` (the same under MicroPython);
  - ``pyodide_noboot``: a copy of ``/`` without the boot script tag (written here from
    ``build/www/index.html``; its ``app.py`` copy passes the token to ``EmpMix.init()``, as the
    demo did before the boot script), so the SDK counts the visit alone, once Python runs;
  - ``mixpanel``: mixpanel-browser on a plain page, ``track_pageview: true``
    (``bench/page/early-mixpanel.html``).

* Every visit is a fresh browser context (cold cache, no storage) with a project token of its own
  (``?token=``), so a token's stored ``$mp_web_page_view`` rows are exactly that load's page
  views. The tab is closed ``T`` s after navigation began (0.3, 0.5, 1, 2, 3); the context stays
  open ``GRACE_S`` more seconds, as a browser keeps its network running after a tab closes, so
  beacons sent at ``pagehide`` can land (then it is closed: a browser context's end aborts its
  requests). After the last visit the collector is polled until every visit is counted or its
  grace is over. Two network profiles: loopback as it is, and Chromium's network emulation at
  20 Mbps / 20 ms (a CDP session: ``Network.emulateNetworkConditions``, latency in ms,
  throughput in bytes/s), set before navigation. Visits run two at a time (never starting one
  while another tab is due to close within ``START_GUARD_S``), interleaved over kinds.
* One reference visit per kind and profile keeps its tab open until the page is ready (Python's
  ``app.py`` ran; mixpanel-browser's ``loaded``) and its page view is stored: the time from
  navigation to the first stored page view (the collector's ``received_ms``), then closed like
  the others. Every load, these included, must store exactly one page view.
* The boot script's size: ``build/www/empmix-boot.js`` (the minified copy ``./build.sh setup``
  writes), ``gzip -9``; also the source the collector itself serves at ``/empmix-boot.js``.
* Its execution time: a page (served from a small server of its own here, because the
  collector's Content-Security-Policy allows no inline script) takes ``performance.now()`` in
  inline scripts right before and after the boot script tag; the file comes from the HTTP cache
  (``max-age``; a few loads first to fill it), the storage is cleared before each load (a new
  visitor, unless ``returning``), and the same page with an empty script instead is the
  baseline. ``exec_ms`` = median(boot) - median(empty), over interleaved loads; the page is
  cross-origin isolated, so the clock's resolution is 5 µs.

Goals (reported, never asserted): every visit counted with the boot script
(``counted_min_boot`` = 1.0, and not below mixpanel-browser's), ``boot_js_gzip_bytes`` ≤ 1,500,
``boot_exec_ms`` ≤ 1, one page view per load.

Example::

    with BenchBrowser(tmp, tokens_for(repeats=1)) as bb:
        result = run(bb, repeats=1)
"""

from __future__ import annotations

import gzip
import http.server
import re
import shutil
import sqlite3
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.browser import BenchBrowser
from bench.common import WWW
from empmix_collector.http.boot import boot_script

__all__ = [
    "run", "tokens_for", "prepare_site", "boot_sizes", "measure_exec", "KINDS", "LEAVE_S", "QUICK_LEAVE_S", "PROFILES",
    "GOALS",
]  # fmt: skip

# kind -> (path of the page, label)
KINDS: dict[str, tuple[str, str]] = {
    "pyodide_boot": ("/", "Pyodide, boot script (`/`)"),
    "micropython_boot": ("/mpy.html", "MicroPython, boot script (`/mpy.html`)"),
    "pyodide_noboot": ("/early-noboot.html", "Pyodide, no boot script (`/` without the tag)"),
    "mixpanel": ("/bench/early-mixpanel.html", "mixpanel-browser, plain page"),
}
BOOT_KINDS = ("pyodide_boot", "micropython_boot")
LEAVE_S = (0.3, 0.5, 1.0, 2.0, 3.0)
# --quick (the smoke test): the shortest only; its pages left open (references) cover the SDK taking over
QUICK_LEAVE_S = (0.3,)
QUICK_GRACE_S = 2.0
# profile -> CDP Network.emulateNetworkConditions parameters (None: loopback as it is)
PROFILES: dict[str, dict[str, Any] | None] = {
    "loopback": None,
    "20mbps_20ms": {"offline": False, "latency": 20, "downloadThroughput": 20e6 / 8, "uploadThroughput": 20e6 / 8},
}
PROFILE_LABELS = {"loopback": "loopback", "20mbps_20ms": "20 Mbps / 20 ms"}
SHORT = {
    "pyodide_boot": "pyb",
    "micropython_boot": "mpb",
    "pyodide_noboot": "pyn",
    "mixpanel": "mp",
    "loopback": "lo",
    "20mbps_20ms": "em",
}
PAGEVIEW, LEAVE, READY = "$mp_web_page_view", "$mp_page_leave", "$python_ready"
GRACE_S = 5.0  # how long a closed tab's context stays open for its beacons to land
START_GUARD_S = 0.35  # no new visit starts while an open tab is due to close sooner than this
READY_TIMEOUT_S = 120.0  # a reference visit's page must be ready and its page view stored by then
POLL_S = 0.1
PARALLEL = 2
GOALS = {"counted_min_boot": 1.0, "boot_js_gzip_bytes": 1500, "boot_exec_ms": 1.0, "max_pageviews_per_load": 1}
NOBOOT_PAGE, NOBOOT_APP = "early-noboot.html", "early-noboot-app.py"
BOOT_MIN_JS = WWW / "empmix-boot.js"


def _token(kind: str, profile: str, leave_s: float | None, index: int) -> str:
    when = "ready" if leave_s is None else f"{round(leave_s * 10):02d}"
    return f"early_{SHORT[kind]}_{SHORT[profile]}_{when}_{index}"


def _plan(
    repeats: int, references: Sequence[str] = tuple(PROFILES), leave_times: Sequence[float] = LEAVE_S
) -> list[tuple[str, str, float | None, str]]:
    """(kind, profile, leave time or None for a reference visit, token): the reference visits
    (under the ``references`` profiles), then the leave grid, interleaved so that every kind
    meets the same conditions."""
    plan = [(kind, profile, None, _token(kind, profile, None, 0)) for profile in references for kind in KINDS]
    for index in range(repeats):
        for leave_s in leave_times:
            for profile in PROFILES:
                plan += [(kind, profile, leave_s, _token(kind, profile, leave_s, index)) for kind in KINDS]
    return plan


def tokens_for(repeats: int) -> list[str]:
    """The project tokens of a run with ``repeats`` visits per cell (the collector must know them)."""
    return [token for *_, token in _plan(repeats)]  # the most references a run makes


# --- the pages -------------------------------------------------------------------------------

_BOOT_TAGS = (
    re.compile(r"<!--(?:(?!-->).)*?empmix-boot(?:(?!-->).)*?-->\s*", re.S),  # comments about it
    re.compile(r'<script[^>]*\bsrc="/boot-tag\.js"[^>]*></script>\s*'),  # the demo's tag writer (boot-tag.js)
    re.compile(r'<script[^>]*\bsrc="/empmix-boot\.js"[^>]*></script>\s*'),  # the plain tag
    re.compile(r'<link[^>]*\bhref="/empmix-boot\.js"[^>]*>\s*'),  # its preload
    re.compile(r"<script>\s*document\.write\((?:(?!</script>).)*?empmix-boot(?:(?!</script>).)*?</script>\s*", re.S),
)
_APP_TAG = 'src="/app.py"'


def noboot_page(index_html: str) -> str:
    """``index.html`` without its boot script tag, running :data:`NOBOOT_APP` instead of app.py."""
    html = index_html
    for pattern in _BOOT_TAGS:
        html = pattern.sub("", html)
    if "empmix-boot" in html or "boot-tag" in html or html == index_html:
        raise RuntimeError("bench/early.py: cannot take the boot script tag out of build/www/index.html")
    if html.count(_APP_TAG) != 1:
        raise RuntimeError(f"bench/early.py: {_APP_TAG!r} is not in build/www/index.html once")
    return html.replace(_APP_TAG, f'src="/{NOBOOT_APP}"')


_NOBOOT_TOKEN = (
    "from pyscript import window as _early_window  # bench/early.py: no boot script on this page, so\n"
    '_EARLY_TOKEN = str(_early_window.location.search).split("token=", 1)[-1].split("&", 1)[0]  # init(token)\n'
)


def noboot_app(app_py: str) -> str:
    """``app.py`` with the page's ``?token=`` passed to ``EmpMix.init()`` (without a boot script
    the SDK has no other token: the demo as it was before the boot script)."""
    lines = app_py.splitlines(keepends=True)
    at = [i for i, line in enumerate(lines) if line.startswith("EmpMix.init(")]
    if len(at) != 1:
        raise RuntimeError("bench/early.py: app.py must call EmpMix.init( once, at the top level")
    lines[at[0]] = lines[at[0]].replace("EmpMix.init(", "EmpMix.init(_EARLY_TOKEN, ", 1)
    return "".join(lines[: at[0]]) + _NOBOOT_TOKEN + "".join(lines[at[0] :])


def prepare_site(site: Path) -> dict[str, Any]:
    """Copy the demo pages (``build/www``'s files: the folders are linked by ``make_site``) into
    the bench's site folder and write the page without the boot script beside them."""
    for path in WWW.iterdir():
        if path.is_file():
            shutil.copyfile(path, site / path.name)
    index = (WWW / "index.html").read_text()
    pages = {"/": index, "/mpy.html": (WWW / "mpy.html").read_text()}
    for name, html in pages.items():
        if "empmix-boot" not in html and "boot-tag.js" not in html:
            raise RuntimeError(f"bench/early.py: the demo page {name} has no boot script tag (./build.sh setup)")
    (site / NOBOOT_PAGE).write_text(noboot_page(index))
    (site / NOBOOT_APP).write_text(noboot_app((WWW / "app.py").read_text()))
    return {"boot_tag": "boot-tag.js" if "boot-tag.js" in index else "inline"}


# --- counting -------------------------------------------------------------------------------


def stored_events(db: Path | str, tokens: Sequence[str]) -> dict[str, dict[str, tuple[int, int]]]:
    """token -> event -> (rows, first ``received_ms``) for the events this benchmark counts."""
    out: dict[str, dict[str, tuple[int, int]]] = {}
    if not tokens:
        return out
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        marks = ",".join("?" * len(tokens))
        rows = conn.execute(
            "SELECT p.token, e.event, COUNT(*), MIN(e.received_ms) FROM events e JOIN projects p ON p.id = e.project_id"
            f" WHERE p.token IN ({marks}) AND e.event IN (?, ?, ?) GROUP BY p.token, e.event",
            (*tokens, PAGEVIEW, LEAVE, READY),
        ).fetchall()
    except sqlite3.OperationalError:  # no table yet (nothing stored)
        rows = []
    finally:
        conn.close()
    for token, event, count, first in rows:
        out.setdefault(token, {})[event] = (int(count), int(first))
    return out


# --- the visits -----------------------------------------------------------------------------


@dataclass
class Visit:
    kind: str
    profile: str
    leave_s: float | None  # None: a reference visit, open until ready and stored
    token: str
    context: Any = None
    page: Any = None
    started: float = 0.0  # time.monotonic() just before navigation
    wall_ms: float = 0.0  # time.time() then, in ms (the collector's received_ms clock)
    closed: float | None = None
    close_ms: float = 0.0  # how long page.close() took
    closed_wall_ms: float | None = None
    script_at_ms: float | None = None  # when the script that counts the visit had arrived (wall clock)
    errors: list[str] = field(default_factory=list)

    @property
    def script_arrived(self) -> bool:
        """The script that counts the visit had arrived when the tab was closed."""
        return self.script_at_ms is not None and self.script_at_ms <= (self.closed_wall_ms or 0.0)

    @property
    def due(self) -> float:
        return self.started + (self.leave_s if self.leave_s is not None else READY_TIMEOUT_S)


# the scripts whose arrival lets a page count its visit (diagnostics: were they there when the tab
# closed?). The demo's boot script runs once boot-tag.js has written its tag: the pages preload
# empmix-boot.js, which can so arrive first, and the later of the two is when it can run
_COUNTING_SCRIPTS = {
    "pyodide_boot": ("/empmix-boot.js", "/boot-tag.js"),
    "micropython_boot": ("/empmix-boot.js", "/boot-tag.js"),
    "pyodide_noboot": ("/" + NOBOOT_APP,),
    "mixpanel": ("/vendor/mixpanel.min.js",),
}


def _start(bb: BenchBrowser, visit: Visit) -> None:
    visit.context = bb.new_context()
    page = visit.page = visit.context.new_page()
    page.on("pageerror", lambda err: visit.errors.append(str(err)[:300]))
    scripts = _COUNTING_SCRIPTS[visit.kind]
    arrived: dict[str, float] = {}

    def finished(request: Any) -> None:  # dispatched later, maybe after the close: compare the clocks
        path = request.url.split("?", 1)[0]
        for script in scripts:
            if path.endswith(script):
                timing = request.timing
                arrived[script] = timing["startTime"] + max(timing["responseEnd"], 0.0)
        if len(arrived) == len(scripts):
            visit.script_at_ms = max(arrived.values())

    page.on("requestfinished", finished)
    conditions = PROFILES[visit.profile]
    if conditions is not None:
        cdp = visit.context.new_cdp_session(page)
        cdp.send("Network.enable")
        cdp.send("Network.emulateNetworkConditions", conditions)
    visit.started, visit.wall_ms = time.monotonic(), time.time() * 1000
    response = page.goto(f"{KINDS[visit.kind][0]}?token={visit.token}", wait_until="commit")
    # the clock starts when the page's request did (the browser's timing), not when Playwright was asked
    began = response.request.timing.get("startTime", -1) if response is not None else -1
    if began > visit.wall_ms:
        visit.started += (began - visit.wall_ms) / 1000
        visit.wall_ms = began


def _close_tab(visit: Visit) -> None:
    visit.closed, visit.closed_wall_ms = time.monotonic(), time.time() * 1000
    try:
        visit.page.close()
    except Exception as exc:  # a tab that is gone already is closed
        visit.errors.append(f"close: {exc}"[:300])
    visit.close_ms = (time.monotonic() - visit.closed) * 1000


def _close_context(visit: Visit) -> None:
    try:
        visit.context.close()
    except Exception:  # the result does not depend on it
        pass
    visit.context = visit.page = None


def _ready(visit: Visit, events: dict[str, tuple[int, int]]) -> bool:
    """A reference visit is done when its page view is stored and, with the boot script, the
    SDK's ``$python_ready`` too (from the store: the page is never asked, as a page whose
    interpreter is starting can hold up a call for seconds)."""
    return PAGEVIEW in events and (visit.kind not in BOOT_KINDS or READY in events)


def _visits(
    bb: BenchBrowser, plan: Sequence[tuple[str, str, float | None, str]], parallel: int, grace_s: float
) -> list[Visit]:
    """Run the visits of ``plan``, ``parallel`` tabs at a time (at most one of them a reference
    visit); returns them closed and settled."""
    visits = [Visit(kind, profile, leave_s, token) for kind, profile, leave_s, token in plan]
    grid = [v for v in visits if v.leave_s is not None]
    refs = [v for v in visits if v.leave_s is None]
    opened: list[Visit] = []
    closing: list[Visit] = []
    db = bb.collector.db
    last_poll = 0.0
    costs = [START_GUARD_S / 2]  # how long starting a visit took: a busy machine needs a wider guard
    while grid or refs or opened or closing:
        guard = max(START_GUARD_S, 2 * statistics.median(costs[-5:]))
        now = time.monotonic()
        for visit in [v for v in opened if v.leave_s is not None and now >= v.due]:
            _close_tab(visit)
            opened.remove(visit)
            closing.append(visit)
        references = [v for v in opened if v.leave_s is None]
        final = not grid and not refs and not opened
        if (references or final) and now - last_poll >= POLL_S:
            last_poll = now
            stored = stored_events(db, [v.token for v in references + closing])
            for visit in references:
                if _ready(visit, stored.get(visit.token, {})) or now >= visit.due:
                    _close_tab(visit)
                    opened.remove(visit)
                    closing.append(visit)
            if final and all(PAGEVIEW in stored.get(v.token, {}) for v in closing):
                for visit in closing:  # every visit counted: nothing left to wait for
                    _close_context(visit)
                closing.clear()
        for visit in [v for v in closing if v.closed is not None and now >= v.closed + grace_s]:
            _close_context(visit)
            closing.remove(visit)
        now = time.monotonic()
        soon = [v.due for v in opened if v.leave_s is not None]
        if len(opened) < parallel and all(due - now > guard for due in soon):
            queue = refs if refs and not any(v.leave_s is None for v in opened) else grid
            if queue:
                visit = queue.pop(0)
                _start(bb, visit)
                costs.append(time.monotonic() - now)
                opened.append(visit)
                continue
        wake = [*soon, *(v.closed + grace_s for v in closing if v.closed is not None)]
        if references or final:
            wake.append(last_poll + POLL_S)
        if (grid or refs) and len(opened) < parallel:
            wake += [due - guard for due in soon]
        delay = min(wake, default=now + POLL_S) - time.monotonic()
        if delay > 0:
            time.sleep(min(delay, POLL_S * 5))
    return visits


# --- boot script size and execution time ------------------------------------------------------


def _gzip_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def boot_sizes() -> dict[str, int]:
    """The minified boot script (what ``boot_js_gzip_bytes`` is) and the source the collector
    serves at ``/empmix-boot.js`` (from the installed ``empmix_web``), raw and ``gzip -9``."""
    if not BOOT_MIN_JS.is_file():
        raise RuntimeError(f"{BOOT_MIN_JS} is missing: run ./build.sh setup")
    minified = BOOT_MIN_JS.read_bytes()
    source = boot_script()  # what GET /empmix-boot.js sends: the installed package's minified copy, else its source
    return {
        "gzip_bytes": _gzip_size(minified),
        "bytes": len(minified),
        "served_source_gzip_bytes": _gzip_size(source),
        "served_source_bytes": len(source),
    }


EXEC_TOKEN = "early_exec"
_EXEC_SRC = {"empty": "/s/empty.js", "boot": "/s/empmix-boot.min.js", "boot_returning": "/s/empmix-boot.min.js"}
_EXEC_CLEAR = (
    f"try {{ localStorage.clear(); }} catch (e) {{}} document.cookie = 'empmix_{EXEC_TOKEN}=; Max-Age=0; path=/';"
)


# The browser calls the boot script makes, each timed alone on a fresh page like the others (new
# visitor): where its time goes. Synchronous cookie access and starting a fetch cross to the
# browser process.
_OPS = (
    "ls_first_read",
    "ls_write",
    "cookie_read",
    "cookie_write",
    "random_bytes",
    "web_lock",
    "fetch_keepalive",
    "pagehide_listener",
)
_OPS_JS = (
    _EXEC_CLEAR + " var ops = {}, t = performance.now(), u; function lap(name) { u = performance.now(); "
    "ops[name] = u - t; t = u; }\n"
    "localStorage.getItem('empmix_x_identity'); lap('ls_first_read');\n"
    "localStorage.setItem('empmix_x_q', 'x'.repeat(600)); lap('ls_write');\n"
    "document.cookie; lap('cookie_read');\n"
    "document.cookie = 'empmix_x=' + encodeURIComponent('{\"distinct_id\": 1}'.repeat(8)) + "
    "'; Max-Age=60; path=/; SameSite=Lax'; lap('cookie_write');\n"
    "crypto.getRandomValues(new Uint8Array(16)); lap('random_bytes');\n"
    "navigator.locks.request('empmix_x_tab_' + Math.random(), () => new Promise(() => {})).catch(() => {}); "
    "lap('web_lock');\n"
    "fetch('/track/?verbose=1', {method: 'POST', body: new URLSearchParams({data: '[]'}), keepalive: true, "
    "credentials: 'omit'}).then(() => {}, () => {}); lap('fetch_keepalive');\n"
    "addEventListener('pagehide', () => {}); lap('pagehide_listener');\n"
    "window.execOps = ops; window.execMs = 0;"
)


def _exec_page(variant: str, served_url: str) -> bytes:
    if variant == "ops":
        return (
            '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>ops</title>\n'
            f"<script>{_OPS_JS}</script>\n</head><body></body></html>\n"
        ).encode()
    src = served_url if variant == "served_source" else _EXEC_SRC[variant]
    clear = "" if variant == "boot_returning" else _EXEC_CLEAR
    return (
        '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>boot exec</title>\n'
        f"<script>{clear} window.t0 = performance.now();</script>\n"
        f'<script src="{src}" data-token="{EXEC_TOKEN}"></script>\n'
        "<script>window.execMs = performance.now() - window.t0;</script>\n"
        "</head><body></body></html>\n"
    ).encode()


@contextmanager
def _exec_server(served_url: str) -> Iterator[str]:
    """A loopback server for the execution-time page: the page (inline scripts: no CSP), the
    scripts with an hour of caching, and a ``/track/`` that accepts what the boot script sends."""
    scripts = {"/s/empmix-boot.min.js": BOOT_MIN_JS.read_bytes(), "/s/empty.js": b""}

    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, kind: str, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in {"Content-Type": kind, "Content-Length": str(len(body)), **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # http.server names it
            path, _, query = self.path.partition("?")
            if path in scripts:
                self._send(
                    200,
                    scripts[path],
                    "text/javascript; charset=utf-8",
                    {"Cache-Control": "public, max-age=3600", "Cross-Origin-Resource-Policy": "same-origin"},
                )
            elif path == "/exec.html":
                isolated = {
                    "Cache-Control": "no-store",
                    "Cross-Origin-Opener-Policy": "same-origin",
                    "Cross-Origin-Embedder-Policy": "require-corp",
                }
                self._send(200, _exec_page(query, served_url), "text/html; charset=utf-8", isolated)
            else:
                self._send(404, b"", "text/plain", {})

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self._send(200, b'{"status": 1}', "application/json", {})

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


EXEC_VARIANTS = ("empty", "boot", "boot_returning", "served_source", "ops")
EXEC_WARMUP = 3  # loads of each variant first: the HTTP cache and V8's code cache fill


def measure_exec(bb: BenchBrowser, repeats: int) -> dict[str, Any]:
    """Median execution time of the boot script (ms) over ``repeats`` interleaved loads of each
    variant, after :data:`EXEC_WARMUP` discarded ones; ``exec_ms`` is the minified copy for a new
    visitor minus the empty script."""
    samples: dict[str, list[float]] = {variant: [] for variant in EXEC_VARIANTS if variant != "ops"}
    ops: dict[str, list[float]] = {name: [] for name in _OPS}
    with _exec_server(bb.url + "/empmix-boot.js") as origin:
        context = bb.browser.new_context()
        try:
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            for index in range(EXEC_WARMUP + repeats):
                for variant in EXEC_VARIANTS:
                    page.goto(f"{origin}/exec.html?{variant}")
                    if index < EXEC_WARMUP:
                        continue
                    if variant == "ops":
                        for name, value in page.evaluate("window.execOps").items():
                            ops[name].append(float(value))
                    else:
                        samples[variant].append(float(page.evaluate("window.execMs")))
            page.goto(f"{origin}/exec.html?boot")
            booted = page.evaluate("!!(window.empmixBoot && window.empmixBoot.pageview)")
            isolated = page.evaluate("window.crossOriginIsolated === true")
        finally:
            context.close()
    if errors or not booted:
        raise RuntimeError(f"the boot script did not run in the execution-time page: {errors}")
    median = {variant: statistics.median(values) for variant, values in samples.items()}
    base = median["empty"]
    return {
        "repeats": repeats,
        "warmup_loads": EXEC_WARMUP,
        "cross_origin_isolated": isolated,
        "exec_ms": round(median["boot"] - base, 3),
        "exec_ms_returning": round(median["boot_returning"] - base, 3),  # identity and session stored already
        "exec_ms_served_source": round(median["served_source"] - base, 3),  # the collector's /empmix-boot.js
        "median_ms": {variant: round(value, 3) for variant, value in median.items()},
        "p90_ms": {
            variant: round(sorted(values)[int(0.9 * (len(values) - 1))], 3) for variant, values in samples.items()
        },
        # each browser call the boot script makes, timed alone (median ms; new visitor)
        "browser_calls_median_ms": {name: round(statistics.median(values), 3) for name, values in ops.items()},
    }


# --- the benchmark --------------------------------------------------------------------------


def _cells(
    visits: Sequence[Visit], stored: dict[str, dict[str, tuple[int, int]]], leave_times: Sequence[float]
) -> list[dict[str, Any]]:
    cells = []
    for profile in PROFILES:
        for kind in KINDS:
            for leave_s in leave_times:
                group = [v for v in visits if (v.kind, v.profile, v.leave_s) == (kind, profile, leave_s)]
                views = [stored.get(v.token, {}).get(PAGEVIEW, (0, 0))[0] for v in group]
                lateness = [(v.closed or v.started) - v.started - leave_s for v in group]
                cells.append(
                    {
                        "kind": kind,
                        "profile": profile,
                        "leave_s": leave_s,
                        "visits": len(group),
                        "counted": sum(1 for n in views if n > 0),
                        "share": sum(1 for n in views if n > 0) / len(group),
                        "max_pageviews_per_load": max(views),
                        "pageviews": views,
                        "page_leaves": sum(stored.get(v.token, {}).get(LEAVE, (0, 0))[0] for v in group),
                        "python_ready": sum(stored.get(v.token, {}).get(READY, (0, 0))[0] for v in group),
                        "script_arrived": sum(1 for v in group if v.script_arrived),
                        "script_arrival_ms": [_arrival_ms(v) for v in group],
                        "closed_late_ms_max": round(max(lateness) * 1000, 1),
                        "close_ms_max": round(max(v.close_ms for v in group), 1),
                        "errors": [e for v in group for e in v.errors][:3],
                    }
                )
    return cells


def _arrival_ms(visit: Visit) -> float | None:
    """Navigation to the arrival of the script that counts the visit, if it arrived before the tab closed."""
    return round(visit.script_at_ms - visit.wall_ms) if visit.script_arrived and visit.script_at_ms else None


def _references(visits: Sequence[Visit], stored: dict[str, dict[str, tuple[int, int]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for visit in (v for v in visits if v.leave_s is None):
        events = stored.get(visit.token, {})
        views, first = events.get(PAGEVIEW, (0, 0))
        ready, ready_at = events.get(READY, (0, 0))
        out.setdefault(visit.profile, {})[visit.kind] = {
            "seconds_to_first_stored_pageview": round((first - visit.wall_ms) / 1000, 2) if views else None,
            # boot script pages: until $python_ready was stored; the others: the page view
            "seconds_to_ready_stored": round(
                ((ready_at if visit.kind in BOOT_KINDS else first) - visit.wall_ms) / 1000, 2
            )
            if (ready if visit.kind in BOOT_KINDS else views)
            else None,
            "open_s": round((visit.closed or visit.started) - visit.started, 2),
            "script_arrival_ms": _arrival_ms(visit),
            "pageviews": views,
            "python_ready": ready,
            "page_leaves": events.get(LEAVE, (0, 0))[0],
            "errors": visit.errors[:3],
        }
    return out


def run(
    bb: BenchBrowser,
    repeats: int = 3,
    exec_repeats: int = 60,
    parallel: int = PARALLEL,
    grace_s: float = GRACE_S,
    references: Sequence[str] = tuple(PROFILES),
    leave_times: Sequence[float] = LEAVE_S,
) -> dict[str, Any]:
    """The whole benchmark on ``bb`` (whose collector must accept :func:`tokens_for` ``(repeats)``);
    reference visits (tab left open) under the ``references`` profiles."""
    started = time.perf_counter()
    site = prepare_site(bb.site)
    sizes = boot_sizes()
    execution = measure_exec(bb, exec_repeats)
    plan = _plan(repeats, references, leave_times)
    visits = _visits(bb, plan, parallel, grace_s)
    stored = stored_events(bb.collector.db, [token for *_, token in plan])
    cells = _cells(visits, stored, leave_times)
    references = _references(visits, stored)
    boot = [c["share"] for c in cells if c["kind"] in BOOT_KINDS and c["leave_s"] >= 0.3]
    mixpanel = [c["share"] for c in cells if c["kind"] == "mixpanel" and c["leave_s"] >= 0.3]
    loads = [c["max_pageviews_per_load"] for c in cells] + [
        r["pageviews"] for p in references.values() for r in p.values()
    ]
    missed = [
        v for v in visits if v.kind in BOOT_KINDS and v.leave_s is not None and PAGEVIEW not in stored.get(v.token, {})
    ]
    arrivals: dict[str, dict[str, float | None]] = {}
    for profile in PROFILES:
        for kind in KINDS:
            got = [
                ms
                for c in cells
                if (c["kind"], c["profile"]) == (kind, profile)
                for ms in c["script_arrival_ms"]
                if ms is not None
            ]
            arrivals.setdefault(profile, {})[kind] = statistics.median(got) if got else None
    double = sum(1 for c in cells for n in c["pageviews"] if n > 1) + sum(
        1 for p in references.values() for r in p.values() if r["pageviews"] > 1
    )
    return {
        "repeats": repeats,
        "leave_s": list(leave_times),
        "profiles": PROFILES,
        "grace_s": grace_s,
        "parallel": parallel,
        "kinds": {kind: {"path": path, "label": label} for kind, (path, label) in KINDS.items()},
        "demo_boot_tag": site["boot_tag"],
        "cells": cells,
        "references": references,
        "counted_min_boot": min(boot),
        "counted_min_mixpanel": min(mixpanel),
        "max_pageviews_per_load": max(loads),
        "loads_counted_more_than_once": double,
        # visits with the boot script that were not counted, and of those how many had not even
        # loaded empmix-boot.js when the tab closed (the page was not that far yet)
        "boot_visits_missed": len(missed),
        "boot_visits_missed_before_the_script_arrived": sum(1 for v in missed if not v.script_arrived),
        # median ms from navigation to the arrival of the script that counts the visit (empmix-boot.js,
        # the no-boot page's app.py copy, mixpanel.min.js), over the visits where it came before the close
        "script_arrival_median_ms": arrivals,
        "boot_script": {**sizes, "exec": execution},
        "goals": GOALS,
        "seconds": round(time.perf_counter() - started, 1),
    }

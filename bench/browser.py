"""Headless Chromium (Debian's) on a benchmark page served by a real collector.

The page (``bench/page/bench.html``) holds mixpanel-browser (the pinned ``mixpanel.min.js``)
and Pyodide with the empmix-web wheel installed. The collector serves a throw-away site folder
of hard links or copies (``pyodide/``, ``pyscript/``, ``micropython/``, ``dist/``, ``vendor/`` from
``build/www`` and ``bench/`` from ``bench/page``), so page, assets and ingestion share one
origin, as in production.

PyScript pages (``/bench-mpy.html``: MicroPython, ``/bench-py.html``: Pyodide) are rendered into
that folder from ``bench/page/pyscript.template.html`` with the current wheel (PyScript's
config is static HTML; under Pyodide the one with bytecode, ``tools/pyc_wheel.py``). Their
script (``bench/page/bench_page.py``) times navigation to ``init`` as it loads, then takes
snippets through ``run`` (``tests/harness.py``'s ``wrap``).

Example::

    with BenchBrowser(tmp, tokens=["mp", "em"]) as bb:
        page = bb.new_page()
        bb.py(page, "1 + 1")            # -> 2
        mpy = bb.new_pyscript_page("mpy")
        bb.run(mpy, "x = 1", "x + 1")   # -> 2 (MicroPython)
        with bb.hold_ingestion(page):   # requests to /track and /engage hang until released
            ...
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from bench.common import PAGE_DIR, ROOT, WWW, CollectorProcess
from tests.harness import wrap

__all__ = ["BenchBrowser", "CHROMIUM_ARGS", "chromium_path", "PYSCRIPT_INTERPRETERS", "PageError"]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
PAGE_READY_MS = 180_000
INGESTION = re.compile(r"/(track|engage|groups)/?(\?|$)")
# PyScript's two interpreters: page type -> the "interpreter" of its config
PYSCRIPT_INTERPRETERS = {"mpy": "/micropython/micropython.mjs", "py": "/pyodide/pyodide.mjs"}


class PageError(RuntimeError):
    """A snippet raised inside a PyScript page."""


def chromium_path() -> str | None:
    """``$CHROMIUM``, Debian's ``/usr/bin/chromium``, or None (Playwright's own browser)."""
    for candidate in (os.environ.get("CHROMIUM"), shutil.which("chromium"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def make_site(folder: Path) -> Path:
    """A site folder linking the built assets and the benchmark page."""
    assets = ("pyodide", "pyscript", "micropython", "dist", "vendor")
    for needed in assets:
        if not (WWW / needed).is_dir():
            raise RuntimeError(f"{WWW / needed} is missing: run ./build.sh setup first")
    folder.mkdir(parents=True, exist_ok=True)
    for name, target in [(name, WWW / name) for name in assets] + [("bench", PAGE_DIR)]:
        link = folder / name
        if not link.exists():  # hard links where the file system allows, else copies: the
            shutil.copytree(target, link, copy_function=_link_or_copy)  # collector follows no symlink out
    # the snippet runner the SDK's test pages use too (a copy: the static site serves no file links)
    shutil.copyfile(ROOT / "tests" / "pages" / "page_runner.py", folder / "page_runner.py")
    latest = json.loads((WWW / "dist" / "empmix_web-latest.json").read_text())
    # each interpreter: the wheel with bytecode for it (tools/pyc_wheel.py, tools/mpy_wheel.py)
    wheels = {"py": latest["pyodide_wheel"], "mpy": latest["micropython_wheel"]}
    template = (PAGE_DIR / "pyscript.template.html").read_text()
    for kind, interpreter in PYSCRIPT_INTERPRETERS.items():
        html = (template.replace("{{TYPE}}", kind).replace("{{INTERPRETER}}", interpreter)
                .replace("{{WHEEL}}", wheels[kind]))
        (folder / f"bench-{kind}.html").write_text(html)
    return folder


class BenchBrowser:
    """A collector serving the bench page, plus Chromium driven by Playwright (sync API).

    Args:
        workdir: scratch folder (database, site links).
        tokens: project tokens the collector accepts.
        browser: a Playwright browser to use (e.g. pytest-playwright's, since only one sync
            Playwright can run per thread); by default one is launched and closed here.
    """

    def __init__(self, workdir: Path, tokens: Sequence[str], browser: Any = None) -> None:
        self.workdir = workdir
        self.site = make_site(workdir / "site")
        self.collector = CollectorProcess(workdir / "browser.db", tokens, site=self.site)
        self._pw: Any = None
        self._own_browser = browser is None
        self.browser: Any = browser
        self.context: Any = None

    def __enter__(self) -> Self:
        from playwright.sync_api import sync_playwright

        self.collector.start()
        try:
            if self._own_browser:
                self._pw = sync_playwright().start()
                launch: dict[str, Any] = {"args": CHROMIUM_ARGS, "headless": True}
                exe = chromium_path()
                if exe:
                    launch["executable_path"] = exe
                self.browser = self._pw.chromium.launch(**launch)
            self.context = self.browser.new_context(base_url=self.collector.url)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        own = self._own_browser
        closers = (lambda: self.context and self.context.close(),
                   lambda: own and self.browser and self.browser.close(),
                   lambda: self._pw and self._pw.stop())
        for closer in closers:
            with contextlib.suppress(Exception):
                closer()
        self.collector.stop()

    @property
    def url(self) -> str:
        return self.collector.url

    def new_page(self, context: Any = None, plain: bool = False) -> Any:
        """A fresh page with mixpanel-browser loaded and Pyodide + the wheel installed
        (``window.benchLoad`` has the load timings): the bytecode wheel, or with ``plain`` the
        plain one."""
        page = (context or self.context).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto("/bench/bench.html" + ("?wheel=plain" if plain else ""))
        try:
            page.wait_for_function("window.benchReady === true && window.harnessReady === true",
                                   timeout=PAGE_READY_MS)
        except Exception as exc:
            raise RuntimeError(f"bench page did not load: {errors}") from exc
        return page

    def new_pyscript_page(self, kind: str, context: Any = None, query: str = "") -> Any:
        """A fresh PyScript page under ``kind`` ("mpy" = MicroPython, "py" = Pyodide) with the
        wheel loaded, init timed (``startup(page)``) and the snippet harness ready. ``kind``
        "mixpanel": a page with mixpanel-browser alone, init timed the same way (no harness)."""
        page = (context or self.context).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.goto("/bench/mixpanel.html" if kind == "mixpanel" else f"/bench-{kind}.html{query}")
        try:
            page.wait_for_function("window.benchPyReady === true", timeout=PAGE_READY_MS)
        except Exception as exc:
            raise RuntimeError(f"PyScript bench page ({kind}) did not load: {errors}") from exc
        return page

    @staticmethod
    def startup(page: Any) -> dict[str, Any]:
        """What a PyScript page timed as it loaded (``bench/page/bench_page.py``)."""
        return json.loads(page.evaluate("window.benchStartup"))

    @staticmethod
    def run(page: Any, code: str, expr: str = "None") -> Any:
        """Run ``code`` in a PyScript page (either interpreter; top-level await allowed, the
        names it binds stay page globals) and return ``expr``, JSON-decoded."""
        reply = json.loads(page.evaluate("code => window.runPy(code)", wrap(code, expr)))
        if "error" in reply:
            raise PageError(f"{reply['error']}\n{reply['trace']}")
        return json.loads(reply["ok"])

    def new_context(self) -> Any:
        """A separate browser context (own localStorage and cache), same origin."""
        return self.browser.new_context(base_url=self.collector.url)

    @staticmethod
    def py(page: Any, code: str) -> Any:
        """Run Python in the page's Pyodide (top-level await allowed); a str result that holds
        JSON is decoded."""
        result = page.evaluate("code => pyodide.runPythonAsync(code)", code)
        if isinstance(result, str):
            with contextlib.suppress(ValueError):
                return json.loads(result)
        return result

    @staticmethod
    def main_thread_seconds(cdp: Any) -> float:
        """Cumulative main-thread task time of the page (CDP ``Performance.getMetrics``)."""
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        return float(metrics.get("TaskDuration", 0.0))

    @staticmethod
    def cdp_session(page: Any) -> Any:
        """A CDP session with the Performance domain enabled."""
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        return cdp

    @contextlib.contextmanager
    def hold_ingestion(self, page: Any) -> Iterator[list[Any]]:
        """Requests to the ingestion endpoints hang (the queue really holds what was tracked);
        on exit they fail (aborted) and routing is removed. Yields the list of held requests."""
        held: list[Any] = []

        def hold(route: Any) -> None:
            held.append(route)

        page.route(INGESTION, hold)
        try:
            yield held
        finally:
            for route in held:
                with contextlib.suppress(Exception):
                    route.abort()
            with contextlib.suppress(Exception):
                page.unroute_all(behavior="ignoreErrors")

    @contextlib.contextmanager
    def count_ingestion(self, page: Any) -> Iterator[list[str]]:
        """Records the URL of every request sent to the ingestion endpoints."""
        seen: list[str] = []

        def on_request(request: Any) -> None:
            if INGESTION.search(request.url):
                seen.append(request.url)

        page.on("request", on_request)
        try:
            yield seen
        finally:
            page.remove_listener("request", on_request)

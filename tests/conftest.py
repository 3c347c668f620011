"""Shared fixtures: Debian Chromium for pytest-playwright, the wire-recording server, SDK pages."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import wire_server
from tests.collector_process import CollectorProcess, launch_collector
from tests.harness import INTERPRETERS
from tests.parallel import pytest_xdist_make_scheduler  # noqa: F401 (the hook)

ROOT = Path(__file__).resolve().parent.parent
# the headless shell: Chromium's engine without the browser UI, as Playwright runs headless by
# default (a Pyodide page boots on about 30% less CPU than in the full browser; docs/development.md)
CHROMIUM = (os.environ.get("CHROMIUM") or shutil.which("chromium-headless-shell") or shutil.which("chromium")
            or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 # real host names for cookie-domain and plain-http (no Web Locks) tests
                 "--host-resolver-rules=MAP *.example.test 127.0.0.1"]
PAGE_READY_MS = 60_000


def pytest_configure(config: pytest.Config) -> None:
    """Empty pytest-playwright's ``--output`` folder once, in the controller (or the only
    process), before any worker starts: a worker that starts late must not delete what another
    already kept there (see ``delete_output_dir``)."""
    if not hasattr(config, "workerinput"):
        shutil.rmtree(Path(str(config.getoption("--output"))), ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def delete_output_dir() -> None:
    """pytest-playwright's fixture of this name empties ``--output`` in every worker's session:
    done once in ``pytest_configure`` instead."""


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    args = {**browser_type_launch_args, "args": CHROMIUM_ARGS}
    if Path(CHROMIUM).exists():  # else Playwright's own browser (`playwright install chromium`)
        args["executable_path"] = CHROMIUM
    return args


@pytest.fixture(scope="session")
def wire() -> Iterator[wire_server.Wire]:
    recorder = wire_server.Wire()
    server = wire_server.start(recorder)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    yield recorder
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def base_url(wire: wire_server.Wire) -> str:
    return wire.url  # type: ignore[attr-defined]


def open_sdk_page(context: Any, base: str, interp: str = "py", query: str = "") -> Any:
    """A PyScript page under ``interp`` ("py" = Pyodide, "mpy" = MicroPython) with the wheel
    loaded and the test harness ready (``tests/harness.py``). ``query`` (``token=...&config=...``)
    turns the page's boot script on (tests/pages/sdk.template.html)."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{base}/test/sdk-{interp}.html" + ("?" + query if query else ""))
    try:
        page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
    except Exception as exc:
        raise AssertionError(f"the {interp} test page did not start: {errors}") from exc
    page.interp = interp  # type: ignore[attr-defined]
    return page


@pytest.fixture(scope="module", params=INTERPRETERS)
def interp(request: pytest.FixtureRequest) -> str:
    """Each SDK browser test runs under both of PyScript's interpreters."""
    return str(request.param)


@pytest.fixture(scope="module")
def sdk_context(browser: Any, base_url: str, interp: str) -> Iterator[Any]:
    context = browser.new_context(base_url=base_url)
    yield context
    context.close()


@pytest.fixture(scope="module")
def sdk_page(sdk_context: Any, base_url: str, interp: str) -> Any:
    """One page with the wheel loaded, shared by a module's tests (each test uses its own
    token, so storage keys and cookies do not collide)."""
    return open_sdk_page(sdk_context, base_url, interp)


@pytest.fixture
def token() -> str:
    return "t" + uuid.uuid4().hex[:12]


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, what: str = "condition",
               page: Any = None) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail after ``timeout`` seconds.

    Pass ``page`` when Playwright handlers (routes, console listeners) must keep running while
    waiting: the sync API dispatches them only inside Playwright calls.
    """
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        if page is not None:
            page.wait_for_timeout(50)
        else:
            time.sleep(0.05)


@pytest.fixture(scope="session")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    """The real collector, shared by the browser tests that assert what it stored."""
    server = launch_collector(tmp_path_factory.mktemp("collector") / "events.db", tokens=["delivery_test"])
    yield server
    server.stop()

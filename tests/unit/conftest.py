"""Fixtures for the CPython unit tests of the SDK core (no browser: ``fake_browser``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from empmix_web import wire
from empmix_web.client import EmpMixClient
from tests.unit.fake_browser import FakeBrowser, Origin


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wire, "BACKOFF_BASE_MS", 5)


@pytest.fixture
def origin() -> Origin:
    return Origin()


@pytest.fixture
def paused(origin: Origin) -> Origin:
    """Nothing is delivered (every POST fails): what the calls queue stays in localStorage."""
    from empmix_web.browser import NetworkError

    def down(url: str, records: Any) -> Any:
        raise NetworkError("offline")

    origin.server = down
    return origin


def run(make: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    """Run an async test body on a fresh event loop (the SDK's tasks need a running loop), in a
    thread of its own: in the same session, Playwright's sync API keeps a loop running here."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(make())
        except BaseException as exc:  # re-raised in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


async def until(condition: Callable[[], object], timeout_s: float = 5.0) -> None:
    """Wait (yielding to the SDK's background tasks) until ``condition()`` holds; fail after
    ``timeout_s``. Never a fixed sleep: it returns as soon as the condition is met."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("timed out waiting for " + getattr(condition, "__name__", repr(condition)))
        await asyncio.sleep(0.001)


def tab(origin: Origin, token: str = "tok", locks: bool = True, url: str | None = None, referrer: str = "",
        **options: Any) -> tuple[EmpMixClient, FakeBrowser]:
    browser = FakeBrowser(origin, locks=locks, url=url, referrer=referrer)
    options.setdefault("flush_interval_ms", 10)
    options.setdefault("track_marketing", False)  # first touch adds records: on where tested
    return EmpMixClient(token, browser=browser, **options), browser

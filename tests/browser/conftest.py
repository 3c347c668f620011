"""Helpers for driving the SDK inside a real Pyodide page."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.harness import run_in_page, wrap


class Py:
    """Runs Python in one page (either interpreter); ``py(code, expr)`` runs ``code`` and returns
    the JSON-decoded value of ``expr``. The page's harness defines ``mk``, ``clients``, ``stored``
    and ``INTERPRETER``."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.interp = getattr(page, "interp", "py")

    def run(self, code: str) -> Any:
        return run_in_page(self.page, code)

    def __call__(self, code: str, expr: str = "None") -> Any:
        return run_in_page(self.page, code or "pass", expr)

    def start(self, code: str) -> None:
        """Start ``code`` without waiting for it; ``wait()`` waits until it is done."""
        self.page.evaluate("code => { window.pending = window.runPy(code).then(() => true); }", wrap(code))

    def wait(self, timeout_ms: int = 60_000) -> None:
        self.page.wait_for_function("window.pending === undefined || window.pending", timeout=timeout_ms)
        self.page.evaluate("window.pending")

    def raises(self, code: str) -> str:
        """Run ``code`` expecting a Python exception; returns 'TypeName: message'."""
        return self(f"""
try:
{chr(10).join('    ' + line for line in code.strip().splitlines())}
    _err = None
except Exception as e:
    _err = f"{{type(e).__name__}}: {{e}}"
""", "_err")


@pytest.fixture(scope="module")
def py(sdk_page: Any) -> Py:
    return Py(sdk_page)


@pytest.fixture
def context(browser: Any, base_url: str, interp: str) -> Iterator[Any]:
    """A fresh browser context per test (its own storage, cookies and cache), tagged with the
    run's interpreter (``context.interp``). A module may define its own, shared one."""
    ctx = browser.new_context(base_url=base_url)
    ctx.interp = interp
    yield ctx
    ctx.close()


def cookie(context: Any, name: str) -> dict[str, Any] | None:
    return next((c for c in context.cookies() if c["name"] == name), None)


def cookie_identity(context: Any, name: str) -> dict[str, Any] | None:
    from urllib.parse import unquote

    found = cookie(context, name)
    return json.loads(unquote(found["value"])) if found else None

"""Helpers for driving the SDK inside a real Pyodide page."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import run_py

PRELUDE = """
import json, js
from empmix_web import EmpMixClient, EmpMix
clients = {}

def mk(token, **options):
    options.setdefault("api_host", str(js.location.origin))
    options.setdefault("flush_interval_ms", 50)
    clients[token] = EmpMixClient(token, **options)
    return clients[token]

def stored(prefix="empmix_"):
    keys = [k for k in js.Object.keys(js.localStorage).to_py() if k.startswith(prefix)]
    return {k: js.localStorage.getItem(k) for k in keys}
"""


class Py:
    """Runs Python in one page; ``py("expr")`` returns the JSON-decoded value of ``expr``."""

    def __init__(self, page: Any) -> None:
        self.page = page
        run_py(page, PRELUDE)

    def run(self, code: str) -> Any:
        return run_py(self.page, code + "\nNone")

    def __call__(self, code: str, expr: str = "None") -> Any:
        return run_py(self.page, f"{code}\njson.dumps({expr})")

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


def cookie(context: Any, name: str) -> dict[str, Any] | None:
    return next((c for c in context.cookies() if c["name"] == name), None)


def cookie_identity(context: Any, name: str) -> dict[str, Any] | None:
    from urllib.parse import unquote

    found = cookie(context, name)
    return json.loads(unquote(found["value"])) if found else None

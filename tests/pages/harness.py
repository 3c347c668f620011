# Runs test snippets in the page, under Pyodide or MicroPython alike (the common subset).
# The test process wraps each snippet as ``async def __t(): ...; return json.dumps(expr)``.
import asyncio
import json
import sys

import js
from pyscript import window
from pyscript.ffi import create_proxy

from empmix_web import EmpMix, EmpMixClient

INTERPRETER = sys.implementation.name
clients = {}


def mk(token, **options):
    options.setdefault("api_host", str(js.location.origin))
    options.setdefault("flush_interval_ms", 50)
    options.setdefault("track_marketing", False)  # first touch adds records: on where tested
    clients[token] = EmpMixClient(token, **options)
    return clients[token]


def stored(prefix="empmix_"):
    return json.loads(js.storedJSON(prefix))


def _trace(exc):
    try:
        import traceback

        return traceback.format_exc()
    except ImportError:
        import io

        out = io.StringIO()
        sys.print_exception(exc, out)
        return out.getvalue()


async def _go(code, resolve):
    g = globals()
    try:
        exec(code, g)
        result = await g["__t"]()
        resolve(json.dumps({"ok": result}))
    except Exception as exc:
        resolve(json.dumps({"error": type(exc).__name__ + ": " + str(exc), "trace": _trace(exc)}))


def _run(code, resolve):
    asyncio.get_event_loop().create_task(_go(code, resolve))


window._pyRun = create_proxy(_run)
window.sdkReady = True

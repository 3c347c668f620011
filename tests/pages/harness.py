# Runs test snippets in the page, under Pyodide or MicroPython alike (the common subset).
# The test process wraps each snippet as ``async def __t(): ...; return json.dumps(expr)``.
import json
import sys

import js

from empmix_web import EmpMixClient
from page_runner import serve

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


serve(globals(), "sdkReady")

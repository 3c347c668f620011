# Runs snippets sent by the test or benchmark process, under Pyodide or MicroPython alike (the
# common subset). The sender wraps each snippet as ``async def __t(): ...; return json.dumps(x)``
# (tests/harness.py); JavaScript calls ``window._pyRun(code, resolve)``. Loaded through PyScript's
# "files" by tests/pages/harness.py and bench/page/bench_page.py.
import asyncio
import json
import sys

from pyscript import window
from pyscript.ffi import create_proxy


def _trace(exc):
    try:
        import traceback

        return traceback.format_exc()
    except ImportError:  # MicroPython
        import io

        out = io.StringIO()
        sys.print_exception(exc, out)
        return out.getvalue()


def serve(namespace, ready_flag):
    """Run snippets in ``namespace`` from now on; then set ``window[ready_flag] = True``."""

    async def go(code, resolve):
        try:
            exec(code, namespace)
            result = await namespace["__t"]()
            resolve(json.dumps({"ok": result}))
        except Exception as exc:
            resolve(json.dumps({"error": type(exc).__name__ + ": " + str(exc), "trace": _trace(exc)}))

    def run(code, resolve):
        asyncio.get_event_loop().create_task(go(code, resolve))

    window._pyRun = create_proxy(run)
    setattr(window, ready_flag, True)

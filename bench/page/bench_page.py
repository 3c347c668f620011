# The Python of a PyScript bench page (bench/page/pyscript.template.html), one file for Pyodide
# (type="py") and MicroPython (type="mpy"): the common subset only.
#
# 1. Start-up, timed at once: navigation -> this first line -> `import empmix_web` -> `init`
#    done. Navigation times are `performance.now()` (milliseconds since navigation start, a
#    float: no ms timestamp crosses the FFI as an int); import and init are timed in Python
#    (`clock_us()`, below). The result is `window.benchStartup` (JSON text).
# 2. A harness like tests/pages/harness.py: `window._pyRun(code, resolve)` runs a snippet wrapped
#    by tests/harness.py (`async def __t(): ...; return json.dumps(expr)`).
import js

NAV_FIRST_LINE_MS = float(js.performance.now())

import sys
import time

MICROPYTHON = sys.implementation.name == "micropython"

if MICROPYTHON:
    # MicroPython's ticks_us() in the browser is Date.now() * 1000 (millisecond steps), so the
    # clock is performance.now() through a plain JS arrow function (floats cross the FFI intact;
    # 5 us resolution on this cross-origin-isolated page).
    _perf_now = js.Function.new("return () => performance.now()")()

    def clock_us():
        return _perf_now() * 1000.0

else:
    _pc = time.perf_counter

    def clock_us():
        return _pc() * 1e6

# ?modules=1 (MicroPython): time each module's first import, like ``python -X importtime``, through
# builtins.__import__ (MicroPython's import statement calls it). Its self time is its own import
# minus the imports it made; ``from . import x`` is counted in the importing module. Separate
# pages (bench/startup.py): the hook's own cost stays out of the headline samples.
_module_times = {}
if MICROPYTHON and "modules=1" in str(js.location.search):
    import builtins

    _plain_import = builtins.__import__
    _stack = []

    def _timed_import(name, globals=None, locals=None, fromlist=(), level=0):
        key = ("empmix_web." + name) if level == 1 else name
        if not name or key in sys.modules:
            return _plain_import(name, globals, locals, fromlist, level)
        start = clock_us()
        _stack.append(0.0)
        try:
            return _plain_import(name, globals, locals, fromlist, level)
        finally:
            children = _stack.pop()
            spent = clock_us() - start
            _module_times[key] = (spent - children) / 1000
            if _stack:
                _stack[-1] += spent

    builtins.__import__ = _timed_import

_t0 = clock_us()
import empmix_web

_t1 = clock_us()
_startup_token = "startup_" + ("mpy" if MICROPYTHON else "pys")
_startup_client = empmix_web.EmpMixClient(_startup_token, api_host=str(js.location.origin), batch_size=50,
                                          flush_interval_ms=1000)
_t2 = clock_us()
NAV_INIT_MS = float(js.performance.now())
if _module_times:
    builtins.__import__ = _plain_import
_startup_client.opt_out_tracking()

import json

_modules = [name for name in sys.modules if name == "empmix_web" or name.startswith("empmix_web.")]
# modules run from source: on MicroPython every one but the package's __init__ comes from an .mpy
# file when the page loads the MicroPython wheel (tools/mpy_wheel.py); Pyodide's are counted by
# bench/startup.py's own page
_from_source = [name for name in _modules if str(getattr(sys.modules[name], "__file__", "")).endswith(".py")]
js.window.benchStartup = json.dumps({
    "interpreter": sys.implementation.name,
    "nav_to_first_line_ms": NAV_FIRST_LINE_MS,
    "nav_to_init_ms": NAV_INIT_MS,
    "import_ms": (_t1 - _t0) / 1000,
    "init_ms": (_t2 - _t1) / 1000,
    "import_to_init_ms": (_t2 - _t0) / 1000,
    "empmix_web_modules": len(_modules),
    "empmix_web_from_source_files": len(_from_source) if MICROPYTHON else None,
    "slowest_modules_self_ms": {k: round(v, 2) for k, v in sorted(_module_times.items(), key=lambda kv: -kv[1])[:12]},
}, separators=(",", ":"))

from page_runner import serve

serve(globals(), "benchPyReady")

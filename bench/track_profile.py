"""Where empmix-web's ``track()`` time goes, measured inside the interpreter (part of benchmark 1).

Three views, all on a fresh client with ingestion held (nothing is sent):

* ``sections``: a clock around the parts of ``track`` (the client's checks and the core's
  collaborators are wrapped in place, in the page only), in call order: the argument checks;
  the hot path (``core.hot.track``: the session, then one call into the page,
  ``browser.local_set_event``, which assembles the event from the template it holds and stores
  it, the one FFI crossing per call); the full path, which runs on the first event, about once a second (the
  cookie and super-property re-reads) and after a change (``core.sync``: the stored identity;
  ``core._event``: context, record, push; ``core.hot.arm``: the template and the page's guard);
  ``sender.queued``; and the rest. Then what is inside those parts (JSON, ``sessions.touch``,
  and the FFI leaves ``browser.local_get/local_set/get_cookies/page_url``). Means per call
  (the browser's occasional slow ``setItem`` shows here, not in a median). The wrappers' own
  cost is measured on a no-op and taken out of the rest (MicroPython's clock is an FFI call: a
  few µs).
* ``cprofile`` (Pyodide only): the top functions by own time under ``cProfile`` (inflated by
  the profiler).
* ``what_if``: the median per call when, cumulatively, the client's argument checks are skipped
  and the properties' JSON is prebuilt (what is left is the session, the one page call and the
  queue's bookkeeping): where the remaining time goes (the core object is patched in the page; the SDK
  files are not changed). Median over interleaved rounds. Alone (not cumulative): the
  client's argument check with flat property values checked inline, without the error-path
  strings ``validation.check_json`` builds for every key (MicroPython checks every value
  before ``json.dumps``, so there that check is on the hot path).

The code is in the subset MicroPython runs: ``run_mpy`` takes the sections and the what-if on a
PyScript ``type="mpy"`` page (clock: ``performance.now()`` as a float through the FFI).

Example::

    result = run(bb, page, n=2000)
    mpy = run_mpy(bb, mpy_page, n=2000)
"""

from __future__ import annotations

from typing import Any

from bench.browser import BenchBrowser

__all__ = ["run", "run_mpy"]

# sections and what-if: the common subset (no statistics, no perf_counter on MicroPython)
_COMMON = """
import json, sys, time
from empmix_web import EmpMixClient
import empmix_web.core as core_module
import empmix_web.records as records_module

N = {n}
props = {{"plan": "pro", "step": 3, "price": 9.99, "beta": True, "source": "bench"}}
if sys.implementation.name == "micropython":
    import js
    _perf_now = js.Function.new("return () => performance.now()")()

    def pc():
        return _perf_now() / 1000
else:
    pc = time.perf_counter

def fresh(token):
    return EmpMixClient(token, api_host={origin!r}, batch_size=50, flush_interval_ms=1000)

def loop(c, name="bench_event"):
    times = [0.0] * N
    for i in range(N):
        t0 = pc()
        c.track(name, props)
        times[i] = pc() - t0
    return times

def median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

def med_us(times):
    return round(median(times) * 1e6, 1)

def wrap(obj, attr, label, acc):
    # time every call of obj.attr into acc[label]; skipped if the SDK has no such attribute
    fn = getattr(obj, attr, None)
    if fn is None:
        return None
    acc[label] = 0.0
    def timed(*args, **kwargs):
        t0 = pc()
        try:
            return fn(*args, **kwargs)
        finally:
            acc[label] += pc() - t0
    setattr(obj, attr, timed)
    return fn

out = {{}}

# 1. sections
c = fresh("prof_sections")
core = c._core
acc = {{}}
calls = {{}}
# the parts of track, in call order (they do not overlap; their sum + the rest = the total) ...
TOPS = ["argument checks (client)", "hot path (total)", "full path: sync, identity + consent (total)",
        "full path: _event, context + record + push (total)", "full path: arm, template + guard (total)",
        "sender.queued (total)"]
# ... and inside them (each also counted in its part above)
INNER = ["records.event (the full path's encoder)", "sessions.touch",
         "the page assembles and stores the event, guarded (FFI: the one crossing)", "JSON encode (compat.dumps)",
         "document.cookie read (FFI)", "localStorage.getItem (FFI)", "localStorage.setItem (FFI)",
         "location.href (FFI)"]
REST = "rest of track (Core.track, HotPath.track, queue)"
WRAPPERS = "profiling wrappers around the parts (estimated; not the SDK)"

def wrap_counted(obj, attr, label):
    fn = wrap(obj, attr, label, acc)
    if fn is not None:
        calls[label] = 0
        timed = getattr(obj, attr)
        def counted(*args, **kwargs):
            calls[label] += 1
            return timed(*args, **kwargs)
        setattr(obj, attr, counted)
    return fn

import empmix_web.client as client_module
originals = []
for name in ("check_event_name", "check_properties"):  # the client's argument checks
    originals.append((name, getattr(client_module, name)))
    fn = originals[-1][1]
    def checked(*args, _fn=fn, **kwargs):
        t0 = pc()
        try:
            return _fn(*args, **kwargs)
        finally:
            acc[TOPS[0]] += pc() - t0
            calls[TOPS[0]] += 1
    setattr(client_module, name, checked)
acc[TOPS[0]] = 0.0
calls[TOPS[0]] = 0
wrap_counted(core.hot, "track", TOPS[1])
wrap_counted(core, "sync", TOPS[2])
wrap_counted(core, "_event", TOPS[3])
wrap_counted(core.hot, "arm", TOPS[4])
wrap_counted(core.sender, "queued", TOPS[5])
wrap_counted(core.records, "event", INNER[0])
wrap_counted(core.sessions, "touch", INNER[1])
wrap_counted(core.browser, "local_set_event", INNER[2])
originals.append(("dumps", wrap_counted(records_module, "dumps", INNER[3])))
originals.append(("core_dumps", wrap_counted(core_module, "dumps", INNER[3])))  # track() encodes the properties first
wrap_counted(core.browser, "get_cookies", INNER[4])
wrap_counted(core.browser, "local_get", INNER[5])
wrap_counted(core.browser, "local_set", INNER[6])
wrap_counted(core.browser, "page_url", INNER[7])
t0 = pc()
times = loop(c)
total = pc() - t0
c.opt_out_tracking()
for name, fn in originals:  # module-level: later clients must not pay the wrappers
    if fn is not None:
        if name == "core_dumps":
            core_module.dumps = fn
        else:
            setattr(records_module if name == "dumps" else client_module, name, fn)

# what one wrapped call costs by itself (clock reads, counting, *args): timed on a no-op
class _Noop:
    def f(self, a, b=None):
        return a
probe = _Noop()
M = 2000
t0 = pc()
for i in range(M):
    probe.f(1)
bare = pc() - t0
scratch = acc
acc = {{}}
wrap_counted(probe, "f", "probe")
t0 = pc()
for i in range(M):
    probe.f(1)
wrapper_cost = max(0.0, (pc() - t0 - bare) / M)
acc = scratch
top_calls = sum([calls[k] for k in TOPS if k in calls])
inner_calls = sum([calls[k] for k in INNER if k in calls])

per = {{}}
for k in TOPS + INNER:
    if k in acc:
        per[k] = round(acc[k] / N * 1e6, 1)
tops = [k for k in TOPS if k in per]
per[WRAPPERS] = round(top_calls * wrapper_cost / N * 1e6, 1)
# the wrappers inside the parts inflate those parts by about this much per track
out["inner_wrappers_us_per_call"] = round(inner_calls * wrapper_cost / N * 1e6, 1)
per[REST] = round(total / N * 1e6 - sum([per[k] for k in tops]) - per[WRAPPERS], 1)
out["sections_us_per_call"] = per
out["sections_order"] = [k for k in TOPS if k in per] + [REST, WRAPPERS] + [k for k in INNER if k in per]
out["sections_inner"] = [k for k in INNER if k in per]
out["sections_calls_per_track"] = {{}}
for k in calls:
    if k != "probe":
        out["sections_calls_per_track"][k] = round(calls[k] / N, 2)
out["wrapper_cost_us"] = round(wrapper_cost * 1e6, 2)
out["sections_total_us_per_call"] = round(total / N * 1e6, 1)
out["sections_median_us_per_call"] = med_us(times)

# 3. what-if: take work out of track, cumulatively; stages are measured in interleaved rounds
# (fresh client each time) so that load drifts hit all alike
STAGES = ["as shipped", "+ no argument checks",
          "+ properties JSON prebuilt (left: the session, the page call, the queue)"]
# and, alone (not cumulative): the client's argument check with flat values checked inline.
# validation.check_json builds an error-path string (where + "[" + repr(key) + "]") for every
# key before it recurses; on MicroPython (where values are checked before json.dumps) those
# allocations are most of the check. Same rules: anything not flat goes to the original.
FAST = "argument check: flat values checked inline (alone, not cumulative)"
_INF = float("inf")
_shipped_check = client_module.check_properties

def fast_check_properties(value, name="properties", deep=True, copy=True):
    if isinstance(value, dict):
        for k in value:
            v = value[k]
            if not isinstance(k, str):
                break
            if v is None or v is True or v is False or isinstance(v, str) or isinstance(v, int):
                continue
            if isinstance(v, float) and v == v and v != _INF and v != -_INF:
                continue
            break
        else:
            return dict(value) if copy else value
    return _shipped_check(value, name, deep, copy)

samples = {{}}
for stage in STAGES + [FAST]:
    samples[stage] = []
for rnd in range({rounds}):
    c = fresh("prof_whatif_" + str(rnd) + "_fast")
    client_module.check_properties = fast_check_properties
    try:
        samples[FAST].append(med_us(loop(c)))
    finally:
        client_module.check_properties = _shipped_check
    c.opt_out_tracking()
    for level in range(len(STAGES)):
        c = fresh("prof_whatif_" + str(rnd) + "_" + str(level))
        core = c._core
        c.track("warm", props)  # the full path once: the hot path is armed
        shipped = (client_module.check_event_name, client_module.check_properties)
        if level >= 1:
            client_module.check_event_name = lambda value: value
            client_module.check_properties = lambda value, name="properties", deep=True, copy=True: value
        shipped_dumps = core_module.dumps
        if level >= 2:
            core_module.dumps = lambda o, own=records_module.dumps(props): own
        try:
            samples[STAGES[level]].append(med_us(loop(c)))
        finally:
            client_module.check_event_name, client_module.check_properties = shipped
            core_module.dumps = shipped_dumps
        c.opt_out_tracking()
what_if = {{}}
for stage in STAGES:
    what_if[stage] = median(samples[stage])
out["what_if_median_us"] = what_if
out["what_if_order"] = STAGES
out["what_if_alone_median_us"] = {{FAST: median(samples[FAST])}}
out["what_if_rounds"] = {rounds}
out["interpreter"] = sys.implementation.name
"""

# Pyodide only (bare page, pyodide.runPythonAsync)
_CPROFILE = """
import cProfile, pstats

# 2. cProfile
c = fresh("prof_cprofile")
profiler = cProfile.Profile()
profiler.enable()
loop(c)
profiler.disable()
c.opt_out_tracking()
stats = pstats.Stats(profiler)
rows = []
for (path, line, func), (cc, nc, tt, ct, callers) in stats.stats.items():
    short = path.split("site-packages/")[-1].split("python314.zip/")[-1]
    rows.append({{"function": f"{{short}}:{{line}}({{func}})", "calls": nc,
                 "own_us_per_track": round(tt / N * 1e6, 1), "cum_us_per_track": round(ct / N * 1e6, 1)}})
rows.sort(key=lambda r: -r["own_us_per_track"])
out["cprofile_top"] = rows[:15]
json.dumps(out)
"""


def run(bb: BenchBrowser, page: Any, n: int = 2000, rounds: int = 3) -> dict[str, Any]:
    """Profile ``track`` on a bare Pyodide ``page`` (ingestion is held while it runs); the
    what-if stages are measured ``rounds`` times, interleaved, and the median kept."""
    with bb.hold_ingestion(page):
        result = bb.py(page, (_COMMON + _CPROFILE).format(n=n, origin=bb.url, rounds=rounds))
    page.evaluate("clearStorage()")
    result["n"] = n
    return result


def run_mpy(bb: BenchBrowser, page: Any, n: int = 2000, rounds: int = 3) -> dict[str, Any]:
    """The sections and what-if of :func:`run` on a PyScript page (MicroPython: no cProfile)."""
    with bb.hold_ingestion(page):
        result = bb.run(page, _COMMON.format(n=n, origin=bb.url, rounds=rounds), "out")
    page.evaluate("clearStorage()")
    result["n"] = n
    return result

"""Where empmix-web's ``track()`` time goes, measured inside Pyodide (part of benchmark 1).

Three views, all on a fresh client with ingestion held (nothing is sent):

* ``sections``: ``perf_counter`` around the parts of ``track`` (the client's internals are
  wrapped in place, in the page only): identity (document.cookie read + parse), event body
  (page URL, super properties, JSON), queue push (localStorage.setItem), the rest. Means per
  call (the browser's occasional slow ``setItem`` shows here, not in a median).
* ``cprofile``: the top functions by own time under ``cProfile`` (inflated by the profiler).
* ``what_if``: the median per call when, cumulatively, the identity, the page URL and the
  super properties are served from memory instead of read through the browser each call:
  what the proposed caching in ``empmix_web`` would save (the client object is patched in the
  page; the SDK files are not changed). Median over interleaved rounds.

Example::

    result = run(bb, page, n=2000)
"""

from __future__ import annotations

from typing import Any

from bench.browser import BenchBrowser

__all__ = ["run"]

_CODE = """
import cProfile, io, json, pstats, statistics, time
from empmix_web import EmpMixClient
import empmix_web.client as client_module

N = {n}
props = {{"plan": "pro", "step": 3, "price": 9.99, "beta": True, "source": "bench"}}
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

def med_us(times):
    return round(statistics.median(times) * 1e6, 1)

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
wrap(core.browser, "get_cookies", "document.cookie read (FFI)", acc)
wrap(core.browser, "local_set", "localStorage.setItem (FFI)", acc)
wrap(core.browser, "local_get", "localStorage.getItem (FFI)", acc)
wrap(core.browser, "page_url", "location.href (FFI)", acc)
original_encode = wrap(client_module, "encode", "JSON encode", acc)
wrap(core.identity, "load", "identity.load (total)", acc)
wrap(core.queue, "push", "queue.push (total)", acc)
wrap(c, "_event_body", "event body (total)", acc)
t0 = pc()
times = loop(c)
total = pc() - t0
c.opt_out_tracking()
if original_encode is not None:
    client_module.encode = original_encode  # module-level: later clients must not pay the wrapper
per = {{k: round(v / N * 1e6, 1) for k, v in acc.items()}}
tops = [k for k in ("identity.load (total)", "event body (total)", "queue.push (total)") if k in per]
per["rest of track (checks, Record, wake)"] = round(total / N * 1e6 - sum(per[k] for k in tops), 1)
out["sections_us_per_call"] = per
out["sections_total_us_per_call"] = round(total / N * 1e6, 1)
out["sections_median_us_per_call"] = med_us(times)

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

# 3. what-if: serve what track reads through the browser from memory, cumulatively; stages are
# measured in interleaved rounds (fresh client each time) so that load drifts hit all alike
STAGES = ["as shipped", "+ identity served from memory (no cookie/storage read per call)",
          "+ page URL served from memory", "+ super properties served from memory"]
samples = {{stage: [] for stage in STAGES}}
for rnd in range({rounds}):
    for level, stage in enumerate(STAGES):
        c = fresh(f"prof_whatif_{{rnd}}_{{level}}")
        core = c._core
        if level >= 1:
            ident = core.identity.load()
            core.identity.load = lambda ident=ident: ident
        if level >= 2:
            href = core.browser.page_url()
            core.browser.page_url = lambda href=href: href
        if level >= 3 and hasattr(core, "super_properties"):
            supers = core.super_properties()
            core.super_properties = lambda supers=supers: supers
        samples[stage].append(med_us(loop(c)))
        c.opt_out_tracking()
out["what_if_median_us"] = {{stage: statistics.median(values) for stage, values in samples.items()}}
out["what_if_rounds"] = {rounds}
json.dumps(out)
"""


def run(bb: BenchBrowser, page: Any, n: int = 2000, rounds: int = 3) -> dict[str, Any]:
    """Profile ``track`` on ``page`` (ingestion is held while it runs); the what-if stages are
    measured ``rounds`` times, interleaved, and the median kept."""
    with bb.hold_ingestion(page):
        result = bb.py(page, _CODE.format(n=n, origin=bb.url, rounds=rounds))
    page.evaluate("clearStorage()")
    result["n"] = n
    return result

"""Benchmark 1: the main-thread cost of ``track()``, empmix-web vs mixpanel-browser vs a floor.

One Chromium page holds mixpanel-browser (pinned, batching on, ``api_host`` = the collector)
and Pyodide with empmix-web (same batch size and flush interval). Each SDK is timed by a loop
in its own language, call by call: Python inside Pyodide with ``time.perf_counter()``, JavaScript
with ``performance.now()``; nothing crosses between the two per call.

Queue depth D: before the timed loop D records are tracked and left pending. Requests to the
ingestion endpoints are held by Playwright routing (they never complete), so the queue really
holds them; it grows from D to D + N during the loop.

Measured per depth:

* ``empmix``: ``EmpMixClient.track``. The record is in localStorage when it returns.
* ``mixpanel_return``: ``mixpanel.track`` in a tight loop, time until it *returns*. In batch
  mode mixpanel-browser defers the write of its persisted queue to promise callbacks and a
  localStorage lock, so this excludes persistence (which then runs after the loop; in a tight
  loop the lock makes every later call wait on timers).
* ``mixpanel_persisted``: one call at a time, timed until mixpanel-browser reports the record
  enqueued in its persisted queue (the track callback). Only promise callbacks run in between,
  so this is the whole main-thread cost of a tracked event.
* ``floor``: plain JavaScript that builds the same event, serialises it and writes it to
  localStorage under its own key: the least any SDK with a persisted queue must do.

Example::

    with BenchBrowser(tmp, TOKENS) as bb:
        result = run(bb, n=2000, depths=(0, 100, 1000))
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bench.browser import BenchBrowser
from bench.common import summarize_ms

__all__ = ["run", "TOKENS", "BATCH_SIZE", "FLUSH_MS", "tokens_for"]

BATCH_SIZE = 50
FLUSH_MS = 1000

_EM_START = """
import asyncio, json
from empmix_web import EmpMixClient
_bench = globals().setdefault("_bench_clients", {{}})
c = EmpMixClient({token!r}, api_host={origin!r}, batch_size={batch}, flush_interval_ms={flush})
_bench[{token!r}] = c
props = {{"plan": "pro", "step": 3, "price": 9.99, "beta": True, "source": "bench"}}
for _ in range({depth}):
    c.track("bench_fill", props)
await asyncio.sleep(0.2)  # the sender starts a request (held): the records stay queued
json.dumps(True)
"""

_EM_LOOP = """
import json, time
c = _bench_clients[{token!r}]
props = {{"plan": "pro", "step": 3, "price": 9.99, "beta": True, "source": "bench"}}
pc = time.perf_counter
times = [0.0] * {n}
for i in range({n}):
    t0 = pc()
    c.track("bench_event", props)
    times[i] = pc() - t0
json.dumps([t * 1000 for t in times])
"""

_EM_STOP = """
_bench_clients.pop({token!r}).opt_out_tracking()
json.dumps(True)
"""


def tokens_for(depths: Sequence[int]) -> list[str]:
    """Project tokens the collector must accept for these depths."""
    return [f"{kind}_d{d}" for d in depths for kind in ("em", "mps", "mpr")]


TOKENS = tokens_for((0, 100, 1000))


def _floor(page: Any, depth: int, n: int) -> dict[str, Any]:
    prefix = f"floor_d{depth}_"
    page.evaluate("([p, d]) => floorLoop(p, 0, d, false)", [prefix, depth])
    times = page.evaluate("([p, d, n]) => floorLoop(p, d, n, true)", [prefix, depth, n])
    pending = page.evaluate("p => countKeys(p)", prefix)
    page.evaluate("clearStorage()")
    return {**summarize_ms(times), "pending_after": pending}


def _empmix(bb: BenchBrowser, page: Any, depth: int, n: int) -> dict[str, Any]:
    token = f"em_d{depth}"
    fmt = {"token": token, "origin": bb.url, "batch": BATCH_SIZE, "flush": FLUSH_MS, "depth": depth, "n": n}
    bb.py(page, _EM_START.format(**fmt))
    pending_before = page.evaluate("p => countKeys(p)", f"empmix_{token}_q_")
    times = bb.py(page, _EM_LOOP.format(**fmt))
    pending = page.evaluate("p => countKeys(p)", f"empmix_{token}_q_")
    bb.py(page, _EM_STOP.format(**fmt))
    page.evaluate("clearStorage()")
    return {**summarize_ms(times), "pending_before": pending_before, "pending_after": pending}


def _mixpanel(page: Any, depth: int, n: int, persisted: bool) -> dict[str, Any]:
    kind = "mps" if persisted else "mpr"
    token, name = f"{kind}_d{depth}", f"{kind}{depth}"
    page.evaluate("([name, token, b, f]) => mpStart(name, token, b, f)", [name, token, BATCH_SIZE, FLUSH_MS])
    page.evaluate("([name, d]) => mpSeq(name, d, false)", [name, depth])  # one at a time: no lock contention
    page.wait_for_timeout(200)  # the batcher starts a request (held)
    pending_before = page.evaluate("t => mpPersisted(t)", token)
    if persisted:
        times = page.evaluate("([name, n]) => mpSeq(name, n, true)", [name, n])
    else:
        times = page.evaluate("([name, n]) => mpLoop(name, n)", [name, n])
    pending = page.evaluate("t => mpPersisted(t)", token)
    page.evaluate("name => mpStop(name)", name)
    page.evaluate("clearStorage()")
    return {**summarize_ms(times), "pending_before": pending_before, "pending_after": pending}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def _one_depth(bb: BenchBrowser, page: Any, depth: int, n: int) -> dict[str, Any]:
    with bb.hold_ingestion(page) as held:
        floor = _floor(page, depth, n)
        mp_persisted = _mixpanel(page, depth, n, persisted=True)
        # the headline pair back to back (the machine's load drifts), mixpanel-browser's tight
        # loop last: afterwards it keeps the main thread busy persisting for a long time (its
        # storage lock); the page is thrown away after each depth in a full run
        empmix = _empmix(bb, page, depth, n)
        mp_return = _mixpanel(page, depth, n, persisted=False)
        held_requests = len(held)
    em, ret, per, fl = empmix["median_us"], mp_return["median_us"], mp_persisted["median_us"], floor["median_us"]
    return {
        "depth": depth,
        "n": n,
        "empmix": empmix,
        "mixpanel_return": mp_return,
        "mixpanel_persisted": mp_persisted,
        "floor": floor,
        "held_requests": held_requests,
        "ratio_empmix_to_mixpanel_return": _ratio(em, ret),
        "ratio_empmix_to_mixpanel_return_p95": _ratio(empmix["p95_us"], mp_return["p95_us"]),
        "ratio_empmix_to_mixpanel_persisted": _ratio(em, per),
        "ratio_empmix_to_floor": _ratio(em, fl),
    }


def run(bb: BenchBrowser, n: int = 2000, depths: Sequence[int] = (0, 100, 1000),
        page: Any = None) -> dict[str, Any]:
    """Measure every depth, each on a fresh browser context (or all on ``page``: quicker, but
    mixpanel-browser's leftover persistence work then runs during later phases)."""
    results = []
    shared = page
    for depth in depths:
        if shared is not None:
            results.append(_one_depth(bb, shared, depth, n))
            shared.evaluate("clearStorage()")
            continue
        context = bb.new_context()
        try:
            results.append(_one_depth(bb, bb.new_page(context), depth, n))
        finally:
            context.close()
    ratios = [r["ratio_empmix_to_mixpanel_return"] for r in results if r["ratio_empmix_to_mixpanel_return"]]
    persisted = [r["ratio_empmix_to_mixpanel_persisted"] for r in results if r["ratio_empmix_to_mixpanel_persisted"]]
    return {
        "n": n,
        "batch_size": BATCH_SIZE,
        "flush_interval_ms": FLUSH_MS,
        "properties": json.loads('{"plan": "pro", "step": 3, "price": 9.99, "beta": true, "source": "bench"}'),
        "depths": results,
        "worst_ratio_empmix_to_mixpanel_return": max(ratios) if ratios else None,
        "worst_ratio_empmix_to_mixpanel_persisted": max(persisted) if persisted else None,
        "goal_ratio": 1.0,
    }

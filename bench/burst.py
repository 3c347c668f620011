"""Benchmark 3: burst delivery. ``n`` events tracked at once (one synchronous loop), then: how
many HTTP requests each SDK makes and how long until the collector has stored all of them
(rows counted in its SQLite database), plus the page's main-thread busy time meanwhile (CDP).

Both SDKs use batch size 50 and a 1 s flush interval, on a fresh browser context each.
empmix-web runs twice: under Pyodide (bare page) and under MicroPython (PyScript ``type="mpy"``
page, ``empmix_mpy``).

Example::

    result = run(bb, n=1000, timeout_s=120)
"""

from __future__ import annotations

import time
from typing import Any

from bench.browser import BenchBrowser
from bench.common import count_events

__all__ = ["run", "TOKENS"]

TOKENS = ["burst_em", "burst_mp", "burst_mpy"]
SDKS = {"empmix": "burst_em", "mixpanel": "burst_mp", "empmix_mpy": "burst_mpy"}

_EM_BURST = """
import json, time
from empmix_web import EmpMixClient
c = EmpMixClient({token!r}, api_host={origin!r}, batch_size=50, flush_interval_ms=1000)
props = {{"plan": "pro", "step": 3, "price": 9.99, "beta": True, "source": "bench"}}
t0 = time.perf_counter()
for _ in range({n}):
    c.track("bench_burst", props)
json.dumps((time.perf_counter() - t0) * 1000)
"""


# MicroPython (PyScript page: clock_us() is bench_page.py's, in microseconds)
_MPY_BURST = """
from empmix_web import EmpMixClient
c = EmpMixClient({token!r}, api_host={origin!r}, batch_size=50, flush_interval_ms=1000)
props = {{"plan": "pro", "step": 3, "price": 9.99, "beta": True, "source": "bench"}}
t0 = clock_us()
for _ in range({n}):
    c.track("bench_burst", props)
loop_ms = (clock_us() - t0) / 1000
"""


def _wait_stored(bb: BenchBrowser, page: Any, token: str, n: int, started: float,
                 timeout_s: float) -> tuple[int, float]:
    """Poll the database until ``n`` rows of ``token`` are stored; (stored, seconds since start)."""
    db = bb.collector.db
    while True:
        stored = count_events(db, token)
        elapsed = time.perf_counter() - started
        if stored >= n or elapsed > timeout_s:
            return stored, elapsed
        page.wait_for_timeout(20)  # lets Playwright dispatch request events meanwhile


def _one(bb: BenchBrowser, sdk: str, n: int, timeout_s: float, page: Any = None) -> dict[str, Any]:
    context = None if page is not None else bb.new_context()
    try:
        if page is None:
            page = bb.new_pyscript_page("mpy", context) if sdk == "empmix_mpy" else bb.new_page(context)
        cdp = bb.cdp_session(page)
        token = SDKS[sdk]
        if sdk == "mixpanel":
            page.evaluate("([name, token]) => mpStart(name, token, 50, 1000)", ["burst", token])
        with bb.count_ingestion(page) as requests:
            busy0 = bb.main_thread_seconds(cdp)
            started = time.perf_counter()
            if sdk == "empmix":
                loop_ms = bb.py(page, _EM_BURST.format(token=token, origin=bb.url, n=n))
            elif sdk == "empmix_mpy":
                loop_ms = bb.run(page, _MPY_BURST.format(token=token, origin=bb.url, n=n), "loop_ms")
            else:
                loop_ms = page.evaluate("([name, n]) => mpFill(name, n, 'bench_burst')", ["burst", n])
            stored, elapsed = _wait_stored(bb, page, token, n, started, timeout_s)
            busy = bb.main_thread_seconds(cdp) - busy0
            request_count = len(requests)
        return {
            "events": n,
            "stored": stored,
            "complete": stored >= n,
            "requests": request_count,
            "seconds_to_all_stored": round(elapsed, 3) if stored >= n else None,
            "seconds_waited": round(elapsed, 3),
            "track_loop_ms": round(loop_ms, 2),
            "main_thread_busy_ms": round(busy * 1000, 1),
        }
    finally:
        if context is not None:
            context.close()


def run(bb: BenchBrowser, n: int = 1000, timeout_s: float = 120.0, page: Any = None, mpy: bool = True,
        mpy_page: Any = None) -> dict[str, Any]:
    """Burst ``n`` events through each SDK, each on a fresh browser context (or both on ``page``,
    and MicroPython on ``mpy_page``)."""
    out = {"events": n, "timeout_s": timeout_s, "empmix": _one(bb, "empmix", n, timeout_s, page)}
    if mpy:
        out["empmix_mpy"] = _one(bb, "empmix_mpy", n, timeout_s, mpy_page if page is not None else None)
    out["mixpanel"] = _one(bb, "mixpanel", n, timeout_s, page)
    return out

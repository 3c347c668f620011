"""Benchmark 2: start-up cost and download size.

* In a fresh page (new browser context: empty cache and storage) with Pyodide loaded and the
  wheel installed but not imported: the time from ``import empmix_web`` to ``init`` done, timed
  inside Pyodide, with a per-module breakdown of the import (a meta-path hook timing each
  module's execution, like ``python -X importtime``, and counting the modules compiled from
  source). For comparison the same page times ``mixpanel.init`` until its ``loaded`` callback,
  and reports how long Pyodide itself and the wheel's installation took. The wheel is the one
  with bytecode for this Pyodide (``tools/pyc_wheel.py``); as many pages again, interleaved,
  load the plain wheel (``source``: what a page on another Pyodide gets). The goal
  (``goal_import_to_init_ms``, issue 12) is reported, never asserted.
* PyScript pages (``bench/page/bench_page.py``), MicroPython (``type="mpy"``) and Pyodide
  (``type="py"``) alike, each in a fresh context, interleaved: navigation start to the script's
  first line and to ``init`` done (``performance.now()``), and ``import empmix_web`` + ``init``
  timed in the interpreter. This is what a visitor waits for; the bare-Pyodide numbers above
  leave out the page and PyScript. The same for a page with mixpanel-browser alone
  (``bench/page/mixpanel.html``: library in ``<head>``, ``init`` at once, until ``loaded``).
* Sizes: the three wheels in bytes (plain, Pyodide bytecode, MicroPython bytecode: the PyScript
  MicroPython pages load the last, ``tools/mpy_wheel.py``; such a page reports how many of empmix_web's
  modules it ran from source, ``empmix_web_from_source_files``: 1, the package's ``__init__``);
  mixpanel-browser's ``mixpanel.min.js`` minified and gzipped
  (``gzip -9`` in Python); the Pyodide runtime files a page downloads first, for context.

Example::

    result = run(bb, repeats=3)
"""

from __future__ import annotations

import gzip
import json
import statistics
from pathlib import Path
from typing import Any

from bench.browser import BenchBrowser
from bench.common import MIXPANEL_MIN_JS, WWW

__all__ = ["run", "run_pyscript", "sizes", "TOKENS"]

TOKENS = ["startup_em", "startup_mp", "startup_mpy", "startup_pys", "startup_mpnav"]  # bench_page.py, mixpanel_boot.js
PYODIDE_CORE = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip")
MICROPYTHON_CORE = ("micropython.mjs", "micropython.wasm")

_CODE = """
import json, sys, time
pc = time.perf_counter
_times = {{}}
_stack = []
_compiled = []  # modules whose source was compiled here (no usable .pyc)

class _TimedLoader:
    # times exec_module of every module imported below (like python -X importtime)
    def __init__(self, loader, name):
        self._loader, self._name = loader, name
        compile_source = getattr(loader, "source_to_code", None)
        if compile_source is not None:  # SourceLoader.get_code calls it only without a valid pyc
            def source_to_code(*args, **kwargs):
                _compiled.append(name)
                return compile_source(*args, **kwargs)
            loader.source_to_code = source_to_code
    def create_module(self, spec):
        return self._loader.create_module(spec)
    def exec_module(self, module):
        t0 = pc()
        _stack.append(0.0)
        try:
            self._loader.exec_module(module)
        finally:
            children = _stack.pop()
            spent = pc() - t0
            _times[self._name] = (spent, spent - children)
            if _stack:
                _stack[-1] += spent
    def __getattr__(self, attr):
        return getattr(self._loader, attr)

class _TimingFinder:
    @staticmethod
    def find_spec(name, path=None, target=None):
        for finder in sys.meta_path:
            if finder is _TimingFinder:
                continue
            spec = finder.find_spec(name, path, target) if hasattr(finder, "find_spec") else None
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _TimedLoader(spec.loader, name)
                return spec
        return None

sys.meta_path.insert(0, _TimingFinder)
t0 = pc()
import empmix_web
t1 = pc()
sys.meta_path.remove(_TimingFinder)
client = empmix_web.EmpMixClient({token!r}, api_host={origin!r}, batch_size=50, flush_interval_ms=1000)
t2 = time.perf_counter()
client.opt_out_tracking()
own = {{k: v for k, v in _times.items() if k.split(".")[0] == "empmix_web"}}
slow = sorted(_times.items(), key=lambda kv: -kv[1][1])[:10]
json.dumps({{"import_ms": (t1 - t0) * 1000, "init_ms": (t2 - t1) * 1000, "import_to_init_ms": (t2 - t0) * 1000,
            "modules_imported": len(_times),
            "empmix_web_compiled_from_source": sum(1 for k in _compiled if k.split(".")[0] == "empmix_web"),
            "empmix_web_own_ms": sum(v[1] for v in own.values()) * 1000,
            "slowest_modules_self_ms": {{k: round(v[1] * 1000, 2) for k, v in slow}}}})
"""


def _gzip_size(path: Path) -> int:
    return len(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))


def sizes(include_pyodide: bool = True) -> dict[str, Any]:
    """Byte sizes of what each SDK makes a page download."""
    latest = json.loads((WWW / "dist" / "empmix_web-latest.json").read_text())
    wheel = WWW / latest["wheel"].lstrip("/")
    bytecode = WWW / latest["pyodide_wheel"].lstrip("/")
    out: dict[str, Any] = {
        "wheel": wheel.name,
        "wheel_bytes": wheel.stat().st_size,
        "pyodide_wheel": latest["pyodide_wheel"],  # one bytecode bundle, no sources (tools/pyc_wheel.py)
        "pyodide_wheel_bytes": bytecode.stat().st_size,
        "micropython_wheel": latest["micropython_wheel"],  # the same plus .mpy files (tools/mpy_wheel.py)
        "micropython_wheel_bytes": (WWW / latest["micropython_wheel"].lstrip("/")).stat().st_size,
        "mixpanel_min_js_bytes": MIXPANEL_MIN_JS.stat().st_size,
        "mixpanel_min_js_gzip_bytes": _gzip_size(MIXPANEL_MIN_JS),
    }
    if include_pyodide:
        core = [WWW / "pyodide" / name for name in PYODIDE_CORE]
        out["pyodide_core_bytes"] = sum(p.stat().st_size for p in core)
        out["pyodide_core_gzip_bytes"] = sum(_gzip_size(p) for p in core)
        out["pyodide_core_files"] = list(PYODIDE_CORE)
    mpy = [WWW / "micropython" / name for name in MICROPYTHON_CORE]
    if all(p.exists() for p in mpy):
        out["micropython_core_bytes"] = sum(p.stat().st_size for p in mpy)
        out["micropython_core_gzip_bytes"] = sum(_gzip_size(p) for p in mpy)
        out["micropython_core_files"] = list(MICROPYTHON_CORE)
    return out


def _one(bb: BenchBrowser, index: int, page: Any = None, plain: bool = False) -> dict[str, Any]:
    context = None if page is not None else bb.new_context()
    try:
        page = page if page is not None else bb.new_page(context, plain=plain)
        load = page.evaluate("window.benchLoad")
        timed = bb.py(page, _CODE.format(token=TOKENS[0], origin=bb.url))
        mp_ms = page.evaluate("([n, t]) => mpInitTimed(n, t)", [f"startup{index}", TOKENS[1]])
        return {**timed, "mixpanel_init_ms": mp_ms, "pyodide_load_ms": load["pyodide_ms"],
                "wheel_install_ms": load["wheel_install_ms"]}
    finally:
        if context is not None:
            context.close()


def _median(samples: list[dict[str, Any]]) -> dict[str, float]:
    keys = [k for k, v in samples[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return {key: round(statistics.median(s[key] for s in samples), 2) for key in keys}


def _slowest_modules(samples: list[dict[str, Any]], top: int = 8) -> dict[str, float]:
    """Median self time (ms) per module over the samples, slowest first (a module missing from
    a sample's top ten counts as 0 there)."""
    names = {name for s in samples for name in s["slowest_modules_self_ms"]}
    med = {name: statistics.median(s["slowest_modules_self_ms"].get(name, 0.0) for s in samples) for name in names}
    return {name: round(ms, 2) for name, ms in sorted(med.items(), key=lambda kv: -kv[1])[:top]}


def run_pyscript(bb: BenchBrowser, repeats: int = 3, mpy_page: Any = None) -> dict[str, Any]:
    """PyScript pages under both interpreters, and a page with mixpanel-browser alone, ``repeats``
    fresh contexts each, interleaved (MicroPython first). ``mpy_page``: a MicroPython page just
    opened, used as its one sample."""
    samples: dict[str, list[dict[str, Any]]] = {"mpy": [], "py": [], "mixpanel": [], "mpy_modules": []}
    if mpy_page is not None:
        samples["mpy"].append(bb.startup(mpy_page))
    for _ in range(repeats):
        for kind in ("mpy", "py", "mixpanel", "mpy_modules"):
            if kind == "mpy" and mpy_page is not None:
                continue
            context = bb.new_context()
            try:
                # mpy_modules: a MicroPython page that times each module's import (its own pages)
                page = (bb.new_pyscript_page("mpy", context, "?modules=1") if kind == "mpy_modules"
                        else bb.new_pyscript_page(kind, context))
                samples[kind].append(bb.startup(page))
            finally:
                context.close()
    out: dict[str, Any] = {"repeats": repeats}
    for kind, name in (("mpy", "micropython"), ("py", "pyodide"), ("mixpanel", "mixpanel")):
        out[name] = {"median": _median(samples[kind]), "samples": samples[kind]}
    if samples["mpy_modules"]:
        out["micropython"]["slowest_modules"] = _slowest_modules(samples["mpy_modules"], top=10)
        out["micropython"]["modules_pages"] = len(samples["mpy_modules"])
    m, p = out["micropython"]["median"], out["pyodide"]["median"]
    out["ratio_nav_to_init_pyodide_to_mpy"] = round(p["nav_to_init_ms"] / m["nav_to_init_ms"], 1)
    out["goals"] = {"mpy_nav_to_init_ms": 1000.0, "mpy_import_to_init_ms": 30.0}
    return out


GOAL_IMPORT_TO_INIT_MS = 20.0  # issue 21 (30 in issue 12): `import empmix_web` + `init` in a fresh Pyodide page


def run(bb: BenchBrowser, repeats: int = 3, include_pyodide_size: bool = True, page: Any = None,
        pyscript: bool = True, mpy_page: Any = None) -> dict[str, Any]:
    """Median over ``repeats`` fresh pages with the bytecode wheel (what this site's Pyodide pages
    load), and, interleaved, as many with the plain wheel (``source``: its modules compiled on
    import, as on a Pyodide the bytecode was not built for), plus the sizes. With ``page`` (one
    that has not imported empmix_web yet) a single sample is taken on it instead. With
    ``pyscript`` the PyScript pages are measured too (:func:`run_pyscript`; ``mpy_page``: see
    there)."""
    samples: list[dict[str, Any]] = []
    source: list[dict[str, Any]] = []
    if page is not None:
        samples.append(_one(bb, 0, page))
    for i in range(repeats if page is None else 0):
        samples.append(_one(bb, 2 * i))
        source.append(_one(bb, 2 * i + 1, plain=True))
    out = {"repeats": len(samples), "median": _median(samples), "slowest_modules": _slowest_modules(samples),
           "samples": samples, "sizes": sizes(include_pyodide_size), "goal_import_to_init_ms": GOAL_IMPORT_TO_INIT_MS}
    if source:
        out["source"] = {"median": _median(source), "slowest_modules": _slowest_modules(source), "samples": source}
    if pyscript:
        out["pyscript"] = run_pyscript(bb, 1 if page is not None else repeats, mpy_page)
    return out

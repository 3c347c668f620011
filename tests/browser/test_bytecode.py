"""The Pyodide wheel (``tools/pyc_wheel.py``: bytecode without sources) in a real Pyodide page:
its ``__init__`` pyc and its bundle are what the page runs (nothing of empmix_web is compiled
there, and no module's source is installed), and tracebacks still name the file and line (not
the line's text). A Python with another cache tag or magic number stops at a clear ImportError that names
the plain wheel, and a page on another Pyodide loads the plain wheel in the first place
(``tests/pages/sdk.js`` compares its Python with ``empmix_web-latest.json``). The plain wheel,
from source, for comparison. Pyodide only: MicroPython pages load the plain wheel (they cannot
run CPython bytecode)."""

from __future__ import annotations

import ast
import hashlib
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import PAGE_READY_MS, ROOT
from tests.wire_server import WWW

# Page code: importlib calls SourceLoader.source_to_code only when no usable pyc exists, so
# ``compiled`` lists what was compiled from source while this watch is on
WATCH = """
import importlib._bootstrap_external as ext
compiled = []
to_code = ext.SourceLoader.source_to_code

def watched(self, data, path, *args, **kwargs):
    compiled.append(str(path))
    return to_code(self, data, path, *args, **kwargs)

ext.SourceLoader.source_to_code = watched
"""

# Run in the page: a fresh import of empmix_web (after dropping any earlier one) with
# SourceLoader.source_to_code watched (WATCH), then
# init, and track(123), whose TypeError is raised in validation.check_str. An ImportError of
# the import itself is reported (message and frames) instead.
IMPORT = (
    """
import hashlib, importlib.util, json, os, sys, traceback
import importlib._bootstrap_external as ext

for name in [m for m in sys.modules if m == "empmix_web" or m.startswith("empmix_web.")]:
    del sys.modules[name]
"""
    + WATCH
    + """
cache_tag, magic = sys.implementation.cache_tag, ext.MAGIC_NUMBER
sys.implementation.cache_tag = {cache_tag!r} or cache_tag
ext.MAGIC_NUMBER = bytes.fromhex({magic!r}) or magic
refused = frame = None
try:
    import empmix_web
    import empmix_web.validation
    empmix_web.EmpMixClient({token!r}, api_host="http://127.0.0.1:9", opt_out_by_default=True)
    try:
        empmix_web.EmpMix.track(123)
    except TypeError as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
except ImportError as exc:
    refused = [str(exc), [[f.filename, f.lineno, f.line] for f in traceback.extract_tb(exc.__traceback__)]]
finally:
    ext.SourceLoader.source_to_code = to_code
    sys.implementation.cache_tag, ext.MAGIC_NUMBER = cache_tag, magic

root = os.path.dirname(os.path.dirname(importlib.util.find_spec("empmix_web").origin))

def pyc(module):
    # what the module ran: its pyc (the package's __init__), or the bundle its finder loaded
    cached = module.__spec__.cached
    loader = module.__spec__.loader
    if getattr(loader, "bundle_of", None):
        cached = os.path.join(os.path.dirname(module.__spec__.origin), "_bytecode." + cache_tag + ".bin")
    if cached is None or not os.path.exists(cached):
        return None
    data = open(cached, "rb").read()
    return {{"path": os.path.relpath(cached, root), "sha256": hashlib.sha256(data).hexdigest(),
            "flags": int.from_bytes(data[4:8], "little"),
            "loader": getattr(loader, "__name__", type(loader).__name__),
            "source_installed": os.path.exists(module.__spec__.origin.removesuffix("c"))}}

modules = {{name: pyc(m) for name, m in sys.modules.items() if name.split(".")[0] == "empmix_web"}}
json.dumps({{
    "compiled": [os.path.relpath(p, root) for p in compiled if "empmix_web" in p],
    "modules": modules,
    "cache_tag": cache_tag,
    "refused": refused,
    "frame": [frame.filename, frame.lineno, frame.line] if frame else None,
    "file": os.path.relpath(empmix_web.validation.__file__, root) if not refused else None,
}})
"""
)


def _raise_line() -> tuple[int, str]:
    """Line number and text of the ``raise`` in ``validation.check_str`` (the repository's source)."""
    path = ROOT / "empmix_web" / "validation.py"
    source = path.read_text()
    func = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == "check_str")
    (raise_node,) = [n for n in ast.walk(func) if isinstance(n, ast.Raise)]
    return raise_node.lineno, source.splitlines()[raise_node.lineno - 1].strip()


def _latest() -> dict[str, str]:
    return dict(json.loads((WWW / "dist" / "empmix_web-latest.json").read_text()))


def _wheel_bytecode() -> dict[str, str]:
    """sha256 of each bytecode file (pyc, bundle) in the bytecode wheel the page installs."""
    with zipfile.ZipFile(WWW / _latest()["pyodide_wheel"].lstrip("/")) as wheel:
        return {n: hashlib.sha256(wheel.read(n)).hexdigest() for n in wheel.namelist() if n.endswith((".pyc", ".bin"))}


def _page(browser: Any, base_url: str, query: str = "", latest: dict[str, str] | None = None) -> Iterator[Any]:
    """The bare Pyodide page; ``latest``: what ``/dist/empmix_web-latest.json`` answers instead."""
    context = browser.new_context(base_url=base_url)
    if latest is not None:
        body = json.dumps(latest)
        context.route(
            "**/dist/empmix_web-latest.json", lambda route: route.fulfill(body=body, content_type="application/json")
        )
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/test/sdk.html" + query)
    try:
        page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
    except Exception as exc:
        context.close()
        raise AssertionError(f"the bare Pyodide page did not start: {errors}") from exc
    try:
        yield page
    finally:
        context.close()


@pytest.fixture(scope="module")
def bytecode_page(browser: Any, base_url: str) -> Iterator[Any]:
    yield from _page(browser, base_url)


@pytest.fixture(scope="module")
def plain_page(browser: Any, base_url: str) -> Iterator[Any]:
    yield from _page(browser, base_url, "?wheel=plain")


def fresh_import(page: Any, token: str, cache_tag: str = "", magic: str = "") -> dict[str, Any]:
    """Import empmix_web afresh in ``page`` and init a client (optionally posing as a Python with
    another cache tag or magic number); what was compiled, which pycs exist, the traceback frame."""
    code = IMPORT.format(token=token, cache_tag=cache_tag, magic=magic)
    return json.loads(page.evaluate("code => pyodide.runPythonAsync(code)", code))


def _sources(modules: dict[str, Any]) -> set[str]:
    """The source files of the imported modules, relative to site-packages."""
    return {"empmix_web/__init__.py" if n == "empmix_web" else n.replace(".", "/") + ".py" for n in modules}


def _assert_traceback_shows_the_source(result: dict[str, Any]) -> None:
    lineno, text = _raise_line()
    assert result["frame"][1:] == [lineno, text]
    assert result["frame"][0].endswith("/empmix_web/validation.py")
    assert result["file"] == "empmix_web/validation.py"


def test_the_page_runs_the_wheels_bytecode_without_sources(bytecode_page: Any, token: str) -> None:
    assert bytecode_page.evaluate("window.sdkWheel") == _latest()["pyodide_wheel"]
    result = fresh_import(bytecode_page, token)
    assert result["cache_tag"] == "cpython-314" and result["refused"] is None
    assert result["compiled"] == []  # not one module of empmix_web compiled in the page
    modules = result["modules"]
    assert "empmix_web.core" in modules and "empmix_web._bridge" in modules  # init imported the bridge
    shipped = _wheel_bytecode()
    bundle = "empmix_web/_bytecode.cpython-314.bin"
    assert set(shipped) == {"empmix_web/__pycache__/__init__.cpython-314.pyc", bundle}
    for name, ran in modules.items():
        assert ran is not None, f"{name}: no bytecode"
        assert shipped[ran["path"]] == ran["sha256"], name  # the wheel's file, not one written here
        if name == "empmix_web":  # the package's __init__.py is there: it holds the guard
            assert ran["loader"] == "SourceFileLoader" and ran["flags"] == 0b01  # its pyc, PEP 552 unchecked hash
        else:
            assert ran["path"] == bundle and ran["loader"] == "Bundle" and not ran["source_installed"], name
    # the file (its path in the wheel) and the line; the line's text is not installed
    lineno, _ = _raise_line()
    assert result["frame"] == ["empmix_web/validation.py", lineno, ""]
    assert result["file"] == "empmix_web/validation.py"  # where the source would be: not installed


@pytest.mark.parametrize(
    "pose", [{"cache_tag": "cpython-399"}, {"magic": "00000d0a"}], ids=["other cache tag", "other magic number"]
)
def test_another_python_is_told_to_use_the_plain_wheel(bytecode_page: Any, token: str, pose: dict[str, str]) -> None:
    result = fresh_import(bytecode_page, token, **pose)
    plain = _latest()["wheel"]
    message, frames = result["refused"]
    assert message.startswith("empmix_web 0.2.0: this install is the bytecode wheel for Pyodide ") and plain in message
    assert result["compiled"] == ["empmix_web/__init__.py"]  # the guard's source; no module past it
    assert set(result["modules"]) == set()  # the failed import left nothing behind
    filename, lineno, line = frames[-1]
    assert filename.endswith("/empmix_web/__init__.py") and line.startswith("raise ImportError(")


@pytest.mark.parametrize(
    "claim",
    [{"pyodide_cache_tag": "cpython-399"}, {"pyodide_magic": "00000d0a"}],
    ids=["other cache tag", "other magic number"],
)
def test_a_page_on_another_pyodide_loads_the_plain_wheel(
    browser: Any, base_url: str, token: str, claim: dict[str, str]
) -> None:
    # the bytecode claims another Python than this page's: as this page would be another Pyodide to it
    page = next(pages := _page(browser, base_url, latest={**_latest(), **claim}))
    try:
        assert page.evaluate("window.sdkWheel") == _latest()["wheel"]
        result = fresh_import(page, token)
        assert result["refused"] is None and set(result["compiled"]) == _sources(result["modules"])
        _assert_traceback_shows_the_source(result)
    finally:
        pages.close()


def test_the_plain_wheel_runs_from_source(plain_page: Any, token: str) -> None:
    result = fresh_import(plain_page, token)
    modules = result["modules"]
    assert set(modules) >= {"empmix_web", "empmix_web.core", "empmix_web._bridge"}
    assert all(pyc is None for pyc in modules.values())  # no bytecode shipped, none written
    assert set(result["compiled"]) == _sources(modules)
    _assert_traceback_shows_the_source(result)


# Run in the page: what the standard library's modules were loaded from, a module imported now
# (none of the SDK's or the page's imports: its own load), and a traceback from inside the stdlib.
STDLIB = (
    """
import json, sys, traceback
import importlib._bootstrap_external as ext

archive = next(p for p in sys.path if p.endswith(".zip"))
"""
    + WATCH
    + """
try:
    import fractions
finally:
    ext.SourceLoader.source_to_code = to_code
try:
    json.loads("{")
except ValueError as exc:
    frame = traceback.extract_tb(exc.__traceback__)[-1]
json.dumps({
    "archive": archive,
    "files": {n: m.__file__ for n, m in list(sys.modules.items())  # frozen ones are in the binary
              if str(getattr(m, "__file__", "")).startswith(archive) and m.__spec__.origin != "frozen"},
    "fractions": fractions.__file__,
    "compiled": compiled,
    "frame": [frame.filename, frame.lineno, frame.line],
})
"""
)


def test_the_standard_library_runs_from_bytecode_and_tracebacks_name_file_and_line(bytecode_page: Any) -> None:
    """``./build.sh setup`` precompiles Pyodide's ``python_stdlib.zip`` (``tools/stdlib_pyc.mjs``):
    no module is compiled in the page, and a traceback still names the file and line (not its text)."""
    result = json.loads(bytecode_page.evaluate("code => pyodide.runPythonAsync(code)", STDLIB))
    files = result["files"]
    assert len(files) > 20 and {"json", "asyncio", "fractions"} <= set(files)
    assert [f for f in files.values() if not f.endswith(".pyc")] == []
    assert result["fractions"] == result["archive"] + "/fractions.pyc" and result["compiled"] == []
    filename, lineno, line = result["frame"]
    assert filename == result["archive"] + "/json/decoder.py" and lineno > 0 and not line

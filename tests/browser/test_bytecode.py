"""The wheel with bytecode (``tools/pyc_wheel.py``) in a real Pyodide page: its ``.pyc`` files
are what the page runs (nothing of empmix_web is compiled there), tracebacks still name the
source file and line, and a Python with another cache tag or magic number falls back to the
sources. The plain wheel, from source, for comparison. Pyodide only: MicroPython pages load the
plain wheel (they cannot run CPython bytecode)."""

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

# Run in the page: a fresh import of empmix_web (after dropping any earlier one) with
# SourceLoader.source_to_code watched (importlib calls it only when no usable pyc exists), then
# init, and track(123), whose TypeError is raised in validation.check_str.
IMPORT = """
import hashlib, json, os, sys, traceback
import importlib._bootstrap_external as ext

for name in [m for m in sys.modules if m == "empmix_web" or m.startswith("empmix_web.")]:
    del sys.modules[name]
compiled = []
to_code = ext.SourceLoader.source_to_code

def watched(self, data, path, *args, **kwargs):
    compiled.append(str(path))
    return to_code(self, data, path, *args, **kwargs)

ext.SourceLoader.source_to_code = watched
cache_tag, magic = sys.implementation.cache_tag, ext.MAGIC_NUMBER
sys.implementation.cache_tag = {cache_tag!r} or cache_tag
ext.MAGIC_NUMBER = bytes.fromhex({magic!r}) or magic
try:
    import empmix_web
    import empmix_web.validation
    empmix_web.EmpMixClient({token!r}, api_host="http://127.0.0.1:9", opt_out_by_default=True)
    try:
        empmix_web.EmpMix.track(123)
        frame = None
    except TypeError as exc:
        frame = traceback.extract_tb(exc.__traceback__)[-1]
finally:
    ext.SourceLoader.source_to_code = to_code
    sys.implementation.cache_tag, ext.MAGIC_NUMBER = cache_tag, magic

root = os.path.dirname(os.path.dirname(empmix_web.__file__))

def pyc(module):
    cached = module.__spec__.cached
    if not os.path.exists(cached):
        return None
    data = open(cached, "rb").read()
    return {{"path": os.path.relpath(cached, root), "sha256": hashlib.sha256(data).hexdigest(),
            "flags": int.from_bytes(data[4:8], "little")}}

modules = {{name: pyc(m) for name, m in sys.modules.items() if name.split(".")[0] == "empmix_web"}}
json.dumps({{
    "compiled": [os.path.relpath(p, root) for p in compiled if "empmix_web" in p],
    "modules": modules,
    "cache_tag": cache_tag,
    "frame": [os.path.relpath(frame.filename, root), frame.lineno, frame.line] if frame else None,
    "co_filename": empmix_web.validation.check_str.__code__.co_filename,
    "file": empmix_web.validation.__file__,
}})
"""


def _raise_line() -> tuple[int, str]:
    """Line number and text of the ``raise`` in ``validation.check_str`` (the repository's source)."""
    path = ROOT / "empmix_web" / "validation.py"
    source = path.read_text()
    func = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == "check_str")
    (raise_node,) = [n for n in ast.walk(func) if isinstance(n, ast.Raise)]
    return raise_node.lineno, source.splitlines()[raise_node.lineno - 1].strip()


def _wheel_pycs() -> dict[str, str]:
    """sha256 of each pyc in the bytecode wheel the page installs."""
    latest = json.loads((WWW / "dist" / "empmix_web-latest.json").read_text())
    with zipfile.ZipFile(WWW / latest["pyodide_wheel"].lstrip("/")) as wheel:
        return {n: hashlib.sha256(wheel.read(n)).hexdigest() for n in wheel.namelist() if n.endswith(".pyc")}


def _page(browser: Any, base_url: str, query: str = "") -> Iterator[Any]:
    context = browser.new_context(base_url=base_url)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/test/sdk.html" + query)
    try:
        page.wait_for_function("window.sdkReady === true", timeout=PAGE_READY_MS)
    except Exception as exc:
        raise AssertionError(f"the bare Pyodide page did not start: {errors}") from exc
    yield page
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


def _assert_traceback_names_the_source(result: dict[str, Any]) -> None:
    lineno, text = _raise_line()
    assert result["frame"] == ["empmix_web/validation.py", lineno, text]
    assert result["co_filename"] == result["file"]  # importlib's path, whatever the pyc was compiled with


def test_the_page_runs_the_wheels_bytecode(bytecode_page: Any, token: str) -> None:
    result = fresh_import(bytecode_page, token)
    assert result["cache_tag"] == "cpython-314"
    assert result["compiled"] == []  # not one module of empmix_web compiled in the page
    modules = result["modules"]
    assert "empmix_web.core" in modules and "empmix_web._bridge" in modules  # init imported the bridge
    shipped = _wheel_pycs()
    for name, pyc in modules.items():
        assert pyc is not None, f"{name}: no pyc"
        assert pyc["flags"] == 0b01, name  # PEP 552 unchecked hash
        assert shipped[pyc["path"]] == pyc["sha256"], name  # the wheel's file, not one written here
    _assert_traceback_names_the_source(result)


@pytest.mark.parametrize(
    "pose", [{"cache_tag": "cpython-399"}, {"magic": "00000d0a"}], ids=["other cache tag", "other magic number"]
)
def test_another_python_falls_back_to_the_sources(bytecode_page: Any, token: str, pose: dict[str, str]) -> None:
    result = fresh_import(bytecode_page, token, **pose)
    assert "empmix_web._bridge" in result["modules"]
    assert set(result["compiled"]) == _sources(result["modules"])  # every module, from its source
    _assert_traceback_names_the_source(result)


def test_the_plain_wheel_runs_from_source(plain_page: Any, token: str) -> None:
    result = fresh_import(plain_page, token)
    modules = result["modules"]
    assert set(modules) >= {"empmix_web", "empmix_web.core", "empmix_web._bridge"}
    assert all(pyc is None for pyc in modules.values())  # no bytecode shipped, none written
    assert set(result["compiled"]) == _sources(modules)
    _assert_traceback_names_the_source(result)

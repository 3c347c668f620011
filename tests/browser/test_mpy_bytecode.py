"""The MicroPython wheel (``tools/mpy_wheel.py``) in a real PyScript ``type="mpy"`` page: its
``.mpy`` files are what the page runs (no module of empmix_web but the package's ``__init__`` is
compiled there), tracebacks still name the source file and line, and a MicroPython of another
bytecode format falls back to the sources in the same wheel. MicroPython only (Pyodide's
bytecode wheel: test_bytecode.py)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import open_sdk_page
from tests.harness import run_in_page
from tests.unit.test_mpy_wheel import _validation_raise_line
from tests.wire_server import WWW

# Run in the page: a fresh import of empmix_web (after dropping any earlier one; with ``bad``
# the probe's format byte is rewritten first, in the page's own file system), then init and
# track(123), whose TypeError is raised in validation.check_str.
IMPORT = """
import io, sys
for name in [m for m in sys.modules if m == "empmix_web" or m.startswith("empmix_web.")]:
    del sys.modules[name]
if {bad}:
    with open("empmix_web/_mpy/_probe.mpy", "rb") as f:
        probe = f.read()
    with open("empmix_web/_mpy/_probe.mpy", "wb") as f:
        f.write(b"M\\x05" + probe[2:])
import empmix_web
client = empmix_web.EmpMixClient({token!r}, api_host="http://127.0.0.1:9", opt_out_by_default=True)
try:
    client.track(123)
    frame = None
except TypeError as exc:
    out = io.StringIO()
    sys.print_exception(exc, out)
    frame = out.getvalue().splitlines()[-2].strip()
files = {{}}
for name, module in sys.modules.items():
    if name.startswith("empmix_web"):
        files[name] = module.__file__
result = {{"path": empmix_web.__path__, "files": files, "frame": frame, "mpy": sys.implementation._mpy}}
"""


@pytest.fixture(scope="module")
def mpy_context(browser: Any, base_url: str) -> Iterator[Any]:
    context = browser.new_context(base_url=base_url)
    yield context
    context.close()


def _fresh_import(context: Any, base_url: str, token: str, bad: bool = False) -> dict[str, Any]:
    page = open_sdk_page(context, base_url, "mpy")
    try:
        return dict(run_in_page(page, IMPORT.format(token=token, bad=bad), "result"))
    finally:
        page.close()


def _wheel_modules() -> set[str]:
    latest = json.loads((WWW / "dist" / "empmix_web-latest.json").read_text())
    with zipfile.ZipFile(WWW / latest["micropython_wheel"].lstrip("/")) as wheel:
        return {n.split("/")[-1][:-4] for n in wheel.namelist() if n.startswith("empmix_web/_mpy/")}


def test_the_page_runs_the_mpy_files_and_tracebacks_name_the_source_line(mpy_context: Any, base_url: str) -> None:
    got = _fresh_import(mpy_context, base_url, "mpy_bytecode")
    assert got["mpy"] & 0xFF == 6  # the page's MicroPython loads .mpy format 6 (1.27: 774 = 6.3)
    assert got["path"] == "empmix_web/_mpy"
    files = got["files"]
    assert files.pop("empmix_web") == "empmix_web/__init__.py"  # the one source: the switch
    assert files and all(path == f"empmix_web/_mpy/{name.split('.', 1)[1]}.mpy" for name, path in files.items())
    assert {name.split(".", 1)[1] for name in files} <= _wheel_modules()
    assert got["frame"] == f'File "empmix_web/validation.py", line {_validation_raise_line()}, in check_str'


def test_another_bytecode_format_falls_back_to_the_sources(mpy_context: Any, base_url: str) -> None:
    got = _fresh_import(mpy_context, base_url, "mpy_fallback", bad=True)
    assert got["path"] == "empmix_web"
    files = got["files"]
    assert files.pop("empmix_web._probe", None) is None  # the probe did not load
    assert files and all(path.endswith(".py") and "/_mpy/" not in path for path in files.values())
    assert got["frame"] == f'File "empmix_web/validation.py", line {_validation_raise_line()}, in check_str'

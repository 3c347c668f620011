"""The standard library the Pyodide pages import from (``tools/stdlib_pyc.mjs``, run by
``./build.sh setup``): npm's ``python_stdlib.zip`` precompiled by the pinned Pyodide. Each
module's source became its bytecode for that Python (its magic number, unchecked-hash flags);
nothing else changed. In a page: ``tests/browser/test_bytecode.py``."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "node_modules" / "pyodide" / "python_stdlib.zip"
SERVED = ROOT / "build" / "www" / "pyodide" / "python_stdlib.zip"
LATEST = ROOT / "build" / "www" / "dist" / "empmix_web-latest.json"

pytestmark = pytest.mark.skipif(
    not SHIPPED.exists() or not SERVED.exists() or not LATEST.exists(), reason="run ./build.sh setup"
)


def test_every_module_is_bytecode_for_the_pages_python_and_the_rest_is_unchanged() -> None:
    magic = bytes.fromhex(json.loads(LATEST.read_text())["pyodide_magic"])  # the pinned Pyodide's
    with zipfile.ZipFile(SHIPPED) as shipped, zipfile.ZipFile(SERVED) as served:
        sources = {n for n in shipped.namelist() if n.endswith(".py")}
        assert len(sources) > 500
        names = set(served.namelist())
        assert names == (set(shipped.namelist()) - sources) | {n + "c" for n in sources}
        for name in sorted(names):
            data = served.read(name)
            if name.endswith(".pyc"):
                assert data[:4] == magic, name
                assert int.from_bytes(data[4:8], "little") == 0b01, name  # hash-based, unchecked
            else:
                assert data == shipped.read(name), name

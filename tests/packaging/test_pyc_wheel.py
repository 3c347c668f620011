"""tools/pyc_wheel.py: the wheel with bytecode is the built wheel plus one checked pyc per source."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import marshal
import py_compile
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from tools import pyc_wheel

ROOT = Path(__file__).resolve().parent.parent.parent
WWW = ROOT / "build" / "www"
SOURCES = {"pkg/__init__.py": b"from .mod import f\n", "pkg/mod.py": b'def f():\n    """Doc."""\n    return 1\n'}


def _wheel(path: Path) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in SOURCES.items():
            z.writestr(name, data)
        z.writestr("pkg/py.typed", b"")
        z.writestr("pkg-1.0.dist-info/METADATA", b"Metadata-Version: 2.4\nName: pkg\nVersion: 1.0\n")
        z.writestr("pkg-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\nTag: py3-none-any\n")
        z.writestr("pkg-1.0.dist-info/RECORD", b"")
    return path


def host_compiler(
    mode: py_compile.PycInvalidationMode = py_compile.PycInvalidationMode.UNCHECKED_HASH,
    magic: bytes = importlib.util.MAGIC_NUMBER,
) -> pyc_wheel.Compiler:
    """Compiles with this CPython (the real tool uses Pyodide's, see the last tests)."""

    def compile_here(files: dict[str, bytes]) -> tuple[dict[str, str], dict[str, bytes]]:
        out: dict[str, bytes] = {}
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                source, cfile = Path(tmp) / name, Path(tmp) / "out.pyc"
                source.parent.mkdir(parents=True, exist_ok=True)
                source.write_bytes(data)
                py_compile.compile(str(source), str(cfile), doraise=True, invalidation_mode=mode)
                out[pyc_wheel.pyc_name(name, sys.implementation.cache_tag)] = cfile.read_bytes()
        return {"cache_tag": sys.implementation.cache_tag, "magic": magic.hex(), "python": "host"}, out

    return compile_here


def test_each_source_gets_its_pyc_and_record_lists_every_file(tmp_path: Path) -> None:
    target = tmp_path / "out" / "pkg-1.0-py3-none-any.whl"
    pyc_wheel.write_wheel(_wheel(tmp_path / "pkg-1.0-py3-none-any.whl"), target, host_compiler())
    tag = sys.implementation.cache_tag
    with zipfile.ZipFile(target) as z:
        names = z.namelist()
        assert names == [
            "pkg/__init__.py",
            f"pkg/__pycache__/__init__.{tag}.pyc",
            "pkg/mod.py",
            f"pkg/__pycache__/mod.{tag}.pyc",
            "pkg/py.typed",
            "pkg-1.0.dist-info/METADATA",
            "pkg-1.0.dist-info/WHEEL",
            "pkg-1.0.dist-info/RECORD",
        ]
        for name, data in SOURCES.items():
            assert z.read(name) == data  # the sources unchanged: tracebacks show their lines
        assert z.read("pkg-1.0.dist-info/WHEEL") == b"Wheel-Version: 1.0\nTag: py3-none-any\n"
        record = z.read("pkg-1.0.dist-info/RECORD").decode().splitlines()
        assert record[-1] == "pkg-1.0.dist-info/RECORD,,"
        for line in record[:-1]:
            name, digest, size = line.split(",")
            data = z.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}" and int(size) == len(data), name
        assert [line.split(",")[0] for line in record] == names
        code = marshal.loads(z.read(f"pkg/__pycache__/mod.{tag}.pyc")[16:])
    namespace: dict[str, object] = {}
    exec(code, namespace)  # the shipped pyc is that source's bytecode
    assert namespace["f"]() == 1  # type: ignore[operator]


@pytest.mark.parametrize(
    "compiler, problem",
    [
        (host_compiler(mode=py_compile.PycInvalidationMode.TIMESTAMP), "not an unchecked-hash pyc"),
        (host_compiler(mode=py_compile.PycInvalidationMode.CHECKED_HASH), "not an unchecked-hash pyc"),
        (host_compiler(magic=b"\x00\x00\r\n"), "has magic"),
    ],
    ids=["timestamp", "checked hash", "foreign magic"],
)
def test_pycs_that_a_page_would_not_use_as_shipped_are_refused(
    tmp_path: Path, compiler: pyc_wheel.Compiler, problem: str
) -> None:
    target = tmp_path / "out" / "pkg-1.0-py3-none-any.whl"
    with pytest.raises(SystemExit, match=problem):
        pyc_wheel.write_wheel(_wheel(tmp_path / "pkg-1.0-py3-none-any.whl"), target, compiler)
    assert not target.exists()


def test_a_missing_pyc_is_refused(tmp_path: Path) -> None:
    def lossy(files: dict[str, bytes]) -> tuple[dict[str, str], dict[str, bytes]]:
        report, pycs = host_compiler()(files)
        pycs.pop(next(iter(pycs)))
        return report, pycs

    with pytest.raises(SystemExit, match="do not match the sources"):
        pyc_wheel.write_wheel(_wheel(tmp_path / "pkg-1.0-py3-none-any.whl"), tmp_path / "o.whl", lossy)


@pytest.mark.skipif(
    shutil.which("node") is None or not (pyc_wheel.PYODIDE / "pyodide.mjs").exists(),
    reason="needs Node.js and npm's pyodide (node_modules/pyodide): run ./build.sh setup",
)
def test_the_pinned_pyodide_compiles_for_its_python_314(tmp_path: Path) -> None:
    """The real compiler: Pyodide's CPython 3.14, in Node.js (a few seconds)."""
    report, pycs = pyc_wheel.pyodide_compiler(pyc_wheel.PYODIDE)(SOURCES)
    assert report["python"].startswith("3.14.") and report["cache_tag"] == "cpython-314"
    assert report["purelib"] == "/lib/python3.14/site-packages"
    assert set(pycs) == {"pkg/__pycache__/__init__.cpython-314.pyc", "pkg/__pycache__/mod.cpython-314.pyc"}
    pyc_wheel.check_pycs(SOURCES, report, pycs)  # Pyodide's magic, unchecked-hash flags


built = pytest.mark.skipif(
    not (WWW / "dist" / "empmix_web-latest.json").exists(), reason="build/www missing: run ./build.sh setup"
)


@built
def test_the_built_bytecode_wheel_is_the_plain_wheel_plus_pycs() -> None:
    latest = json.loads((WWW / "dist" / "empmix_web-latest.json").read_text())
    assert latest["pyodide_wheel"] == "/dist/pyodide/" + latest["wheel"].rsplit("/", 1)[1]
    with (
        zipfile.ZipFile(WWW / latest["wheel"].lstrip("/")) as plain,
        zipfile.ZipFile(WWW / latest["pyodide_wheel"].lstrip("/")) as bytecode,
    ):
        extra = set(bytecode.namelist()) - set(plain.namelist())
        sources = pyc_wheel.sources(plain)
        assert extra == {pyc_wheel.pyc_name(name, latest["pyodide_cache_tag"]) for name in sources}
        for name in plain.namelist():
            if not name.endswith("RECORD"):
                assert bytecode.read(name) == plain.read(name), name  # sources taken from the built wheel
        assert len({bytecode.read(name)[:8] for name in extra}) == 1  # one magic number, unchecked hash

"""tools/pyc_wheel.py: the wheel with bytecode is the built wheel plus one checked pyc per source."""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.util
import json
import marshal
import sys
import zipfile
from pathlib import Path

import pytest

from tools import pyc_compile, pyc_wheel

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
    flags: int = pyc_wheel.FLAGS_UNCHECKED_HASH, magic: bytes = importlib.util.MAGIC_NUMBER
) -> pyc_wheel.Compiler:
    """Compiles with this CPython and ``tools/pyc_compile.py``, as the real tool does inside
    Pyodide (see the last tests); ``flags``, ``magic``: what the pycs' headers say instead."""

    def compile_here(files: dict[str, bytes], kept: dict[str, bytes]) -> tuple[dict[str, str], dict[str, bytes]]:
        pycs = pyc_compile.compile_files(files, kept)
        return pyc_compile.report(), {n: magic + flags.to_bytes(4, "little") + d[8:] for n, d in pycs.items()}

    return compile_here


def test_each_module_becomes_bytecode_and_record_lists_every_file(tmp_path: Path) -> None:
    target = tmp_path / "out" / "pkg-1.0-py3-none-any.whl"
    pyc_wheel.write_wheel(_wheel(tmp_path / "pkg-1.0-py3-none-any.whl"), target, host_compiler(), "0.0.1")
    tag = sys.implementation.cache_tag
    with zipfile.ZipFile(target) as z:
        names = z.namelist()
        assert names == [
            "pkg/__init__.py",  # the one source: the guard
            f"pkg/__pycache__/__init__.{tag}.pyc",
            "pkg/mod.pyc",  # sourceless; py.typed left out
            "pkg-1.0.dist-info/METADATA",
            "pkg-1.0.dist-info/WHEEL",
            "pkg-1.0.dist-info/RECORD",
        ]
        guard = pyc_wheel.guard_statement("pkg-1.0-py3-none-any.whl", "0.0.1")
        assert z.read("pkg/__init__.py").decode() == guard + "; " + SOURCES["pkg/__init__.py"].decode()
        assert z.read("pkg-1.0.dist-info/METADATA") == b"Metadata-Version: 2.4\nName: pkg\nVersion: 1.0\n"
        assert z.read("pkg-1.0.dist-info/WHEEL") == b"Wheel-Version: 1.0\nTag: py3-none-any\n"
        record = z.read("pkg-1.0.dist-info/RECORD").decode().splitlines()
        assert record[-1] == "pkg-1.0.dist-info/RECORD,,"
        for line in record[:-1]:
            name, digest, size = line.split(",")
            data = z.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert digest == f"sha256={expected}" and int(size) == len(data), name
        assert [line.split(",")[0] for line in record] == names
        code = marshal.loads(z.read("pkg/mod.pyc")[16:])
    assert code.co_filename == "pkg/mod.py"  # the file tracebacks name: its path in the wheel
    namespace: dict[str, object] = {}
    exec(code, namespace)  # the shipped pyc is that source's bytecode
    assert namespace["f"]() == 1  # type: ignore[operator]


def _installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The Pyodide wheel of ``_wheel``, built for this CPython and unpacked as an install would."""
    target = tmp_path / "out" / "pkg-1.0-py3-none-any.whl"
    pyc_wheel.write_wheel(_wheel(tmp_path / "pkg-1.0-py3-none-any.whl"), target, host_compiler(), "0.0.1")
    site = tmp_path / "site"
    zipfile.ZipFile(target).extractall(site)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    for name in [m for m in sys.modules if m == "pkg" or m.startswith("pkg.")]:
        monkeypatch.delitem(sys.modules, name)
    return site


def test_the_python_it_was_built_for_imports_the_bytecode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = _installed(tmp_path, monkeypatch)
    pkg = importlib.import_module("pkg")
    try:
        assert pkg.f() == 1  # the __init__ pyc ran (not the guard), and imported the sourceless mod
        assert type(sys.modules["pkg.mod"].__loader__).__name__ == "SourcelessFileLoader"
        assert not (site / "pkg" / "mod.py").exists()
    finally:
        for name in ("pkg", "pkg.mod"):
            sys.modules.pop(name, None)


def test_another_python_gets_an_import_error_naming_the_plain_wheel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib._bootstrap_external as bootstrap

    _installed(tmp_path, monkeypatch)
    monkeypatch.setattr(bootstrap, "MAGIC_NUMBER", b"\x00\x00\r\n")  # as another CPython would read it
    with pytest.raises(ImportError, match=r"install the plain wheel instead \(/dist/pkg-1\.0-py3-none-any\.whl"):
        importlib.import_module("pkg")
    assert "pkg" not in sys.modules and "pkg.mod" not in sys.modules


@pytest.mark.parametrize(
    "source, expected",
    [
        ("\n\nimport a\n", "GUARD\n\nimport a\n"),  # a blank line (a stripped docstring's)
        ("from __future__ import annotations\n\nimport a\n", "from __future__ import annotations\nGUARD\nimport a\n"),
        ('"""Doc\n\nmore."""\nimport a\n', '"""Doc\n\nmore."""\nGUARD; import a\n'),  # not inside the docstring
        ("import a\n", "GUARD; import a\n"),
        ("", "GUARD\n"),
    ],
    ids=["blank line", "after __future__", "docstring", "no blank line", "empty"],
)
def test_the_guard_goes_where_every_other_line_keeps_its_number(source: str, expected: str) -> None:
    assert pyc_wheel.guarded(source, "GUARD") == expected


def test_annotations_are_left_out_of_the_bytecode() -> None:
    source = (
        b"def f(x: int = 1) -> str:\n    y: int = x\n    return y\nclass C:\n    a: int\n    b: 'list[int]' = [2]\n"
    )
    namespace: dict[str, object] = {}
    exec(pyc_compile.compile_module(source, "m.py"), namespace)
    f, cls = namespace["f"], namespace["C"]
    assert f(3) == 3 and f.__annotations__ == {}  # type: ignore[operator, attr-defined]
    assert cls.b == [2] and not hasattr(cls, "a") and cls.__annotations__ == {}  # type: ignore[attr-defined]
    assert namespace.get("__annotations__", {}) == {}


@pytest.mark.parametrize(
    "compiler, problem",
    [
        (host_compiler(flags=0b00), "not an unchecked-hash pyc"),
        (host_compiler(flags=0b11), "not an unchecked-hash pyc"),
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
    def lossy(files: dict[str, bytes], kept: dict[str, bytes]) -> tuple[dict[str, str], dict[str, bytes]]:
        report, pycs = host_compiler()(files, kept)
        pycs.pop(next(iter(pycs)))
        return report, pycs

    with pytest.raises(SystemExit, match="do not match the sources"):
        pyc_wheel.write_wheel(_wheel(tmp_path / "pkg-1.0-py3-none-any.whl"), tmp_path / "o.whl", lossy)


def test_the_pinned_pyodide_compiles_for_its_python_314(tmp_path: Path) -> None:
    """The real compiler: Pyodide's CPython 3.14, in Node.js (a few seconds)."""
    report, pycs = pyc_wheel.pyodide_compiler(pyc_wheel.PYODIDE)(SOURCES, {"pkg/__init__.py": b"GUARD"})
    assert report["python"].startswith("3.14.") and report["cache_tag"] == "cpython-314"
    assert report["purelib"] == "/lib/python3.14/site-packages" and report["debug_ranges"] == "False"
    assert set(pycs) == {"pkg/__pycache__/__init__.cpython-314.pyc", "pkg/mod.pyc"}
    pyc_wheel.check_pycs(SOURCES, report, pycs)  # Pyodide's magic, unchecked-hash flags


built = pytest.mark.skipif(
    not (WWW / "dist" / "empmix_web-latest.json").exists(), reason="build/www missing: run ./build.sh setup"
)


@built
def test_the_built_pyodide_wheel_is_the_plain_wheels_modules_as_bytecode() -> None:
    latest = json.loads((WWW / "dist" / "empmix_web-latest.json").read_text())
    assert latest["pyodide_wheel"] == "/dist/pyodide/" + latest["wheel"].rsplit("/", 1)[1]
    tag, magic = latest["pyodide_cache_tag"], bytes.fromhex(latest["pyodide_magic"])
    with (
        zipfile.ZipFile(WWW / latest["wheel"].lstrip("/")) as plain,
        zipfile.ZipFile(WWW / latest["pyodide_wheel"].lstrip("/")) as bytecode,
    ):
        sources = pyc_wheel.sources(plain)
        pycs = {pyc_wheel.pyc_name(name, tag, pyc_wheel.is_kept(name)) for name in sources}
        left_out = {n for n in plain.namelist() if n.rpartition("/")[2] in pyc_wheel.LEFT_OUT}
        assert left_out == {"empmix_web/py.typed", "empmix_web/boot.js"}
        assert set(bytecode.namelist()) == (set(plain.namelist()) - set(sources) - left_out) | pycs | {
            "empmix_web/__init__.py"
        }
        assert [n for n in bytecode.namelist() if n.endswith(".py")] == ["empmix_web/__init__.py"]
        init = bytecode.read("empmix_web/__init__.py").decode()
        assert init.startswith("raise ImportError(") and latest["wheel"] in init.splitlines()[0]
        assert init.splitlines()[1:] == plain.read("empmix_web/__init__.py").decode().splitlines()[1:]
        for name in set(plain.namelist()) & set(bytecode.namelist()) - {"empmix_web/__init__.py"}:
            if name.endswith("METADATA"):
                assert plain.read(name).startswith(bytecode.read(name)[:-1]), name  # the header fields
            elif not name.endswith("RECORD"):
                assert bytecode.read(name) == plain.read(name), name
        assert {bytecode.read(name)[:8] for name in pycs} == {magic + b"\x01\x00\x00\x00"}  # unchecked hash

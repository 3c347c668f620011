"""tools/pyc_wheel.py: the Pyodide wheel is the built wheel's package as its guarded
``__init__`` (source and pyc) and one checked bundle of the other modules' bytecode, which
``__init__`` runs (``empmix_web/__init__.py``'s ``_use_bundle``, the same code here)."""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.util
import inspect
import json
import marshal
import shutil
import subprocess
import sys
import traceback
import zipfile
from pathlib import Path
from typing import Any

import pytest

import empmix_web
from tests.toy_wheel import toy_wheel
from tools import pyc_compile, pyc_wheel

ROOT = Path(__file__).resolve().parent.parent.parent
WWW = ROOT / "build" / "www"
INIT = f"import sys\n\n{inspect.getsource(empmix_web._use_bundle)}\n_use_bundle()\nfrom .mod import f, g\n"
MOD = b'def f():\n    """Doc."""\n    return 1\n\n\ndef g():\n    raise ValueError("from g")\n'
SOURCES = {"pkg/__init__.py": INIT.encode(), "pkg/mod.py": MOD}
TAG = sys.implementation.cache_tag


def host_compiler(
    flags: int = pyc_wheel.FLAGS_UNCHECKED_HASH, magic: bytes = importlib.util.MAGIC_NUMBER, drop: str = ""
) -> pyc_wheel.Compiler:
    """Compiles with this CPython and ``tools/pyc_compile.py``, as the real tool does inside
    Pyodide (see the last tests); ``flags``, ``magic``: what the pyc's header and the bundle say
    instead; ``drop``: a module left out of the bundle."""

    def compile_here(files: dict[str, bytes], kept: dict[str, bytes]) -> tuple[dict[str, Any], dict[str, bytes]]:
        out = pyc_compile.compile_files(files, kept)
        bundle = pyc_compile.bundle_path("pkg", TAG)
        codes = marshal.loads(out[bundle][4:])
        codes.pop(drop, None)
        out[bundle] = magic + marshal.dumps(codes)
        init = pyc_compile.pyc_path("pkg/__init__.py", TAG)
        out[init] = magic + flags.to_bytes(4, "little") + out[init][8:]
        return {**pyc_compile.report(), "bundled": sorted(codes)}, out

    return compile_here


def _built(tmp_path: Path, compiler: pyc_wheel.Compiler | None = None) -> Path:
    target = tmp_path / "out" / "pkg-1.0-py3-none-any.whl"
    pyc_wheel.write_wheel(toy_wheel(tmp_path, SOURCES), target, compiler or host_compiler(), "0.0.1")
    return target


def test_the_package_becomes_its_guarded_init_and_one_bundle_and_record_lists_every_file(tmp_path: Path) -> None:
    target = _built(tmp_path)
    with zipfile.ZipFile(target) as z:
        names = z.namelist()
        assert names == [
            "pkg/__init__.py",  # the one source: the guard
            f"pkg/__pycache__/__init__.{TAG}.pyc",
            f"pkg/_bytecode.{TAG}.bin",  # every other module; py.typed left out
            "pkg-1.0.dist-info/METADATA",
            "pkg-1.0.dist-info/WHEEL",
            "pkg-1.0.dist-info/RECORD",
        ]
        guard = pyc_wheel.guard_statement("pkg-1.0-py3-none-any.whl", "0.0.1")
        assert z.read("pkg/__init__.py").decode() == guard + "; " + INIT
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
        bundle = z.read(f"pkg/_bytecode.{TAG}.bin")
    assert bundle[:4] == importlib.util.MAGIC_NUMBER
    codes = marshal.loads(bundle[4:])
    assert list(codes) == ["pkg.mod"] and codes["pkg.mod"].co_filename == "pkg/mod.py"  # the file tracebacks name
    namespace: dict[str, object] = {}
    exec(codes["pkg.mod"], namespace)  # the bundle holds that source's bytecode
    assert namespace["f"]() == 1  # type: ignore[operator]


def _installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The Pyodide wheel of the toy wheel, built for this CPython and unpacked as an install would,
    with ``SourceLoader.source_to_code`` (importlib calls it only when no usable pyc exists)
    recording what it compiles in ``compiled``."""
    import importlib._bootstrap_external as bootstrap

    site = tmp_path / "site"
    zipfile.ZipFile(_built(tmp_path)).extractall(site)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    for name in [m for m in sys.modules if m == "pkg" or m.startswith("pkg.")]:
        monkeypatch.delitem(sys.modules, name)
    to_code = bootstrap.SourceLoader.source_to_code

    def watched(self: Any, data: bytes, path: str, *args: Any, **kwargs: Any) -> Any:
        compiled.append(Path(path).relative_to(site).as_posix())
        return to_code(self, data, path, *args, **kwargs)

    compiled.clear()
    monkeypatch.setattr(bootstrap.SourceLoader, "source_to_code", watched)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))  # the bundle's finder goes with the test
    return site


compiled: list[str] = []


def test_the_python_it_was_built_for_runs_the_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = _installed(tmp_path, monkeypatch)
    pkg = importlib.import_module("pkg")
    try:
        assert pkg.f() == 1  # the __init__ pyc ran (not the guard), and imported mod from the bundle
        assert compiled == []  # nothing compiled from source
        mod = sys.modules["pkg.mod"]
        assert getattr(mod.__loader__, "bundle_of", None) == "pkg" and mod.__file__ == str(site / "pkg" / "mod.py")
        assert not (site / "pkg" / "mod.py").exists()
        with pytest.raises(ValueError, match="from g") as raised:
            pkg.g()
        frame = traceback.extract_tb(raised.value.__traceback__)[-1]
        assert (frame.filename, frame.lineno, frame.name) == ("pkg/mod.py", 7, "g")  # file and line, not the text
        importlib.reload(pkg)  # a second import of the package leaves one finder
        assert len([f for f in sys.meta_path if getattr(f, "bundle_of", None) == "pkg"]) == 1
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
    assert compiled == ["pkg/__init__.py"]  # the guard's source, and nothing past it
    assert "pkg" not in sys.modules and "pkg.mod" not in sys.modules


def test_a_bundle_of_another_python_is_refused_at_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = _installed(tmp_path, monkeypatch)
    bundle = site / "pkg" / f"_bytecode.{TAG}.bin"
    bundle.write_bytes(b"\x00\x00\r\n" + bundle.read_bytes()[4:])
    with pytest.raises(ImportError, match="the bytecode bundle is not this Python's; install the plain wheel"):
        importlib.import_module("pkg")
    assert "pkg" not in sys.modules and "pkg.mod" not in sys.modules


def test_the_plain_wheel_has_no_bundle_and_runs_its_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zipfile.ZipFile(toy_wheel(tmp_path, SOURCES)).extractall(tmp_path / "plain")
    monkeypatch.syspath_prepend(str(tmp_path / "plain"))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    try:
        assert importlib.import_module("pkg").f() == 1
        assert type(sys.modules["pkg.mod"].__loader__).__name__ == "SourceFileLoader"
    finally:
        for name in ("pkg", "pkg.mod"):
            sys.modules.pop(name, None)


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
        (host_compiler(drop="pkg.mod"), r"the bundle holds \[\], not the modules \['pkg.mod'\]"),
    ],
    ids=["timestamp", "checked hash", "foreign magic", "module missing from the bundle"],
)
def test_bytecode_that_a_page_would_not_use_as_shipped_is_refused(
    tmp_path: Path, compiler: pyc_wheel.Compiler, problem: str
) -> None:
    target = tmp_path / "out" / "pkg-1.0-py3-none-any.whl"
    with pytest.raises(SystemExit, match=problem):
        pyc_wheel.write_wheel(toy_wheel(tmp_path, SOURCES), target, compiler)
    assert not target.exists() and not target.with_name(target.name + ".part").exists()


def test_a_missing_file_or_a_subpackage_is_refused(tmp_path: Path) -> None:
    def lossy(files: dict[str, bytes], kept: dict[str, bytes]) -> tuple[dict[str, Any], dict[str, bytes]]:
        report, out = host_compiler()(files, kept)
        out.pop(pyc_compile.bundle_path("pkg", TAG))
        return report, out

    with pytest.raises(SystemExit, match="does not match the sources"):
        pyc_wheel.write_wheel(toy_wheel(tmp_path, SOURCES), tmp_path / "o.whl", lossy)
    nested = {**SOURCES, "pkg/sub/__init__.py": b"", "pkg/sub/deep.py": b"X = 1\n"}
    with pytest.raises(SystemExit, match="not one flat package"):
        pyc_wheel.write_wheel(toy_wheel(tmp_path, nested), tmp_path / "o.whl", host_compiler())


needs_pyodide = pytest.mark.skipif(
    shutil.which("node") is None or not (pyc_wheel.PYODIDE / "pyodide.mjs").exists(),
    reason="needs Node.js and npm's pyodide (node_modules/pyodide): run ./build.sh setup",
)


@needs_pyodide
def test_the_pinned_pyodide_compiles_for_its_python_314(tmp_path: Path) -> None:
    """The real compiler: Pyodide's CPython 3.14, in Node.js (a few seconds)."""
    report, out = pyc_wheel.pyodide_compiler(pyc_wheel.PYODIDE)(SOURCES, {"pkg/__init__.py": b"GUARD"})
    assert report["python"].startswith("3.14.") and report["cache_tag"] == "cpython-314"
    assert report["purelib"] == "/lib/python3.14/site-packages" and report["debug_ranges"] == "False"
    assert set(out) == {"pkg/__pycache__/__init__.cpython-314.pyc", "pkg/_bytecode.cpython-314.bin"}
    assert report["bundled"] == ["pkg.mod"]
    pyc_wheel.check_bytecode(SOURCES, report, out)  # Pyodide's magic, unchecked-hash flags


built = pytest.mark.skipif(
    not (WWW / "dist" / "empmix_web-latest.json").exists(), reason="build/www missing: run ./build.sh setup"
)


def _latest() -> dict[str, str]:
    return dict(json.loads((WWW / "dist" / "empmix_web-latest.json").read_text()))


@built
def test_the_built_pyodide_wheel_is_the_plain_wheels_modules_as_bytecode() -> None:
    latest = _latest()
    assert latest["pyodide_wheel"] == "/dist/pyodide/" + latest["wheel"].rsplit("/", 1)[1]
    tag, magic = latest["pyodide_cache_tag"], bytes.fromhex(latest["pyodide_magic"])
    with (
        zipfile.ZipFile(WWW / latest["wheel"].lstrip("/")) as plain,
        zipfile.ZipFile(WWW / latest["pyodide_wheel"].lstrip("/")) as bytecode,
    ):
        sources = pyc_wheel.sources(plain)
        init_pyc, bundle = pyc_wheel.bytecode_names(sources, tag)
        assert bundle == f"empmix_web/{pyc_compile.BUNDLE}.{tag}.bin"  # where empmix_web._use_bundle looks
        assert '"/_bytecode." + sys.implementation.cache_tag + ".bin"' in inspect.getsource(empmix_web._use_bundle)
        left_out = {n for n in plain.namelist() if n.rpartition("/")[2] in pyc_wheel.LEFT_OUT}
        assert left_out == {"empmix_web/py.typed", "empmix_web/boot.js"}
        assert set(bytecode.namelist()) == (set(plain.namelist()) - set(sources) - left_out) | {
            "empmix_web/__init__.py",
            init_pyc,
            bundle,
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
        assert bytecode.read(init_pyc)[:8] == magic + b"\x01\x00\x00\x00"  # unchecked hash
        assert bytecode.read(bundle)[:4] == magic


@built
@needs_pyodide
def test_nodes_pyodide_runs_the_built_wheel_from_its_bundle(tmp_path: Path) -> None:
    """The built Pyodide wheel in the pinned Pyodide (Node.js): it imports and inits, nothing of
    empmix_web is compiled from source, every module but the package came from the bundle, and a
    traceback names the file and line; posing as another Python, the guard refuses it."""
    wheel = WWW / _latest()["pyodide_wheel"].lstrip("/")
    ran = subprocess.run(
        ["node", str(ROOT / "tests/packaging/pyodide_import.mjs"), str(pyc_wheel.PYODIDE), str(wheel)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    result = json.loads(ran.stdout.strip().splitlines()[-1])
    own, posed = result["own"], result["posed"]
    assert own["refused"] is None and own["compiled"] == []
    assert own["loaders"] == {"empmix_web": "SourceFileLoader"} | {
        name: "Bundle" for name in own["loaders"] if name != "empmix_web"
    }
    assert {"empmix_web.client", "empmix_web.core", "empmix_web._bridge"} <= set(own["loaders"])
    assert own["frame"][0] == "empmix_web/validation.py" and own["frame"][1:] == [_raise_line(), ""]
    assert "install the plain wheel instead" in posed["refused"] and posed["compiled"] == ["empmix_web/__init__.py"]


def _raise_line() -> int:
    """The line of the ``raise`` in ``validation.check_str`` (the repository's source)."""
    import ast

    source = (ROOT / "empmix_web" / "validation.py").read_text()
    func = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == "check_str")
    (raise_node,) = [n for n in ast.walk(func) if isinstance(n, ast.Raise)]
    return raise_node.lineno

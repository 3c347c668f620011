"""The Pyodide wheel: the built wheel's modules as bytecode without their sources, compiled by
the pinned Pyodide, as Pyodide ships its own packages.

A page spends most of ``import empmix_web`` compiling the sources (Pyodide runs with
``sys.dont_write_bytecode``, so every page compiles them again). This makes a second wheel, for
the Pyodide that ``./build.sh setup`` lays out, from the built (plain) wheel
(``tools/pyc_compile.py``, run inside Pyodide-in-Node.js by ``tools/compile_pyc.mjs``: the
page's own magic number; no annotations, no column ranges):

* every module but the package's ``__init__`` goes into one bundle,
  ``pkg/_bytecode.<cache_tag>.bin`` (this Python's magic number, then one marshal dump of all
  their code objects), deflated in the wheel as one stream: a third smaller than a sourceless
  pyc per module, each deflated on its own. ``pkg/__init__.py`` (``_use_bundle``) opens it and
  installs a meta-path finder that runs its modules. Tracebacks name the file and line
  (``pkg/mod.py``, line N) but cannot show the line's text;
* the package's ``__init__.py`` stays as source, with one line added on a line it leaves blank
  (so every other line keeps its number): ``raise ImportError(...)``, naming the plain wheel.
  Its bytecode, compiled without that line, sits in ``__pycache__/__init__.<cache_tag>.pyc``
  (PEP 552 unchecked hash): the Pyodide it was built for runs that and never the guard; any
  other Python (another cache tag or magic number, MicroPython) finds no usable pyc, compiles
  the source, and stops there with that ImportError instead of failing deep inside the package;
* left out: what only other Pythons or the server use (``py.typed``; ``boot.js``, which the
  page loads with a ``<script>`` and the collector serves from its own install), and the long
  description in ``METADATA`` (this wheel is never on an index). ``RECORD`` lists the files.

It has the plain wheel's file name (Pyodide's ``loadPackage`` does not accept build tags), so it
lives in its own folder: ``/dist/pyodide/``; ``empmix_web-latest.json`` names it as
``pyodide_wheel`` next to ``wheel``, with the ``pyodide_cache_tag`` and ``pyodide_magic`` it
needs: a page loads it only when its Pyodide has both, else the plain wheel. It is not for an
index (the index serves the plain, version-independent wheel).

    python tools/pyc_wheel.py build/www/dist/empmix_web-0.2.0-py3-none-any.whl build/www/dist/pyodide \\
        [--pyodide node_modules/pyodide] [--latest build/www/dist/empmix_web-latest.json]
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

if __package__:  # imported from the repository's root (the tests)
    from tools import pyc_compile, wheel_rewrite
else:  # run as a script: tools/ is sys.path[0]
    import pyc_compile  # type: ignore[no-redef]
    import wheel_rewrite  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
COMPILER = ROOT / "tools" / "compile_pyc.mjs"
PYODIDE = ROOT / "node_modules" / "pyodide"
FLAGS_UNCHECKED_HASH = pyc_compile.FLAGS_UNCHECKED_HASH
URL_FOLDER = "/dist/pyodide/"
LEFT_OUT = ("py.typed", "boot.js")  # file names the Pyodide wheel does not carry

# (sources {path in wheel: bytes}, kept {path: text shipped}) -> (compiler report, {path: bytes}):
# the report names the Python (python, cache_tag, magic, purelib) and the modules the bundle holds
Compiler = Callable[[dict[str, bytes], dict[str, bytes]], tuple[dict[str, Any], dict[str, bytes]]]


def sources(wheel: zipfile.ZipFile) -> dict[str, bytes]:
    """The wheel's Python sources (outside ``.dist-info``), exactly as the wheel holds them."""
    return {
        name: wheel.read(name)
        for name in wheel.namelist()
        if name.endswith(".py") and ".dist-info/" not in name and ".data/" not in name
    }


def pyodide_compiler(pyodide_dir: Path) -> Compiler:
    """Compile with the CPython of ``pyodide_dir`` (npm's pyodide), run by Node.js."""

    def compile_with_pyodide(
        files: dict[str, bytes], kept: dict[str, bytes]
    ) -> tuple[dict[str, Any], dict[str, bytes]]:
        with tempfile.TemporaryDirectory(prefix="pyc-wheel-") as tmp:
            tree = Path(tmp) / "tree"
            for name, data in files.items():
                (tree / name).parent.mkdir(parents=True, exist_ok=True)
                (tree / name).write_bytes(data)
            kept_json = Path(tmp) / "kept.json"
            kept_json.write_text(json.dumps({name: text.decode("utf-8") for name, text in kept.items()}))
            run = subprocess.run(
                ["node", str(COMPILER), str(pyodide_dir), str(tree), str(kept_json)],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            if run.returncode != 0:
                raise SystemExit(f"pyc_wheel: {COMPILER.name} failed:\n{run.stderr[-4000:]}")
            report = json.loads(run.stdout.strip().splitlines()[-1])
            return report, {name: (tree / name).read_bytes() for name in report.pop("pycs")}

    return compile_with_pyodide


def bytecode_names(files: dict[str, bytes], cache_tag: str) -> list[str]:
    """What the Pyodide wheel holds for the sources ``files``: the kept ``__init__.py``'s pyc and
    the package's bundle."""
    (package,) = {name.partition("/")[0] for name in files}
    return [pyc_compile.pyc_path(f"{package}/__init__.py", cache_tag), pyc_compile.bundle_path(package, cache_tag)]


def check_layout(files: dict[str, bytes]) -> None:
    """One package, its modules at its top (the bundle's finder knows no subpackages)."""
    if any(name.count("/") != 1 for name in files) or not any(is_kept(name) for name in files):
        raise SystemExit(f"pyc_wheel: not one flat package with an __init__.py: {sorted(files)}")


def is_kept(name: str) -> bool:
    """A package's ``__init__.py`` stays as source (the guard); every other module does not."""
    return name.rpartition("/")[2] == "__init__.py"


def guard_statement(wheel_name: str, pyodide: str) -> str:
    """The line a kept ``__init__.py`` raises when its bytecode is not this Python's."""
    version = wheel_name.split("-")[1]
    message = (
        f"{wheel_name.split('-')[0]} {version}: this install is the bytecode wheel for Pyodide {pyodide} "
        f"(no sources), which this Python cannot run; install the plain wheel instead "
        f"(/dist/{wheel_name}, or: pip install {wheel_name.split('-')[0].replace('_', '-')}=={version})"
    )
    return f"raise ImportError({message!r})"


def guarded(source: str, guard: str) -> str:
    """``source`` with ``guard`` (one statement) as the first thing it runs after its
    ``from __future__`` imports: on the first blank line before the next statement (every line
    keeps its number), else in front of that statement, on its line."""
    lines = io.StringIO(source).readlines()
    body = ast.parse(source).body
    futures = [s for s in body if isinstance(s, ast.ImportFrom) and s.module == "__future__"]
    rest = [s for s in body if s not in futures and not _is_docstring(s, body)]
    start = max((s.end_lineno or s.lineno for s in futures), default=0)
    if futures and rest and rest[0].lineno == futures[-1].end_lineno:
        raise SystemExit("pyc_wheel: a statement shares its line with the last __future__ import")
    end = rest[0].lineno if rest else len(lines) + 1
    for i in range(start, end - 1):
        if not lines[i].strip() and not _inside_docstring(i + 1, body):
            lines[i] = guard + "\n"
            return "".join(lines)
    if not rest:
        return source + ("" if not source or source.endswith("\n") else "\n") + guard + "\n"
    lines[end - 1] = guard + "; " + lines[end - 1]
    return "".join(lines)


def _is_docstring(stmt: ast.stmt, body: list[ast.stmt]) -> bool:
    return stmt is body[0] and isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)


def _inside_docstring(lineno: int, body: list[ast.stmt]) -> bool:
    first = body[0] if body else None
    return first is not None and _is_docstring(first, body) and first.lineno <= lineno <= (first.end_lineno or 0)


def check_bytecode(files: dict[str, bytes], report: dict[str, Any], out: dict[str, bytes]) -> None:
    """The ``__init__`` pyc (the compiler's magic number, unchecked-hash flags) and the bundle
    (the magic number, every other module)."""
    magic = bytes.fromhex(report["magic"])
    init, bundle = expected = bytecode_names(files, report["cache_tag"])
    if sorted(out) != sorted(expected):
        raise SystemExit(f"pyc_wheel: bytecode {sorted(set(out) ^ set(expected))} does not match the sources")
    for name in expected:
        if out[name][:4] != magic:
            raise SystemExit(f"pyc_wheel: {name} has magic {out[name][:4].hex()}, not {magic.hex()}")
    if int.from_bytes(out[init][4:8], "little") != FLAGS_UNCHECKED_HASH:
        raise SystemExit(f"pyc_wheel: {init} is not an unchecked-hash pyc (PEP 552)")
    modules = sorted(pyc_compile.module_name(name) for name in files if not is_kept(name))
    if report["bundled"] != modules:
        raise SystemExit(f"pyc_wheel: the bundle holds {report['bundled']}, not the modules {modules}")


def short_metadata(metadata: bytes) -> bytes:
    """``METADATA``'s header fields without the long description (its body, and the field that
    names its content type)."""
    head = metadata.decode("utf-8").split("\n\n", 1)[0].rstrip("\n")
    fields = [line for line in head.split("\n") if not line.startswith("Description-Content-Type:")]
    return ("\n".join(fields) + "\n").encode("utf-8")


def write_wheel(source: Path, target: Path, compile_sources: Compiler, pyodide: str = "?") -> dict[str, Any]:
    """``target``: ``source``'s entries with the guarded ``__init__.py`` and its pyc, then the
    bundle, where the package's first module was, in place of the modules, and a new ``RECORD``.
    ``pyodide``: the Pyodide version the guard names. Returns the compiler's report (Python
    version, cache tag, magic number, the bundled modules)."""
    with zipfile.ZipFile(source) as wheel:
        files = sources(wheel)
        check_layout(files)
        guard = guard_statement(source.name, pyodide)
        kept = {
            name: guarded(data.decode("utf-8"), guard).encode("utf-8") for name, data in files.items() if is_kept(name)
        }
        report, out = compile_sources(files, kept)
        check_bytecode(files, report, out)
        (init_source,) = kept
        init_pyc, bundle = bytecode_names(files, report["cache_tag"])

        def entries() -> Iterator[tuple[zipfile.ZipInfo, bytes]]:
            placed = False
            for info in wheel.infolist():
                name = info.filename
                if name.rpartition("/")[2] in LEFT_OUT:
                    continue
                if name in files:
                    if not placed:
                        placed = True
                        yield wheel_rewrite.entry(init_source, info), kept[init_source]
                        yield wheel_rewrite.entry(init_pyc, info), out[init_pyc]
                        yield wheel_rewrite.entry(bundle, info), out[bundle]
                elif name.endswith(".dist-info/METADATA"):
                    yield wheel_rewrite.entry(name, info), short_metadata(wheel.read(info))
                else:
                    yield wheel_rewrite.entry(name, info), wheel.read(info)

        wheel_rewrite.write(wheel, target, entries())
    return report


def pyodide_version(pyodide_dir: Path) -> str:
    """npm's pyodide version (``package.json``)."""
    return str(json.loads((pyodide_dir / "package.json").read_text())["version"])


def update_latest(latest: Path, wheel: Path, report: dict[str, Any]) -> None:
    """Name the bytecode wheel in ``empmix_web-latest.json`` with what a Python needs to run it
    (``wheel`` keeps naming the plain one)."""
    data = json.loads(latest.read_text())
    data.update({"pyodide_wheel": URL_FOLDER + wheel.name, "pyodide_cache_tag": report["cache_tag"],
                 "pyodide_magic": report["magic"]})  # fmt: skip
    latest.write_text(json.dumps(data) + "\n")


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("wheel", type=Path, help="the built (plain) wheel")
    p.add_argument("outdir", type=Path, help="folder for the bytecode wheel (same file name)")
    p.add_argument("--pyodide", type=Path, default=PYODIDE, help="npm's pyodide folder (default node_modules/pyodide)")
    p.add_argument("--latest", type=Path, default=None, help="empmix_web-latest.json to add pyodide_wheel to")
    args = p.parse_args(argv)
    target = args.outdir / args.wheel.name
    report = write_wheel(args.wheel, target, pyodide_compiler(args.pyodide), pyodide_version(args.pyodide))
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

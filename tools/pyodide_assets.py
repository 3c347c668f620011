"""Complete an npm Pyodide distribution for offline use.

npm's ``pyodide`` package ships the runtime and ``pyodide-lock.json`` but no wheels. PyScript's
``packages`` config needs micropip, so this script puts the PyPI wheels of the named lock packages
(and their lock dependencies) next to the lock, under the lock's file names, and rewrites each
present file's ``sha256`` in the lock: Pyodide checks it with subresource integrity, and the lock
hashes Pyodide's own rebuilds, not PyPI's files.

Usage: python tools/pyodide_assets.py PYODIDE_DIR PACKAGE [PACKAGE ...]
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def _wanted(lock: dict, names: list[str]) -> list[str]:
    todo, seen = list(names), []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        if name not in lock["packages"]:
            raise SystemExit(f"{name!r} is not in pyodide-lock.json")
        seen.append(name)
        todo.extend(lock["packages"][name].get("depends", []))
    return seen


def _fetch(entry: dict, dest: Path, py_version: str) -> None:
    target = dest / entry["file_name"]
    if target.exists():
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check",
             "--no-deps", "--only-binary=:all:", "--python-version", py_version,
             "-d", tmp, f"{entry['name']}=={entry['version']}"],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        target.write_bytes(wheel.read_bytes())


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        raise SystemExit(__doc__)
    root = Path(argv[0])
    lock_path = root / "pyodide-lock.json"
    lock = json.loads(lock_path.read_text())
    py_version = ".".join(lock["info"]["python"].split(".")[:2])
    for name in _wanted(lock, argv[1:]):
        _fetch(lock["packages"][name], root, py_version)
    for entry in lock["packages"].values():
        path = root / entry["file_name"]
        if path.exists():
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    lock_path.write_text(json.dumps(lock))


if __name__ == "__main__":
    main(sys.argv[1:])

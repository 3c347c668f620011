"""The shared code stays in the subset MicroPython runs (issue 13).

Two checks: a lint over the package and the files pages run under ``type="mpy"`` (constructs
MicroPython rejects or runs differently), and the real MicroPython wasm (the pinned npm package
PyScript loads) running ``mpy_checks.py`` in Node.js, compared with the same checks on CPython.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.conftest import run

ROOT = Path(__file__).resolve().parents[2]
SHARED = sorted((ROOT / "empmix_web").glob("*.py")) + [
    ROOT / "tests/pages/harness.py", ROOT / "tests/pages/page_runner.py", ROOT / "tests/pages/docs_flows.py",
    ROOT / "site/app.py", ROOT / "bench/page/bench_page.py"]

MISSING_MODULES = {"dataclasses", "enum", "urllib", "contextlib", "traceback", "importlib", "weakref",
                   "secrets", "uuid", "re", "email", "typing", "__future__", "datetime", "functools"}
MISSING_METHODS = {"fullmatch", "isascii", "translate", "removeprefix", "removesuffix", "casefold",
                   "getrandbits", "urandom", "perf_counter", "create_future", "ensure_future",
                   "call_soon", "call_later", "to_py", "bit_length", "get_running_loop", "JSONEncoder"}
MISSING_NAMES = {"TimeoutError", "ConnectionError", "FileNotFoundError", "PermissionError", "RecursionError",
                 "UnicodeDecodeError", "ExceptionGroup", "vars", "Counter"}
# where a CPython-only call is guarded by an interpreter check or a try/except
ALLOWED = {"compat.py": {"JSONEncoder", "get_running_loop"}, "_bridge.py": {"urandom"},
           "__init__.py": {"importlib"},  # _use_bundle runs on CPython only
           "page_runner.py": {"traceback"}, "bench_page.py": {"perf_counter"}}


def _guarded_imports(tree: ast.Module) -> set[int]:
    """Lines of imports inside ``try: ... except ImportError``."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                isinstance(h.type, ast.Name) and h.type.id == "ImportError" for h in node.handlers):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    lines.add(inner.lineno)
    return lines


def problems(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    guarded = _guarded_imports(tree)
    allowed = ALLOWED.get(path.name, set())
    found: list[str] = []

    def bad(node: ast.AST, what: str) -> None:
        found.append(f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', 0)}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and node.lineno not in guarded:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.split(".")[0] in MISSING_MODULES and name.split(".")[0] not in allowed:
                    bad(node, f"import {name} (absent in MicroPython; guard it with try/except ImportError)")
        elif isinstance(node, ast.Dict) and None in node.keys:
            bad(node, "{**a} is a SyntaxError in MicroPython")
        elif isinstance(node, ast.Match):
            bad(node, "match is a SyntaxError in MicroPython")
        elif isinstance(node, ast.arguments) and node.posonlyargs:
            bad(node, "positional-only parameters are a SyntaxError in MicroPython")
        elif isinstance(node, ast.Attribute) and node.attr in MISSING_METHODS and node.attr not in allowed:
            bad(node, f".{node.attr} does not exist in MicroPython")
        elif isinstance(node, ast.Name) and node.id in MISSING_NAMES:
            bad(node, f"{node.id} does not exist in MicroPython")
        elif isinstance(node, ast.ClassDef) and any(
                isinstance(d, ast.Name) and d.id == "dataclass" for d in node.decorator_list):
            bad(node, "dataclasses do not exist in MicroPython")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "dumps" \
                and path.name != "compat.py" and any(k.arg != "separators" for k in node.keywords):
            bad(node, "json.dumps takes only separators= in MicroPython (use compat.dumps)")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("zip", "int") \
                and node.keywords:
            bad(node, f"{node.func.id}() takes no keyword arguments in MicroPython")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "deque" \
                and len(node.args) < 2:
            bad(node, "deque() needs both arguments in MicroPython")
    return found


@pytest.mark.parametrize("path", SHARED, ids=lambda p: str(p.relative_to(ROOT)))
def test_shared_code_keeps_to_the_micropython_subset(path):
    assert problems(path) == []


def test_the_lint_catches_what_micropython_rejects(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text("from dataclasses import dataclass\nimport re\nx = {**{}}\ny = 'a'.isascii()\n"
                      "z = int('1', base=2)\nraise TimeoutError\n")
    assert len(problems_at(sample, tmp_path)) == 6


def problems_at(path: Path, root: Path) -> list[str]:
    global ROOT
    saved, ROOT = ROOT, root
    try:
        return problems(path)
    finally:
        ROOT = saved


def _checks_on_cpython() -> dict[str, object]:
    source = (ROOT / "tests/unit/mpy_checks.py").read_text().replace("\nawait main()\n", "\n")
    namespace: dict[str, object] = {"__name__": "mpy_checks"}
    exec(compile(source, "mpy_checks.py", "exec"), namespace)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        run(namespace["main"])  # type: ignore[arg-type]
    return json.loads(out.getvalue().split("RESULT ", 1)[1])


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js runs the MicroPython wasm")
def test_the_sdk_runs_on_real_micropython_as_on_cpython():
    ran = subprocess.run(["node", str(ROOT / "tools/mpy_run.mjs"), str(ROOT / "tests/unit/mpy_checks.py"),
                          str(ROOT / "empmix_web")], capture_output=True, text=True, timeout=60)
    assert "RESULT " in ran.stdout, ran.stdout + ran.stderr
    on_mpy = json.loads(ran.stdout.split("RESULT ", 1)[1])
    on_cpython = _checks_on_cpython()
    assert on_mpy.pop("micropython") is True and on_cpython.pop("micropython") is False
    assert on_mpy == on_cpython
    assert on_mpy["hot"] == [1, "h2", 2, True, []]
    assert on_mpy["duration"] == ["ValueError", True, True, True]
    assert on_mpy["flushed"] is True and on_mpy["ops"] == ["$set_once", "$set", "$unset", "$set_once", "$add"]
    assert on_mpy["left_after_reset"] is False
    assert on_mpy["insert_ids"] == [True, False, False, True, False, False, False, False, True, False, False]

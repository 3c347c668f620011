"""Compile a package's sources to the bytecode the Pyodide wheel ships: runs inside the pinned
Pyodide (``tools/compile_pyc.mjs`` executes this file there), and under any CPython in the tests.

Each module becomes bytecode without its source, as Pyodide ships its own packages: a
*sourceless* ``pkg/mod.pyc`` beside where ``mod.py`` would be (importlib's
``SourcelessFileLoader``), except the modules kept as source (the package's ``__init__.py``,
which carries the guard ``tools/pyc_wheel.py`` writes into it): theirs goes to
``pkg/__pycache__/<module>.<cache_tag>.pyc``. Every pyc is PEP 552 unchecked-hash (an install
gives the files new mtimes, which timestamp pycs would be checked against); the hash is that of
the file shipped beside it, so ``--check-hash-based-pycs always`` accepts it too.

What the bytecode leaves out, none of which the SDK reads at run time:

* the annotations of functions, modules and classes (Python 3.14 compiles each annotated
  function's into an ``__annotate__`` function: about a quarter of the bytecode);
* the column ranges of each instruction (compiled under ``-X no_debug_ranges``, which
  ``compile_pyc.mjs`` passes): a traceback draws its ``^^^`` markers under the source line, and
  there is no source line to draw them under. File names and line numbers stay.

``co_filename`` is the source's path inside the wheel (``pkg/mod.py``): importlib does not fix a
sourceless module's up at import, and that path is true wherever the wheel was unpacked
(site-packages by ``loadPackage`` or micropip, the working folder by PyScript's ``files``).
"""

from __future__ import annotations

import ast
import importlib.util
import marshal
import os
import sys
import sysconfig
from types import CodeType

FLAGS_UNCHECKED_HASH = 0b01  # PEP 552 flags word: hash-based, do not check the source


class _DropAnnotations(ast.NodeTransformer):
    """Remove what Python would evaluate or store as annotations: parameter and return
    annotations, and ``x: T`` at module and class level (``x: T = v`` keeps ``x = v``).
    Annotated names inside a function body are left alone (never stored, and they make a
    name local)."""

    def __init__(self) -> None:
        self.depth = 0  # >0 inside a function body

    def visit_arg(self, node: ast.arg) -> ast.arg:
        node.annotation = None
        return node

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> ast.AST:
        node.returns = None
        node.args = self.visit(node.args)
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        self.depth += 1
        node.body = [self.visit(stmt) for stmt in node.body]
        self.depth -= 1
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if self.depth:
            return node
        if node.value is None:
            return ast.copy_location(ast.Pass(), node)
        return ast.copy_location(ast.Assign(targets=[node.target], value=self.visit(node.value)), node)


def compile_module(source: bytes, dfile: str) -> CodeType:
    """``source``'s module code, annotations left out, as if its file were ``dfile``."""
    tree = ast.fix_missing_locations(_DropAnnotations().visit(ast.parse(source, dfile)))
    code: CodeType = compile(tree, dfile, "exec", dont_inherit=True)
    return code


def pyc_bytes(code: CodeType, shipped: bytes | None) -> bytes:
    """The pyc of ``code``: unchecked-hash header (the hash of ``shipped``, the source that sits
    beside it, or of nothing for a sourceless pyc) and the marshalled code."""
    digest = importlib.util.source_hash(shipped or b"")
    header = importlib.util.MAGIC_NUMBER + FLAGS_UNCHECKED_HASH.to_bytes(4, "little") + digest
    return header + marshal.dumps(code)


def pyc_path(source: str, kept: bool, cache_tag: str) -> str:
    """Where ``pkg/mod.py``'s bytecode goes: ``pkg/mod.pyc`` (sourceless), or for a module kept as
    source ``pkg/__pycache__/mod.<cache_tag>.pyc``."""
    if not kept:
        return source + "c"
    folder, _, name = source.rpartition("/")
    return f"{folder}/__pycache__/{name[:-3]}.{cache_tag}.pyc".lstrip("/")


def compile_files(files: dict[str, bytes], kept: dict[str, bytes]) -> dict[str, bytes]:
    """Bytecode for each of ``files`` (path in the wheel: source), by its :func:`pyc_path`;
    ``kept``: the modules shipped as source, with the text that is shipped (it may differ from
    the code compiled, as the guarded ``__init__.py`` does)."""
    tag = sys.implementation.cache_tag
    out = {}
    for name, source in sorted(files.items()):
        code = compile_module(source, name)
        out[pyc_path(name, name in kept, tag)] = pyc_bytes(code, kept.get(name))
    return out


def report() -> dict[str, str]:
    """This Python as the pycs record it: version, cache tag, magic number, site-packages."""
    purelib = "/" + os.path.normpath(sysconfig.get_paths()["purelib"]).lstrip("/")  # not "//lib/..."
    return {
        "python": sys.version.split()[0],
        "cache_tag": sys.implementation.cache_tag,
        "magic": importlib.util.MAGIC_NUMBER.hex(),
        "purelib": purelib,
        "debug_ranges": str(_debug_ranges()),
    }


def _debug_ranges() -> bool:
    """Whether this interpreter records column ranges (``-X no_debug_ranges`` turns them off)."""
    positions = compile("x", "<probe>", "eval").co_positions()
    return any(start is not None for _, _, start, _ in positions)

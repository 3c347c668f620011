"""Compile a package's sources to the bytecode the Pyodide wheel ships: runs inside the pinned
Pyodide (``tools/compile_pyc.mjs`` executes this file there), and under any CPython in the tests.

The modules become bytecode without their sources, as Pyodide ships its own packages, in two
kinds of file:

* the *bundle* ``pkg/_bytecode.<cache_tag>.bin``: every module of the package but its
  ``__init__`` in one ``marshal.dumps`` of ``{"pkg.mod": code}``, after this Python's magic
  number (4 bytes). One dump shares the names and constants the modules have in common, and the
  wheel deflates it as one stream, which finds what repeats from module to module (a zip
  deflates each file on its own). ``pkg/__init__.py`` finds it and installs the finder that
  runs it (``_use_bundle``);
* the package's ``__init__``, kept as source (it carries the guard ``tools/pyc_wheel.py`` writes
  into it): its pyc goes to ``pkg/__pycache__/__init__.<cache_tag>.pyc``, PEP 552 unchecked-hash
  (an install gives the files new mtimes, which timestamp pycs would be checked against); the
  hash is that of the file shipped beside it, so ``--check-hash-based-pycs always`` accepts it
  too.

What the bytecode leaves out, none of which the SDK reads at run time:

* the annotations of functions, modules and classes (Python 3.14 compiles each annotated
  function's into an ``__annotate__`` function: about a quarter of the bytecode);
* the column ranges of each instruction (compiled under ``-X no_debug_ranges``, which
  ``compile_pyc.mjs`` passes): a traceback draws its ``^^^`` markers under the source line, and
  there is no source line to draw them under. File names and line numbers stay, and so do the
  qualified names (``__qualname__``, what a function's ``repr`` shows) and the exception tables
  (``try`` needs them).

``co_filename`` is the source's path inside the wheel (``pkg/mod.py``): importlib does not fix a
bundled or sourceless module's up at import, and that path is true wherever the wheel was
unpacked (site-packages by ``loadPackage`` or micropip, the working folder by PyScript's
``files``).
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


def pyc_bytes(code: CodeType, shipped: bytes) -> bytes:
    """The pyc of ``code``: unchecked-hash header (the hash of ``shipped``, the source that sits
    beside it) and the marshalled code."""
    digest = importlib.util.source_hash(shipped)
    header = importlib.util.MAGIC_NUMBER + FLAGS_UNCHECKED_HASH.to_bytes(4, "little") + digest
    return header + marshal.dumps(code)


BUNDLE = "_bytecode"  # pkg/_bytecode.<cache_tag>.bin; empmix_web/__init__.py (_use_bundle) looks for it


def pyc_path(source: str, cache_tag: str) -> str:
    """Where the bytecode of ``pkg/__init__.py`` (kept as source) goes:
    ``pkg/__pycache__/__init__.<cache_tag>.pyc``."""
    folder, _, name = source.rpartition("/")
    return f"{folder}/__pycache__/{name[:-3]}.{cache_tag}.pyc".lstrip("/")


def bundle_path(package: str, cache_tag: str) -> str:
    """``pkg/_bytecode.<cache_tag>.bin``."""
    return f"{package}/{BUNDLE}.{cache_tag}.bin"


def module_name(source: str) -> str:
    """``pkg/mod.py`` -> ``pkg.mod``."""
    return source[:-3].replace("/", ".")


def bundle_bytes(codes: dict[str, CodeType]) -> bytes:
    """The bundle: this Python's magic number, then one marshal dump of ``{module: code}``."""
    return importlib.util.MAGIC_NUMBER + marshal.dumps(dict(sorted(codes.items())))


def compile_files(files: dict[str, bytes], kept: dict[str, bytes]) -> dict[str, bytes]:
    """The bytecode of ``files`` (path in the wheel: source), one package's: a pyc for each of
    ``kept`` (the modules shipped as source, with the text that is shipped: it may differ from
    the code compiled, as the guarded ``__init__.py`` does), and the bundle of all the others."""
    tag = sys.implementation.cache_tag
    out, bundled = {}, {}
    for name, source in sorted(files.items()):
        code = compile_module(source, name)
        if name in kept:
            out[pyc_path(name, tag)] = pyc_bytes(code, kept[name])
        else:
            bundled[module_name(name)] = code
    packages = {name.partition("/")[0] for name in files}
    if len(packages) != 1:
        raise ValueError(f"one package at a time, not {sorted(packages)}")
    out[bundle_path(packages.pop(), tag)] = bundle_bytes(bundled)
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

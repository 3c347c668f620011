"""Drive Python in a test page under either interpreter (``tests/pages/harness.py``).

A snippet is parsed here, on CPython, and wrapped as ``async def __t(): global ...; <snippet>;
return json.dumps(<expr>)`` with ``ast``: top-level ``await`` works, and names the snippet binds
stay page globals for later snippets, under Pyodide and MicroPython alike.
"""

from __future__ import annotations

import ast
import json
from typing import Any

INTERPRETERS = ("py", "mpy")


class PageError(AssertionError):
    """A snippet raised inside the page."""


def _bound_names(nodes: list[ast.stmt]) -> set[str]:
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
        for child in ast.iter_child_nodes(node):
            visit(child)

    for node in nodes:
        visit(node)
    return names


def wrap(code: str, expr: str = "None") -> str:
    body = ast.parse(code).body
    names = sorted(_bound_names(body))
    ret = [ast.Return(ast.parse(f"json.dumps({expr})", mode="eval").body)]
    stmts: list[ast.stmt] = ([ast.Global(names)] if names else []) + body + ret
    fn = ast.AsyncFunctionDef(name="__t", args=ast.arguments([], [], None, [], [], None, []),
                              body=stmts, decorator_list=[], returns=None)
    module = ast.Module(body=[fn], type_ignores=[])
    return ast.unparse(ast.fix_missing_locations(module))


def run_in_page(page: Any, code: str, expr: str = "None") -> Any:
    reply = json.loads(page.evaluate("code => window.runPy(code)", wrap(code, expr)))
    if "error" in reply:
        raise PageError(f"{reply['error']}\n{reply['trace']}")
    return json.loads(reply["ok"])

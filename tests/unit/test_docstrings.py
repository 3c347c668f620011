"""Issue 20, 13: every public definition of the SDK has a docstring, in one style (Markdown prose
rendered by mkdocstrings: code in double backticks, cross-references as
``[`name`][empmix_web.Class.name]``, no Sphinx roles), and the API reference lists no internal
parameter.

``_bridge.JsBrowser``'s methods are checked too: the ``browser.Browser`` protocol says what each
one does, and each of its methods says how it does it in the page (which JavaScript it calls).
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from empmix_web import EmpMixClient

PACKAGE = Path(__file__).resolve().parents[2] / "empmix_web"
MODULES = sorted(PACKAGE.glob("*.py"))
ROLE = re.compile(r":(meth|class|func|data|attr|mod|obj|exc|ref):`")


def public_definitions(tree: ast.Module) -> list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef]:
    found: list[ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef] = []

    def walk(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not node.name.startswith(
                "_"
            ):
                found.append(node)
                if isinstance(node, ast.ClassDef):
                    walk(node.body)

    walk(tree.body)
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_every_public_definition_has_a_docstring_without_sphinx_roles(path: Path) -> None:
    tree = ast.parse(path.read_text())
    missing = [
        f"{path.name}:{node.lineno} {node.name}" for node in public_definitions(tree) if ast.get_docstring(node) is None
    ]
    assert missing == []
    texts = [ast.get_docstring(tree) or ""]
    texts += [ast.get_docstring(node) or "" for node in public_definitions(tree)]
    assert [t for t in texts if ROLE.search(t)] == []


def test_the_reference_lists_no_internal_parameter_of_init() -> None:
    assert "browser" not in inspect.signature(EmpMixClient.init).parameters
    assert list(inspect.signature(EmpMixClient.__init__).parameters) == ["self", "token", "options"]

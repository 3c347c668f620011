"""The build backend's line-for-line strip (``strip_source``) on the cases the SDK's modules
do not all have: what goes, what must stay byte for byte, and where ``...`` is needed."""

from __future__ import annotations

import io

import pytest

from tools.backend.empmix_backend import strip_source


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # a module docstring and comment lines become blank lines; a trailing comment is cut
        ('"""Module.\n\nMore."""\n# note\nx = 1  # why\n', "\n\n\n\nx = 1\n"),
        # a docstring that is a body's only statement leaves `...` at its indentation
        ('def f():\n    """Doc\n    more."""\n', "def f():\n    ...\n\n"),
        (
            'class A:\n    """Doc."""\n\n    def g(self):\n        "g"\n        return 1\n',
            "class A:\n\n\n    def g(self):\n\n        return 1\n",
        ),
        # a body of nothing but strings keeps one `...`
        ('if x:\n    "a"\n    "b"\nelse:\n    "c"\n', "if x:\n    ...\n\nelse:\n    ...\n"),
        # a string after an assignment (an attribute docstring) goes too
        ('X = 1\n"""What X is."""\n', "X = 1\n\n"),
        # strings sharing a line with code stay, so does everything inside a string
        ('x = 1; "s"\n"s"; y = 2\n', 'x = 1; "s"\n"s"; y = 2\n'),
        ('s = """a  \n# not a comment   \n\n"""  # c\n', 's = """a  \n# not a comment   \n\n"""\n'),
        ('s = "a\\\n  b"  \n', 's = "a\\\n  b"\n'),
        ('t = f"{a}#{b}"  # c\n', 't = f"{a}#{b}"\n'),
        # brackets spanning lines: comments inside them go, the code stays where it was
        ("call(\n    1,  # one\n    # two\n    2,\n)\n", "call(\n    1,\n\n    2,\n)\n"),
        # comments a tool reads stay: an encoding declaration, a type comment (not an ignore)
        (
            "# -*- coding: utf-8 -*-\nx = []  # type: list[int]\ny = f()  # type: ignore[x]\n",
            "# -*- coding: utf-8 -*-\nx = []  # type: list[int]\ny = f()\n",
        ),
        # only "\n" ends a line, as for the tokenizer
        ('s = "a\u2028b"  # c\n"""Doc."""\n', 's = "a\u2028b"\n\n'),
        # trailing whitespace goes, indentation stays; no final newline gets one
        ("def f():   \n\treturn 1  ", "def f():\n\treturn 1\n"),
    ],
)
def test_strip(source: str, expected: str) -> None:
    stripped = strip_source(source)
    assert stripped == expected
    compile(stripped, "case.py", "exec")
    assert stripped.count("\n") == len(io.StringIO(source).readlines())
    assert strip_source(stripped) == stripped

"""The build backend: setuptools' own, with a slimmer wheel (pyproject.toml points here).

A page downloads the wheel on every load (Pyodide through micropip, MicroPython unzips it), so
the wheel carries the package's code without its docstrings and comments: each module's text is
stripped line by line, and every code line keeps its line number and columns, so tracebacks name
the same file, line and column as the sources do. The annotations stay (``py.typed`` holds), so do
the ``# type:`` comments that are annotations. The boot script ships minified in the same way
(the copy ``./build.sh setup`` makes, under the source's name ``boot.js``). The wheel is rewritten
at deflate level 9, with a new ``RECORD``, and nothing else changes: same entries, order, dates
and file modes.

The sdist keeps the full sources, and an editable install (``pip install -e .``) is setuptools'
own: the documentation and the API reference read the sources, never the wheel.
"""

from __future__ import annotations

import ast
import base64
import csv
import hashlib
import io
import os
import re
import tokenize
import zipfile

from setuptools import build_meta as _setuptools

build_sdist = _setuptools.build_sdist
build_editable = _setuptools.build_editable
get_requires_for_build_sdist = _setuptools.get_requires_for_build_sdist
get_requires_for_build_wheel = _setuptools.get_requires_for_build_wheel
get_requires_for_build_editable = _setuptools.get_requires_for_build_editable
prepare_metadata_for_build_wheel = _setuptools.prepare_metadata_for_build_wheel
prepare_metadata_for_build_editable = _setuptools.prepare_metadata_for_build_editable

PACKAGE = "empmix_web/"
BOOT, BOOT_MIN = PACKAGE + "boot.js", PACKAGE + "boot.min.js"
# comments that are not only for readers: encoding declarations (PEP 263) and type comments
KEEP_COMMENT = re.compile(r"#.*coding[:=]|#\s*type:(?!\s*ignore)")


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, str | list[str]] | None = None,
    metadata_directory: str | None = None,
) -> str:
    name: str = _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)
    slim_wheel(os.path.join(wheel_directory, name))
    return name


def slim_wheel(path: str) -> None:
    """Rewrite the wheel at ``path``: the package's modules stripped, deflate level 9, and the
    boot script as its minified copy (``boot.min.js``, which ``./build.sh setup`` makes from the
    one source ``boot.js``) under the source's name, when that copy is there."""
    with zipfile.ZipFile(path) as old:
        entries = [(info, old.read(info)) for info in old.infolist()]
    (record,) = [info for info, _ in entries if info.filename.endswith(".dist-info/RECORD")]
    minified = dict((info.filename, data) for info, data in entries).get(BOOT_MIN)
    rows = []
    with zipfile.ZipFile(path, "w") as new:
        for info, data in entries:
            if info is record or info.filename == BOOT_MIN:
                continue
            if info.filename.startswith(PACKAGE) and info.filename.endswith(".py"):
                data = strip_source(data.decode("utf-8")).encode("utf-8")
            elif info.filename == BOOT and minified is not None:
                data = minified
            _write(new, info, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            rows.append((info.filename, "sha256=" + digest, str(len(data))))
        rows.append((record.filename, "", ""))
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerows(rows)
        _write(new, record, text.getvalue().encode())


def _write(archive: zipfile.ZipFile, like: zipfile.ZipInfo, data: bytes) -> None:
    info = zipfile.ZipInfo(like.filename, like.date_time)
    info.external_attr = like.external_attr
    info.create_system = like.create_system
    # deflate, as setuptools writes it: PyScript's MicroPython unzips with zip.js, which reads it
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data, compresslevel=9)


def strip_source(source: str) -> str:
    """``source`` without docstrings, comments and trailing blanks, line for line.

    A string statement that has its lines to itself (a docstring, or a string after an
    assignment) becomes blank lines, or ``...`` where it is the only statement of a body; a
    comment is cut off its line; trailing whitespace goes, except inside a string. Every other
    character stays where it was.
    """
    lines = _lines(source)
    for stmt, only in _string_statements(ast.parse(source)):
        first, last = stmt.lineno - 1, stmt.end_lineno or stmt.lineno
        head, tail = lines[first].encode(), lines[last - 1].encode()
        if head[: stmt.col_offset].strip() or tail[stmt.end_col_offset or 0 :].strip()[:1] not in (b"", b"#"):
            continue  # shares a line with other code
        for i in range(first, last):
            lines[i] = "\n"
        if only:
            lines[first] = head[: stmt.col_offset].decode() + "...\n"
    return _strip_comments("".join(lines))


def _string_statements(tree: ast.AST) -> list[tuple[ast.stmt, bool]]:
    """Every statement that is a lone string, with whether it must leave a ``...`` behind (it
    opens a body of nothing but strings)."""
    found = []
    for node in ast.walk(tree):
        for _, body in ast.iter_fields(node):
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                strings = [stmt for stmt in body if _is_string(stmt)]
                found += [(stmt, len(strings) == len(body) and stmt is body[0]) for stmt in strings]
    return found


def _is_string(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)


def _lines(source: str) -> list[str]:
    # split where the tokenizer does ("\n"): str.splitlines also splits at \f, \x1c, \u2028...
    return io.StringIO(source).readlines()


def _strip_comments(source: str) -> str:
    lines = _lines(source)
    cut: dict[int, int] = {}  # line index -> column where its comment starts
    inside: set[int] = set()  # lines whose end is inside a string: kept as they are
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT and not KEEP_COMMENT.match(tok.string):
            cut[tok.start[0] - 1] = tok.start[1]
        elif tok.start[0] < tok.end[0] and tok.type not in (tokenize.NEWLINE, tokenize.NL):
            inside.update(range(tok.start[0] - 1, tok.end[0] - 1))
    out = []
    for i, line in enumerate(lines):
        if i in inside:
            out.append(line)
            continue
        text = line[: cut[i]] if i in cut else line
        text = text.rstrip()
        out.append(text + "\n" if text else "\n")
    return "".join(out)

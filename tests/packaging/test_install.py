"""Issue 20, 14: the collector installs as its documentation says, in a fresh virtualenv, with
the ``postgres`` extra; and it carries the SDK's version and requires exactly that SDK (15).

The install line is read from the docs (``docs/collector.md`` and ``collector/README.md`` must
say the same) and run as written, from the root of the checkout. pip reaches the package index
for the third-party dependencies (starlette, uvicorn, psycopg, ...); the SDK comes from the
checkout. About half a minute, most of it pip.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from empmix_web.version import VERSION
from tests.conftest import ROOT

DOCS = (ROOT / "docs" / "collector.md", ROOT / "collector" / "README.md")


def documented_installs(path: Path) -> list[str]:
    """The ``pip install`` lines of ``path``'s shell blocks, without their comments."""
    lines, in_block = [], False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_block = line.strip() == "```sh"
            continue
        if in_block and line.startswith("pip install "):
            lines.append(shlex.split(line, comments=True))
    return [shlex.join(words) for words in lines]


def test_both_docs_give_the_same_install_lines() -> None:
    first, second = (documented_installs(path) for path in DOCS)
    assert first[:2] == second[:2] == ["pip install . ./collector", "pip install . './collector[postgres]'"]


def test_the_documented_postgres_install_works_in_a_fresh_venv(tmp_path: Path) -> None:
    line = next(i for i in documented_installs(DOCS[0]) if "[postgres]" in i)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    args = shlex.split(line)[2:]  # after "pip install"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    shown = subprocess.run(
        [str(venv / "bin" / "empmix-collector"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert shown.returncode == 0 and "usage: empmix-collector" in shown.stdout and "--db" in shown.stdout
    version = subprocess.run(
        [str(venv / "bin" / "empmix-collector"), "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.stdout.strip() == "empmix-collector " + VERSION
    probe = (
        "import importlib.metadata as m, psycopg, psycopg_pool; "
        "print(m.version('empmix-collector'), m.version('empmix-web'), "
        "[r for r in m.requires('empmix-collector') if r.startswith('empmix-web')])"
    )
    meta = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert meta.stdout.strip() == f"{VERSION} {VERSION} ['empmix-web=={VERSION}']", meta.stderr

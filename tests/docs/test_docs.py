"""The documentation's shape: a short README that is the wheel's long description, the
collector's reference in one place (docs/collector.md), and a MkDocs configuration whose pages and
README sections exist. The build itself (``mkdocs build --strict``: links, anchors, the API
reference) is ``./build.sh docs``, which ``./build.sh test`` runs before pytest."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import build.util
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
SNIPPET = re.compile(r'^--8<-- "([^":]+):([a-z][-_0-9a-z]*)"$', re.M)


def _nav_files(nav: Any) -> list[str]:
    """Every page named in ``nav``, however deep the sections go."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [page for item in nav for page in _nav_files(item)]
    if isinstance(nav, dict):
        return [page for value in nav.values() for page in _nav_files(value)]
    return []


def test_readme_is_a_front_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    assert "bench:begin" not in text  # the benchmark tables live in docs/performance.md
    # the quick start: install by name first, the wheel URL second
    by_name, by_url = text.index('"packages": ["empmix-web"]'), text.index('"packages": ["/dist/')
    assert by_name < by_url
    for page in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / page).is_file(), page


def test_the_wheels_long_description_is_the_readme() -> None:
    metadata = build.util.project_wheel_metadata(ROOT, isolated=False)
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload() == README.read_text()


def test_the_collector_reference_exists_once() -> None:
    short = (ROOT / "collector" / "README.md").read_text()
    reference = (DOCS / "collector.md").read_text()
    assert tomllib.loads((ROOT / "collector" / "pyproject.toml").read_text())["project"]["readme"] == "README.md"
    assert len(short.splitlines()) <= 60 and "docs/collector.md" in short
    # headings and the option table of the reference appear in docs/collector.md only
    for marker in ("## Ingestion API", "## Query API", "## Identity merge", "| `--track-max-age-days DAYS` |"):
        assert marker in reference, marker
        assert marker not in short, marker
        assert marker not in README.read_text(), marker


def test_every_page_of_the_site_exists_and_is_in_the_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    assert config["docs_dir"] == "docs" and config["site_dir"] == "build/docs"
    pages = _nav_files(config["nav"])
    assert pages[0] == "index.md" and len(pages) == len(set(pages))
    for page in pages:
        assert (DOCS / page).is_file(), page
    assert sorted(p.name for p in DOCS.glob("*.md")) == sorted(pages)
    assert (DOCS / "dashboard.png").is_file()


def test_included_readme_sections_are_marked_in_the_readme() -> None:
    readme = README.read_text()
    included = [match for page in DOCS.glob("*.md") for match in SNIPPET.findall(page.read_text())]
    assert {name for _, name in included} >= {"intro", "commands", "quickstart", "api"}
    for path, name in included:
        assert path == "README.md", path
        assert readme.count(f"--8<-- [start:{name}]") == 1 == readme.count(f"--8<-- [end:{name}]"), name

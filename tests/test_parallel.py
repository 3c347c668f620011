"""The parallel run's scheduler (``tests/parallel.py``) in a real 2-worker xdist run of a small
generated suite: each unit (a file, or a file and an interpreter) runs on one worker, so a
module-scoped fixture is made once per unit, and the checkout-building files share a worker."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

from tests.parallel import unit_of

ROOT = Path(__file__).resolve().parent.parent

MODULE = """
import json, os, pytest

@pytest.fixture(scope="module", params=PARAMS)
def made(request):
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps({"fixture": __name__, "param": request.param}) + "\\n")
    return request.param

@pytest.mark.parametrize("n", range(6))
def test_it(made, n, worker_id):
    with open(os.environ["OUT"], "a") as out:
        out.write(json.dumps({"test": os.environ["PYTEST_CURRENT_TEST"].split(" ")[0], "worker": worker_id}) + "\\n")
"""


def test_unit_of_reads_the_interpreter_and_the_checkout_builds() -> None:
    assert unit_of("tests/browser/test_delivery.py::test_a[py-chromium]") == "tests/browser/test_delivery.py:py"
    assert unit_of("tests/browser/test_delivery.py::test_a[mpy-chromium-x]") == "tests/browser/test_delivery.py:mpy"
    assert unit_of("tests/browser/test_boot.py::test_a[chromium-py]") == "tests/browser/test_boot.py"
    assert unit_of("tests/unit/test_core.py::test_a[py[x]]") == "tests/unit/test_core.py"
    assert unit_of("tests/packaging/test_dists.py::test_a") == unit_of("tests/docs/test_docs.py::test_b")


def test_two_workers_keep_each_unit_on_one_worker(tmp_path: Path) -> None:
    suite = tmp_path / "tests"
    (suite / "packaging").mkdir(parents=True)
    (suite / "docs").mkdir()
    (tmp_path / "conftest.py").write_text("from tests.parallel import pytest_xdist_make_scheduler  # noqa: F401\n")
    files = {
        "tests/test_pages.py": '["py", "mpy"]',
        "tests/test_plain.py": '["one"]',
        "tests/test_other.py": '["one"]',
        "tests/packaging/test_dists.py": '["one"]',
        "tests/docs/test_docs.py": '["one"]',
    }
    for name, params in files.items():
        (tmp_path / name).write_text(MODULE.replace("PARAMS", params))
    out = tmp_path / "out.jsonl"
    env = {"OUT": str(out), "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-n",
            "2",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "--rootdir",
            str(tmp_path),
            "tests",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    workers: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        if "test" in row:
            workers[unit_of(row["test"])].add(row["worker"])
    assert len([r for r in rows if "test" in r]) == 6 * 6
    assert set(workers) == {
        "tests/test_pages.py:py",
        "tests/test_pages.py:mpy",
        "tests/test_plain.py",
        "tests/test_other.py",
        "checkout-builds",
    }
    assert all(len(w) == 1 for w in workers.values()), dict(workers)
    assert set().union(*workers.values()) == {"gw0", "gw1"}  # both workers had work
    made = [(r["fixture"], r["param"]) for r in rows if "fixture" in r]
    assert sorted(made) == sorted(set(made)) and len(made) == 6  # once per module and parameter

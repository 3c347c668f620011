"""How the suite runs in parallel (pytest-xdist, ``./build.sh test`` passes ``-n``).

Loaded by ``tests/conftest.py``. The controller cuts the collection into work units
(:func:`unit_of`): a test's file, plus ``:py``/``:mpy`` for the SDK page tests (``interp``, the
module-scoped parameter, is the first part of their ids). A unit goes to one worker whole and runs
there in collection order, so a module's pages and module-scoped fixtures are made once per
interpreter, as in a serial run. The tests that build from the checkout (``python -m build``,
``pip install .``, ``mkdocs build``: they write ``build/`` and ``*.egg-info`` into the source
tree) are one unit, so two workers never build there at once.

Units are handed out longest first (:data:`LONG_FIRST`, from ``--durations``), so a long unit
does not start last and form the tail.

Why a scheduler and not ``xdist_group`` marks: xdist 3.8's worker appends a mark's group to
``item._nodeid``, which pytest 9 no longer reads (``Node.nodeid`` is ``_id``), so with
``--dist loadgroup`` a file's tests were spread over every worker. The unit here is computed
from the node id itself, on the controller.
"""

from __future__ import annotations

from typing import Any

import pytest

# files that touch the checkout's build outputs: one unit, so one worker, one at a time
CHECKOUT_BUILDS = ("tests/packaging/test_dists.py", "tests/packaging/test_install.py", "tests/docs/test_docs.py")

# the longest units of a serial run (docs/development.md has the figures), handed out first
LONG_FIRST = (
    "tests/bench/test_bench_smoke.py",  # one smoke run of every benchmark
    "tests/browser/test_delivery.py:py",  # outages, back-off, 500 events in two tabs
    "tests/browser/test_delivery.py:mpy",
    "tests/browser/test_hardening.py:py",
    "tests/browser/test_hardening.py:mpy",
    "tests/site/test_site.py",
    "checkout-builds",
    "tests/browser/test_cookieless.py:py",
    "tests/browser/test_boot.py:py",
    "tests/browser/test_cookieless.py:mpy",
    "tests/browser/test_features.py:py",
    "tests/site/test_early.py",
    "tests/browser/test_boot_contract.py",
)


def unit_of(nodeid: str) -> str:
    """The work unit of the test ``nodeid``: its file, plus ``:py``/``:mpy`` for SDK page tests."""
    path = nodeid.split("::", 1)[0]
    if path in CHECKOUT_BUILDS:
        return "checkout-builds"
    interp = nodeid.partition("[")[2].split("-", 1)[0].rstrip("]")  # the first id part: "py-chromium"
    return f"{path}:{interp}" if interp in ("py", "mpy") else path


def _rank(unit: str) -> int:
    return LONG_FIRST.index(unit) if unit in LONG_FIRST else len(LONG_FIRST)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Whole units (:func:`unit_of`) per worker, the units of :data:`LONG_FIRST` first."""
    from xdist.scheduler import LoadScopeScheduling

    class Units(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            return unit_of(nodeid)

        def _assign_work_unit(self, node: Any) -> None:
            if self.workqueue and not getattr(self, "_ordered", False):  # complete at the first call
                queue = sorted(self.workqueue.items(), key=lambda unit: _rank(unit[0]))  # stable
                self.workqueue.clear()
                self.workqueue.update(queue)
                self._ordered = True
            super()._assign_work_unit(node)

    return Units(config, log)

"""How the suite runs in parallel (pytest-xdist, ``./build.sh test`` passes ``-n``).

Loaded by ``tests/conftest.py``. With ``--dist loadgroup`` (``pyproject.toml``) every test gets an
``xdist_group``: its file and its interpreter (``interp``, the module-scoped parameter of the SDK
pages). A group runs on one worker, in collection order, so a module's pages and module-scoped
fixtures are made once per interpreter, as in a serial run. Tests that build from the checkout
(``python -m build``, ``pip install .``: both write ``build/`` and ``*.egg-info`` in the source
tree) share one group, so two workers never build there at once.

The controller then hands out the groups longest first (:data:`LONG_FIRST`, from
``--durations``), so a long group does not start last and form the tail. Without ``-n`` none of
this changes anything: the marks are inert and tests run in collection order.
"""

from __future__ import annotations

from typing import Any

import pytest

# groups that touch the checkout's build outputs: one worker, one at a time
CHECKOUT_BUILDS = ("tests/packaging/test_dists.py", "tests/packaging/test_install.py", "tests/docs/test_docs.py")

# the longest groups of a serial run (docs/development.md has the figures), handed out first
LONG_FIRST = (
    "tests/bench/test_bench_smoke.py",  # one --quick run of every benchmark: about 2 minutes
    "tests/browser/test_delivery.py:py",  # 20 s outages, 500 events in two tabs
    "tests/browser/test_cookieless.py:py",
    "tests/site/test_site.py",
    "tests/browser/test_hardening.py:py",
    "tests/browser/test_boot.py:py",
    "tests/browser/test_features.py:py",
    "tests/browser/test_delivery.py:mpy",
    "tests/browser/test_bytecode.py",
    "tests/site/test_early.py",
    "tests/site/test_consent.py",
    "tests/browser/test_boot_contract.py",
)


def group_of(item: pytest.Item) -> str:
    """The worker group of ``item``: its file, plus ``:py``/``:mpy`` for SDK page tests."""
    path = item.nodeid.split("::", 1)[0]
    if path in CHECKOUT_BUILDS:
        return "checkout-builds"
    callspec = getattr(item, "callspec", None)
    interp = callspec.params.get("interp") if callspec is not None else None
    return f"{path}:{interp}" if interp else path


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.xdist_group(group_of(item)))


def _rank(group: str) -> int:
    return LONG_FIRST.index(group) if group in LONG_FIRST else len(LONG_FIRST)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadgroup`` with the groups of :data:`LONG_FIRST` handed out first."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class LongFirst(LoadGroupScheduling):  # type: ignore[misc]
        ordered = False

        def _assign_work_unit(self, node: Any) -> None:
            if not self.ordered:  # the queue is complete at the first assignment
                queue = sorted(self.workqueue.items(), key=lambda unit: _rank(unit[0]))  # stable
                self.workqueue.clear()
                self.workqueue.update(queue)
                self.ordered = True
            super()._assign_work_unit(node)

    return LongFirst(config, log)

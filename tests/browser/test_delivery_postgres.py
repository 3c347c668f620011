"""Exactly once with the SDK in Chromium against a collector on PostgreSQL (issue 20, item 3).

The lost-reply and redirect cases of the delivery suites run again here, unchanged, with
``collector`` a collector process whose store is a fresh schema of the session's throwaway
PostgreSQL cluster (``tests/collector/pgcluster.py``). The deduplication by ``$insert_id`` they
check is the store's; the interpreter is not what they test, so they run under MicroPython only
(its pages start in under a second).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.test_delivery import (  # noqa: F401 (collected here again)
    TOKEN,
    test_page_closed_with_records_pending,
    test_reload_in_the_middle_of_a_flush,
)
from tests.browser.test_hardening import (  # noqa: F401 (collected here again, with its context)
    context,
    test_1_a_lost_engage_reply_is_applied_once,
    test_2_a_login_redirect_mid_request_is_applied_once,
    test_2b_a_lost_groups_reply_is_applied_once,
)
from tests.collector.conftest import pg_cluster  # noqa: F401 (the collector tests' throwaway cluster)
from tests.collector.pgcluster import PgCluster
from tests.collector_process import CollectorProcess, launch_collector


@pytest.fixture(scope="module", params=["mpy"])
def interp(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def collector(request: pytest.FixtureRequest) -> Iterator[CollectorProcess]:
    cluster: PgCluster = request.getfixturevalue("pg_cluster")
    server = launch_collector(cluster.fresh_url(), tokens=[TOKEN])
    assert str(server.db).startswith("postgresql://")
    yield server
    server.stop()

"""Verified identities (issue 18) from the SDK, both interpreters, in real Chromium against a
collector that verifies them (``--identity-secret``): a signed login merges the device into the
user; an unsigned one is refused (merge log reason ``unverified``) while its event is stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from empmix_collector import sign_identity
from tests.browser.conftest import Py
from tests.collector_process import CollectorProcess, launch_collector
from tests.conftest import open_sdk_page, wait_until

TOKEN, SECRET = "verified_tok", "s3cret-for-tests"


@pytest.fixture(scope="module")
def verifying(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CollectorProcess]:
    db = tmp_path_factory.mktemp("verified") / "events.db"
    server = launch_collector(db, "--identity-secret", f"{TOKEN}={SECRET}", tokens=[TOKEN])
    yield server
    server.stop()


def login(context: Any, base_url: str, collector: CollectorProcess, user: str, signature: str | None) -> str:
    """A fresh page logs ``user`` in (signed or not); returns its device's distinct id."""
    py = Py(open_sdk_page(context, base_url, context.interp))
    sig = f", signature={signature!r}" if signature else ""
    distinct = py(
        f"c = mk({TOKEN!r}, api_host={collector.url!r})\nd = c.get_distinct_id()\nc.track('Before login')\n"
        f"c.identify({user!r}{sig})\nc.track('After login')\nawait c.flush(20000)",
        "d",
    )
    py.page.close()
    return str(distinct)


def test_a_signed_login_merges_the_device_into_the_user(context, base_url, verifying, token):
    user = "usr_" + token
    device = login(context, base_url, verifying, user, sign_identity(SECRET, user))
    person = wait_until(lambda: verifying.person(user, TOKEN), 20, "the user")
    assert device in person["distinct_ids"] and user in person["distinct_ids"]
    names = [e["event"] for e in verifying.events_of(device, TOKEN)]
    assert {"Before login", "$identify", "After login"} <= set(names)  # one person


def test_an_unsigned_login_is_refused_and_its_event_stored(context, base_url, verifying, token):
    user = "usr_" + token

    def stored_identify() -> bool:
        return "$identify" in [e["event"] for e in verifying.events_of(user, TOKEN)]

    device = login(context, base_url, verifying, user, None)
    wait_until(stored_identify, 20, "the $identify event, stored under its own id")
    wait_until(lambda: verifying.person(device, TOKEN), 20, "the device's own person")
    assert user not in verifying.person(device, TOKEN)["distinct_ids"]  # not linked
    assert device not in verifying.person(user, TOKEN)["distinct_ids"]
    merges = verifying.api("/api/merges", TOKEN)["merges"]
    refused = [m for m in merges if user in json.dumps(m) and device in json.dumps(m)]
    assert refused and all(m.get("reason") == "unverified" for m in refused), refused


def test_a_signature_that_is_not_hex_raises_naming_it(py):
    assert py.raises("mk('t_sig').identify('usr_x', signature='nope')").startswith("ValueError: signature")

"""Verified identities (``--identity-secret TOKEN=SECRET``), on both stores: every linking path
needs the user's ``$identity_signature``; unsigned links are refused ``unverified`` and their
events stored; the merge log records the endpoint and the origin of every attempt."""

from __future__ import annotations

import hashlib
import hmac
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from empmix_collector import sign_identity
from empmix_collector.settings import Settings
from tests.collector.conftest import TOKEN, TOKEN2, Collector, event, form

ID_SECRET = "identity-secret"
SITE = "https://shop.example"


def signed(user_id: str) -> dict[str, str]:
    return {"$identity_signature": sign_identity(ID_SECRET, user_id)}


@pytest.fixture
def verified(make_client: Callable[..., Collector]) -> Collector:
    """Project ``tok`` verifies identities; ``tok2`` does not."""
    return make_client(identity_secrets=((TOKEN, ID_SECRET),))


def send(client: Collector, *records: dict[str, Any], origin: str | None = SITE) -> Any:
    body = form(list(records))
    headers = {**body["headers"], **({"Origin": origin} if origin else {})}
    reply = client.http.post("/track?verbose=1", content=body["content"], headers=headers)
    assert reply.json() == {"status": 1, "error": None}, reply.text
    return reply


def last_merge(client: Collector) -> dict[str, Any]:
    return client.merges()[-1]


def identify(user: str, anon: str, **props: Any) -> dict[str, Any]:
    return event("$identify", user, **{"$anon_distinct_id": anon, **props})


def test_sign_identity_is_hex_hmac_sha256_of_the_user_id() -> None:
    want = hmac.new(b"k", b"ann@example.com", hashlib.sha256).hexdigest()
    assert sign_identity("k", "ann@example.com") == want and len(want) == 64
    done = subprocess.run(
        [sys.executable, "-m", "empmix_collector", "sign", "--secret", "k", "ann@example.com"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and done.stdout.strip() == want, done.stderr


def test_a_signed_identify_merges_and_the_log_says_where_it_came_from(verified: Collector) -> None:
    send(verified, event("view", "$device:d1"), identify("ann", "$device:d1", **signed("ann")))
    assert verified.same_person("ann", "$device:d1")
    entry = last_merge(verified)
    assert (entry["result"], entry["endpoint"], entry["origin"]) == ("merged", "track", SITE)
    stored = verified.person_events("ann")
    assert all("$identity_signature" not in e["properties"] for e in stored)  # never stored


@pytest.mark.parametrize(
    "signature", [None, "0" * 64, sign_identity("other secret", "ann"), sign_identity(ID_SECRET, "bob"), 7]
)
def test_an_unsigned_or_badly_signed_identify_is_refused_and_its_event_stored(
    verified: Collector, signature: Any
) -> None:
    props = {} if signature is None else {"$identity_signature": signature}
    send(verified, identify("ann", "$device:d1", **props), origin=None)
    assert not verified.same_person("ann", "$device:d1")
    entry = last_merge(verified)
    assert (entry["result"], entry["reason"], entry["endpoint"], entry["origin"]) == (
        "refused",
        "unverified",
        "track",
        None,
    )
    assert [e["event"] for e in verified.person_events("ann")] == ["$identify"]  # stored under its own id
    assert verified.person("ann")["identified"] is False  # type: ignore[index]


def test_alias_needs_the_signature_of_the_alias(verified: Collector) -> None:
    squat = event("$create_alias", "$device:attacker", alias="ann@example.com")
    send(verified, squat)
    assert last_merge(verified)["reason"] == "unverified"
    own = event("$create_alias", "$device:d1", alias="ann@example.com", **signed("ann@example.com"))
    send(verified, own)  # the squat registered nothing: the real owner's alias works
    assert verified.same_person("$device:d1", "ann@example.com")
    assert not verified.same_person("$device:attacker", "ann@example.com")


def test_a_link_from_device_and_user_ids_needs_the_signature(verified: Collector) -> None:
    unsigned = event("view", "ann", **{"$device_id": "d1", "$user_id": "ann"})
    send(verified, unsigned)
    assert not verified.same_person("ann", "$device:d1")
    assert last_merge(verified)["reason"] == "unverified"
    send(verified, event("view", "ann", **{"$device_id": "d1", "$user_id": "ann"}, **signed("ann")))
    assert verified.same_person("ann", "$device:d1")
    # once linked, unsigned events of the pair are plain events: nothing more is refused
    before = len(verified.merges())
    send(verified, event("later", "ann", **{"$device_id": "d1", "$user_id": "ann"}))
    assert len(verified.merges()) == before and len(verified.person_events("ann")) == 3


def test_a_signature_cannot_absorb_another_user(verified: Collector) -> None:
    send(verified, event("server side", "bob"))  # a user known from server-side events only
    send(verified, identify("mallory", "bob", **signed("mallory")))  # mallory's own signature
    assert not verified.same_person("bob", "mallory")
    entry = last_merge(verified)
    assert entry["reason"] == "unverified" and "$device:" in entry["detail"]


def test_import_and_unverified_projects_link_without_signatures(verified: Collector) -> None:
    reply = verified.import_([identify("ann", "$device:d1")], headers={"Origin": SITE})
    assert reply.status_code == 200, reply.text
    assert verified.same_person("ann", "$device:d1")
    assert last_merge(verified)["endpoint"] == "import"
    send(verified, identify("bob", "$device:d2", token=TOKEN2))
    entry = verified.get("/api/merges", token=TOKEN2).json()["merges"][-1]
    assert (entry["result"], entry["endpoint"]) == ("merged", "track")


def test_identity_secret_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="not one of the --token"):
        Settings(db_path="x.db", tokens=("t",), identity_secrets=(("other", "s"),))
    with pytest.raises(ValueError, match="TOKEN=SECRET"):
        Settings(db_path="x.db", tokens=("t",), identity_secrets=("t",))  # type: ignore[arg-type]
    assert Settings(db_path="x.db", tokens=("t",), identity_secrets=("t=a=b",)).identity_secrets == (  # type: ignore[arg-type]
        ("t", "a=b"),
    )

"""Numbers past what the stores hold (±2^63, the double range), on both stores.

``time``, ``$add`` operands, integer ids and the numbers in a profile operation are
refused per record with a 4xx reason; the valid records of the same batch are stored,
and no profile is ever left holding a value that makes a later valid operation fail.
A property test then asserts, over generated batches full of huge numbers: never a
5xx, every accepted record stored once, every rejected record not at all.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collector.conftest import SECRET, TOKEN, Collector, event, now_ms
from tests.collector.dbs import rows
from tests.collector.test_fuzz import json_values

BIG = 2**63
HUGE_INT = 10**320  # past the double range: int + float raises OverflowError
VAST_INT = 10**4000  # str() still works (Python's limit is 4300 digits)


def _failed(reply: Any) -> dict[int, dict[str, Any]]:
    return {f["index"]: f for f in reply.get("failed_records", [])}


def _profile(distinct_id: Any, insert_id: str | None = None, **ops: Any) -> dict[str, Any]:
    record = {"$token": TOKEN, "$distinct_id": distinct_id, **{f"${k}": v for k, v in ops.items()}}
    if insert_id is not None:
        record["$insert_id"] = insert_id
    return record


def _stored_events(client: Collector, insert_id: str) -> int:
    return len(rows(client.settings.db_path, "SELECT 1 FROM events WHERE insert_id = ?", (insert_id,)))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("time", HUGE_INT),
        ("time", -HUGE_INT),
        ("time", BIG * 1000),
        ("time", 1e300),
        ("time", "9" * 320),
        ("distinct_id", BIG),
        ("distinct_id", -BIG - 1),
        ("distinct_id", VAST_INT),
        ("$device_id", HUGE_INT),
        ("$user_id", HUGE_INT),
    ],
)
def test_out_of_range_event_numbers_are_refused_per_record(client: Collector, field: str, value: Any) -> None:
    good = event("kept", "u1")
    bad = event("bad", "u2")
    bad["properties"][field] = value
    if field == "$user_id":
        bad["properties"]["$device_id"] = "d1"
    reply = client.track([bad, good])
    assert reply.status_code == 200, reply.text
    failed = _failed(reply.json())
    assert list(failed) == [0] and failed[0]["field"] == field, failed
    assert "2^63" in failed[0]["reason"]
    assert _stored_events(client, good["properties"]["$insert_id"]) == 1
    assert _stored_events(client, bad["properties"]["$insert_id"]) == 0


def test_in_range_integer_ids_and_times_are_stored(client: Collector) -> None:
    edge = event("edge", BIG - 1, time=now_ms())
    reply = client.track([edge, event("neg", -BIG)])
    assert reply.json() == {"status": 1, "error": None}
    assert client.person(str(BIG - 1)) is not None and client.person(str(-BIG)) is not None


def test_identity_ids_out_of_range_are_refused_in_the_merge_log(client: Collector) -> None:
    record = event("$identify", "u1", **{"$anon_distinct_id": HUGE_INT})
    assert client.track([record]).json()["status"] == 1  # the event itself is stored
    (entry,) = client.merges()
    assert entry["result"] == "refused" and entry["reason"] == "illegal_id"


@pytest.mark.parametrize(
    "ops",
    [
        {"add": {"n": VAST_INT}},
        {"add": {"n": BIG}},
        {"add": {"n": -BIG - 1}},
        {"set": {"n": HUGE_INT}},
        {"set_once": {"o": {"deep": [VAST_INT]}}},
        {"union": {"l": [BIG]}},
        {"append": {"l": HUGE_INT}},
    ],
)
def test_out_of_range_profile_numbers_are_refused_and_the_profile_stays_usable(
    client: Collector, ops: dict[str, Any]
) -> None:
    client.engage([_profile("p", set={"n": 1, "l": [1]})])
    reply = client.engage([_profile("p", **ops), _profile("p", add={"k": 1})])
    assert reply.status_code == 200, reply.text
    failed = _failed(reply.json())
    assert list(failed) == [0] and failed[0]["field"] == "$" + next(iter(ops)), failed
    # later valid operations all work: nothing poisoned the profile
    for later in ({"add": {"n": 1.5}}, {"add": {"n": 1}}, {"union": {"l": [2]}}, {"append": {"l": 3}}):
        assert client.engage([_profile("p", **later)]).json() == {"status": 1, "error": None}, later
    assert client.person("p")["properties"] == {"n": 3.5, "l": [1, 2, 3], "k": 1}  # type: ignore[index]


def test_add_that_would_overflow_is_refused_and_names_the_operation(client: Collector) -> None:
    client.engage([_profile("p", set={"n": BIG - 1, "f": 1.7e308})])
    reply = client.engage([_profile("p", set={"x": 1}, add={"n": 1}), _profile("p", add={"f": 1e308})])
    failed = _failed(reply.json())
    assert sorted(failed) == [0, 1] and {f["field"] for f in failed.values()} == {"$add"}
    assert all("overflow" in f["reason"] for f in failed.values())
    assert client.engage([_profile("p", add={"n": -1})]).json()["status"] == 1
    assert client.person("p")["properties"] == {"n": BIG - 2, "f": 1.7e308}  # type: ignore[index]


# -- the property: never a 5xx, every accepted record stored ------------------------------

numbers = st.one_of(
    st.sampled_from([BIG, BIG - 1, -BIG, -BIG - 1, 2**64, HUGE_INT, -HUGE_INT, VAST_INT, 1e308, -1.7e308, 0.5]),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=False, allow_infinity=False),
)
ids = st.one_of(numbers, st.sampled_from(["u1", "u2", "$device:a", "null"]))
times = st.one_of(
    numbers, st.just(now_ms()), st.just(now_ms() / 1000), numbers.map(str), st.just(now_ms() + 10 * 3_600_000)
)


@st.composite
def event_record(draw: Any) -> dict[str, Any]:
    props: dict[str, Any] = {"token": TOKEN, "$insert_id": str(uuid.uuid4())}
    for key, strategy in (
        ("distinct_id", ids),
        ("time", times),
        ("$anon_distinct_id", ids),
        ("alias", ids),
        ("$device_id", ids),
        ("$user_id", ids),
        ("n", numbers),
        ("nested", st.lists(numbers, max_size=3)),
        ("other", json_values),
    ):
        if draw(st.booleans()):
            props[key] = draw(strategy)
    return {"event": draw(st.sampled_from(["view", "$identify", "$create_alias"])), "properties": props}


@st.composite
def profile_record(draw: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"$token": TOKEN, "$distinct_id": draw(ids), "$insert_id": str(uuid.uuid4())}
    for op in draw(
        st.lists(st.sampled_from(["$set", "$set_once", "$add", "$append", "$union", "$remove"]), min_size=1, max_size=3)
    ):
        key = draw(st.sampled_from(["n", "l", "f"]))
        value = draw(st.lists(numbers, max_size=3)) if op == "$union" else draw(numbers)
        record[op] = {key: value}
    return record


NUMBERS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@NUMBERS
@given(
    events=st.lists(event_record(), max_size=6),
    updates=st.lists(profile_record(), max_size=6),
    path=st.sampled_from(["/track", "/import"]),
)
def test_huge_numbers_never_5xx_and_every_accepted_record_is_stored(
    client: Collector, events: list[Any], updates: list[Any], path: str
) -> None:
    auth = (SECRET, "") if path == "/import" else None
    body = json.dumps(events)  # escapes lone surrogates, which httpx's json= cannot encode
    reply = client.http.post(path + "?verbose=1", content=body, headers={"Content-Type": "application/json"}, auth=auth)
    assert reply.status_code in (200, 400), reply.text
    failed = _failed(reply.json())
    for index, record in enumerate(events):
        expected = 0 if index in failed else 1
        assert _stored_events(client, record["properties"]["$insert_id"]) == expected, (record, reply.json())
    reply = client.engage(updates)
    assert reply.status_code in (200, 400), reply.text
    failed = _failed(reply.json())
    applied = {r[0] for r in rows(client.settings.db_path, "SELECT insert_id FROM profile_updates")}
    for index, record in enumerate(updates):
        assert (record["$insert_id"] in applied) == (index not in failed), (record, reply.json())
    for record in updates:  # no profile is poisoned: valid operations still apply, and it reads back
        distinct_id = record["$distinct_id"]
        if not (type(distinct_id) is str or (type(distinct_id) is int and -BIG <= distinct_id < BIG)):
            continue  # refused for its id: there is no profile
        for later in ({"set": {"n": 0, "l": [], "f": 0}}, {"add": {"n": 1, "f": 0.5}}, {"union": {"l": [1]}}):
            again = client.engage([_profile(distinct_id, **later)])
            assert again.json() == {"status": 1, "error": None}, (record, later, again.text)
        assert client.person(str(distinct_id))["properties"] == {"n": 1, "f": 0.5, "l": [1]}  # type: ignore[index]
    assert client.get("/api/persons", limit=1000).status_code == 200
    assert client.get("/api/events", limit=100).status_code == 200

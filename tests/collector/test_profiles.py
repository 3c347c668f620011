"""Profile operations one by one, and the property merge when persons merge (in-process)."""

from __future__ import annotations

from typing import Any

import pytest

from empmix_collector.domain import profiles
from tests.collector.conftest import TOKEN, Collector, event, new_id


def op(distinct_id: str, **ops: Any) -> dict[str, Any]:
    return {"$token": TOKEN, "$distinct_id": distinct_id, **{f"${k}": v for k, v in ops.items()}}


def props(client: Collector, distinct_id: str) -> dict[str, Any]:
    person = client.person(distinct_id)
    assert person is not None
    return person["properties"]


def test_set_creates_the_person_lazily_and_overwrites(client: Collector) -> None:
    assert client.person("p1") is None
    assert client.engage([op("p1", set={"plan": "free", "n": 1})]).json() == {"status": 1, "error": None}
    client.engage([op("p1", set={"plan": "pro"})])
    assert props(client, "p1") == {"plan": "pro", "n": 1}


def test_set_once_never_overwrites(client: Collector) -> None:
    client.engage([op("p1", set_once={"first_seen": "mon"})])
    client.engage([op("p1", set_once={"first_seen": "tue", "source": "ad"})])
    assert props(client, "p1") == {"first_seen": "mon", "source": "ad"}


def test_add_numbers(client: Collector) -> None:
    client.engage([op("p1", add={"logins": 1})])
    client.engage([op("p1", add={"logins": 2, "spent": 9.5})])
    client.engage([op("p1", add={"logins": -1})])
    assert props(client, "p1") == {"logins": 2, "spent": 9.5}


@pytest.mark.parametrize("bad", ["1", None, True, [1], {"a": 1}])
def test_add_rejects_non_numbers(client: Collector, bad: Any) -> None:
    client.engage([op("p1", set={"n": 1})])
    r = client.engage([op("p1", add={"n": bad})])
    assert r.status_code == 400
    assert "$add takes numbers" in r.json()["failed_records"][0]["reason"]
    assert props(client, "p1") == {"n": 1}


def test_add_to_a_non_numeric_property_is_rejected_and_nothing_half_applied(client: Collector) -> None:
    client.engage([op("p1", set={"name": "x"})])
    r = client.engage([op("p1", set={"other": 1}, add={"name": 1})])
    assert r.status_code == 400 and "not a number" in r.json()["failed_records"][0]["reason"]
    assert r.json()["failed_records"][0]["field"] == "$add"  # the operation that failed, not the first
    assert props(client, "p1") == {"name": "x"}


def test_append(client: Collector) -> None:
    client.engage([op("p1", append={"pages": "/a"})])
    client.engage([op("p1", append={"pages": "/b"})])
    client.engage([op("p1", append={"pages": "/a"})])
    assert props(client, "p1") == {"pages": ["/a", "/b", "/a"]}


def test_union(client: Collector) -> None:
    client.engage([op("p1", union={"tags": ["a", "b"]})])
    client.engage([op("p1", union={"tags": ["b", "c", "c"]})])
    assert props(client, "p1") == {"tags": ["a", "b", "c"]}
    r = client.engage([op("p1", union={"tags": "d"})])
    assert r.status_code == 400


def test_remove(client: Collector) -> None:
    client.engage([op("p1", set={"tags": ["a", "b", "a"], "plain": "a"})])
    client.engage([op("p1", remove={"tags": "a", "plain": "a", "missing": "a"})])
    assert props(client, "p1") == {"tags": ["b"], "plain": "a"}


def test_unset(client: Collector) -> None:
    client.engage([op("p1", set={"a": 1, "b": 2, "c": 3})])
    client.engage([op("p1", unset=["a", "zzz"])])
    assert props(client, "p1") == {"b": 2, "c": 3}


def test_delete_clears_properties_and_keeps_events(client: Collector) -> None:
    client.track([event("view", "p1")])
    client.engage([op("p1", set={"a": 1})])
    client.engage([op("p1", delete="")])
    assert props(client, "p1") == {}
    assert [e["event"] for e in client.person_events("p1")] == ["view"]


def test_operations_apply_in_arrival_order_within_a_batch(client: Collector) -> None:
    client.engage([op("p1", set={"n": 5}), op("p1", add={"n": 1}), op("p1", unset=["n"]), op("p1", add={"n": 2})])
    assert props(client, "p1") == {"n": 2}


def test_profile_values_follow_the_event_limits(client: Collector) -> None:
    client.engage([op("p1", set={"s": "x" * 300})])
    assert props(client, "p1") == {"s": "x" * 255}
    r = client.engage([op("p1", set={"deep": {"a": {"b": {"c": {"d": 1}}}}})])
    assert r.status_code == 400


def test_engage_records_with_insert_id_are_applied_once(client: Collector) -> None:
    rec = {**op("p1", add={"n": 1}), "$insert_id": new_id()}
    for _ in range(3):
        client.engage([rec])
    assert props(client, "p1") == {"n": 1}


def test_profile_on_anonymous_id_follows_the_person(client: Collector) -> None:
    client.track([event("$identify", "user", **{"$anon_distinct_id": "$device:a"})])
    client.engage([op("$device:a", set={"via": "device"})])
    assert props(client, "user") == {"via": "device"}


def test_merge_conflict_target_wins_and_source_fills_gaps(client: Collector) -> None:
    """identify: the identified side (target) wins conflicts, the anonymous side fills gaps;
    counters take the target's value (no double counting)."""
    client.engage([op("$device:d1", set={"plan": "free", "utm": "ad", "color": "red"}, add={"visits": 3})])
    client.engage([op("ulla", set={"plan": "pro", "email": "u@x"}, add={"visits": 10})])
    client.track([event("$identify", "ulla", **{"$anon_distinct_id": "$device:d1"})])
    assert props(client, "ulla") == {"plan": "pro", "email": "u@x", "visits": 10, "utm": "ad", "color": "red"}
    assert client.same_person("ulla", "$device:d1")


def test_merge_conflict_identified_side_wins_even_as_the_from_side(client: Collector) -> None:
    """alias(original=identified user, alias=new anonymous-person id): the identified side wins."""
    client.track([event("$identify", "vera", **{"$anon_distinct_id": "$device:v1"})])
    client.engage([op("vera", set={"plan": "pro"})])
    client.engage([op("vera-crm", set={"plan": "trial", "crm": 7})])
    client.track([event("$create_alias", "vera", alias="vera-crm")])
    assert client.same_person("vera", "vera-crm")
    assert props(client, "vera") == {"plan": "pro", "crm": 7}


def test_merge_via_import_keeps_target_profile(client: Collector) -> None:
    client.track([event("$identify", "w1", **{"$anon_distinct_id": "$device:w1"})])
    client.track([event("$identify", "w2", **{"$anon_distinct_id": "$device:w2"})])
    client.engage([op("w1", set={"a": 1, "shared": "one"}), op("w2", set={"b": 2, "shared": "two"})])
    client.import_([{"event": "$merge", "properties": {"token": TOKEN, "$distinct_ids": ["w1", "w2"]}}])
    assert props(client, "w1") == {"a": 1, "b": 2, "shared": "two"}  # the second id is the target


def test_apply_operations_unit() -> None:
    start = {"n": 1, "l": [1]}
    out = profiles.apply_operations(start, [("$add", {"n": 2}), ("$append", {"l": 2}), ("$set_once", {"n": 0})])
    assert out == {"n": 3, "l": [1, 2]}
    assert start == {"n": 1, "l": [1]}  # input untouched
    with pytest.raises(profiles.ProfileError):
        profiles.apply_operations({"l": "x"}, [("$append", {"l": 1})])
    with pytest.raises(profiles.ProfileError):
        profiles.apply_operations({}, [("$set", {f"k{i}": i for i in range(2001)})])
    assert profiles.apply_operations({"l": [True, 1]}, [("$remove", {"l": 1})]) == {"l": [True]}
    assert profiles.merge_properties({"a": 1}, {"a": 2, "b": 3}) == {"a": 1, "b": 3}

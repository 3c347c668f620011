"""Bounded work per request: profile operations cost what they touch, and the documented
limits (list items, updates per profile per request, work per request) are per-record 4xx.

The timing of hostile requests is measured in ``bench/``; here the tests assert what is
stored, and that a profile is parsed and serialised once per request however many
records touch it.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from empmix_collector.domain import profiles
from empmix_collector.domain.profiles import ProfileError, ProfileState
from tests.collector.conftest import TOKEN, Collector, new_id


def op(distinct_id: str, insert_id: str | None = None, **ops: Any) -> dict[str, Any]:
    record = {"$token": TOKEN, "$distinct_id": distinct_id, **{f"${k}": v for k, v in ops.items()}}
    if insert_id is not None:
        record["$insert_id"] = insert_id
    return record


def _failed(reply: Any) -> dict[int, dict[str, Any]]:
    return {f["index"]: f for f in reply.json().get("failed_records", [])}


# -- the state against a naive reference ----------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def reference(props: dict[str, Any], ops: list[tuple[str, Any]]) -> dict[str, Any]:
    """The semantics, written the slow and obvious way (copy, apply, compare by type and value)."""
    out = copy.deepcopy(props)
    for name, operand in ops:
        if name == "$delete":
            out = {}
        elif name == "$unset":
            for key in operand:
                out.pop(key, None)
        else:
            for key, value in operand.items():
                current = out.get(key)
                if name == "$set":
                    out[key] = value
                elif name == "$set_once":
                    out.setdefault(key, value)
                elif name == "$add":
                    out[key] = (current or 0) + value
                elif name in ("$append", "$union") and current is not None and type(current) is not list:
                    raise TypeError(f"{name} on a {type(current).__name__}")
                elif name == "$append":
                    out[key] = [*(current or []), value]
                elif name == "$union":
                    merged = list(current or [])
                    for item in value:
                        if not any(_same(item, m) for m in merged):
                            merged.append(item)
                    out[key] = merged
                elif name == "$remove" and type(current) is list:
                    out[key] = [item for item in current if not _same(item, value)]
    return out


scalars = st.one_of(st.integers(-5, 5), st.booleans(), st.sampled_from([1.0, 0.5, "a", "b", "é", None]))
keys = st.sampled_from(["l", "m", "n", "s"])
operation = st.one_of(
    st.tuples(st.just("$set"), st.dictionaries(keys, st.one_of(scalars, st.lists(scalars, max_size=3)), max_size=2)),
    st.tuples(st.just("$set_once"), st.dictionaries(keys, scalars, max_size=2)),
    st.tuples(st.just("$append"), st.dictionaries(st.sampled_from(["l", "m"]), scalars, max_size=2)),
    st.tuples(
        st.just("$union"), st.dictionaries(st.sampled_from(["l", "m"]), st.lists(scalars, max_size=4), max_size=2)
    ),
    st.tuples(st.just("$remove"), st.dictionaries(st.sampled_from(["l", "m"]), scalars, max_size=2)),
    st.tuples(st.just("$unset"), st.lists(keys, max_size=2)),
    st.tuples(st.just("$delete"), st.none()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(st.lists(operation, min_size=1, max_size=3), max_size=12), replays=st.sets(st.integers(0, 11)))
def test_profile_state_matches_the_reference_and_keeps_its_size(
    records: list[list[tuple[str, Any]]], replays: set[int]
) -> None:
    state = ProfileState({"l": [1, "a"], "s": "x"})
    expected: dict[str, Any] = {"l": [1, "a"], "s": "x"}
    for number, ops in enumerate(records):
        try:
            want = reference(expected, ops)
        except TypeError:  # a list operation on a value that is not a list
            want = None
        try:
            state.apply(ops)
        except ProfileError:
            assert want is None, (ops, expected)
            assert state.props == expected and state.text_length == len(state.encode())
            continue
        assert want is not None, (ops, expected)
        if number in replays:  # what a replayed $insert_id does: undo the record
            state.revert()
        else:
            expected = want
        assert state.props == expected and all(_same(state.props[k], expected[k]) for k in expected)
        assert state.text_length == len(state.encode())


def test_a_failing_record_changes_nothing_and_names_its_operation() -> None:
    state = ProfileState({"n": "text", "l": [1]})
    with pytest.raises(ProfileError) as info:
        state.apply([("$set", {"x": 1}), ("$union", {"l": [2]}), ("$add", {"n": 1})])
    assert info.value.op == "$add"
    assert state.props == {"n": "text", "l": [1]} and state.text_length == len(state.encode())
    state.apply([("$union", {"l": [2, 1, 3]})])
    assert state.props["l"] == [1, 2, 3]


# -- the limits, over HTTP ------------------------------------------------------------------


def test_lists_stop_at_their_item_limit(client: Collector) -> None:
    limit = profiles.MAX_PROFILE_LIST_ITEMS
    records = [op("p", union={"l": list(range(start, start + 250))}) for start in range(0, limit, 250)]
    assert client.engage(records).json() == {"status": 1, "error": None}
    r = client.engage([op("p", union={"l": [limit, 0]}), op("p", append={"l": -1}), op("p", union={"l": [0, 1]})])
    failed = _failed(r)
    assert sorted(failed) == [0, 1] and [f["field"] for f in failed.values()] == ["$union", "$append"]
    assert all(str(limit) in f["reason"] for f in failed.values())
    assert client.person("p")["properties"]["l"] == list(range(limit))  # type: ignore[index]


def test_updates_per_profile_per_request_are_bounded(client: Collector) -> None:
    limit = profiles.MAX_PROFILE_UPDATES
    records = [op("p", set={f"k{i}": i, f"j{i}": i}) for i in range(limit // 2)]
    records += [op("p", set={"late": 1}), op("q", set={"ok": 1})]
    r = client.engage(records)
    assert r.status_code == 200
    failed = _failed(r)
    late = limit // 2
    assert list(failed) == [late] and "one profile in one request" in failed[late]["reason"]
    assert len(client.person("p")["properties"]) == limit  # type: ignore[index]
    assert client.person("q")["properties"] == {"ok": 1}  # type: ignore[index]
    # the next request starts a new count
    assert client.engage([op("p", set={"k0": "again"})]).json()["status"] == 1


def test_the_work_of_one_request_is_bounded(client: Collector) -> None:
    # lists at their item limit make each $remove and $append go through 1000 items (~125 units each)
    for start in range(0, profiles.MAX_PROFILE_LIST_ITEMS, 250):
        client.engage([op(f"p{n}", union={"l": list(range(start, start + 250))}) for n in range(4)])
    records = [op(f"p{i % 4}", remove={"l": i % 1000}, append={"l": i % 1000}) for i in range(2000)]
    r = client.engage(records)
    assert r.status_code == 200
    failed = _failed(r)
    assert failed and all("units of work" in f["reason"] for f in failed.values())
    first = min(failed)
    per_record = 2 + 2 * profiles.MAX_PROFILE_LIST_ITEMS // 8
    assert first == pytest.approx(profiles.MAX_PROFILE_WORK / per_record, abs=4)
    assert sorted(failed) == list(range(first, 2000))  # the rest refused
    lists = [client.person(f"p{n}")["properties"]["l"] for n in range(4)]  # type: ignore[index]
    assert all(len(items) == 1000 for items in lists)
    assert lists[0][-1] == (first - 1) // 4 * 4 % 1000  # the last record applied to p0 moved its item to the end
    assert client.engage([op("p0", remove={"l": 5})]).json()["status"] == 1  # a new request, a new budget


def test_a_profile_is_read_and_serialised_once_per_request(client: Collector, monkeypatch: Any) -> None:
    client.engage([op("big", set={f"k{i}": "v" * 100 for i in range(1500)})])
    calls = {"encode": 0, "load": 0}
    real_encode, real_load = ProfileState.encode, ProfileState.from_text.__func__  # type: ignore[attr-defined]

    def encode(self: ProfileState) -> str:
        calls["encode"] += 1
        return real_encode(self)

    def load(cls: type[ProfileState], text: str) -> ProfileState:
        calls["load"] += 1
        return real_load(cls, text)  # type: ignore[no-any-return]

    monkeypatch.setattr(ProfileState, "encode", encode)
    monkeypatch.setattr(ProfileState, "from_text", classmethod(load))
    records = [op("big", new_id(), set={f"n{i % 400}": i}, add={"count": 1}) for i in range(1000)]
    assert client.engage(records).json() == {"status": 1, "error": None}
    assert calls == {"encode": 1, "load": 1}
    props = client.person("big")["properties"]  # type: ignore[index]
    assert props["count"] == 1000 and props["n399"] == 799 and len(props) == 1500 + 400 + 1


def test_a_replay_inside_one_request_applies_once(client: Collector) -> None:
    insert_id = new_id()
    r = client.engage([op("p", insert_id, add={"n": 1}), op("p", insert_id, add={"n": 1}), op("p", add={"m": 1})])
    assert r.json() == {"status": 1, "error": None}
    assert client.person("p")["properties"] == {"n": 1, "m": 1}  # type: ignore[index]

"""Per-record validation limits, one by one (in-process)."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from empmix_collector.domain import validate, values
from tests.collector.conftest import TOKEN, Collector, event, new_id, now_ms

DAY_MS = 86_400_000


def _reject_reason(client: Collector, record: dict[str, Any]) -> str:
    """Send one bad record next to a good one; the bad one is named, the good one stored."""
    good = event("good", "keeper")
    r = client.track([good, record])
    assert r.status_code == 200, r.text
    failed = r.json()["failed_records"]
    assert [f["index"] for f in failed] == [1]
    return failed[0]["reason"]


def _stored(client: Collector, distinct_id: str) -> list[dict[str, Any]]:
    return client.person_events(distinct_id) if client.person(distinct_id) else []


def test_event_name_must_be_a_non_empty_string_of_at_most_255(client: Collector) -> None:
    assert "event" in _reject_reason(client, event("", "u1"))
    assert "event" in _reject_reason(client, {"event": 5, "properties": {"token": TOKEN, "distinct_id": "u1"}})
    assert "255" in _reject_reason(client, event("e" * 256, "u1"))
    assert client.track([event("e" * 255, "u1")]).json()["status"] == 1
    assert [e["event"] for e in _stored(client, "u1")] == ["e" * 255]


def test_at_most_255_properties(client: Collector) -> None:
    many = {f"p{i}": i for i in range(256)}
    assert "255" in _reject_reason(client, {"event": "x", "properties": {"token": TOKEN, "distinct_id": "u1", **many}})
    ok = {f"p{i}": i for i in range(250)}
    assert (
        client.track([{"event": "x", "properties": {"token": TOKEN, "distinct_id": "u2", **ok}}]).json()["status"] == 1
    )


def test_strings_are_cut_at_255_characters(client: Collector) -> None:
    client.track([event("x", "u1", long="a" * 1000, nested={"s": "b" * 300}, items=["c" * 256])])
    props = client.person_events("u1")[0]["properties"]
    assert props["long"] == "a" * 255
    assert props["nested"]["s"] == "b" * 255
    assert props["items"] == ["c" * 255]


def test_nesting_depth_3(client: Collector) -> None:
    ok = {"a": {"b": {"c": 1}}}  # the value holds three levels of objects
    assert client.track([event("x", "u1", deep=ok, lists=[[[1]]])]).json()["status"] == 1
    too_deep = {"a": {"b": {"c": {"d": 1}}}}
    assert "nested deeper than 3" in _reject_reason(client, event("x", "u2", deep=too_deep))
    assert "nested deeper than 3" in _reject_reason(client, event("x", "u2", deep=[[[[1]]]]))
    assert client.person("u2") is None


def test_lists_of_at_most_255(client: Collector) -> None:
    assert client.track([event("x", "u1", items=list(range(255)))]).json()["status"] == 1
    assert "255" in _reject_reason(client, event("x", "u2", items=list(range(256))))


def test_property_names_at_most_255(client: Collector) -> None:
    assert "longer than 255" in _reject_reason(client, event("x", "u1", **{"k" * 256: 1}))


def test_non_finite_numbers_are_rejected() -> None:
    ctx = validate.Context({TOKEN: 1}, now_ms(), "track")
    rec = event("x", "u1", bad=float("inf"))
    out = validate.validate_event(rec, 0, ctx)
    assert isinstance(out, validate.Rejection) and "finite" in out.reason


def test_time_seconds_and_milliseconds_are_auto_detected(client: Collector) -> None:
    t_ms = now_ms() - 60_000
    client.track(
        [
            event("ms", "u1", time=t_ms),
            event("s-float", "u1", time=t_ms / 1000),
            event("s-int", "u1", time=t_ms // 1000),
            event("s-str", "u1", time=str(t_ms / 1000)),
        ]
    )
    got = {e["event"]: e["time"] for e in client.person_events("u1")}
    assert got == {"ms": t_ms, "s-float": t_ms, "s-int": (t_ms // 1000) * 1000, "s-str": t_ms}


def test_missing_time_on_track_is_arrival_time(client: Collector) -> None:
    before = now_ms()
    rec = event("x", "u1")
    del rec["properties"]["time"]
    client.track([rec])
    stored = client.person_events("u1")[0]["time"]
    assert before <= stored <= now_ms()


def test_track_takes_the_last_5_days_only(client: Collector) -> None:
    assert client.track([event("x", "u1", time=now_ms() - 5 * DAY_MS + 60_000)]).json()["status"] == 1
    assert "5 days" in _reject_reason(client, event("x", "u2", time=now_ms() - 5 * DAY_MS - 60_000))
    assert client.person("u2") is None


def test_import_takes_old_events_but_not_before_1971(client: Collector) -> None:
    r = client.import_([event("old", "u1", time=86_400 * 365 * 10), event("older", "u1", time=1000)])
    assert r.status_code == 400
    body = r.json()
    assert body["num_records_imported"] == 1
    assert [(f["index"], f["field"]) for f in body["failed_records"]] == [(1, "time")]
    assert "1971" in body["failed_records"][0]["message"]
    assert [e["event"] for e in client.person_events("u1")] == ["old"]


def test_future_time_is_clamped_to_now_and_flagged(client: Collector) -> None:
    before = now_ms()
    client.track([event("future", "u1", time=now_ms() + 3 * 3_600_000), event("soon", "u1", time=now_ms() + 600_000)])
    events = {e["event"]: e for e in client.person_events("u1")}
    assert before <= events["future"]["time"] <= now_ms()
    assert events["future"]["properties"]["$time_clamped"] is True
    assert "$time_clamped" not in events["soon"]["properties"]


@pytest.mark.parametrize("bad", ["a" * 37, "has space", "ünï", "semi;colon", "", 12345, None])
def test_insert_id_format(client: Collector, bad: Any) -> None:
    rec = event("x", "u1")
    rec["properties"]["$insert_id"] = bad
    if bad is None:  # missing -> generated by the server
        assert client.track([rec]).json()["status"] == 1
        insert_id = client.person_events("u1")[0]["insert_id"]
        assert len(insert_id) == 36
    else:
        assert "$insert_id" in _reject_reason(client, rec)
        assert client.person("u1") is None


def test_insert_id_of_36_allowed_chars_is_kept(client: Collector) -> None:
    iid = "A-z09" + "x" * 31
    client.track([event("x", "u1", **{"$insert_id": iid})])
    assert client.person_events("u1")[0]["insert_id"] == iid


def test_distinct_id_rules(client: Collector) -> None:
    assert "distinct_id" in _reject_reason(client, event("x", {"not": "a string"}))  # type: ignore[arg-type]
    assert "distinct_id" in _reject_reason(client, event("x", "d" * 256))
    client.track([event("x", 42)])  # type: ignore[arg-type]
    assert client.person("42") is not None
    # no distinct_id: derived from $user_id, then $device_id (Simplified ID Merge)
    rec = event("x", None, **{"$device_id": "dev-9"})
    client.track([rec])
    assert client.person("$device:dev-9") is not None


def test_missing_token_and_non_object_properties(client: Collector) -> None:
    assert "token" in _reject_reason(client, {"event": "x", "properties": {"distinct_id": "u1"}})
    assert "properties" in _reject_reason(client, {"event": "x", "properties": [1, 2]})


def test_merge_is_refused_on_track(client: Collector) -> None:
    rec = {"event": "$merge", "properties": {"token": TOKEN, "$distinct_ids": ["a", "b"]}}
    assert "/import" in _reject_reason(client, rec)
    assert client.merges() == []


def test_exactly_once_for_the_dedup_tuple(client: Collector) -> None:
    t = now_ms() - 1000
    rec = event("x", "u1", time=t)
    for _ in range(3):
        assert client.track([rec, rec]).json()["status"] == 1
    # a record differing in any part of (event, distinct_id, time, $insert_id) is another event
    iid = rec["properties"]["$insert_id"]
    client.track([event("y", "u1", time=t, **{"$insert_id": iid}), event("x", "u1", time=t + 1, **{"$insert_id": iid})])
    assert sorted((e["event"], e["time"]) for e in client.person_events("u1")) == [("x", t), ("x", t + 1), ("y", t)]


def test_events_without_insert_id_are_never_deduplicated(client: Collector) -> None:
    rec = event("x", "u1", time=now_ms() - 1000)
    del rec["properties"]["$insert_id"]
    client.track([rec, rec])
    assert len(client.person_events("u1")) == 2


def test_rejection_carries_field_and_insert_id() -> None:
    ctx = validate.Context({TOKEN: 1}, now_ms(), "track")
    iid = new_id()
    out = validate.validate_event({"event": "", "properties": {"token": TOKEN, "$insert_id": iid}}, 7, ctx)
    assert out == validate.Rejection(7, "event must be a non-empty string", "event", iid)


def test_strings_with_escapes_and_brackets_are_cut_too(client: Collector) -> None:
    tricky = {
        "quote": 'x"' * 200,
        "backslash": "\\" * 300,
        "bracket": "[{" * 200,
        "unicode": "é" * 300,
        "emoji": "\U0001f600" * 300,
        "surrogate": "\ud800" + "a" * 10,
    }
    client.track([event("x", "u1", **tricky)])
    props = client.person_events("u1")[0]["properties"]
    for key in ("quote", "backslash", "bracket", "unicode", "emoji"):
        assert props[key] == tricky[key][:255], key
    assert props["surrogate"] == "\ufffd" + "a" * 10


flat_values = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=400)
)
any_values = st.recursive(
    flat_values,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=5), inner)),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(props=st.dictionaries(st.text(max_size=300), st.one_of(flat_values, any_values), max_size=8))
def test_fast_path_agrees_with_the_exact_check(props: dict[str, Any]) -> None:
    """The text-based fast paths of validate._checked_json never differ from values.clean_object."""
    try:
        exact: Any = json.loads(json.dumps(values.clean_object(copy.deepcopy(props), 0, "properties", 255)))
    except values.Invalid:
        exact = "rejected"
    try:
        fast: Any = json.loads(validate._checked_json(copy.deepcopy(props)))
    except values.Invalid:
        fast = "rejected"
    assert fast == exact
    for separators in ((",", ":"), (", ", ": ")):  # the record's own text, as a client sent it
        record_text = json.dumps({"event": "e{", "properties": props}, separators=separators, ensure_ascii=False)
        try:
            sliced: Any = json.loads(validate._checked_json(copy.deepcopy(props), record_text))
        except values.Invalid:
            sliced = "rejected"
        assert sliced == exact


def test_lone_surrogates_anywhere_are_replaced_not_fatal(client: Collector) -> None:
    body = (
        '[{"event": "a\\ud800b", "properties": {"token": "tok", "distinct_id": "s\\udc00", "k\\ud800": "v\\udfff",'
        ' "$anon_distinct_id": "\\ud800", "$device_id": "d\\ud800", "$user_id": "u\\udc01"}}]'
    )
    r = client.http.post("/track?verbose=1", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    (stored,) = client.person_events("s\ufffd")
    assert stored["event"] == "a\ufffdb"
    assert stored["properties"]["k\ufffd"] == "v\ufffd"
    assert client.get("/api/merges").status_code == 200


def test_lone_surrogates_in_identity_and_profile_fields(client: Collector) -> None:
    body = '[{"event": "a\\ud800b", "properties": {"token": "tok", "$device_id": "d\\ud800", "$user_id": "u\\udc01"}}]'
    r = client.http.post("/track?verbose=1", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert client.merges()[0]["from_id"] == "$device:d\ufffd"
    r = client.engage(
        [{"$token": "tok", "$distinct_id": "x\ud800", "$unset": ["a\udc00"], "$set": {"k\ud800": "v\udc00"}}]
    )
    assert r.status_code == 200, r.text


_NOW = 1_704_067_200_000


@settings(max_examples=300, deadline=None)
@given(
    sent=st.one_of(
        st.integers(-(2**63), 2**63),
        st.integers(_NOW - 6 * 86_400_000, _NOW + 2 * 3_600_000),
        st.sampled_from([99_999_999_999, 100_000_000_000, _NOW + 3_600_000, _NOW + 3_600_001,
                         _NOW - 5 * 86_400_000, _NOW - 5 * 86_400_000 - 1, 31_536_000_000]),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
    ),
    endpoint=st.sampled_from(["track", "import"]),
)
def test_the_inline_time_path_gives_what_event_time_gives(sent: object, endpoint: str) -> None:
    from empmix_collector.domain.validate import Context, _event_time, validate_event
    from empmix_collector.domain.values import Invalid

    ctx = Context({"tok": 1}, _NOW, endpoint, None, 5 * 86_400_000)
    record = {"event": "e", "properties": {"token": "tok", "distinct_id": "d", "time": sent}}
    try:
        expected: object = _event_time(dict(record["properties"]), ctx)  # type: ignore[arg-type]
    except Invalid as exc:
        expected = exc.reason
    got = validate_event(record, 0, ctx)
    if isinstance(got, validate.Rejection):
        assert got.reason == expected
    else:
        assert (got.time_ms, got.dedup_time_ms, '"$time_clamped":true' in got.properties_json) == expected

"""Identity merge, rules 1-12 of notes §2.6, one by one (in-process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from empmix_collector.domain.identity import PersonView, decide, illegal_id_reason
from tests.collector.conftest import TOKEN, Collector, event, new_id, now_ms


def identify(user: str, anon: str, device: str | None = None, **extra: Any) -> dict[str, Any]:
    """$identify exactly as mixpanel-browser / empmix-web send it."""
    props: dict[str, Any] = {"$anon_distinct_id": anon, "$user_id": user, **extra}
    if device is not None:
        props["$device_id"] = device
    return event("$identify", user, **props)


def alias(original: str, new: str) -> dict[str, Any]:
    return event("$create_alias", original, alias=new)


def merge_entries(client: Collector, **match: Any) -> list[dict[str, Any]]:
    return [m for m in client.merges() if all(m[k] == v for k, v in match.items())]


# -- rule 1: identify, alias and $device_id+$user_id link ids into one person -------------


def test_identify_links_anonymous_id_and_user_id(client: Collector) -> None:
    client.track([event("view", "$device:d1", **{"$device_id": "d1"})])
    assert client.person("$device:d1")["identified"] is False  # type: ignore[index]
    r = client.track([identify("alice", "$device:d1", "d1")])
    assert r.json() == {"status": 1, "error": None}
    person = client.person("alice")
    assert person is not None and person["identified"] is True
    assert set(person["distinct_ids"]) == {"alice", "$device:d1"}
    assert client.person("$device:d1")["person_id"] == person["person_id"]  # type: ignore[index]
    assert [e["event"] for e in client.person_events("alice")] == ["view", "$identify"]
    (entry,) = client.merges()
    assert entry["kind"] == "identify" and entry["result"] == "merged" and entry["reason"] is None
    assert (entry["from_id"], entry["to_id"]) == ("$device:d1", "alice")
    assert isinstance(entry["time"], int) and entry["insert_id"]


def test_identify_http_api_form_identified_id_and_anon_id(client: Collector) -> None:
    rec = {"event": "$identify", "properties": {"token": TOKEN, "$identified_id": "bob", "$anon_id": "anon-7"}}
    assert client.track([rec]).json()["status"] == 1
    assert client.same_person("bob", "anon-7")
    assert client.person("bob")["identified"] is True  # type: ignore[index]


def test_create_alias_links_and_identifies(client: Collector) -> None:
    client.track([event("view", "$device:d1")])
    client.track([alias("$device:d1", "carol")])
    assert client.same_person("carol", "$device:d1")
    assert client.person("carol")["identified"] is True  # type: ignore[index]
    (entry,) = client.merges()
    assert (entry["kind"], entry["from_id"], entry["to_id"], entry["result"]) == (
        "alias",
        "$device:d1",
        "carol",
        "merged",
    )


def test_event_with_device_id_and_user_id_links_them(client: Collector) -> None:
    client.track([event("view", "$device:d9", **{"$device_id": "d9"})])
    client.track([event("buy", "dave", **{"$device_id": "d9", "$user_id": "dave"})])
    assert client.same_person("dave", "$device:d9")
    assert client.person("dave")["identified"] is True  # type: ignore[index]
    assert [(m["kind"], m["result"]) for m in client.merges()] == [("link", "merged")]
    # further events of the pair do not grow the log
    client.track([event("buy", "dave", **{"$device_id": "d9", "$user_id": "dave"}) for _ in range(5)])
    assert len(client.merges()) == 1


def test_person_with_only_device_or_plain_ids_is_not_identified(client: Collector) -> None:
    client.track([event("view", "$device:x"), event("view", "server-user-1")])
    assert client.person("$device:x")["identified"] is False  # type: ignore[index]
    assert client.person("server-user-1")["identified"] is False  # type: ignore[index]


# -- rule 2 / replays: idempotent ------------------------------------------------------------


def test_replayed_identify_is_idempotent(client: Collector) -> None:
    rec = identify("erin", "$device:e1", "e1")
    for _ in range(3):
        assert client.track([rec]).json()["status"] == 1
    assert len(client.person_events("erin")) == 1  # same $insert_id: stored once
    assert [m["result"] for m in client.merges()] == ["merged"]
    # an SDK retry that minted a new $insert_id: success, a single no-op logged
    for _ in range(3):
        client.track([identify("erin", "$device:e1", "e1")])
    assert [m["result"] for m in client.merges()] == ["merged", "noop"]
    assert client.same_person("erin", "$device:e1")


def test_same_ids_are_a_noop(client: Collector) -> None:
    client.track([identify("frank", "frank")])
    assert [(m["result"], m["reason"]) for m in client.merges()] == [("noop", None)]


def test_alias_replay_and_alias_then_identify_as_mixpanel_browser_does(client: Collector) -> None:
    client.track([event("view", "$device:g1")])
    client.track([alias("$device:g1", "gina")])
    client.track([alias("$device:g1", "gina")])  # retried with a new $insert_id
    client.track([identify("gina", "$device:g1", "g1")])  # mixpanel-browser alias() then identify()
    assert client.same_person("gina", "$device:g1")
    assert [(m["kind"], m["result"]) for m in client.merges()] == [
        ("alias", "merged"),
        ("alias", "noop"),
        ("identify", "noop"),
    ]


# -- rule 3: illegal ids ---------------------------------------------------------------------


ILLEGAL = [
    "anonymous",
    "ANONYMOUS",
    "Guest",
    "distinctid",
    "distinct_id",
    "id",
    "not_authenticated",
    "email",
    "undefined",
    "true",
    "False",
    "anon",
    "nil",
    "n/a",
    "NA",
    "unknown",
    "<nil>",
    "[object Object]",
    "NaN",
    "None",
    "none",
    "null",
    "0",
    "-1",
    "[]",
    "{}",
    "00000000-0000-0000-0000-000000000000",
    "'null'",
    '"undefined"',
    "  ",
    "x" * 256,
    "a\x00b",
]


@pytest.mark.parametrize("bad_id", ILLEGAL)
def test_illegal_ids_refuse_the_merge_but_the_event_is_stored(client: Collector, bad_id: str) -> None:
    client.track([event("view", "$device:h1")])
    r = client.track([event("$identify", "harry", **{"$anon_distinct_id": bad_id})])
    assert r.json()["status"] == 1
    r = client.track([alias("$device:h1", bad_id)])
    assert r.json()["status"] == 1
    entries = client.merges()
    assert [(m["kind"], m["result"], m["reason"]) for m in entries] == [
        ("identify", "refused", "illegal_id"),
        ("alias", "refused", "illegal_id"),
    ]
    assert not client.same_person("harry", "$device:h1")
    assert [e["event"] for e in client.person_events("harry")] == ["$identify"]
    assert [e["event"] for e in client.person_events("$device:h1")] == ["view", "$create_alias"]


@pytest.mark.parametrize("fine", ["Null", "nan", "NONE", "0x0", "guest-42", "$device:abc", "Émile", "user@example.com"])
def test_case_rules_keep_real_ids_usable(fine: str) -> None:
    assert illegal_id_reason(fine) is None


def test_a_device_id_cannot_be_the_identified_id(client: Collector) -> None:
    client.track([event("$identify", "$device:a", **{"$anon_distinct_id": "$device:b"})])
    assert [(m["result"], m["reason"]) for m in client.merges()] == [("refused", "illegal_id")]
    assert client.person("$device:a")["identified"] is False  # type: ignore[index]


# -- rule 5: an anonymous id whose person is identified as someone else --------------------


def test_identify_refused_when_anonymous_side_is_already_identified(client: Collector) -> None:
    client.track([identify("ivan", "$device:i1", "i1")])
    client.track([identify("judy", "$device:i1", "i1")])  # reset() forgotten
    assert not client.same_person("ivan", "judy")
    assert client.same_person("ivan", "$device:i1")
    refused = merge_entries(client, result="refused")
    assert [(m["kind"], m["from_id"], m["to_id"], m["reason"]) for m in refused] == [
        ("identify", "$device:i1", "judy", "already_identified")
    ]
    assert client.person("judy")["distinct_ids"] == ["judy"]  # type: ignore[index]


def test_shared_computer(client: Collector) -> None:
    """A logs in on D1, logs out (reset -> D2); B logs in on D2: two people, nothing of B on A."""
    d1, d2 = "$device:shared-1", "$device:shared-2"
    client.track([event("view", d1, **{"$device_id": "shared-1"})])
    client.track([identify("userA", d1, "shared-1")])
    client.track([event("buy", "userA", **{"$device_id": "shared-1", "$user_id": "userA"})])
    # logout: reset() mints a new device id
    client.track([event("view", d2, **{"$device_id": "shared-2"})])
    client.track([identify("userB", d2, "shared-2")])
    client.track([event("sell", "userB", **{"$device_id": "shared-2", "$user_id": "userB"})])
    a, b = client.person("userA"), client.person("userB")
    assert a is not None and b is not None and a["person_id"] != b["person_id"]
    assert set(a["distinct_ids"]) == {"userA", d1} and set(b["distinct_ids"]) == {"userB", d2}
    a_events = client.person_events("userA")
    assert {e["distinct_id"] for e in a_events} == {"userA", d1}
    assert "sell" not in [e["event"] for e in a_events]
    assert [e["event"] for e in client.person_events("userB")] == ["view", "$identify", "sell"]


def test_shared_computer_without_reset_is_refused_and_logged_once(client: Collector) -> None:
    client.track([identify("userA", "$device:d1", "d1")])
    client.track([identify("userB", "$device:d1", "d1")])
    # every later event of B carries $device_id d1 + $user_id userB: refused each time, logged once
    for _ in range(3):
        client.track([event("click", "userB", **{"$device_id": "d1", "$user_id": "userB"}) for _ in range(10)])
    refused = merge_entries(client, result="refused")
    assert sorted((m["kind"], m["reason"]) for m in refused) == [
        ("identify", "already_identified"),
        ("link", "already_identified"),
    ]
    assert not client.same_person("userA", "userB")
    assert {e["event"] for e in client.person_events("userA")} == {"$identify"}
    assert len(client.person_events("userB")) == 31


# -- rule 6: alias once ----------------------------------------------------------------------


def test_alias_value_reused_for_another_target_is_refused(client: Collector) -> None:
    client.track([alias("$device:k1", "kate")])
    client.track([alias("$device:k2", "kate")])
    assert client.same_person("kate", "$device:k1")
    assert not client.same_person("kate", "$device:k2")
    assert [(m["result"], m["reason"]) for m in client.merges()] == [("merged", None), ("refused", "alias_exists")]


def test_alias_onto_an_identified_person_is_refused(client: Collector) -> None:
    client.track([identify("leo", "$device:l1")])
    client.track([alias("$device:l2", "leo")])  # leo is an identified user already
    assert not client.same_person("leo", "$device:l2")
    assert client.merges()[-1]["reason"] == "already_identified"


def test_many_aliases_may_point_to_one_person(client: Collector) -> None:
    client.track([identify("mia", "$device:m1")])
    client.track([alias("mia", "mia@example.com"), alias("mia", "mia-crm-7")])
    assert client.same_person("mia", "mia@example.com", "mia-crm-7", "$device:m1")


# -- rule 7: cluster cap ---------------------------------------------------------------------


def test_cluster_cap(make_client: Callable[..., Collector]) -> None:
    client = make_client(max_ids_per_person=3)
    client.track([identify("nina", "$device:n1")])  # 2 ids
    client.track([identify("nina", "$device:n2")])  # 3 ids
    client.track([identify("nina", "$device:n3")])  # would be 4
    assert client.same_person("nina", "$device:n1", "$device:n2")
    assert not client.same_person("nina", "$device:n3")
    assert client.merges()[-1]["reason"] == "too_many_ids"
    assert len(client.person("nina")["distinct_ids"]) == 3  # type: ignore[index]
    # merging two multi-id persons counts both clusters
    client.track([identify("omar", "$device:o1")])
    r = client.import_([{"event": "$merge", "properties": {"token": TOKEN, "$distinct_ids": ["nina", "omar"]}}])
    assert r.status_code == 200
    assert not client.same_person("nina", "omar")
    assert client.merges()[-1]["reason"] == "too_many_ids"


def test_default_cap_is_500(client: Collector) -> None:
    assert client.settings.max_ids_per_person == 500


# -- rule 8: $merge only through /import with the secret ---------------------------------------


def test_merge_of_two_identified_people_only_via_import_with_secret(client: Collector) -> None:
    client.track([identify("pam", "$device:p1"), identify("quinn", "$device:q1")])
    merge = {"event": "$merge", "properties": {"token": TOKEN, "$distinct_ids": ["pam", "quinn"]}}
    assert client.track([merge]).status_code == 400
    assert client.import_([merge], secret=None).status_code == 401
    assert client.import_([merge], secret="wrong").status_code == 401
    assert not client.same_person("pam", "quinn")
    r = client.import_([merge])
    assert r.json() == {"code": 200, "num_records_imported": 1, "status": "OK"}
    assert client.same_person("pam", "quinn", "$device:p1", "$device:q1")
    assert client.merges()[-1]["kind"] == "merge" and client.merges()[-1]["result"] == "merged"


def test_merge_needs_exactly_two_ids(client: Collector) -> None:
    r = client.import_([{"event": "$merge", "properties": {"token": TOKEN, "$distinct_ids": ["a"]}}])
    assert r.status_code == 400
    assert r.json()["failed_records"][0]["field"] == "$distinct_ids"


def test_merge_of_two_device_ids_stays_anonymous(client: Collector) -> None:
    client.track([event("v", "$device:r1"), event("v", "$device:r2")])
    client.import_([{"event": "$merge", "properties": {"token": TOKEN, "$distinct_ids": ["$device:r1", "$device:r2"]}}])
    assert client.same_person("$device:r1", "$device:r2")
    assert client.person("$device:r1")["identified"] is False  # type: ignore[index]


def test_import_without_configured_secret_is_disabled(make_client: Callable[..., Collector]) -> None:
    client = make_client(secret=None)
    r = client.import_([event("x", "u")], secret="anything")
    assert r.status_code == 401 and "without --secret" in r.json()["error"]


# -- rule 10: order independence, events never rewritten ---------------------------------------


def test_anonymous_events_arriving_after_the_identify_are_attributed(client: Collector) -> None:
    t0 = now_ms() - 60_000
    client.track([identify("sam", "$device:s1", "s1")])
    client.track([event("late-view", "$device:s1", time=t0)])
    events = client.person_events("sam")
    assert [e["event"] for e in events] == ["late-view", "$identify"]  # time order
    assert events[0]["distinct_id"] == "$device:s1"  # never rewritten


def test_identify_before_any_event_of_either_id(client: Collector) -> None:
    client.track([event("$identify", "tina", **{"$anon_distinct_id": "$device:t1"})])
    client.track([event("a", "$device:t1"), event("b", "tina")])
    assert client.same_person("tina", "$device:t1")
    assert [e["event"] for e in client.person_events("$device:t1")] == ["$identify", "a", "b"]


def test_whole_history_order_does_not_matter(make_client: Callable[..., Collector]) -> None:
    t = now_ms() - 100_000
    records = [
        event("view", "$device:u1", time=t),
        identify("uma", "$device:u1", "u1", time=t + 1),
        event("buy", "uma", time=t + 2, **{"$device_id": "u1", "$user_id": "uma"}),
        event("view", "$device:u2", time=t + 3),
        identify("uma", "$device:u2", "u2", time=t + 4),
    ]
    outcomes = []
    for order in (records, list(reversed(records)), records[2:] + records[:2]):
        client = make_client()
        for rec in order:
            client.track([rec])
        person = client.person("uma")
        assert person is not None
        outcomes.append((sorted(person["distinct_ids"]), [e["event"] for e in client.person_events("$device:u2")]))
    assert outcomes[0] == outcomes[1] == outcomes[2]
    assert outcomes[0][0] == ["$device:u1", "$device:u2", "uma"]


def test_multi_device_login_joins_devices(client: Collector) -> None:
    client.track([identify("vic", "$device:v1", "v1")])
    client.track([event("view", "$device:v2")])
    client.track([identify("vic", "$device:v2", "v2")])
    assert client.same_person("vic", "$device:v1", "$device:v2")


# -- rule 12: the merge log ------------------------------------------------------------------


def test_merge_log_entry_shape(client: Collector) -> None:
    rec = identify("wes", "$device:w1")
    client.track([rec])
    (entry,) = client.merges()
    assert set(entry) >= {"kind", "from_id", "to_id", "result", "reason", "time", "insert_id"}
    assert entry["insert_id"] == rec["properties"]["$insert_id"]
    assert entry["time"] == rec["properties"]["time"]


def test_merge_log_is_per_project(client: Collector) -> None:
    client.track([identify("xena", "$device:x1")])
    client.track([identify("xena", "$device:x1", token="tok2")])  # type: ignore[call-arg]
    assert len(client.merges()) == 1
    r = client.get("/api/merges", token="tok2")
    assert len(r.json()["merges"]) == 1


# -- the decision function directly ----------------------------------------------------------


def test_decide_unit() -> None:
    anon = PersonView(1, identified=False, size=1)
    known = PersonView(2, identified=True, size=2)
    assert decide("identify", "$device:a", "u", from_person=anon, to_person=None, cap=500).result == "merged"
    assert (
        decide("identify", "$device:a", "u", from_person=known, to_person=None, cap=500).reason == "already_identified"
    )
    assert decide("link", "$device:a", "u", from_person=known, to_person=known, cap=500).result == "noop"
    d = decide("alias", "u", "u2", from_person=known, to_person=PersonView(3, False, 1), cap=500)
    assert d.result == "merged" and d.target == "from"  # the identified side survives
    assert (
        decide("alias", "a", "b", from_person=anon, to_person=None, cap=500, alias_taken=True).reason == "alias_exists"
    )
    assert (
        decide("merge", "u", "v", from_person=known, to_person=PersonView(4, True, 2), cap=3).reason == "too_many_ids"
    )
    assert decide("merge", "u", "v", from_person=known, to_person=PersonView(4, True, 2), cap=4).result == "merged"
    with pytest.raises(ValueError):
        decide("bogus", "a", "b", from_person=None, to_person=None, cap=5)


def test_insert_ids_of_refused_events_still_unique(client: Collector) -> None:
    iid = new_id()
    rec = event("$identify", "yan", **{"$anon_distinct_id": "null", "$insert_id": iid})
    client.track([rec])
    client.track([rec])
    assert [e["insert_id"] for e in client.person_events("yan")] == [iid]
    assert len(client.merges()) == 1


@pytest.mark.parametrize("raw_anon", ["1e400", '{"a": 1e400}', "[1, 2]", "true", "12345", '"null"'])
def test_odd_json_values_as_ids_are_refused_not_crashing(client: Collector, raw_anon: str) -> None:
    body = '[{"event": "$identify", "properties": {"token": "tok", "distinct_id": "zoe", "$anon_distinct_id": %s}}]'
    r = client.http.post("/track?verbose=1", content=body % raw_anon, headers={"Content-Type": "application/json"})
    if "1e400" in raw_anon:  # no double holds it: the body is not usable JSON, like NaN
        assert r.status_code == 400 and "out of range" in r.json()["error"]
        assert client.merges() == []
        return
    assert r.status_code == 200, r.text
    (entry,) = client.merges()
    if raw_anon == "12345":  # an integer id is an id
        assert (entry["result"], entry["from_id"]) == ("merged", "12345")
    else:
        assert (entry["result"], entry["reason"]) == ("refused", "illegal_id")
    assert client.get("/api/events").status_code == 200


@pytest.mark.parametrize("odd", [["\ud800"], {"k": "x\udfff"}])
def test_an_id_that_is_json_holding_a_lone_surrogate_is_refused_not_a_500(client: Collector, odd: Any) -> None:
    # found by test_fuzz on PostgreSQL: the refused id's JSON text reached the merge log with the
    # lone surrogate in it, which neither store's driver can encode, and the batch was answered 500
    ok = event("view", "$device:d9")
    props = {"token": TOKEN, "distinct_id": "usr_9", "$anon_distinct_id": odd, "$insert_id": new_id()}
    r = client.track([{"event": "$identify", "properties": props}, ok])
    assert r.status_code == 200, r.text
    (entry,) = merge_entries(client, to_id="usr_9")
    assert entry["result"] == "refused" and "\ufffd" in entry["from_id"]
    assert client.event_count() == 2 and [e["event"] for e in client.person_events("$device:d9")] == ["view"]

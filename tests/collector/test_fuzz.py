"""Hypothesis fuzzing of every endpoint: never a 5xx, nothing stored twice, nothing half-stored."""

from __future__ import annotations

import base64
import copy
import gzip
import json
import uuid
import zlib
from collections import Counter
from typing import Any
from urllib.parse import quote

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collector.conftest import AUTH, SECRET, TOKEN, TOKEN2, Collector, now_ms
from tests.collector.dbs import stored_insert_ids

FUZZ_SMALL = settings(
    max_examples=70, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)

# also lone surrogates: legal in JSON ("\ud800"), illegal in UTF-8 and in SQLite
wild_text = st.text(st.characters(exclude_categories=()), max_size=20)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=300),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(wild_text, inner, max_size=6)),
    max_leaves=25,
)
ids = st.one_of(
    st.sampled_from(["$device:a", "$device:b", "u1", "u2", "null", "", "0", "anonymous", "x" * 300, "\udc00x"]),
    st.text(max_size=40),
    st.integers(),
    st.none(),
    json_values,
)
times = st.one_of(
    st.none(),
    st.just(now_ms()),
    st.just(now_ms() / 1000),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.just(now_ms() + 10 * 3_600_000),
    st.just(now_ms() - 10 * 86_400_000),
)
insert_ids = st.one_of(st.none(), st.uuids().map(str), st.text(max_size=40), st.integers())
event_names = st.one_of(
    st.sampled_from(["view", "$identify", "$create_alias", "$merge", "", "e" * 256, "a\ud800"]),
    st.text(max_size=30),
    wild_text,
    json_values,
)


@st.composite
def event_records(draw: Any) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)  # not even an object
    props: dict[str, Any] = draw(st.dictionaries(st.one_of(st.text(max_size=12), wild_text), json_values, max_size=5))
    for key, strategy in (
        ("token", st.sampled_from([TOKEN, TOKEN2, "bogus", None, 7])),
        ("distinct_id", ids),
        ("time", times),
        ("$insert_id", insert_ids),
        ("$anon_distinct_id", ids),
        ("alias", ids),
        ("$device_id", ids),
        ("$user_id", ids),
        ("$distinct_ids", st.lists(ids, max_size=3)),
    ):
        if draw(st.booleans()):
            props[key] = draw(strategy)
    record: dict[str, Any] = {"event": draw(event_names), "properties": props}
    if draw(st.integers(0, 19)) == 0:
        record["properties"] = draw(json_values)
    return record


@st.composite
def plausible_event_records(draw: Any) -> Any:
    """What an SDK sends (good token, name, id, time and ``$insert_id``) with wild extra properties:
    mostly accepted, so that the batches hold accepted records to trace."""
    props: dict[str, Any] = draw(st.dictionaries(st.one_of(st.text(max_size=12), wild_text), json_values, max_size=5))
    props.update(
        token=TOKEN,
        distinct_id=draw(st.sampled_from(["u1", "u2", "$device:a"])),
        time=now_ms(),
        **{"$insert_id": draw(st.uuids().map(str))},
    )
    return {"event": draw(st.sampled_from(["view", "signup", "$identify"])), "properties": props}


@st.composite
def profile_records(draw: Any) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    record: dict[str, Any] = {"$token": draw(st.sampled_from([TOKEN, "bogus", None])), "$distinct_id": draw(ids)}
    for op in draw(
        st.lists(
            st.sampled_from(
                ["$set", "$set_once", "$add", "$append", "$union", "$remove", "$unset", "$delete", "$bogus"]
            ),
            max_size=3,
        )
    ):
        record[op] = draw(
            st.one_of(json_values, st.dictionaries(st.sampled_from(["a", "b", "n"]), json_values, max_size=3))
        )
    if draw(st.booleans()):
        record["$insert_id"] = draw(insert_ids)
    return record


def encode(records: Any, how: str) -> tuple[bytes, dict[str, str]]:
    text = json.dumps(records)
    if how == "form":
        return ("data=" + quote(text, safe="")).encode(), {"Content-Type": "application/x-www-form-urlencoded"}
    if how == "form-b64":
        b64 = base64.b64encode(text.encode()).decode()
        return ("data=" + quote(b64, safe="") + "&verbose=1").encode(), {
            "Content-Type": "application/x-www-form-urlencoded"
        }
    if how == "json-gzip":
        return gzip.compress(text.encode()), {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    if how == "beacon":
        return text.encode(), {"Content-Type": "text/plain;charset=UTF-8"}
    return text.encode(), {"Content-Type": "application/json"}


def db_counts(client: Collector, insert_ids: list[str]) -> dict[str, int]:
    stored = Counter(stored_insert_ids(client.settings.db_path))
    return {iid: stored[iid] for iid in insert_ids}


@FUZZ
@given(
    path=st.sampled_from(["/track", "/track/", "/engage", "/engage/", "/import", "/import/"]),
    body=st.one_of(
        st.binary(max_size=400),
        st.text(max_size=400).map(str.encode),
        st.builds(lambda v: json.dumps(v).encode(), json_values),
    ),
    ctype=st.one_of(
        st.none(),
        st.sampled_from(
            [
                "application/json",
                "application/x-www-form-urlencoded",
                "text/plain",
                "application/x-ndjson",
                "multipart/form-data",
                "application/xml",
            ]
        ),
        st.text(max_size=30),
    ),
    encoding=st.sampled_from([None, "gzip", "deflate", "br", "identity", "gzip, gzip", "x-unknown"]),
    compress=st.booleans(),
    query=st.dictionaries(
        st.sampled_from(["verbose", "ip", "strict", "_", "token", "data"]), st.text(max_size=8), max_size=4
    ),
    auth=st.booleans(),
)
def test_raw_bodies_never_cause_a_5xx(
    client: Collector,
    path: str,
    body: bytes,
    ctype: str | None,
    encoding: str | None,
    compress: bool,
    query: dict[str, str],
    auth: bool,
) -> None:
    headers = {}
    if ctype is not None and ctype.isprintable() and ctype.isascii():
        headers["Content-Type"] = ctype
    if encoding:
        headers["Content-Encoding"] = encoding
        if compress and encoding.startswith("gzip"):
            body = gzip.compress(body)
        elif compress and encoding == "deflate":
            body = zlib.compress(body)
    r = client.http.post(path, content=body, headers=headers, params=query, auth=(SECRET, "") if auth else None)
    assert r.status_code < 500, r.text
    assert r.status_code in (200, 400, 401, 413, 415), r.status_code


@FUZZ_SMALL
@given(
    records=st.lists(st.one_of(event_records(), plausible_event_records()), min_size=1, max_size=8),
    how=st.sampled_from(["form", "form-b64", "json", "json-gzip", "beacon"]),
    path=st.sampled_from(["/track/?verbose=1", "/import?verbose=1"]),
)
def test_event_batches_store_exactly_the_accepted_records_once(
    client: Collector, records: list[Any], how: str, path: str
) -> None:
    auth = (SECRET, "") if path.startswith("/import") else None
    # records with a well-formed $insert_id can be traced into the database; hypothesis reuses
    # uuids across examples, so each becomes a fresh one (the same one for a repeat in the batch)
    records = copy.deepcopy(records)
    fresh: dict[str, str] = {}
    traced: dict[str, list[int]] = {}
    for index, record in enumerate(records):
        props = record.get("properties") if isinstance(record, dict) else None
        iid = props.get("$insert_id") if isinstance(props, dict) else None
        if isinstance(props, dict) and isinstance(iid, str) and len(iid) == 36 and iid.count("-") == 4:
            props["$insert_id"] = iid = fresh.setdefault(iid, str(uuid.uuid4()))
            traced.setdefault(iid, []).append(index)
    body, headers = encode(records, how)
    assert set(db_counts(client, list(traced)).values()) <= {0}  # none stored before
    first = client.http.post(path, content=body, headers=headers, auth=auth)
    assert first.status_code in (200, 400), first.text
    reply = first.json()
    failed = {f["index"] for f in reply.get("failed_records", [])}
    if path.startswith("/import"):  # like Mixpanel's /import: any rejected record makes it a 400
        assert (reply["status"] == 1) == (not failed), reply
    else:
        assert (reply["status"] == 1) == (len(failed) < len(records)), reply
    after = db_counts(client, list(traced))
    for iid, indexes in traced.items():
        accepted = [index for index in indexes if index not in failed]
        if len(indexes) == 1:  # a rejected record leaves no row; an accepted one exactly one
            assert after[iid] == len(accepted), (iid, indexes, reply)
        else:  # repeats of one $insert_id: identical ones are one event, different ones several
            assert (after[iid] >= 1 if accepted else after[iid] == 0) and after[iid] <= len(accepted), (iid, reply)
    # the same batch again (an SDK retry): nothing new for the traced records
    again = client.http.post(path, content=body, headers=headers, auth=auth)
    assert again.status_code == first.status_code
    assert db_counts(client, list(traced)) == after
    assert client.get("/api/events", limit=20).status_code == 200  # whatever was stored reads back


@FUZZ_SMALL
@given(records=st.lists(profile_records(), min_size=1, max_size=6), how=st.sampled_from(["form", "json", "beacon"]))
def test_profile_batches_never_5xx_and_rejections_change_nothing(
    client: Collector, records: list[Any], how: str
) -> None:
    before = client.get("/api/persons", limit=10_000).json()["persons"]
    body, headers = encode(records, how)
    r = client.http.post("/engage/?verbose=1", content=body, headers=headers)
    assert r.status_code in (200, 400), r.text
    if r.json()["status"] == 0:  # every record rejected: no profile changed
        after = client.get("/api/persons", limit=10_000).json()["persons"]
        changed = [p for p in after if p not in before and p["properties"]]
        assert not changed, (records, r.json(), changed)


identity_ids = st.sampled_from(["$device:a", "$device:b", "$device:c", "u1", "u2", "u3", "null"])


@st.composite
def identity_steps(draw: Any) -> Any:
    kind = draw(st.sampled_from(["identify", "alias", "link", "merge", "event"]))
    a, b = draw(identity_ids), draw(identity_ids)
    base = {"token": TOKEN, "time": now_ms(), "$insert_id": str(draw(st.uuids()))}
    if kind == "identify":
        return "/track", {"event": "$identify", "properties": {**base, "distinct_id": a, "$anon_distinct_id": b}}
    if kind == "alias":
        return "/track", {"event": "$create_alias", "properties": {**base, "distinct_id": a, "alias": b}}
    if kind == "link":
        return "/track", {
            "event": "x",
            "properties": {**base, "distinct_id": b, "$device_id": a.split(":")[-1], "$user_id": b},
        }
    if kind == "merge":
        return "/import", {"event": "$merge", "properties": {**base, "$distinct_ids": [a, b]}}
    return "/track", {"event": "x", "properties": {**base, "distinct_id": a}}


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(steps=st.lists(identity_steps(), min_size=1, max_size=12))
def test_identity_invariants_under_random_sequences(make_client: Any, steps: list[Any]) -> None:
    client = make_client(max_ids_per_person=4)
    for path, record in steps:
        auth = (SECRET, "") if path == "/import" else None
        r = client.http.post(path + "?verbose=1", json=[record], auth=auth)
        assert r.status_code in (200, 400), r.text
    persons = client.get("/api/persons", limit=10_000).json()["persons"]
    seen: set[str] = set()
    for person in persons:
        assert person["distinct_ids"], person
        assert len(person["distinct_ids"]) <= 4
        assert not seen & set(person["distinct_ids"])  # every id belongs to one person
        seen |= set(person["distinct_ids"])
        if person["identified"]:  # only a non-$device: id joining makes a person identified
            assert any(not d.startswith("$device:") for d in person["distinct_ids"])
    for person in persons:
        for distinct_id in person["distinct_ids"]:
            assert client.person(distinct_id)["person_id"] == person["person_id"]  # type: ignore[index]
    for entry in client.merges():
        assert entry["kind"] in ("identify", "alias", "link", "merge")
        assert entry["result"] in ("merged", "noop", "refused")
        assert (entry["reason"] is None) == (entry["result"] != "refused")
        if entry["result"] == "merged":
            assert client.same_person(entry["from_id"], entry["to_id"])


@FUZZ
@given(
    path=st.sampled_from(
        [
            "/api/funnel",
            "/api/retention",
            "/api/persons",
            "/api/events",
            "/api/merges",
            "/api/persons/u1",
            "/api/persons/u1/events",
        ]
    ),
    params=st.dictionaries(
        st.sampled_from(
            ["steps", "from", "to", "window_ms", "by", "born", "returned", "unit", "limit", "offset", "token"]
        ),
        st.one_of(st.text(max_size=12), st.integers(min_value=-(2**80), max_value=2**80).map(str)),
        max_size=6,
    ),
    auth=st.booleans(),
)
def test_query_api_never_5xx(client: Collector, path: str, params: dict[str, str], auth: bool) -> None:
    r = client.http.get(path, params=params, headers=AUTH if auth else {})
    assert r.status_code in (200, 400, 401, 404), (r.status_code, r.text)
    if not auth:
        assert r.status_code == 401

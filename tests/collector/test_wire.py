"""Wire format: body encodings, parameters, replies, size limits (in-process)."""

from __future__ import annotations

import base64
import gzip
import json
import zlib
from urllib.parse import quote

import pytest

from empmix_collector.domain import wire
from tests.collector.conftest import TOKEN, Collector, event, form


def _form_b64(records: object) -> dict[str, object]:
    payload = base64.b64encode(json.dumps(records).encode()).decode()
    return {
        "content": "data=" + quote(payload, safe=""),
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }


def test_form_json_body_is_stored_and_verbose_reply_is_mixpanel_shaped(client: Collector) -> None:
    """form data=<JSON>, verbose=1 -> {"status": 1, "error": null} and the event is stored."""
    r = client.track([event("view", "u1")])
    assert r.status_code == 200
    assert r.json() == {"status": 1, "error": None}
    assert [e["event"] for e in client.person_events("u1")] == ["view"]


def test_form_base64_body_as_mixpanel_browser_sends_it(client: Collector) -> None:
    """mixpanel-browser base64-encodes the payload for hosts that are not mixpanel.com."""
    r = client.http.post("/track/?verbose=1&ip=1&_=1700000000000", **_form_b64([event("view", "u1")]))
    assert r.json() == {"status": 1, "error": None}
    assert client.person("u1") is not None


def test_base64_with_unescaped_plus_and_urlsafe_alphabet(client: Collector) -> None:
    records = [event("view", "u1", note="\u00ff\u00fe>>>???")]  # bytes that give + and / in base64
    raw = base64.b64encode(json.dumps(records).encode()).decode()
    assert "+" in raw or "/" in raw
    r = client.http.post(
        "/track?verbose=1",
        content="data=" + raw,  # '+' unescaped -> ' '
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.json()["status"] == 1, r.text
    urlsafe = base64.urlsafe_b64encode(json.dumps([event("view", "u2")]).encode()).decode().rstrip("=")
    r = client.http.post(
        "/track?verbose=1", content="data=" + urlsafe, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert r.json()["status"] == 1, r.text


def test_json_array_and_single_object_bodies(client: Collector) -> None:
    assert client.http.post("/track?verbose=1", json=[event("a", "u1"), event("b", "u1")]).json()["status"] == 1
    assert client.http.post("/track/?verbose=1", json=event("c", "u1")).json()["status"] == 1
    assert [e["event"] for e in client.person_events("u1")] == ["a", "b", "c"]


@pytest.mark.parametrize("body_kind", ["form", "raw-json", "raw-base64"])
def test_text_plain_bodies_from_send_beacon(client: Collector, body_kind: str) -> None:
    records = [event("left", "u1")]
    text = {
        "form": "data=" + quote(json.dumps(records), safe=""),
        "raw-json": json.dumps(records),
        "raw-base64": base64.b64encode(json.dumps(records).encode()).decode(),
    }[body_kind]
    r = client.http.post("/track/?verbose=1", content=text, headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert r.json() == {"status": 1, "error": None}
    assert client.person("u1") is not None


def test_ndjson_on_import(client: Collector) -> None:
    body = "\n".join(json.dumps(event("hist", "u1")) for _ in range(3))
    r = client.http.post("/import", content=body, auth=("sec", ""), headers={"Content-Type": "application/x-ndjson"})
    assert r.json() == {"code": 200, "num_records_imported": 3, "status": "OK"}


def test_params_read_from_form_body_as_mixpanel_python_sends_them(client: Collector) -> None:
    """mixpanel-python puts verbose=1 and ip=0 in the form body, not the query string."""
    body = "data=" + quote(json.dumps([event("view", "u1")]), safe="") + "&verbose=1&ip=0"
    r = client.http.post("/track", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.json() == {"status": 1, "error": None}


def test_non_verbose_replies_are_1_and_0(client: Collector) -> None:
    r = client.track([event("view", "u1")], verbose=False)
    assert (r.status_code, r.text) == (200, "1")
    r = client.track([{"event": "no token"}], verbose=False)
    assert (r.status_code, r.text) == (400, "0")
    r = client.http.post("/track", content="garbage{", headers={"Content-Type": "application/json"})
    assert (r.status_code, r.text) == (400, "0")


def test_unknown_query_parameters_are_ignored(client: Collector) -> None:
    r = client.http.post("/track/?verbose=1&ip=1&strict=1&_=123&foo=bar", **form([event("v", "u1")]))
    assert r.json()["status"] == 1


def test_trailing_slash_or_not(client: Collector) -> None:
    for path in ("/track", "/track/", "/engage", "/engage/"):
        records = [event("v", "u1")] if "track" in path else [{"$token": TOKEN, "$distinct_id": "u1", "$set": {"a": 1}}]
        r = client.http.post(path + "?verbose=1", **form(records))
        assert r.status_code == 200 and r.json()["status"] == 1, (path, r.text)


def test_mixed_batch_stores_the_good_records_and_names_the_bad(client: Collector) -> None:
    good1, good2 = event("a", "u1"), event("b", "u1")
    bad = event("", "u1")
    r = client.track([good1, bad, good2, "not an object"])
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == 1 and "2 of 4 records rejected" in body["error"]
    assert [(f["index"], f["field"]) for f in body["failed_records"]] == [(1, "event"), (3, None)]
    assert all(f["reason"] for f in body["failed_records"])
    assert body["failed_records"][0]["$insert_id"] == bad["properties"]["$insert_id"]
    assert [e["event"] for e in client.person_events("u1")] == ["a", "b"]


def test_batch_with_no_valid_record_is_a_400(client: Collector) -> None:
    r = client.track([event("", "u1"), {"event": "x"}])
    assert r.status_code == 400
    assert r.json()["status"] == 0 and len(r.json()["failed_records"]) == 2


@pytest.mark.parametrize(
    "content,ctype",
    [
        ("", "application/x-www-form-urlencoded"),
        ("verbose=1", "application/x-www-form-urlencoded"),
        ("data=", "application/x-www-form-urlencoded"),
        ("data=%%%%", "application/x-www-form-urlencoded"),
        ("data=bm90IGpzb24=", "application/x-www-form-urlencoded"),
        ("{", "application/json"),
        ("42", "application/json"),
        ("[]", "application/json"),
        ('"text"', "application/json"),
        ("[NaN]", "application/json"),
        ("[1e400]", "application/json"),
        ("\xff\xfe", "text/plain"),
        ("[" * 100_000, "application/json"),
    ],
)
def test_malformed_bodies_are_400(client: Collector, content: str, ctype: str) -> None:
    r = client.http.post("/track?verbose=1", content=content.encode("latin-1"), headers={"Content-Type": ctype})
    assert r.status_code == 400, r.text
    assert r.json()["status"] == 0 and r.json()["error"]


def test_gzip_body_is_inflated(client: Collector) -> None:
    body = gzip.compress(json.dumps([event("zipped", "u1")]).encode())
    r = client.http.post(
        "/track?verbose=1", content=body, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert r.json() == {"status": 1, "error": None}
    deflated = zlib.compress(json.dumps([event("deflated", "u1")]).encode())
    r = client.http.post(
        "/track?verbose=1",
        content=deflated,
        headers={"Content-Type": "application/json", "Content-Encoding": "deflate"},
    )
    assert r.json() == {"status": 1, "error": None}
    assert [e["event"] for e in client.person_events("u1")] == ["zipped", "deflated"]


def test_gzip_bomb_is_413(client: Collector) -> None:
    bomb = gzip.compress(b"[" + b" " * (wire.MAX_BODY_BYTES + 10) + b"]")
    assert len(bomb) < 10_000
    r = client.http.post(
        "/track?verbose=1", content=bomb, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert r.status_code == 413
    assert client.event_count() == 0


def test_broken_gzip_and_unknown_encoding(client: Collector) -> None:
    r = client.http.post(
        "/track?verbose=1",
        content=b"\x1f\x8bnot gzip",
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert r.status_code == 400
    truncated = gzip.compress(json.dumps([event("x", "u1")]).encode())[:-12]
    r = client.http.post(
        "/track?verbose=1", content=truncated, headers={"Content-Type": "application/json", "Content-Encoding": "gzip"}
    )
    assert r.status_code == 400
    r = client.http.post(
        "/track?verbose=1", content=b"[]", headers={"Content-Type": "application/json", "Content-Encoding": "br"}
    )
    assert r.status_code == 415


def test_body_over_1_mib_is_413_and_nothing_is_stored(client: Collector) -> None:
    records = [event("big", f"u{i}", pad="x" * 250) for i in range(4000)]
    body = json.dumps(records[:2000]).encode()
    body = body[:-1] + b"," + b" " * (wire.MAX_BODY_BYTES - len(body)) + b"]"
    assert len(body) > wire.MAX_BODY_BYTES
    r = client.http.post("/track?verbose=1", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    assert r.json()["status"] == 0
    assert client.event_count() == 0


def test_body_just_under_1_mib_is_accepted(client: Collector) -> None:
    body = json.dumps([event("fits", "u1")]).encode()
    body = body[:-1] + b" " * (wire.MAX_BODY_BYTES - len(body)) + b"]"
    assert len(body) == wire.MAX_BODY_BYTES
    r = client.http.post("/track?verbose=1", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text


def test_more_than_2000_records_is_413(client: Collector) -> None:
    records = [{"event": "e", "properties": {"token": TOKEN, "distinct_id": "u"}}] * 2001
    r = client.http.post("/track?verbose=1", json=records)
    assert r.status_code == 413
    assert client.event_count() == 0
    r = client.http.post("/track?verbose=1", json=records[:2000])
    assert r.status_code == 200


def test_import_accepts_up_to_10_mib(client: Collector) -> None:
    records = [event("hist", f"u{i}", pad="y" * 255, pad2="z" * 255) for i in range(2000)]
    body = json.dumps(records).encode()
    assert wire.MAX_BODY_BYTES < len(body) < wire.MAX_IMPORT_BODY_BYTES
    r = client.http.post("/import", content=body, auth=("sec", ""), headers={"Content-Type": "application/json"})
    assert r.json() == {"code": 200, "num_records_imported": 2000, "status": "OK"}
    big = body[:-1] + b" " * (wire.MAX_IMPORT_BODY_BYTES - len(body) + 1) + b"]"
    r = client.http.post("/import", content=big, auth=("sec", ""), headers={"Content-Type": "application/json"})
    assert r.status_code == 413


def test_unknown_token_is_not_stored_and_verbose_says_why(client: Collector) -> None:
    r = client.track([event("v", "u1", token="nope"), event("v", "u2")])
    assert r.status_code == 200
    failed = r.json()["failed_records"]
    assert failed[0]["index"] == 0 and "unknown token" in failed[0]["reason"]
    assert client.person("u1") is None and client.person("u2") is not None
    r = client.track([event("v", "u3", token="nope")])
    assert r.status_code == 400 and "unknown token" in r.json()["error"]


def test_engage_verbose_reply_and_failed_records(client: Collector) -> None:
    r = client.engage(
        [
            {"$token": TOKEN, "$distinct_id": "u1", "$set": {"plan": "pro"}},
            {"$token": TOKEN, "$distinct_id": "u1", "$add": {"n": "not a number"}},
            {"$token": TOKEN, "$set": {"x": 1}},
        ]
    )
    assert r.status_code == 200
    assert [(f["index"], f["field"]) for f in r.json()["failed_records"]] == [(1, "$add"), (2, "$distinct_id")]
    assert client.person("u1")["properties"] == {"plan": "pro"}  # type: ignore[index]


def test_mixpanel_get_transport_with_data_in_the_query(client: Collector) -> None:
    record = event("via get", "getter")
    b64 = base64.b64encode(json.dumps([record]).encode()).decode()
    r = client.http.get("/track/", params={"data": b64, "verbose": "1", "_": "123"})
    assert r.status_code == 200 and r.json() == {"status": 1, "error": None}
    r = client.http.get(
        "/engage", params={"data": json.dumps({"$token": TOKEN, "$distinct_id": "getter", "$set": {"a": 1}})}
    )
    assert (r.status_code, r.text) == (200, "1")
    assert [e["event"] for e in client.person_events("getter")] == ["via get"]
    assert client.person("getter")["properties"] == {"a": 1}  # type: ignore[index]
    assert client.http.get("/track").status_code == 400  # no data=
    assert client.http.get("/import").status_code == 405  # POST only, with the secret


def test_decode_body_unit_cases() -> None:
    p = wire.decode_body(b'{"event":"x"}', None, None, query={"verbose": "1"}, max_bytes=100)
    assert p.records == [{"event": "x"}] and p.verbose
    p = wire.decode_body(
        b"data=%5B%7B%7D%5D&verbose=0", "application/x-www-form-urlencoded", None, query={"verbose": "1"}, max_bytes=100
    )
    assert p.records == [{}] and p.verbose  # the query string wins over the form body
    with pytest.raises(wire.WireError) as info:
        wire.decode_body(b"x" * 10, "application/json", None, query={}, max_bytes=5)
    assert type(info.value) is wire.MalformedBody
    assert wire.form_unquote("a%2Cb+c%E2%82%AC") == "a,b c\u20ac"
    assert wire.form_unquote("100%25=%zz") == "100%=%zz"
    assert wire.form_unquote("%zz") == "%zz"


@pytest.mark.parametrize(
    "text",
    [
        '[{"a": 1}, {"b": [1, 2]}, 3, "x", null]',
        "  [ ]  ",
        '[\n{"a":"]"}\n,\t{}]',
        '{"k": {"n": 1}}',
        '"s"',
        "7",
        '[{"a":1},]',
        '[{"a":1} {"b":2}]',
        '[{"a":1}] x',
        "[",
        "[NaN]",
        '{"a":1} {"b":2}',
    ],
)
def test_split_json_matches_json_loads(text: str) -> None:
    try:
        expected: object = json.loads(text)
    except ValueError:
        expected = "error"
    try:
        value, texts = wire.split_json(text)
    except ValueError:
        value, texts = "error", None
    if text == "[NaN]":
        assert value == "error"  # stricter than json.loads on purpose
        return
    assert value == expected
    if isinstance(value, list) and texts is not None:  # the fast decoder gives no texts
        assert [json.loads(t) for t in texts] == value


@pytest.mark.parametrize(
    "text",
    [
        "[18446744073709551615]",
        "[18446744073709551616]",
        "[-9223372036854775809]",
        '{"a": "x", "n": 123456789012345678901234567890}',
        '{"\u00e9t\u00e9": "\u00fcber", "n": 99999999999999999999}',
        '["1234567890123456789", 1234567890123456789]',
        '{"t": 1700000000000, "id": "000000012345-0001"}',
    ],
)
@pytest.mark.parametrize("as_bytes", [False, True])
def test_integers_past_64_bits_decode_exactly(text: str, as_bytes: bool) -> None:
    """orjson turns integers past 64 bits into floats: such texts go through ``json``."""
    value = wire.loads_json(text.encode() if as_bytes else text)
    assert value == json.loads(text)
    assert json.dumps(value) == json.dumps(json.loads(text))


@pytest.mark.parametrize("token", ["1e400", "-1e400", "1E+2", "-0", "1e-400", "123456789012345678901234567890", "0.1"])
def test_number_tokens_are_stored_or_refused_and_always_readable(client: Collector, token: str) -> None:
    body = '[{"event": "n", "properties": {"token": "tok", "distinct_id": "num", "x": TOKEN, "y": [TOKEN]}}]'
    body = body.replace("TOKEN", token)
    r = client.http.post("/track?verbose=1", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code in (200, 400), r.text
    assert client.get("/api/events").status_code == 200
    if r.status_code == 200:
        (stored,) = client.person_events("num")
        assert stored["properties"]["x"] == json.loads(token)

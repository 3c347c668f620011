"""Pure helpers: ids (shared with the collector), percent-encoding, wire decisions, queue keys."""

from __future__ import annotations

import json
from email.utils import formatdate
from urllib.parse import parse_qs
from urllib.parse import quote as urllib_quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from empmix_collector.domain import identity as collector_identity
from empmix_web import ids, people, wire
from empmix_web.compat import loads_bounded, nesting
from empmix_web.percent import quote, unquote
from empmix_web.queue import parse_key
from empmix_web.records import EVENT, LEGACY_PROFILE, PROFILE, Record
from empmix_web.storage import parent_domains
from empmix_web.validation import check_user_id

ID_CASES = ["usr_1", "alice@example.com", "0x1", "nullable", "12", "Nan", "nan", "Null", "NULL", "NONE",
            "undefined", "UNDEFINED", " Anonymous ", "'none'", '"guest"', "null", "None", "none", "NaN",
            "0", "-1", "[]", "{}", "[object Object]", "00000000-0000-0000-0000-000000000000", "", "  ",
            "x" * 255, "x" * 256, "a\x00b", "$device:abc", "$device:", "$device:null", "n/a", "<nil>"]


@pytest.mark.parametrize("value", ID_CASES)
def test_the_sdk_and_the_collector_agree_on_every_id(value):
    """One source: the SDK refuses as a user id exactly what the collector refuses to link."""
    decision = collector_identity.decide("identify", "$device:d1", value, from_person=None, to_person=None, cap=500)
    collector_links = decision.result == "merged"
    try:
        check_user_id(value)
        sdk_accepts = True
    except ValueError:
        sdk_accepts = False
    assert sdk_accepts == collector_links, (value, decision)
    assert collector_identity.illegal_id_reason is ids.illegal_id_reason


def test_uuid4_and_insert_ids():
    u = ids.uuid4(bytes(range(16)))
    assert len(u) == 36 and u[14] == "4" and u[19] in "89ab"
    assert ids.is_insert_id("a" * 36) and not ids.is_insert_id("a" * 37) and not ids.is_insert_id("a_b")


@given(st.text())
def test_percent_encoding_matches_encode_uri_component(text):
    assert quote(text) == urllib_quote(text, safe="-_.!~*'()")
    assert unquote(quote(text)) == text


def test_unquote_keeps_malformed_escapes():
    assert unquote("%zz%4") == "%zz%4" and unquote("%E9") == "%E9" and unquote("a%20b") == "a b"


def test_bounded_parsing_refuses_deep_long_and_malformed_text():
    assert loads_bounded("[" * 3000, 10_000) is None
    assert loads_bounded('{"a": "' + "[" * 3000 + '"}', 10_000) == {"a": "[" * 3000}  # brackets in a string
    assert nesting('{"a": "[[[["}') == 0
    assert loads_bounded("x" * 11, 10) is None and loads_bounded("{bad", 100) is None
    assert loads_bounded(None, 10) is None and loads_bounded('{"a":1}', 100) == {"a": 1}


def _records(*sizes: int) -> list[Record]:
    return [Record(EVENT, json.dumps({"event": "e", "pad": "x" * n})) for n in sizes]


@pytest.mark.parametrize("status,body,action,refused", [
    (200, '{"status":1}', wire.DELIVERED, {}),
    (200, '{"status":1,"failed_records":[{"index":1,"message":"m"}]}', wire.DELIVERED, {1: "m"}),
    (400, '{"failed_records":[{"index":0,"reason":"r"}]}', wire.DROP_SOME, {0: "r"}),
    (400, "bad request", wire.DROP, {}),
    (401, "", wire.DROP, {}), (403, "", wire.DROP, {}), (404, "", wire.DROP, {}),
    (408, "", wire.RETRY, {}), (429, "", wire.RETRY, {}), (500, "", wire.RETRY, {}), (503, "", wire.RETRY, {}),
    (413, "", wire.SPLIT, {}),
    (200, "[" * 5000, wire.DELIVERED, {}),  # a hostile reply is data
])
def test_every_reply_row_of_the_delivery_table(status, body, action, refused):
    assert wire.outcome(status, body) == (action, refused)


def test_retry_after_seconds_dates_and_caps():
    now = 1_800_000_000_000.0
    assert wire.retry_after_ms("3", now) == 3000
    assert wire.retry_after_ms("100000", now) == wire.RETRY_AFTER_CAP_MS
    date = formatdate(now / 1000 + 30, usegmt=True)
    assert 29_000 <= wire.retry_after_ms(date, now) <= 30_000
    assert wire.retry_after_ms(formatdate(now / 1000 - 30, usegmt=True), now) == 0
    assert wire.retry_after_ms("soon", now) is None and wire.retry_after_ms(None, now) is None
    assert wire.http_date_ms("Thu, 01 Jan 1970 00:00:10 GMT") == 10_000


def test_backoff_doubles_with_jitter_to_a_cap(monkeypatch):
    monkeypatch.setattr(wire, "BACKOFF_BASE_MS", 1000)
    assert [wire.backoff_ms(n, 0.999) for n in range(3)] == [999, 1999, 3998]
    assert wire.backoff_ms(0, 0.0) == 500 and wire.backoff_ms(50, 0.999) <= wire.BACKOFF_CAP_MS


def test_beacon_chunks_respect_endpoint_batch_size_budget_and_idempotence():
    recs = _records(10, 10, 10) + [Record(PROFILE, "{}"), Record(LEGACY_PROFILE, '{"$add":{}}'), Record(EVENT, "{}")]
    chunks = wire.beacon_chunks(recs, batch_size=2)
    assert [[r.kind.letter for r in c] for c in chunks] == [["e", "e"], ["e"], ["u"], ["e"]]
    big = _records(*([20_000] * 5))
    chunks = wire.beacon_chunks(big, batch_size=50)
    sizes = [len(wire.encode_batch([r.body for r in c])) for c in chunks]
    assert sum(sizes) <= wire.BEACON_LIMIT and sum(len(c) for c in chunks) == 3


def test_encode_batch_is_form_data_of_a_json_array():
    body = wire.encode_batch(['{"a":"é &="}', "{}"])
    assert json.loads(parse_qs(body)["data"][0]) == [{"a": "é &="}, {}]
    assert len(body) == wire.EMPTY_BATCH_SIZE + sum(wire.encoded_size(b) for b in ['{"a":"é &="}', "{}"])


def test_held_operations_merge_only_consecutive_steps():
    held: list = []
    for op, value in [("$set", {"a": 1}), ("$set", {"b": 2, "a": 3}), ("$unset", ["a"]), ("$set_once", {"a": 2}),
                      ("$set_once", {"a": 9}), ("$add", {"n": 1}), ("$add", {"n": 2}), ("$append", {"l": 1}),
                      ("$append", {"l": 2}), ("$union", {"t": ["x"]}), ("$union", {"t": ["x", "y"]})]:
        people.hold(held, op, value)
    assert held == [["$set", {"a": 3, "b": 2}], ["$unset", ["a"]], ["$set_once", {"a": 2}], ["$add", {"n": 3}],
                    ["$append", {"l": 1}], ["$append", {"l": 2}], ["$union", {"t": ["x", "y"]}]]
    assert people.parse_held(json.loads(json.dumps(held))) == held
    assert people.parse_held({"$set": {}}) == [] and people.parse_held([["$bad", {}], ["$set", 1]]) == []
    with pytest.raises(ValueError):
        people.hold(held, "$delete", "")
    many: list = []
    dropped = sum(people.hold(many, "$append" if i % 2 else "$remove", {"l": i}) for i in range(people.MAX_HELD + 5))
    assert len(many) == people.MAX_HELD and dropped == 5


def test_queue_keys_and_parent_domains():
    assert parse_key("empmix_t_q_", "empmix_t_q_tab1_0000000003e") == ("tab1", 3, EVENT)
    assert parse_key("empmix_t_q_", "empmix_t_q_tab1_0000000003p")[2] is LEGACY_PROFILE
    assert parse_key("empmix_t_q_", "empmix_t_q_tab1_x") is None and parse_key("empmix_t_q_", "empmix_t_q__1e") is None
    assert parent_domains("a.b.example.com") == [".b.example.com", ".example.com"]
    assert parent_domains("localhost") == [] and parent_domains("127.0.0.1") == [] and parent_domains("[::1]") == []


def test_the_boot_script_stores_under_the_names_of_the_sdks_key_table() -> None:
    """Issue 20, 11: storage keys come from one table (``keys.py``); the boot script writes the
    same names (``prefix + "identity"``...), so every name it uses must be in that table."""
    import re
    from pathlib import Path

    from empmix_web import keys

    boot = (Path(keys.__file__).parent / "boot.js").read_text()
    used = set(re.findall(r'prefix \+ "([a-z_]+)"', boot))
    assert used and used <= set(keys.NAMES), used - set(keys.NAMES)
    assert '"empmix_" + token' in boot and keys.cookie_name("t") == keys.PREFIX + "t" == "empmix_t"
    assert keys.key("t", keys.IDENTITY) == "empmix_t_identity"

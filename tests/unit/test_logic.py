"""Fast CPython tests of the SDK's pure logic (no browser involved)."""

from __future__ import annotations

import json
import time
from email.utils import formatdate
from urllib.parse import parse_qs

import pytest

from empmix_web import people
from empmix_web.queue import parse_key
from empmix_web.storage import parent_domains
from empmix_web.transport import encode_batch, failed_indexes, parse_retry_after
from empmix_web.validation import check_user_id, is_placeholder_id


@pytest.mark.parametrize("value", ["undefined", " NULL ", "'none'", '"anonymous"', "0", "[object Object]", "", "  "])
def test_placeholders(value):
    assert is_placeholder_id(value)


@pytest.mark.parametrize("value", ["usr_1", "alice@example.com", "0x1", "nullable", "12"])
def test_real_ids(value):
    assert not is_placeholder_id(value)
    assert check_user_id(value) == value


def test_user_id_rules():
    assert check_user_id(42) == "42"
    with pytest.raises(TypeError, match="user_id"):
        check_user_id(True)
    with pytest.raises(ValueError, match=r"\$device:"):
        check_user_id("$device:x")
    with pytest.raises(ValueError, match="255"):
        check_user_id("x" * 256)


def test_held_operations_merge_like_the_calls():
    pending = people.empty_pending()
    people.hold(pending, "$set", {"a": 1, "b": 1})
    people.hold(pending, "$add", {"n": 2})
    people.hold(pending, "$add", {"n": 3, "m": 1})
    people.hold(pending, "$unset", ["b"])
    people.hold(pending, "$set", {"m": 10})  # a later $set replaces a pending $add of that name
    people.hold(pending, "$set_once", {"a": 5, "c": 1})
    people.hold(pending, "$set_once", {"c": 2})
    people.hold(pending, "$append", {"l": 1})
    people.hold(pending, "$append", {"l": 2})
    assert people.release(pending) == [
        ("$set", {"a": 1, "m": 10}), ("$set_once", {"a": 5, "c": 1}), ("$unset", ["b"]),
        ("$add", {"n": 5}), ("$append", {"l": 1}), ("$append", {"l": 2})]
    assert people.normalise_pending(json.loads(json.dumps(pending))) == pending
    assert people.normalise_pending("garbage") == people.empty_pending()


def test_queue_keys():
    assert parse_key("empmix_t_q_", "empmix_t_q_abc_0000000012e") == ("abc", 12, "e")
    assert parse_key("empmix_t_q_", "empmix_t_q_abc_0000000012x") is None
    assert parse_key("empmix_t_q_", "empmix_t_q_abc") is None


def test_wire_helpers():
    body = encode_batch(['{"event":"a b&c"}'])
    assert json.loads(parse_qs(body)["data"][0]) == [{"event": "a b&c"}]
    assert parse_retry_after("3") == 3000
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert 8000 <= parse_retry_after(formatdate(time.time() + 10, usegmt=True)) <= 10000
    assert failed_indexes('{"status":0,"failed_records":[{"index":1,"message":"bad"}]}') == {1: "bad"}
    assert failed_indexes("1") == {}


def test_parent_domains():
    assert parent_domains("a.b.example.com") == [".b.example.com", ".example.com"]
    assert parent_domains("localhost") == [] and parent_domains("127.0.0.1") == []


def test_percent_encoding_matches_urllib():
    import uuid
    from urllib.parse import quote as stdlib_quote, unquote as stdlib_unquote

    from empmix_web.identity import Identity
    from empmix_web.percent import quote, unquote

    for text in ['{"a b":"c&d=e+f"}', "ünïcødé ✓ 🎉", "%41 100%", "plain-._~*'()!", ""]:
        assert quote(text) == stdlib_quote(text, safe="-_.!~*'()")
        assert unquote(quote(text)) == text == stdlib_unquote(quote(text))
    ids = {Identity.mint().device_id for _ in range(200)}
    assert len(ids) == 200 and all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids)

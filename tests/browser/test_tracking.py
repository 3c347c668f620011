"""Rules 6-7 and the wire format: event stamping, super properties, profiles, batching."""

from __future__ import annotations

import json
import re
import time
from urllib.parse import parse_qs

from empmix_web.version import VERSION

INSERT_ID = re.compile(r"^[A-Za-z0-9-]{1,36}$")


def test_track_stamps_identity_time_and_page(py, sdk_page, wire, token):
    before = int(time.time() * 1000)
    py(f"c = mk({token!r}, flush_interval_ms=60000); c.register({{'plan': 'free', 'src': 'super'}})"
       "\nc.track('Clicked', {'src': 'call', 'n': 3, 'tags': ['a', 'b'], 'meta': {'k': None}})"
       "\nc.track('Clicked')")
    tracked = int(time.time() * 1000)
    sdk_page.wait_for_timeout(1500)  # the records wait in the queue: stamped at call time, not send time
    py("await c.flush(5000)")
    first, second = wire.events(token)
    p = first["properties"]
    assert first["event"] == "Clicked"
    assert p["token"] == token and p["distinct_id"] == "$device:" + p["$device_id"]
    assert "$user_id" not in p
    assert isinstance(p["time"], int) and before <= p["time"] <= tracked
    assert INSERT_ID.match(p["$insert_id"]) and p["$insert_id"] != second["properties"]["$insert_id"]
    assert p["mp_lib"] == "empmix-web" and p["$lib_version"] == VERSION
    assert p["$current_url"].endswith(f"/test/sdk-{py.interp}.html") and p["$referrer"] == ""
    assert p["$screen_width"] > 0 and p["$screen_height"] > 0
    assert p["plan"] == "free" and p["src"] == "call"  # call properties win over super properties
    assert p["tags"] == ["a", "b"] and p["meta"] == {"k": None} and p["n"] == 3
    py("c.identify('usr_t'); c.track('later')\nawait c.flush(5000)")
    later = wire.events(token)[-1]["properties"]
    assert later["$user_id"] == "usr_t" and later["distinct_id"] == "usr_t"


def test_super_properties_register_once_and_unregister(py, wire, token):
    py(f"c = mk({token!r}); c.register({{'a': 1}}); c.register_once({{'a': 2, 'b': 2}}); c.unregister('a')"
       "\nc.track('e')\nawait c.flush(5000)")
    p = wire.events(token)[0]["properties"]
    assert "a" not in p and p["b"] == 2
    assert '"b":2' in py("", f"js.localStorage.getItem('empmix_{token}_props')")


def test_bad_track_arguments_raise_naming_them(py, wire, token):
    py(f"c = mk({token!r})")
    assert py.raises("c.track(42)").startswith("TypeError: event")
    assert py.raises("c.track('')").startswith("ValueError: event")
    assert py.raises("c.track('e', [1])").startswith("TypeError: properties")
    err = py.raises("c.track('e', {'when': object()})")
    assert err.startswith("TypeError") and "'when'" in err
    err = py.raises("c.track('e', {'x': float('nan')})")
    assert err.startswith("ValueError") and "'x'" in err
    assert py.raises("c.register(['x'])").startswith("TypeError: props")
    assert py.raises("c.increment('n', 'one')").startswith("TypeError: by")
    py("await c.flush(2000)")
    assert wire.for_token(token) == []
    assert py("", "len(c._core.queue)") == 0


def test_profile_operations_are_held_while_anonymous_in_call_order(py, wire, token):
    py(f"c = mk({token!r})"
       "\nc.set_user_properties({'plan': 'Free', 'color': 'red'}); c.increment('logins', 2)"
       "\nc.increment('logins'); c.setUserProperties({'plan': 'Pro'}); c.set_user_properties_once({'first': 'x'})"
       "\nc.set_user_properties({'gone': 1}); c.unset('gone'); c.union({'tags': ['a']}); c.union({'tags': ['a', 'b']})"
       "\nc.append({'visits': '/'}); c.remove({'tags': 'z'})\nawait c.flush(2000)")
    assert wire.profiles(token) == []  # held: nothing goes out for an anonymous visitor
    held = py("", f"js.localStorage.getItem('empmix_{token}_people')")
    assert '"Pro"' in held
    py("c.identify('usr_p')\nawait c.flush(5000)")
    ops = []
    for record in wire.profiles(token):
        assert record["$distinct_id"] == "usr_p" and record["$token"] == token
        assert INSERT_ID.match(record["$insert_id"])
        ((op, value),) = [(k, v) for k, v in record.items() if k in
                          ("$set", "$set_once", "$add", "$unset", "$union", "$append", "$remove")]
        ops.append((op, value))
    # in call order; only consecutive operations of one kind are merged (the outcome is the same)
    assert ops == [("$set", {"plan": "Free", "color": "red"}), ("$add", {"logins": 3}),
                   ("$set", {"plan": "Pro"}), ("$set_once", {"first": "x"}), ("$set", {"gone": 1}),
                   ("$unset", ["gone"]), ("$union", {"tags": ["a", "b"]}), ("$append", {"visits": "/"}),
                   ("$remove", {"tags": "z"})]
    assert py("", f"js.localStorage.getItem('empmix_{token}_people')") is None
    # once identified, operations go out at once
    py("c.increment('logins', 1); c.delete_user()\nawait c.flush(5000)")
    assert [r.get("$add", r.get("$delete")) for r in wire.profiles(token)[-2:]] == [{"logins": 1}, ""]


def test_the_wire_format_is_mixpanels_with_no_preflight_cross_origin(py, wire, token):
    seen = len(wire.requests)
    other_origin = wire.url.replace("127.0.0.1", "localhost")  # same server, another origin
    py(f"c = mk({token!r}, api_host={other_origin!r}); c.track('w'); c.identify('usr_w')"
       "\nc.set_user_properties({'a': 1})\nawait c.flush(5000)")
    requests = wire.for_token(token)
    assert [r.path for r in requests] == ["/track/", "/engage/"]
    for r in requests:
        assert r.method == "POST" and r.query == {"verbose": ["1"]}
        assert r.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert "Cookie" not in r.headers  # credentials omitted
        assert r.headers["Host"].startswith("localhost:") and r.headers["Origin"] == wire.url  # cross-origin
    assert not [r for r in wire.requests[seen:] if r.method == "OPTIONS"]  # never a CORS preflight


def test_batches_respect_batch_size_and_order(py, wire, token):
    py(f"c = mk({token!r}, batch_size=3, flush_interval_ms=60000)"
       "\nfor i in range(8): c.track(f'e{i}')\nawait c.flush(5000)")
    requests = [r for r in wire.for_token(token) if r.path.startswith("/track")]
    assert [len(r.records) for r in requests] == [3, 3, 2]
    assert [e["event"] for e in wire.events(token)] == [f"e{i}" for i in range(8)]


def test_flush_interval_sends_without_flush(py, wire, token):
    from tests.conftest import wait_until

    py(f"c = mk({token!r}, flush_interval_ms=200); c.track('timed')")  # no flush() call
    wait_until(lambda: wire.events(token), 10, "the timed flush")
    wait_until(lambda: py("", "len(c._core.queue)") == 0, 10, "the queue to empty once confirmed")


def test_raw_body_is_data_equals_json_array(py, sdk_page, token):
    bodies: list[str] = []
    sdk_page.on("request", lambda r: bodies.append(r.post_data or "") if "/track" in r.url else None)
    py(f"c = mk({token!r}); c.track('raw')\nawait c.flush(5000)")
    body = next(b for b in bodies if token in b)
    (data,) = parse_qs(body)["data"]
    (record,) = json.loads(data)  # key order differs between interpreters: compare parsed
    assert record["event"] == "raw" and record["properties"]["token"] == token

"""Issue 11, collector side: group profiles (/groups), funnels and retention by group,
person sessions, custom ingestion routes (--api-route) and the server-set identity
cookie (POST /cookie). In-process, on both stores."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest

from empmix_collector.domain.cookie import check_identity, site_of
from empmix_collector.settings import Settings, parse_api_route
from empmix_web.percent import unquote
from tests.collector.conftest import TOKEN, TOKEN2, Collector, event, form, new_id, now_ms
from tests.collector.test_query import D0, DAY, HOUR, MIN, at, load


def grp(
    group_id: Any, key: str = "company", token: str = TOKEN, insert_id: str | None = "new", **ops: Any
) -> dict[str, Any]:
    """A /groups record as the SDK sends it."""
    record: dict[str, Any] = {"$token": token, "$group_key": key, "$group_id": group_id, "$time": now_ms()}
    if insert_id is not None:
        record["$insert_id"] = new_id() if insert_id == "new" else insert_id
    record.update({f"${k}": v for k, v in ops.items()})
    return record


def groups(client: Collector, records: Any, path: str = "/groups/", **kwargs: Any) -> Any:
    if "json" in kwargs:
        return client.http.post(path + "?verbose=1", **kwargs)
    return client.http.post(path + "?verbose=1", **form(records))


def group_props(client: Collector, key: str, group_id: str) -> dict[str, Any] | None:
    r = client.get(f"/api/groups/{quote(key, safe='')}/{quote(group_id, safe='')}")
    if r.status_code == 404:
        return None
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["group_key"] == key and body["group_id"] == group_id
    return body["properties"]


# -- /groups ----------------------------------------------------------------------------


def test_the_six_group_operations(client: Collector) -> None:
    assert group_props(client, "company", "acme") is None
    assert groups(client, [grp("acme", set={"name": "Acme", "plan": "free", "tags": ["a"]})]).json() == {
        "status": 1, "error": None,
    }  # fmt: skip
    groups(client, [grp("acme", set_once={"name": "Other", "founded": 1999})])
    groups(client, [grp("acme", union={"tags": ["b", "a"]})])
    groups(client, [grp("acme", remove={"tags": "a"})])
    groups(client, [grp("acme", unset=["plan"])])
    assert group_props(client, "company", "acme") == {"name": "Acme", "tags": ["b"], "founded": 1999}
    assert group_props(client, "team", "acme") is None  # keyed by (token, key, id)
    groups(client, [grp("acme", delete="")])
    assert group_props(client, "company", "acme") is None
    groups(client, [grp("acme", set={"name": "Acme again"})])
    assert group_props(client, "company", "acme") == {"name": "Acme again"}


def test_groups_exactly_once_json_body_both_paths_and_projects(client: Collector) -> None:
    record = grp(7, union={"seats": ["s1"]}, insert_id="fixed-1")
    record2 = grp(7, set={"n": 1}, insert_id=None)
    for path in ("/groups", "/groups/"):
        r = groups(client, None, path=path, json=[record, record2])
        assert r.status_code == 200 and r.json()["status"] == 1
    groups(client, [grp(7, remove={"seats": "s1"}, insert_id="fixed-2")])
    groups(client, [grp(7, remove={"seats": "s1"}, insert_id="fixed-2")])
    groups(client, [record])  # a replay after the remove: not applied again
    assert group_props(client, "company", "7") == {"seats": [], "n": 1}
    groups(client, [grp(7, token=TOKEN2, set={"other": True})])
    assert group_props(client, "company", "7") == {"seats": [], "n": 1}
    assert client.get("/api/groups/company/7", token=TOKEN2).json()["properties"] == {"other": True}


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        ({"$group_key": "company", "$group_id": "a", "$set": {"x": 1}}, "$token", "missing $token"),
        ({"$token": "nope", "$group_key": "company", "$group_id": "a", "$set": {"x": 1}}, "$token", "unknown token"),
        ({"$token": TOKEN, "$group_id": "a", "$set": {"x": 1}}, "$group_key", "$group_key must be"),
        ({"$token": TOKEN, "$group_key": " ", "$group_id": "a", "$set": {"x": 1}}, "$group_key", "$group_key must be"),
        ({"$token": TOKEN, "$group_key": "k" * 256, "$group_id": "a", "$set": {}}, "$group_key", "longer than 255"),
        ({"$token": TOKEN, "$group_key": "company", "$set": {"x": 1}}, "$group_id", "$group_id must be"),
        ({"$token": TOKEN, "$group_key": "company", "$group_id": True, "$set": {}}, "$group_id", "$group_id must be"),
        ({"$token": TOKEN, "$group_key": "company", "$group_id": ["a"], "$set": {}}, "$group_id", "must be"),
        ({"$token": TOKEN, "$group_key": "company", "$group_id": "a" * 256, "$set": {}}, "$group_id", "longer than"),
        ({"$token": TOKEN, "$group_key": "company", "$group_id": "a"}, None, "no group operation"),
        (
            {"$token": TOKEN, "$group_key": "company", "$group_id": "a", "$add": {"n": 1}},
            "$add",
            "not a group operation",
        ),
        ({"$token": TOKEN, "$group_key": "company", "$group_id": "a", "$union": {"t": "x"}}, "$union", "takes a list"),
        ({"$token": TOKEN, "$group_key": "company", "$group_id": "a", "$set": [1]}, "$set", "takes an object"),
        (
            {"$token": TOKEN, "$group_key": "company", "$group_id": "a", "$set": {"d": {"a": {"b": {"c": {}}}}}},
            None,
            "nest",
        ),
        (
            {"$token": TOKEN, "$group_key": "company", "$group_id": "a", "$set": {f"k{i}": 1 for i in range(2001)}},
            "$set",
            "2000",
        ),
        (
            {"$token": TOKEN, "$group_key": "company", "$group_id": "a", "$insert_id": "bad id!", "$set": {}},
            "$insert_id",
            "$insert_id",
        ),
    ],
)
def test_group_records_are_validated_like_profiles(
    client: Collector, record: dict[str, Any], field: str | None, reason: str
) -> None:
    r = groups(client, [grp("ok", set={"fine": 1}), record])
    assert r.status_code == 200
    body = r.json()
    failed = body["failed_records"]
    assert [f["index"] for f in failed] == [1] and reason in failed[0]["reason"], failed
    if field is not None:
        assert failed[0]["field"] == field
    assert group_props(client, "company", "ok") == {"fine": 1}
    alone = groups(client, [record])
    assert alone.status_code == 400 and alone.json()["status"] == 0
    assert client.http.post("/groups", **form([record])).text == "0"  # not verbose: Mixpanel's 0


def test_a_group_profile_has_the_profile_size_limits(client: Collector) -> None:
    for part in range(2):
        assert groups(client, [grp("big", set={f"p{part}-{i}": 1 for i in range(1000)})]).status_code == 200
    r = groups(client, [grp("big", set={"one-more": 1})])
    assert r.status_code == 400 and "2000" in r.json()["failed_records"][0]["reason"]


def test_groups_list_with_members(client: Collector) -> None:
    load(
        client,
        [
            at("view", "$device:a", D0, company=["acme"]),
            at("$identify", "alice", D0 + 1, **{"$anon_distinct_id": "$device:a"}),
            at("view", "bob", D0 + 2, company="acme"),
            at("view", "carol", D0 + 3, company=["globex", 42]),
            at("view", "dave", D0 + 4),
            at("view", "", D0 + 5, company=["ghost"]),  # tied to no user: not counted
            at("view", "erin", D0 + 6, company=[True, {"x": 1}, "", ["nested"]]),  # no usable id
        ],
    )
    client.engage([{"$token": TOKEN, "$distinct_id": "frank", "$set": {"company": ["initech"]}}])
    groups(client, [grp("acme", set={"name": "Acme"}), grp("empty", set={"name": "Nobody"})])
    r = client.get("/api/groups", group_key="company")
    assert r.status_code == 200, r.text
    listed = {g["group_id"]: g for g in r.json()["groups"]}
    assert sorted(listed) == ["42", "acme", "empty", "globex", "initech"]
    assert listed["acme"]["properties"] == {"name": "Acme"}
    assert [m["distinct_id"] for m in listed["acme"]["members"]] == ["$device:a", "bob"]
    assert listed["acme"]["events"] == 2
    assert [m["distinct_id"] for m in listed["globex"]["members"]] == ["carol"]
    assert [m["distinct_id"] for m in listed["initech"]["members"]] == ["frank"]
    assert listed["empty"]["members"] == [] and listed["empty"]["events"] == 0
    assert client.get("/api/groups").status_code == 400
    assert client.get("/api/groups", group_key="team").json()["groups"] == []


# -- funnel and retention by group ----------------------------------------------------------


@pytest.fixture
def company_data(client: Collector) -> Collector:
    t0 = D0 + 10 * HOUR
    load(
        client,
        [
            # acme: alice views, bob (another member) signs up, carol buys: the group converts
            at("view", "alice", t0, company=["acme"]),
            at("signup", "bob", t0 + MIN, company=["acme"]),
            at("purchase", "carol", t0 + 2 * MIN, company="acme"),
            # globex: signup before view (wrong order) then view only
            at("signup", "gina", t0 - MIN, company=["globex"]),
            at("view", "gina", t0, company=["globex"]),
            # initech and 42 share one event (two groups); then initech alone signs up late
            at("view", "ian", t0, company=["initech", 42]),
            at("signup", "ian", t0 + 40 * DAY, company=["initech"]),
            at("signup", "jo", t0 + HOUR, company=[42]),
            # no group at all
            at("view", "zed", t0),
            at("signup", "zed", t0 + MIN),
        ],
    )
    return client


def funnel(client: Collector, **params: Any) -> list[int]:
    r = client.get("/api/funnel", steps="view,signup,purchase", **params)
    assert r.status_code == 200, r.text
    return [s["count"] for s in r.json()["steps"]]


def test_funnel_by_group_counts_companies(company_data: Collector) -> None:
    assert funnel(company_data, by="group", group_key="company") == [4, 2, 1]  # acme, globex, initech, 42
    assert funnel(company_data) == [4, 1, 0]  # persons: alice, gina, ian, zed view; only zed signs up
    assert funnel(company_data, by="group", group_key="company", window_ms=50 * DAY) == [4, 3, 1]
    assert funnel(company_data, by="group", group_key="company", window_ms=MIN) == [4, 1, 0]
    assert funnel(company_data, by="group", group_key="team") == [0, 0, 0]
    body = company_data.get("/api/funnel", steps="view", by="group", group_key="company").json()
    assert body["by"] == "group" and body["group_key"] == "company"


@pytest.mark.parametrize(
    "params", [{"by": "group"}, {"by": "group", "group_key": ""}, {"group_key": "company"}, {"by": "company"}]
)
def test_group_funnel_and_retention_parameters(client: Collector, params: dict[str, str]) -> None:
    assert client.get("/api/funnel", steps="a", **params).status_code == 400
    assert client.get("/api/retention", born="a", returned="b", **params).status_code == 400


def test_retention_by_group(client: Collector) -> None:
    load(
        client,
        [
            at("view", "alice", D0 + HOUR, company=["acme"]),
            at("open", "bob", D0 + DAY + HOUR, company=["acme"]),  # another member returns
            at("view", "gina", D0 + DAY + 2 * HOUR, company="globex"),
            at("open", "gina", D0 + 2 * DAY, company=["globex"]),
            at("open", "alice", D0 + 2 * DAY + HOUR),  # no group: does not count for acme
        ],
    )
    r = client.get("/api/retention", born="view", returned="open", by="group", group_key="company")
    assert r.status_code == 200, r.text
    assert r.json()["cohorts"] == [
        {"start": D0, "size": 1, "returned": [0, 1, 0]},
        {"start": D0 + DAY, "size": 1, "returned": [0, 1]},
    ]
    by_person = client.get("/api/retention", born="view", returned="open").json()["cohorts"]
    assert by_person[0] == {"start": D0, "size": 1, "returned": [0, 0, 1]}


# -- sessions -------------------------------------------------------------------------------


def test_person_sessions_over_all_ids_oldest_first(client: Collector) -> None:
    load(
        client,
        [
            at("view", "$device:s", D0 + 5 * MIN, **{"$session_id": "s-2"}),
            at("view", "$device:s", D0, **{"$session_id": "s-1"}),
            at("click", "$device:s", D0 + MIN, **{"$session_id": "s-1"}),
            at("$identify", "sam", D0 + 6 * MIN, **{"$anon_distinct_id": "$device:s", "$session_id": "s-2"}),
            at("buy", "sam", D0 + 9 * MIN, **{"$session_id": "s-2"}),
            at("buy", "sam", D0 + 2 * HOUR, **{"$session_id": "s-3"}),
            at("old", "sam", D0 - MIN),  # no session id: left out
            at("view", "other", D0, **{"$session_id": "s-x"}),
        ],
    )
    expected = [
        {"session_id": "s-1", "start": D0, "end": D0 + MIN, "events": 2},
        {"session_id": "s-2", "start": D0 + 5 * MIN, "end": D0 + 9 * MIN, "events": 3},
        {"session_id": "s-3", "start": D0 + 2 * HOUR, "end": D0 + 2 * HOUR, "events": 1},
    ]
    for distinct_id in ("sam", "$device:s"):
        r = client.get("/api/persons/" + quote(distinct_id, safe="") + "/sessions")
        assert r.status_code == 200, r.text
        assert r.json() == {"sessions": expected}
    assert client.get("/api/persons/nobody/sessions").status_code == 404


# -- --api-route ------------------------------------------------------------------------------


def test_custom_routes_accept_their_kind_beside_the_defaults(make_client: Callable[..., Collector]) -> None:
    client = make_client(
        api_routes=(("track", "e/"), ("engage", "/p"), ("groups", "g/x"), ("cookie", "id")),
        secret=None,
    )
    records = [event("view", "u1"), event("click", "u1")]
    assert client.track(records[:1], path="/e/").json() == {"status": 1, "error": None}
    assert client.track(records[1:], path="/e").status_code == 200
    # a beacon: text/plain with the form body, on the custom path
    beacon = "data=" + quote(json.dumps([event("unload", "u1")]), safe="")
    r = client.http.post("/e/", content=beacon, headers={"Content-Type": "text/plain;charset=UTF-8"})
    assert r.status_code == 200 and r.text == "1"
    assert client.track([event("default", "u1")], path="/track/").status_code == 200
    assert [e["event"] for e in client.person_events("u1")] == ["view", "click", "unload", "default"]
    r = client.http.post("/p/?verbose=1", **form([{"$token": TOKEN, "$distinct_id": "u1", "$set": {"a": 1}}]))
    assert r.json()["status"] == 1 and client.person("u1")["properties"] == {"a": 1}  # type: ignore[index]
    assert groups(client, [grp("acme", set={"n": 1})], path="/g/x/").json()["status"] == 1
    assert group_props(client, "company", "acme") == {"n": 1}
    r = client.http.post("/id", data={"token": TOKEN, "value": ANON}, headers={"Origin": "http://testserver"})
    assert r.status_code == 200 and "set-cookie" in r.headers
    assert client.http.post("/e/x", **form(records)).status_code in (404, 405)


@pytest.mark.parametrize(
    "text",
    [
        "nope=/e",
        "track",
        "track=",
        "track=/",
        "track=/api/x",
        "track=/healthz",
        "engage=/track",
        "track=/a b",
        "track=/{x}",
        "track=/a/../b",
        "track=/e?x=1",
    ],
)
def test_bad_api_routes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="--api-route"):
        parse_api_route(text)


def test_api_route_settings() -> None:
    assert parse_api_route("track=e/") == ("track", "/e")
    assert parse_api_route(" groups = /g/x/ ") == ("groups", "/g/x")
    with pytest.raises(ValueError, match="both track and engage"):
        Settings(db_path="x.db", tokens=("t",), api_routes=(("track", "e"), ("engage", "/e/")))
    settings = Settings(db_path="x.db", tokens=("t",), api_routes=("track=e", ("track", "/e/")))
    assert settings.api_routes == (("track", "/e"),)
    for bad in ("", "http://x.example", "x.example:80", "127.0.0.1", "localhost", "a..b", "-a.b"):
        with pytest.raises(ValueError, match="cookie_domain"):
            Settings(db_path="x.db", tokens=("t",), cookie_domain=bad)
    assert Settings(db_path="x.db", tokens=("t",), cookie_domain=".Shop.Example").cookie_domain == "shop.example"


# -- POST /cookie -------------------------------------------------------------------------------

ANON = json.dumps({"distinct_id": "$device:d-1", "$device_id": "d-1", "$user_id": None, "state": "anonymous"})
USER = json.dumps({"distinct_id": "user@x", "$device_id": "d-1", "$user_id": "user@x", "state": "identified"})


def post_cookie(
    client: Collector,
    value: str = ANON,
    token: str = TOKEN,
    origin: str | None = "http://testserver",
    host: str | None = None,
    path: str = "/cookie",
    **headers: str,
) -> Any:
    sent = dict(headers)
    if origin is not None:
        sent["Origin"] = origin
    if host is not None:
        sent["Host"] = host
    sent["Content-Type"] = "application/x-www-form-urlencoded"
    body = "token=" + quote(token, safe="") + "&value=" + quote(value, safe="")
    return client.http.post(path, content=body, headers=sent)


def cookie_value(response: Any, token: str = TOKEN) -> str:
    header = response.headers["set-cookie"]
    name, _, rest = header.partition("=")
    assert name == "empmix_" + token
    return unquote(rest.split(";", 1)[0])


def test_same_origin_gets_the_cookie(client: Collector) -> None:
    for value in (ANON, USER):
        r = post_cookie(client, value)
        assert r.status_code == 200 and r.json() == {"status": 1, "error": None}
        header = r.headers["set-cookie"]
        assert header.endswith("; Max-Age=31536000; Path=/; SameSite=Lax"), header
        assert cookie_value(r) == value
        assert r.headers["access-control-allow-origin"] == "http://testserver"
        assert r.headers["access-control-allow-credentials"] == "true"
        assert r.headers["cache-control"] == "no-store"
    r = post_cookie(client, path="/cookie/", **{"Sec-Fetch-Site": "same-origin"})
    assert r.status_code == 200 and "set-cookie" in r.headers


def test_same_site_pages_get_it_with_the_cookie_domain_and_secure(make_client: Callable[..., Collector]) -> None:
    client = make_client(cookie_domain="shop.example")
    r = post_cookie(client, origin="https://www.shop.example", host="t.shop.example", **{"Sec-Fetch-Site": "same-site"})
    assert r.status_code == 200, r.text
    assert r.headers["set-cookie"].endswith("; SameSite=Lax; Domain=shop.example; Secure")
    assert r.headers["access-control-allow-origin"] == "https://www.shop.example"
    r = post_cookie(client, origin="http://shop.example", host="shop.example:8000")
    assert r.status_code == 200 and "Secure" not in r.headers["set-cookie"]
    # the registrable domain matches, but the page lies outside --cookie-domain
    client2 = make_client(cookie_domain="app.shop.example")
    r = post_cookie(client2, origin="https://blog.shop.example", host="t.app.shop.example")
    assert r.status_code == 403 and "set-cookie" not in r.headers
    # DNS rebinding: a page of evil.example on this collector's address is same-origin, yet
    # outside --cookie-domain (and the collector's host too): no cookie
    r = post_cookie(client, origin="http://evil.example", host="evil.example")
    assert r.status_code == 403 and "outside --cookie-domain" in r.json()["error"]
    assert "set-cookie" not in r.headers


@pytest.mark.parametrize(
    ("origin", "host", "headers", "reason"),
    [
        ("http://evil.example", None, {}, "not on this collector's site"),
        ("https://shop.example.evil.example", "t.shop.example", {}, "not on this collector's site"),
        ("https://evilshop.example", "shop.example", {}, "not on this collector's site"),
        ("https://attacker.github.io", "victim.github.io", {}, "not on this collector's site"),
        ("https://evil.co.uk", "shop.co.uk", {}, "not on this collector's site"),
        ("http://127.0.0.2", "127.0.0.1:8000", {}, "not on this collector's site"),
        ("http://localhost:8001", "127.0.0.1:8000", {}, "not on this collector's site"),
        ("https://www.shop.example", "t.shop.example", {"Sec-Fetch-Site": "cross-site"}, "cross-site"),
        (None, None, {}, "no Origin"),
        ("null", None, {}, "Origin null"),
        ("file://", None, {}, ""),
    ],
)
def test_a_cross_site_page_never_gets_it(
    client: Collector, origin: str | None, host: str | None, headers: dict[str, str], reason: str
) -> None:
    r = post_cookie(client, origin=origin, host=host, **headers)
    assert r.status_code == 403, r.text
    assert "set-cookie" not in r.headers
    assert reason in r.json()["error"]
    assert r.headers.get("access-control-allow-origin") in (None, origin)  # never "*"


def test_the_cors_allow_list_applies(make_client: Callable[..., Collector]) -> None:
    client = make_client(allow_origins=("https://www.shop.example",))
    r = post_cookie(client, origin="https://blog.shop.example", host="t.shop.example")
    assert r.status_code == 403 and "set-cookie" not in r.headers
    assert "access-control-allow-origin" not in r.headers
    r = post_cookie(client, origin="https://www.shop.example", host="t.shop.example")
    assert r.status_code == 200 and r.headers["access-control-allow-origin"] == "https://www.shop.example"
    r = post_cookie(client, origin="http://testserver")  # the collector's own pages: always allowed
    assert r.status_code == 200


def _identity(**changes: Any) -> str:
    data: dict[str, Any] = {"distinct_id": "$device:d-1", "$device_id": "d-1", "$user_id": None, "state": "anonymous"}
    data.update(changes)
    return json.dumps({k: v for k, v in data.items() if v != "<drop>"})


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("not json", "not JSON"),
        ("[1]", "not a JSON object"),
        ('"$device:x"', "not a JSON object"),
        ("[" * 1100 + "]" * 1100, "longer than"),
        ("{" * 20, "flat"),
        (_identity(extra="x"), "keys an identity does not have"),
        (_identity(state="<drop>"), "lacks state"),
        (_identity(distinct_id="$device:other"), "anonymous identity"),
        (_identity(state="identified"), "anonymous identity"),
        (_identity(distinct_id="null", **{"$user_id": "null", "state": "identified"}), "placeholder"),
        (_identity(distinct_id="u", **{"$user_id": "v", "state": "identified"}), "identified identity"),
        (_identity(distinct_id="$device:x", **{"$user_id": "$device:x", "state": "identified"}), "anonymous id"),
        (_identity(distinct_id="$device:undefined", **{"$device_id": "undefined"}), "placeholder"),
        (_identity(distinct_id="$device:", **{"$device_id": ""}), "device id"),
        (_identity(distinct_id="$device:" + "d" * 256, **{"$device_id": "d" * 256}), "distinct_id"),
        (_identity(**{"$device_id": 5}), "$device_id"),
        (_identity(**{"$alias": ["x"]}), "$alias"),
        (_identity(distinct_id={"x": 1}), "distinct_id"),
        (_identity(distinct_id="$device:a\x00", **{"$device_id": "a\x00"}), "NUL"),
        (
            json.dumps(
                {
                    "distinct_id": "u" * 255,
                    "$device_id": "d" * 255,
                    "$user_id": "u" * 255,
                    "state": "identified",
                    "$alias": "a" * 255,
                    "pad": "x" * 2000,
                }
            ),
            "longer than",
        ),
    ],
)
def test_only_a_valid_identity_is_set(client: Collector, value: str, reason: str) -> None:
    r = post_cookie(client, value)
    assert r.status_code == 400, r.text
    assert reason in r.json()["error"], r.json()
    assert "set-cookie" not in r.headers


def test_bad_requests_to_the_cookie_endpoint(client: Collector) -> None:
    headers = {"Origin": "http://testserver", "Content-Type": "application/x-www-form-urlencoded"}
    for body in ("", "token=tok", "value=x", "token=tok&token=tok&value=" + quote(ANON), "\xff"):
        r = client.http.post("/cookie", content=body.encode("latin-1"), headers=headers)
        assert r.status_code == 400 and "set-cookie" not in r.headers, (body, r.text)
    assert post_cookie(client, token="unknown").status_code == 400
    r = client.http.post("/cookie", content="token=tok&value=" + "x" * 9000, headers=headers)
    assert r.status_code == 413 and "set-cookie" not in r.headers
    # a hostile value cannot add attributes or headers: everything but unreserved is encoded
    tricky = _identity(
        distinct_id="a; Domain=evil.example\r\nX: y",
        **{"$user_id": "a; Domain=evil.example\r\nX: y", "state": "identified"},
    )
    r = post_cookie(client, tricky)
    assert r.status_code == 200
    header = r.headers["set-cookie"]
    assert (
        "evil.example" in unquote(header)
        and "; Domain" not in header
        and "\r" not in header
        and " " not in header.split(";")[0]
    )
    assert cookie_value(r) == tricky


def test_site_of() -> None:
    assert site_of("www.shop.example") == site_of("t.shop.example") == "shop.example"
    assert site_of("a.b.shop.co.uk") == "shop.co.uk"
    assert site_of("victim.github.io") == "victim.github.io"
    assert site_of("127.0.0.1") == "127.0.0.1" and site_of("localhost") == "localhost"
    assert check_identity(ANON) is None and check_identity(USER) is None


def test_routes_and_cookie_options_on_the_command_line(start_collector: Callable[..., Any], tmp_path: Any) -> None:
    import http.client
    import subprocess
    import sys
    from urllib.parse import urlsplit

    proc = start_collector(
        "--api-route", "track=e/", "--api-route", "cookie=c", "--cookie-domain", "shop.example",
        "--allowed-host", "t.shop.example", "--allowed-host", "127.0.0.1",
    )  # fmt: skip
    parts = urlsplit(proc.url)

    def post(path: str, body: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        out = (response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        conn.close()
        return out

    beacon = "data=" + quote(json.dumps([event("unload", "cli-user")]), safe="")
    status, _, body = post("/e/?verbose=1", beacon, {"Content-Type": "text/plain;charset=UTF-8"})
    assert (status, json.loads(body)) == (200, {"status": 1, "error": None})
    assert [e["event"] for e in proc.events_of("cli-user")] == ["unload"]
    form_body = "token=" + TOKEN + "&value=" + quote(ANON, safe="")
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Origin": "https://www.shop.example",
        "Host": "t.shop.example",
    }
    status, got, _ = post("/c", form_body, headers)
    assert status == 200 and got["set-cookie"].endswith("; Domain=shop.example; Secure")
    assert got["access-control-allow-origin"] == "https://www.shop.example"
    status, got, _ = post("/c", form_body, {**headers, "Origin": "https://evil.example"})
    assert status == 403 and "set-cookie" not in got
    for args, message in (
        (["--api-route", "track=/api/x"], "own paths"),
        (["--cookie-domain", "1.2.3.4"], "cookie_domain"),
    ):
        bad = subprocess.run(
            [sys.executable, "-m", "empmix_collector", "--db", str(tmp_path / "x.db"), "--token", TOKEN, *args],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert bad.returncode == 2 and message in bad.stderr, bad.stderr

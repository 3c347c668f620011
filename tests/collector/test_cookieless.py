"""Cookieless ids (issue 19), on both stores: the id, its salts, the client address, privacy,
several nodes. Identity (resets, consent, merges) and the query API: test_cookieless_identity.py."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from empmix_collector.domain import cookieless as ck
from empmix_collector.settings import Settings
from empmix_collector.store import cookieless as store_ck
from tests.collector.conftest import TOKEN, Collector, event
from tests.collector.cookieless_helpers import (
    COOKIELESS,
    COOKIELESS_PREFIX,
    DAY,
    PAGE,
    UA_A,
    UA_B,
    Browser,
    at_day,
    tables,
    view,
)
from tests.collector.dbs import is_postgres, rows
from tests.collector_process import CollectorProcess

# -- the pure part ---------------------------------------------------------------------------


def test_the_hash_is_keyed_stable_and_base32() -> None:
    salt = ck.new_salt()
    inputs: dict[str, Any] = {"project_id": 1, "ip": "203.0.113.9", "user_agent": UA_A, "host": "shop.example"}
    base = ck.base_hash(salt, **inputs)
    assert base == ck.base_hash(salt, **inputs) and len(base) == 32 and base == base.lower()
    assert set(base) <= set("abcdefghijklmnopqrstuvwxyz234567")
    assert ck.visitor_id(salt, base, 0) == COOKIELESS_PREFIX + base
    assert base != ck.base_hash(ck.new_salt(), **inputs)
    for name, other in (("project_id", 2), ("ip", "203.0.113.10"), ("user_agent", UA_B), ("host", "other.example")):
        assert base != ck.base_hash(salt, **{**inputs, name: other}), name
    generations = {ck.visitor_id(salt, base, g) for g in range(4)}
    assert len(generations) == 4 and all(g.startswith(COOKIELESS_PREFIX) for g in generations)


def test_client_address_and_page_host() -> None:
    assert ck.client_ip("10.0.0.1", ["198.51.100.1"], 0) == "10.0.0.1"
    assert ck.client_ip("10.0.0.1", ["198.51.100.1, 10.0.0.9"], 1) == "10.0.0.9"
    assert ck.client_ip("10.0.0.1", ["198.51.100.1", "10.0.0.9"], 2) == "198.51.100.1"
    assert ck.client_ip("10.0.0.1", ["198.51.100.1"], 3) == "198.51.100.1"  # a shorter chain: its leftmost
    assert ck.client_ip("10.0.0.1", [], 1) == "10.0.0.1"
    assert ck.page_host("https://Shop.Example:8443/a?b", "https://other.example") == "shop.example"
    assert ck.page_host(None, "https://other.example") == "other.example"
    assert ck.page_host(42, None) == "" and ck.page_host("http://[::1", None) == ""


def test_bad_settings_are_refused() -> None:
    for options in ({"trust_proxy": -1}, {"trust_proxy": "1"}, {"cookieless_salt_days": 0}):
        with pytest.raises(ValueError, match="trust-proxy|cookieless-salt-days"):
            Settings(db_path="x.db", tokens=("t",), **options)


# -- through the collector, both stores -----------------------------------------------------


def test_the_same_browser_keeps_its_id_within_a_day_and_gets_another_the_next(client: Collector) -> None:
    browser = Browser(client)
    at_day(client, DAY, hour=0)
    first = browser.visit()
    at_day(client, DAY, hour=23)
    assert first.startswith(COOKIELESS_PREFIX) and len(first) == len(COOKIELESS_PREFIX) + 32
    assert browser.visit() == first
    at_day(client, DAY + 1, hour=0)  # a visit that spans midnight UTC is two ids
    second = browser.visit()
    assert second != first and second.startswith(COOKIELESS_PREFIX)
    assert not client.same_person(first, second)
    # the page's host enters the hash: $current_url, else the Origin header
    other_site = browser.send(view(**{"$current_url": "https://blog.example/"}))[0]
    record = event("$mp_web_page_view", COOKIELESS)
    response = client.http.post(
        "/track?verbose=1",
        content="data=" + json.dumps([record]),
        headers={"Content-Type": "application/x-www-form-urlencoded", "User-Agent": UA_A, "Origin": PAGE},
    )
    assert response.status_code == 200, response.text
    assert other_site != second and browser.client_id(record["properties"]["$insert_id"]) == second


def test_another_project_another_id_and_a_bad_token_is_refused(client: Collector) -> None:
    browser = Browser(client)
    at_day(client, DAY)
    mine = browser.visit()
    theirs = browser.post("/track", [view(token="tok2")])
    assert theirs["status"] == 1
    reply = browser.post("/track", [view(token="nope")], status=400)
    assert "unknown token" in reply["failed_records"][0]["reason"]
    other = [e for e in client.get("/api/events", token="tok2").json()["events"]]
    assert len(other) == 1 and other[0]["distinct_id"] != mine
    assert other[0]["distinct_id"].startswith(COOKIELESS_PREFIX)


def test_expired_salts_are_deleted_with_their_resets(make_client: Callable[..., Collector]) -> None:
    client = make_client(cookieless_salt_days=2)
    browser = Browser(client)
    for day in (DAY, DAY + 1):
        at_day(client, day)
        browser.visit()
        browser.send(event(ck.RESET_EVENT, COOKIELESS))
    target = client.settings.db_path
    assert sorted(r[0] for r in rows(target, "SELECT day FROM cookieless_salts")) == [DAY, DAY + 1]
    at_day(client, DAY + 2)
    browser.visit()
    assert sorted(r[0] for r in rows(target, "SELECT day FROM cookieless_salts")) == [DAY + 1, DAY + 2]
    assert sorted(r[0] for r in rows(target, "SELECT day FROM cookieless_resets")) == [DAY + 1]
    short = make_client(cookieless_salt_days=1)
    for day in (DAY, DAY + 1):
        at_day(short, day)
        Browser(short).visit()
    assert rows(short.settings.db_path, "SELECT day FROM cookieless_salts") == [(DAY + 1,)]


def test_x_forwarded_for_is_ignored_without_trust_proxy(make_client: Callable[..., Collector]) -> None:
    plain = make_client()
    at_day(plain, DAY)
    one = Browser(plain, forwarded_for="198.51.100.1").visit()
    assert Browser(plain, forwarded_for="198.51.100.2").visit() == one  # the socket peer, twice
    proxied = make_client(trust_proxy=1)
    at_day(proxied, DAY)
    first = Browser(proxied, forwarded_for="198.51.100.1").visit()
    assert Browser(proxied, forwarded_for="198.51.100.2").visit() != first
    assert Browser(proxied, forwarded_for="203.0.113.66, 198.51.100.1").visit() == first  # the right entry
    two = make_client(trust_proxy=2)
    at_day(two, DAY)
    behind = Browser(two, forwarded_for="198.51.100.7, 10.0.0.1").visit()
    assert Browser(two, forwarded_for="198.51.100.7, 10.0.0.2").visit() == behind
    assert Browser(two, forwarded_for="198.51.100.8, 10.0.0.1").visit() != behind


def test_the_stored_rows_hold_no_address_and_no_user_agent(make_client: Callable[..., Collector]) -> None:
    client = make_client(trust_proxy=1)
    at_day(client, DAY)
    address = "198.51.100.231"
    browser = Browser(client, forwarded_for=address)
    browser.visit()
    browser.send(
        event("$identify", "user-p", **{"$anon_distinct_id": COOKIELESS}),
        event(ck.RESET_EVENT, COOKIELESS),
        view(),
        view(**{"$device_id": "dev-p", "$cookieless_link": True}),
    )
    browser.post("/engage", [{"$token": TOKEN, "$distinct_id": COOKIELESS, "$set": {"plan": "free"}}])
    stored = repr(tables(client.settings.db_path))
    assert COOKIELESS_PREFIX in stored and "cookieless_reset" in stored
    for secret in (address, UA_A, "EmpmixTestChrome", "testclient"):
        assert secret not in stored, secret


def _nodes(make_client: Callable[..., Collector], count: int) -> list[Collector]:
    first = make_client()
    return [first] + [make_client(db_path=first.settings.db_path) for _ in range(count - 1)]


def test_nodes_racing_on_a_new_day_agree(make_client: Callable[..., Collector]) -> None:
    nodes = _nodes(make_client, 3)
    for node in nodes:
        at_day(node, DAY + 7)
    start = threading.Barrier(len(nodes))
    ids: list[str] = []
    errors: list[BaseException] = []

    def visit(node: Collector) -> None:
        try:
            start.wait(10)
            ids.append(Browser(node).visit())
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=visit, args=(node,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    assert len(ids) == 3 and len(set(ids)) == 1
    target = nodes[0].settings.db_path
    assert rows(target, "SELECT day, COUNT(*) FROM cookieless_salts GROUP BY day") == [(DAY + 7, 1)]


def test_the_salt_is_created_once_under_a_race(make_client: Callable[..., Collector]) -> None:
    nodes = _nodes(make_client, 2)
    stores = [node.http.app.state.store for node in nodes] * 3  # type: ignore[attr-defined]
    start = threading.Barrier(len(stores))
    salts: list[str] = []
    project = stores[0].projects[TOKEN]

    def create(store: Any) -> None:
        start.wait(10)
        salts.append(store.aside_sync(store_ck.cookieless_salt, project, DAY + 9, ck.new_salt(), 0, 2))

    threads = [threading.Thread(target=create, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(salts) == len(stores) and len(set(salts)) == 1


def test_profile_records_get_the_cookieless_id(client: Collector) -> None:
    browser = Browser(client)
    at_day(client, DAY)
    visitor = browser.visit()
    browser.post("/engage", [{"$token": TOKEN, "$distinct_id": COOKIELESS, "$set": {"plan": "free"}}])
    person = client.person(visitor)
    assert person is not None and person["properties"] == {"plan": "free"}
    assert client.person(COOKIELESS) is None


def _post_as(proc: CollectorProcess, record: dict[str, Any], forwarded_for: str) -> None:
    parts = urlsplit(proc.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        headers = {"Content-Type": "application/json", "User-Agent": UA_A, "X-Forwarded-For": forwarded_for}
        conn.request("POST", "/track?verbose=1", body=json.dumps([record]), headers=headers)
        reply = conn.getresponse()
        assert reply.status == 200, reply.read()
        reply.read()
    finally:
        conn.close()


def test_two_collector_processes_with_trust_proxy_agree(start_collector: Callable[..., CollectorProcess]) -> None:
    """Real sockets and the command line: --trust-proxy 1 on two nodes of one database."""
    first = start_collector("--trust-proxy", "1", "--cookieless-salt-days", "3")
    nodes = [first] if not is_postgres(first.db) else [first, start_collector("--trust-proxy", "1", db=first.db)]
    sent = [(view(), node, "198.51.100.5") for node in nodes] + [(view(), first, "198.51.100.6")]
    for record, node, address in sent:
        _post_as(node, record, address)
    stored = {row[0]: row[1] for row in rows(first.db, "SELECT insert_id, distinct_id FROM events")}
    ids = [stored[record["properties"]["$insert_id"]] for record, _, _ in sent]
    if len(rows(first.db, "SELECT day FROM cookieless_salts")) == 1:  # (not run across midnight UTC)
        assert len(set(ids[:-1])) == 1 and ids[-1] != ids[0]
    assert all(i.startswith(COOKIELESS_PREFIX) for i in ids)


def test_odd_cookieless_input_is_a_clear_4xx_and_moves_nothing(client: Collector) -> None:
    at_day(client, DAY)
    browser = Browser(client, user_agent="x" * 4000)
    odd = [
        view(**{"$current_url": "http://[::1"}),
        view(**{"$current_url": 42}),
        view(**{"$current_url": "not a url at all"}),
        event(ck.RESET_EVENT, COOKIELESS, **{"$insert_id": "not valid!"}),
        event("$identify", COOKIELESS, **{"$anon_distinct_id": COOKIELESS}),
    ]
    reply = browser.post("/track", odd)
    assert [f["index"] for f in reply["failed_records"]] == [3]
    assert rows(client.settings.db_path, "SELECT COUNT(*) FROM cookieless_resets") == [(0,)]
    only_bad = browser.post("/track", [view(token="nope"), view(time="soon")], status=400)
    assert len(only_bad["failed_records"]) == 2
    assert browser.post("/engage", [{"$token": "nope", "$distinct_id": COOKIELESS, "$set": {}}], status=400)
    # the identify named the visit on both sides: a no-op, never an identified person
    visitor = browser.client_id(odd[0]["properties"]["$insert_id"])
    assert client.person(visitor)["identified"] is False  # type: ignore[index]


def test_the_command_line_options(tmp_path: Any) -> None:
    from empmix_collector.cli import build_parser, settings_from_args

    args = ["--db", str(tmp_path / "c.db"), "--token", "t", "--trust-proxy", "2", "--cookieless-salt-days", "3"]
    settings = settings_from_args(build_parser().parse_args(args))
    assert (settings.trust_proxy, settings.cookieless_salt_days) == (2, 3)
    defaults = settings_from_args(build_parser().parse_args(args[:4]))
    assert (defaults.trust_proxy, defaults.cookieless_salt_days) == (0, 2)

"""Several collectors on one PostgreSQL give what one collector gives.

One person's sign-up, logins, events and profile updates go through three nodes at
once, in phases; inside a phase every request is sent at the same moment to a
different node, including two conflicting pairs: two devices claiming the same
alias, and one new device identified as two different users. The outcome of a race
may go either way, but it must be one a single node could have produced: the same
records sent to one node, one at a time, with the identity events in the order the
three nodes committed them (their merge log), must end in the same persons,
profiles, merge log and funnel.

Exactly once across nodes: the same records (same ``$insert_id``) posted to two nodes at once,
or again to the other node after a lost reply, are stored (``/track``) or applied (``/engage``,
``/groups``) once.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.collector.conftest import SECRET, TOKEN, event, new_id, now_ms, wait_for
from tests.collector.dbs import rows
from tests.collector.pgcluster import PgCluster
from tests.collector_process import CollectorProcess, launch_collector

Record = dict[str, Any]
NODES = 3


def _post(url: str, path: str, records: list[Record]) -> int:
    return _reply(url, path, records)[0]


def _at_once(sends: list[tuple[str, str, list[Record]]]) -> None:
    """Send every (url, path, records) from its own thread, released together."""
    start = threading.Barrier(len(sends))
    statuses: list[int] = []

    def send(url: str, path: str, records: list[Record]) -> None:
        start.wait(10)
        statuses.append(_post(url, path, records))

    threads = [threading.Thread(target=send, args=item) for item in sends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(statuses) == [200] * len(sends), statuses


def _phases() -> list[list[tuple[str, list[Record]]]]:
    """(path, records) per request, per phase; the same records for both runs."""
    anon = [("/track", [event("view", "$device:P", step=i) for i in range(k, k + 5)]) for k in range(0, 30, 5)]
    identity = [
        ("/track", [event("$create_alias", "$device:P", alias="pat@example.com")]),
        ("/track", [event("$create_alias", "$device:Q", alias="pat@example.com")]),  # same alias, other device
        ("/track", [event("$identify", "pat@example.com", **{"$anon_distinct_id": "$device:P2"})]),
        ("/track", [event("$identify", "sam@example.com", **{"$anon_distinct_id": "$device:P2"})]),  # conflict
        ("/track", [event("$identify", "pat@example.com", **{"$anon_distinct_id": "$device:P"})]),
    ]
    logged_in = [
        ("/track", [event("signup", "pat@example.com", **{"$device_id": "P", "$user_id": "pat@example.com"})]),
        ("/track", [event("view", "$device:P2", **{"$device_id": "P2", "$user_id": "pat@example.com"})]),
        ("/track", [event("purchase", "pat@example.com", price=9)]),
        ("/track", [event("view", "sam@example.com")]),
    ]
    profiles = [
        ("/engage", [{"$token": TOKEN, "$distinct_id": "pat@example.com", "$set": {"plan": "pro"}}]),
        ("/engage", [{"$token": TOKEN, "$distinct_id": "$device:P", "$add": {"logins": 1}}]),
        ("/engage", [{"$token": TOKEN, "$distinct_id": "$device:P2", "$add": {"logins": 1}}]),
        ("/engage", [{"$token": TOKEN, "$distinct_id": "pat@example.com", "$set_once": {"first": "web"}}]),
    ]
    phases = [anon, identity, logged_in, profiles]
    # distinct times, in the order written: equal times would be ordered by arrival, which a race decides
    t0 = now_ms() - 60_000
    records = [r for phase in phases for _, batch in phase for r in batch if "properties" in r]
    for n, record in enumerate(records):
        record["properties"]["time"] = t0 + 10 * n
    return phases


def _state(proc: CollectorProcess) -> dict[str, Any]:
    persons = proc.api("/api/persons?limit=1000")["persons"]
    merges = proc.api("/api/merges")["merges"]
    funnel = proc.api("/api/funnel?steps=view,signup,purchase")["steps"]
    return {
        "persons": sorted(
            (sorted(p["distinct_ids"]), p["identified"], json.dumps(p["properties"], sort_keys=True)) for p in persons
        ),
        "merges": sorted((m["kind"], m["from_id"], m["to_id"], m["result"], m["reason"] or "") for m in merges),
        "funnel": funnel,
        "events_of_pat": sorted(e["insert_id"] for e in proc.events_of("pat@example.com")),
    }


@pytest.fixture
def processes(pg_cluster: PgCluster) -> Iterator[list[CollectorProcess]]:
    started: list[CollectorProcess] = []
    yield started
    for proc in started:
        proc.stop()


def test_three_nodes_end_as_one_node_would(pg_cluster: PgCluster, processes: list[CollectorProcess]) -> None:
    shared = pg_cluster.fresh_url()
    nodes = [launch_collector(shared, tokens=[TOKEN], secret=SECRET) for _ in range(NODES)]
    processes.extend(nodes)
    phases = _phases()
    for phase in phases:
        _at_once([(nodes[i % NODES].url, path, records) for i, (path, records) in enumerate(phase)])
    merged = _state(nodes[0])
    assert all(_state(node) == merged for node in nodes[1:])  # every node reads the same database

    # at most one claim of each conflicting pair won; the loser is in the merge log with its reason
    results = {(m[0], m[1], m[2]): (m[3], m[4]) for m in merged["merges"]}
    aliases = [results.get(("alias", d, "pat@example.com"), ("", "")) for d in ("$device:P", "$device:Q")]
    assert [r[0] for r in aliases].count("merged") <= 1, aliases
    p2 = [results.get(("identify", "$device:P2", u)) for u in ("pat@example.com", "sam@example.com")]
    assert sorted(r[0] for r in p2 if r) == ["merged", "refused"], p2
    for distinct_ids, _, _ in merged["persons"]:
        assert not {"pat@example.com", "sam@example.com"} <= set(distinct_ids), "one person merged with two users"

    # one node, one request at a time, identity events in the order the three nodes committed them
    order = [m["insert_id"] for m in nodes[0].api("/api/merges")["merges"]]
    rank = {insert_id: n for n, insert_id in enumerate(order)}
    single = launch_collector(pg_cluster.fresh_url(), tokens=[TOKEN], secret=SECRET)
    processes.append(single)
    for phase in phases:
        ordered = sorted(phase, key=lambda item: rank.get(item[1][0].get("properties", {}).get("$insert_id"), -1))
        for path, records in ordered:
            assert _post(single.url, path, records) == 200
    assert _state(single) == merged


# -- exactly once across nodes --------------------------------------------------------------------
# The same records ($insert_id and all) reach two nodes of one database: sent to both at once (an
# SDK behind a load balancer that retried too early), or sent again to the other node after the
# first stored them and the reply was lost. Events are stored once; profile and group operations
# are applied once, which a later operation makes visible: applied twice, the retried one would
# undo it.


def _reply(url: str, path: str, records: list[Record]) -> tuple[int, Any]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", path + "?verbose=1", body="data=" + quote(json.dumps(records), safe=""),
                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        reply = conn.getresponse()
        return reply.status, json.loads(reply.read())
    finally:
        conn.close()


def _hang_up_after_sending(url: str, path: str, records: list[Record]) -> None:
    """Send a request and close the connection without reading the reply: a reply lost on its way."""
    parts = urlsplit(url)
    body = ("data=" + quote(json.dumps(records), safe="")).encode()
    head = (f"POST {path}?verbose=1 HTTP/1.1\r\nHost: {parts.hostname}:{parts.port}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(head.encode() + body)


def _applied(db: str, table: str) -> Counter[str]:
    """``$insert_id`` -> rows: events stored (``events``), operations applied (``*_updates``)."""
    return Counter(row[0] for row in rows(db, f"SELECT insert_id FROM {table}"))


def _engage(distinct_id: str, op: str, value: Any) -> Record:
    return {"$token": TOKEN, "$distinct_id": distinct_id, op: value, "$insert_id": new_id()}


def _group(group_id: str, op: str, value: Any) -> Record:
    return {"$token": TOKEN, "$group_key": "company", "$group_id": group_id, op: value, "$insert_id": new_id()}


def _group_properties(node: CollectorProcess, group_id: str) -> dict[str, Any]:
    found = node.api(f"/api/groups/company/{group_id}")
    assert found is not None, group_id
    return found["properties"]  # type: ignore[no-any-return]


@pytest.fixture
def two_nodes(pg_cluster: PgCluster, processes: list[CollectorProcess]) -> list[CollectorProcess]:
    shared = pg_cluster.fresh_url()
    nodes = [launch_collector(shared, tokens=[TOKEN], secret=SECRET) for _ in range(2)]
    processes.extend(nodes)
    return nodes


def test_the_same_records_sent_to_two_nodes_at_once_are_stored_and_applied_once(
    two_nodes: list[CollectorProcess],
) -> None:
    a, b = two_nodes
    rounds = 8
    sent_events: list[str] = []
    sends: list[tuple[str, str, list[Record]]] = []
    for n in range(rounds):  # each round: the same three requests to both nodes, all six released together
        events = [event("view", f"u{n}", step=i) for i in range(20)]
        sent_events += [r["properties"]["$insert_id"] for r in events]
        adds = [_engage(f"u{n}", "$add", {"logins": 1})]
        # on one node the group's plan is set and then changed; the other node gets the first $set
        # only: were it applied again after the change, the plan would go back to "free"
        first, then = _group(f"g{n}", "$set", {"plan": "free"}), _group(f"g{n}", "$set", {"plan": "pro"})
        sends += [(a.url, "/track", events), (b.url, "/track", events), (a.url, "/engage", adds),
                  (b.url, "/engage", adds), (a.url, "/groups", [first, then]), (b.url, "/groups", [first])]
    for start in range(0, len(sends), 6):
        _at_once(sends[start:start + 6])
    assert _applied(a.db, "events") == Counter(sent_events)  # every one, once
    for n in range(rounds):
        person = a.person(f"u{n}")
        assert person is not None and person["properties"] == {"logins": 1}, person
        assert _group_properties(a, f"g{n}") == {"plan": "pro"}
    assert _state(a) == _state(b)


def test_a_retry_on_another_node_after_a_lost_reply_is_stored_and_applied_once(
    two_nodes: list[CollectorProcess],
) -> None:
    a, b = two_nodes
    events = [event("view", "u1", step=i) for i in range(5)]
    login = _engage("u1", "$add", {"logins": 1})
    plan = _group("acme", "$set", {"plan": "free"})
    for path, records, table in (("/track", events, "events"), ("/engage", [login], "profile_updates"),
                                 ("/groups", [plan], "group_updates")):
        ids = [r.get("$insert_id") or r["properties"]["$insert_id"] for r in records]
        _hang_up_after_sending(a.url, path, records)
        wait_for(lambda ids=ids, table=table: all(_applied(a.db, table)[i] for i in ids),
                 what=f"node A to apply {path} (its reply was lost)")
    # meanwhile another client changes the profile and the group
    assert _reply(a.url, "/engage", [_engage("u1", "$add", {"logins": 10})]) == (200, {"status": 1, "error": None})
    assert _reply(a.url, "/groups", [_group("acme", "$set", {"plan": "pro"})]) == (200, {"status": 1, "error": None})
    # the SDK retries the unanswered batches on node B: acknowledged (so it drops them), applied once
    for path, records in (("/track", events), ("/engage", [login]), ("/groups", [plan])):
        assert _reply(b.url, path, records) == (200, {"status": 1, "error": None}), path
    assert _applied(a.db, "events") == Counter(r["properties"]["$insert_id"] for r in events)
    person = b.person("u1")
    assert person is not None and person["properties"] == {"logins": 11}, person  # not 12
    assert _group_properties(b, "acme") == {"plan": "pro"}  # not "free" again

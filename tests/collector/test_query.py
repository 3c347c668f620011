"""Query API: persons, events, merge log, funnel and retention on hand-made data (in-process)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from empmix_collector.domain import analysis
from tests.collector.conftest import AUTH, TOKEN, TOKEN2, Collector, event, new_id

D0 = 1_704_067_200_000  # 2024-01-01T00:00:00Z, a Monday
MIN = 60_000
HOUR = 3_600_000
DAY = 86_400_000


def at(name: str, distinct_id: str, t: int, token: str = TOKEN, **props: Any) -> dict[str, Any]:
    return event(name, distinct_id, token=token, time=t, **props)


def load(client: Collector, records: list[dict[str, Any]]) -> None:
    r = client.import_(records)
    assert r.status_code == 200, r.text


@pytest.fixture
def funnel_data(client: Collector) -> Collector:
    t0 = D0 + 10 * HOUR
    load(
        client,
        [
            # P1: anonymous view + signup, identifies, buys as the user
            at("view", "$device:a1", t0),
            at("signup", "$device:a1", t0 + MIN),
            at("$identify", "u1", t0 + 2 * MIN, **{"$anon_distinct_id": "$device:a1"}),
            at("purchase", "u1", t0 + 3 * MIN),
            # P2: anonymous view, identifies, signs up as the user; never buys
            at("view", "$device:b1", t0),
            at("$identify", "u2", t0 + MIN, **{"$anon_distinct_id": "$device:b1"}),
            at("signup", "u2", t0 + HOUR),
            # P3: view only
            at("view", "$device:c1", t0),
            # P4: signs up 40 days after the view (outside the default 30-day window)
            at("view", "u4", t0),
            at("signup", "u4", t0 + 40 * DAY),
            # P5: wrong order
            at("signup", "p5", t0 - MIN),
            at("view", "p5", t0),
        ],
    )
    return client


def steps(client: Collector, **params: Any) -> list[int]:
    r = client.get("/api/funnel", steps="view,signup,purchase", **params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [s["event"] for s in body["steps"]] == ["view", "signup", "purchase"]
    return [s["count"] for s in body["steps"]]


def test_funnel_by_person(funnel_data: Collector) -> None:
    assert steps(funnel_data) == [5, 2, 1]


def test_funnel_by_distinct_id_misses_the_identity_links(funnel_data: Collector) -> None:
    assert steps(funnel_data, by="distinct_id") == [5, 1, 0]


def test_funnel_window(funnel_data: Collector) -> None:
    assert steps(funnel_data, window_ms=50 * DAY) == [5, 3, 1]
    assert steps(funnel_data, window_ms=2 * MIN) == [5, 1, 0]  # P1 signup at +1 min; purchase at +3 min


def test_funnel_time_range_applies_to_the_first_step(funnel_data: Collector) -> None:
    t0 = D0 + 10 * HOUR
    assert steps(funnel_data, **{"from": t0, "to": t0}) == [5, 2, 1]
    assert steps(funnel_data, **{"from": t0 + 1, "to": t0 + DAY}) == [0, 0, 0]
    assert steps(funnel_data, **{"to": t0 - 1}) == [0, 0, 0]


def test_funnel_with_repeated_step_names(client: Collector) -> None:
    load(client, [at("view", "x", D0), at("view", "x", D0 + 1), at("view", "y", D0)])
    r = client.get("/api/funnel", steps="view,view")
    assert [s["count"] for s in r.json()["steps"]] == [2, 1]


def test_anonymous_past_is_attributed_when_the_link_arrives_late(client: Collector) -> None:
    load(client, [at("view", "$device:z", D0), at("purchase", "zed", D0 + MIN)])
    r = client.get("/api/funnel", steps="view,purchase")
    assert [s["count"] for s in r.json()["steps"]] == [1, 0]  # a viewer and a stranger who bought
    load(client, [at("$identify", "zed", D0 + 2 * MIN, **{"$anon_distinct_id": "$device:z"})])
    r = client.get("/api/funnel", steps="view,purchase")
    assert [s["count"] for s in r.json()["steps"]] == [1, 1]  # one person, converted


@pytest.fixture
def retention_data(client: Collector) -> Collector:
    load(
        client,
        [
            at("view", "$device:r1", D0 + 10 * HOUR, token=TOKEN2),
            at("$identify", "r1user", D0 + 11 * HOUR, token=TOKEN2, **{"$anon_distinct_id": "$device:r1"}),
            at("open", "r1user", D0 + DAY + HOUR, token=TOKEN2),
            at("open", "r1user", D0 + 3 * DAY + 5 * HOUR, token=TOKEN2),
            at("view", "r2", D0 + 20 * HOUR, token=TOKEN2),
            at("open", "r2", D0 + 21 * HOUR, token=TOKEN2),
            at("open", "r2", D0 + DAY + 2 * HOUR, token=TOKEN2),
            at("view", "$device:r3", D0 + DAY + 3 * HOUR, token=TOKEN2),
            at("open", "$device:r3", D0 + 2 * DAY + HOUR, token=TOKEN2),
            at("view", "$device:r3", D0 + 2 * DAY + 3 * HOUR, token=TOKEN2),  # not a second birth
        ],
    )
    return client


def cohorts(client: Collector, **params: Any) -> list[dict[str, Any]]:
    r = client.get("/api/retention", born="view", returned="open", token=TOKEN2, **params)
    assert r.status_code == 200, r.text
    return r.json()["cohorts"]


def test_retention_by_person(retention_data: Collector) -> None:
    assert cohorts(retention_data) == [
        {"start": D0, "size": 2, "returned": [1, 2, 0, 1]},
        {"start": D0 + DAY, "size": 1, "returned": [0, 1, 0]},
    ]


def test_retention_by_distinct_id(retention_data: Collector) -> None:
    assert cohorts(retention_data, by="distinct_id") == [
        {"start": D0, "size": 2, "returned": [1, 1, 0, 0]},
        {"start": D0 + DAY, "size": 1, "returned": [0, 1, 0]},
    ]


def test_retention_units_and_range(retention_data: Collector) -> None:
    assert cohorts(retention_data, unit="week") == [{"start": D0, "size": 3, "returned": [3]}]
    hourly = cohorts(retention_data, unit="hour", to=D0 + 12 * HOUR)
    assert [(c["start"], c["size"]) for c in hourly] == [(D0 + 10 * HOUR, 1)]
    assert hourly[0]["returned"][15] == 1 and sum(hourly[0]["returned"]) == 2  # opens at +15 h and +65 h
    assert cohorts(retention_data, **{"from": D0 + 5 * DAY}) == []


def test_period_start_unit() -> None:
    assert analysis.period_start(D0 + 5 * HOUR, "day") == D0
    assert analysis.period_start(D0 + 6 * DAY, "week") == D0  # Sunday belongs to Monday's week
    assert analysis.period_start(D0 + 7 * DAY, "week") == D0 + 7 * DAY
    assert analysis.period_start(D0 + 90 * MIN, "hour") == D0 + HOUR


# -- persons, events, merge log ---------------------------------------------------------------


def test_person_endpoint_shape_and_404(client: Collector) -> None:
    client.track([event("$identify", "ann", **{"$anon_distinct_id": "$device:q/1 x"})])
    person = client.person("$device:q/1 x")
    assert person is not None
    assert set(person) >= {"person_id", "distinct_ids", "identified", "properties"}
    assert person["distinct_ids"] == ["ann", "$device:q/1 x"]
    assert client.person("nobody") is None
    r = client.get("/api/persons/nobody/events")
    assert r.status_code == 404


@pytest.mark.parametrize(
    "distinct_id", ["$device:5a0e", "a:b:c", "with space", "slash/inside", "ünïcödé", "100%", "a+b"]
)
def test_distinct_ids_are_url_decoded(client: Collector, distinct_id: str) -> None:
    client.track([event("v", distinct_id)])
    raw = client.http.get("/api/persons/" + quote(distinct_id, safe=""), headers=AUTH)
    assert raw.status_code == 200 and raw.json()["distinct_ids"] == [distinct_id]
    events = client.person_events(distinct_id)
    assert [e["distinct_id"] for e in events] == [distinct_id]


def test_person_events_in_time_order_with_integer_ms(client: Collector) -> None:
    load(client, [at("b", "u", D0 + 2), at("a", "u", D0 + 1), at("c", "$device:u", D0 + 3)])
    load(client, [at("$identify", "u", D0 + 4, **{"$anon_distinct_id": "$device:u"})])
    events = client.person_events("$device:u")
    assert [(e["event"], e["time"]) for e in events] == [
        ("a", D0 + 1),
        ("b", D0 + 2),
        ("c", D0 + 3),
        ("$identify", D0 + 4),
    ]
    assert set(events[0]) == {"event", "distinct_id", "time", "insert_id", "properties"}


def test_latest_events_newest_first_with_person_id(client: Collector) -> None:
    ids = [new_id() for _ in range(5)]
    client.track([event(f"e{i}", "u", **{"$insert_id": ids[i]}) for i in range(5)])
    r = client.get("/api/events", limit=3)
    got = r.json()["events"]
    assert [e["event"] for e in got] == ["e4", "e3", "e2"]
    person_id = client.person("u")["person_id"]  # type: ignore[index]
    assert all(e["person_id"] == person_id for e in got)
    assert set(got[0]) == {"event", "distinct_id", "person_id", "time", "insert_id", "properties"}


def test_persons_list(client: Collector) -> None:
    client.track([event("$identify", "p", **{"$anon_distinct_id": "$device:p"}), event("v", "other")])
    client.engage([{"$token": TOKEN, "$distinct_id": "p", "$set": {"name": "P"}}])
    persons = client.get("/api/persons").json()["persons"]
    by_ids = {tuple(sorted(p["distinct_ids"])): p for p in persons}
    assert set(by_ids) == {("$device:p", "p"), ("other",)}
    assert by_ids[("$device:p", "p")]["identified"] is True
    assert by_ids[("$device:p", "p")]["properties"] == {"name": "P"}


# -- auth and parameters ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/persons",
        "/api/persons/x",
        "/api/persons/x/events",
        "/api/events",
        "/api/merges",
        "/api/funnel?steps=a",
        "/api/retention?born=a&returned=b",
    ],
)
def test_query_api_needs_the_secret(client: Collector, path: str) -> None:
    assert client.http.get(path).status_code == 401
    assert client.http.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.http.get(path, headers={"Authorization": "Basic c2VjOg=="}).status_code in (200, 404)  # sec:
    assert client.http.get(path, headers=AUTH).status_code in (200, 404)


def test_query_api_is_open_without_a_secret(make_client: Callable[..., Collector]) -> None:
    client = make_client(secret=None)
    client.track([event("v", "u")])
    assert client.http.get("/api/persons/u").status_code == 200
    assert client.http.get("/healthz").json() == {"ok": True}


def test_token_selects_the_project(client: Collector) -> None:
    client.track([event("v", "u", token=TOKEN2)])
    assert client.person("u") is None
    assert client.get("/api/persons/u", token=TOKEN2).status_code == 200
    assert client.get("/api/persons/u", token="unknown").status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"steps": ""},
        {"steps": "a", "from": "x"},
        {"steps": "a", "window_ms": "-1"},
        {"steps": "a", "by": "nobody"},
        {"steps": "a", "to": str(2**70)},
    ],
)
def test_funnel_bad_parameters_are_400(client: Collector, params: dict[str, str]) -> None:
    assert client.get("/api/funnel", **params).status_code == 400


@pytest.mark.parametrize("params", [{}, {"born": "a"}, {"born": "a", "returned": "b", "unit": "month"}])
def test_retention_bad_parameters_are_400(client: Collector, params: dict[str, str]) -> None:
    assert client.get("/api/retention", **params).status_code == 400


def test_healthz_needs_no_auth(client: Collector) -> None:
    r = client.http.get("/healthz")
    assert r.status_code == 200 and r.json() == {"ok": True}


def _greedy_depth(events: list[tuple[int, str]], steps: list[str], hi: int, window_ms: int) -> int:
    """Reference: try every first-step event as the start, take the earliest next step each time."""
    best = 0
    for i, (start, name) in enumerate(events):
        if name != steps[0] or start > hi:
            continue
        reached = 1
        for time_ms, other in events[i + 1 :]:
            if reached == len(steps) or time_ms - start > window_ms:
                break
            if other == steps[reached]:
                reached += 1
        best = max(best, reached)
    return best


def _expected_funnel(
    records: list[dict[str, Any]],
    person_of: dict[str, str] | None,
    steps: list[str],
    lo: int | None,
    hi: int | None,
    window_ms: int,
) -> list[int]:
    """Keys reaching each step, counted from the records as sent: each key's (person's, or with
    ``person_of=None`` each distinct id's) step events from ``lo`` to ``hi`` + the window, in
    time order and, at one time, in arrival order, through :func:`_greedy_depth`."""
    first = -(2**62) if lo is None else lo
    last = 2**62 if hi is None else hi
    per_key: dict[str, list[tuple[int, str]]] = {}
    for record in records:  # arrival order: one /import request stores them in this order
        props = record["properties"]
        if record["event"] in steps and first <= props["time"] <= last + window_ms:
            distinct_id = props["distinct_id"]
            key = distinct_id if person_of is None else person_of[distinct_id]
            per_key.setdefault(key, []).append((props["time"], record["event"]))
    counts = [0] * len(steps)
    for events in per_key.values():
        events.sort(key=lambda e: e[0])  # stable: ties keep their arrival order
        for k in range(_greedy_depth(events, steps, last, window_ms)):
            counts[k] += 1
    return counts


@settings(max_examples=400, deadline=None)
@given(
    times=st.lists(st.tuples(st.integers(0, 60), st.sampled_from("ABC")), max_size=12),
    steps=st.lists(st.sampled_from("ABC"), min_size=1, max_size=4),
    window=st.integers(0, 30),
    hi=st.integers(0, 60),
)
def test_one_pass_funnel_matches_the_greedy_reference(
    times: list[tuple[int, str]], steps: list[str], window: int, hi: int
) -> None:
    events = sorted(times)
    assert analysis.funnel_depth(events, steps, hi, window) == _greedy_depth(events, steps, hi, window)


def test_funnel_counted_by_the_store_matches_the_python_reference(client: Collector) -> None:
    """Both stores count funnels in SQL (window functions): on tangled data, both agree with the
    count made here from the records as sent (``_expected_funnel``), not with the store's own code."""
    import random

    rng = random.Random(7)
    t0 = D0 + 10 * HOUR
    ids = [f"u{i}" for i in range(12)] + [f"$device:d{i}" for i in range(12)]
    records = [
        # few distinct times: many ties, ordered by arrival (the event id)
        at(rng.choice("abcx"), rng.choice(ids), t0 + rng.randrange(12) * MIN)
        for _ in range(400)
    ]
    for i in range(0, 12, 2):  # half the devices belong to a user: persons span two ids
        records.append(at("$identify", f"u{i}", t0 + 30 * MIN, **{"$anon_distinct_id": f"$device:d{i}"}))
    load(client, records)
    person_of = {i: i for i in ids} | {f"$device:d{i}": f"u{i}" for i in range(0, 12, 2)}
    assert all(client.same_person(f"u{i}", f"$device:d{i}") == (i % 2 == 0) for i in range(12))
    cases = [
        (["a", "b", "c"], None, None, 3 * MIN),
        (["a", "b", "c"], t0 + 2 * MIN, t0 + 6 * MIN, 5 * MIN),
        (["a", "a", "b"], None, None, 4 * MIN),
        (["b", "b", "b", "a"], None, t0 + 8 * MIN, 10 * MIN),
        (["c"], t0 + MIN, t0 + 3 * MIN, 0),
        (["a", "c", "a", "c"], None, None, 0),
        (["x", "nothing"], None, None, 60 * MIN),
    ]
    for names, lo, hi, window in cases:
        for by in ("person", "distinct_id"):
            params: dict[str, Any] = {"steps": ",".join(names), "window_ms": window, "by": by}
            if lo is not None:
                params["from"] = lo
            if hi is not None:
                params["to"] = hi
            r = client.get("/api/funnel", **params)
            assert r.status_code == 200, r.text
            got = [s["count"] for s in r.json()["steps"]]
            expected = _expected_funnel(records, person_of if by == "person" else None, names, lo, hi, window)
            assert got == expected, (names, lo, hi, window, by)
            assert expected[0] > 0 or names[0] == "x" or lo is not None


def _tangled_records(t0: int) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """400 events over 24 ids with few distinct times (many ties, ordered by arrival), and the
    person each id belongs to: half the devices are linked to a user."""
    import random

    rng = random.Random(7)
    ids = [f"u{i}" for i in range(12)] + [f"$device:d{i}" for i in range(12)]
    records = [at(rng.choice("abcx"), rng.choice(ids), t0 + rng.randrange(12) * MIN) for _ in range(400)]
    person = {i: i for i in ids}
    for i in range(0, 12, 2):
        records.append(at("$identify", f"u{i}", t0 + 30 * MIN, **{"$anon_distinct_id": f"$device:d{i}"}))
        person[f"$device:d{i}"] = f"u{i}"
    return records, person


def _by_key(records: list[dict[str, Any]], person: dict[str, str], by: str) -> dict[str, list[tuple[int, str]]]:
    """Each key's (time, event) in (time, arrival) order, computed from the records themselves."""
    keyed: dict[str, list[tuple[int, int, str]]] = {}
    for n, record in enumerate(records):
        props = record["properties"]
        key = props["distinct_id"] if by == "distinct_id" else person[props["distinct_id"]]
        keyed.setdefault(key, []).append((props["time"], n, record["event"]))
    return {key: [(t, name) for t, _, name in sorted(rows)] for key, rows in keyed.items()}


def _reference_retention(
    events: dict[str, list[tuple[int, str]]], born: str, returned: str, lo: int, hi: int, size: int
) -> list[dict[str, Any]]:
    """Cohort table from the rules in docs/collector.md, on each key's (time, event) list (days)."""
    births = {k: min(t for t, n in ev if n == born and lo <= t <= hi) for k, ev in events.items()
              if any(n == born and lo <= t <= hi for t, n in ev)}  # fmt: skip
    if not births:
        return []
    starts = {k: t - t % size for k, t in births.items()}
    first = min(starts.values())
    returns = [(k, t) for k, ev in events.items() for t, n in ev if n == returned and t >= first]
    last = max([*births.values(), *(t for _, t in returns)])
    table = []
    for start in sorted(set(starts.values())):
        members = {k for k, s in starts.items() if s == start}
        counts = [0] * ((last - start) // size + 1)
        for period in range(len(counts)):
            lo_t, hi_t = start + period * size, start + (period + 1) * size
            counts[period] = len({k for k, t in returns if k in members and lo_t <= t < hi_t})
        table.append({"start": start, "size": len(members), "returned": counts})
    return table


def test_retention_counted_by_the_store_matches_an_independent_reference(client: Collector) -> None:
    t0 = D0 + 10 * HOUR
    records, person = _tangled_records(t0)
    spread = [  # the same ids over ten days, so cohorts and periods are many
        at(r["event"], r["properties"]["distinct_id"], r["properties"]["time"] + (n % 10) * DAY - 9 * HOUR)
        for n, r in enumerate(records)
        if r["event"] != "$identify"
    ] + [r for r in records if r["event"] == "$identify"]
    load(client, spread)
    for born, returned, lo, hi in [("a", "b", None, None), ("b", "b", None, None), ("c", "a", D0 + DAY, D0 + 4 * DAY)]:
        for by in ("person", "distinct_id"):
            params: dict[str, Any] = {"born": born, "returned": returned, "by": by}
            if lo is not None:
                params.update({"from": lo, "to": hi})
            got = client.get("/api/retention", **params)
            assert got.status_code == 200, got.text
            expected = _reference_retention(
                _by_key(spread, person, by),
                born,
                returned,
                -(2**62) if lo is None else lo,
                2**62 if hi is None else hi,
                DAY,
            )
            assert got.json()["cohorts"] == expected, (born, returned, lo, by)
            assert len(expected) > 1

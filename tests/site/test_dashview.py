"""site/dashview.py (the dashboard's markup) on plain CPython: no browser, milliseconds."""

from __future__ import annotations

import re
import types
from typing import Any
from xml.etree import ElementTree

from empmix_collector.domain import startup
from tests.conftest import ROOT

# site/ is not a package (PyScript fetches dashview.py beside dashboard.py); load the file
# without writing site/__pycache__, which ./build.sh would copy into build/www
_path = ROOT / "site" / "dashview.py"
dashview = types.ModuleType("dashview")
exec(compile(_path.read_text(), str(_path), "exec"), dashview.__dict__)

D1, D2 = "$device:11111111-aaaa-4bbb-8ccc-000000000001", "$device:22222222-aaaa-4bbb-8ccc-000000000002"
ALICE = {"person_id": 7, "distinct_ids": [D1, "usr_alice", D2], "identified": True,
         "properties": {"$name": "Alice", "plan": "Pro"}}
MERGES = [
    {"kind": "alias", "from_id": D1, "to_id": "usr_alice", "result": "merged", "reason": None, "time": 1},
    {"kind": "link", "from_id": D1, "to_id": "usr_alice", "result": "noop", "reason": None, "time": 2},
    {"kind": "identify", "from_id": D2, "to_id": "usr_alice", "result": "merged", "reason": None, "time": 3},
    {"kind": "link", "from_id": D2, "to_id": "usr_mallory", "result": "refused",
     "reason": "already_identified", "detail": "…", "time": 4},
    {"kind": "identify", "from_id": "$device:other", "to_id": "usr_bob", "result": "merged", "time": 5},
]


def svg_tree(markup: str) -> ElementTree.Element:
    return ElementTree.fromstring(markup)  # well-formed XML, or this raises


def test_graph_nodes_edges_and_ghosts() -> None:
    svg = svg_tree(dashview.graph_svg(ALICE, MERGES))
    ns = "{http://www.w3.org/2000/svg}"
    nodes = {g.get("data-id"): g.get("class") for g in svg.iter(ns + "g") if "node" in g.get("class", "")}
    assert nodes == {D1: "node anon", D2: "node anon", "usr_alice": "node user", "usr_mallory": "node ghost"}
    edges = {(g.get("data-from"), g.get("data-to")): (g.get("class"), g.get("data-kinds"), g.get("data-refused"))
             for g in svg.iter(ns + "g") if "edge" in g.get("class", "")}
    assert edges == {
        (D1, "usr_alice"): ("edge merged", "alias link", ""),  # merged wins over the later no-op
        (D2, "usr_alice"): ("edge merged", "identify", ""),
        (D2, "usr_mallory"): ("edge refused", "link", "link"),
    }  # bob's merge touches none of alice's ids


def test_graph_is_deterministic_and_escaped() -> None:
    evil = {"person_id": 1, "distinct_ids": ['<script>alert("x")</script>', D1], "identified": True}
    merges = [{"kind": "identify", "from_id": D1, "to_id": evil["distinct_ids"][0], "result": "merged"}]
    one = dashview.graph_svg(evil, merges)
    assert one == dashview.graph_svg(evil, merges)
    assert "<script>" not in one and "&lt;script&gt;" in one
    svg_tree(one)


def test_person_card_and_label() -> None:
    card = dashview.person_card(ALICE, MERGES)
    assert 'data-person-id="7"' in card and 'data-identified="true"' in card and 'data-label="usr_alice"' in card
    assert "<dd>Pro</dd>" in card
    anon = {"person_id": 3, "distinct_ids": [D1], "identified": False, "properties": {}}
    assert dashview.person_label(anon) == "anonymous $device:11111111…"
    assert "<dl" not in dashview.person_card(anon, [])


def test_persons_identified_first_then_newest() -> None:
    persons = [{"person_id": i, "distinct_ids": [f"$device:{i}"], "identified": i == 1} for i in (1, 2, 3)]
    order = re.findall(r'data-person-id="(\d+)"', dashview.persons_html(persons, []))
    assert order == ["1", "3", "2"]
    assert "No persons yet" in dashview.persons_html([], [])


def test_funnel_counts_and_shares() -> None:
    html = dashview.funnel_html([{"event": "$mp_web_page_view", "count": 4}, {"event": "Signed Up", "count": 1},
                                 {"event": "Logged In", "count": 0}])
    assert re.findall(r'data-count="(\d+)"', html) == ["4", "1", "0"]
    assert ">page view<" in html and "width:25%" in html and "width:0%" in html
    assert "width:0%" in dashview.funnel_html([{"event": "x", "count": 0}])  # no division by zero


def test_event_rows_resolve_persons() -> None:
    rows = dashview.events_rows(
        [{"event": "Signed Up", "distinct_id": "usr_alice", "person_id": 7, "time": 0},
         {"event": "x", "distinct_id": "", "person_id": None, "time": "bad"}], [ALICE])
    assert 'data-person-id="7"' in rows and "#7 usr_alice" in rows and "00:00:00" in rows
    assert 'data-person-id=""' in rows and "—" in rows and ">?<" in rows


def test_refused_rows() -> None:
    rows = dashview.refused_rows(MERGES)
    assert rows.count("<tr") == 1 and "already_identified" in rows and 'data-to="usr_mallory"' in rows
    assert "None: every link" in dashview.refused_rows(MERGES[:3])


def test_sessions_newest_first_and_escaped() -> None:
    sessions = [{"session_id": "0190-a", "start": 0, "end": 60_000, "events": 3},
                {"session_id": '<b>"x"</b>', "start": 120_000, "end": 120_000, "events": 1}]
    html = dashview.sessions_html(sessions)
    assert re.findall(r'data-session-id="([^"]+)"', html) == ["&lt;b&gt;&quot;x&quot;&lt;/b&gt;", "0190-a"]
    assert 'data-count="2"' in html and "00:00:00–00:01:00 · 3 events" in html and "1 event " in html
    assert "<b>" not in html and dashview.sessions_html([]) == "" and dashview.sessions_html(None) == ""
    many = [{"session_id": f"s{i}", "start": i, "end": i, "events": 1} for i in range(9)]
    assert "3 older" in dashview.sessions_html(many)
    card = dashview.person_card(ALICE, MERGES, sessions)
    assert 'class="sessions"' in card
    listed = dashview.persons_html([ALICE], MERGES, sessions={7: sessions})
    assert 'data-session-id="0190-a"' in listed


def test_groups_rows_with_members() -> None:
    groups = [{"group_key": "company", "group_id": "Acme", "properties": {"name": "Acme <Inc>"}, "events": 4,
               "members": [{"person_id": 7, "distinct_id": D1}, {"person_id": 9, "distinct_id": "usr_zed"}]},
              {"group_key": "company", "group_id": "Empty", "properties": {}, "events": 0, "members": []}]
    rows = dashview.groups_rows(groups, [ALICE])
    assert rows.count("<tr") == 2
    assert 'data-group-id="Acme" data-members="2" data-member-labels="usr_alice usr_zed"' in rows
    assert "Acme &lt;Inc&gt;" in rows and "<td>4</td>" in rows and "<td>—</td>" in rows
    assert "No companies yet" in dashview.groups_rows([], [])
    assert [p["person_id"] for p in dashview.ordered_persons(
        [{"person_id": 1}, {"person_id": 2, "identified": True}, {"person_id": 3}])] == [2, 3, 1]


def startup_report() -> dict[str, Any]:
    """What ``GET /api/startup`` answers for 8 visits, 2 left early, 5 ready times."""
    samples = [("pyodide", 1800.0, 2), ("pyodide", 2600.0, 1), ("micropython", 420.0, 1), ("micropython", 90_000.0, 1)]
    return startup.startup_report(8, 2, samples)


def test_startup_panel_shows_visits_share_and_quantiles() -> None:
    html = dashview.startup_html(startup_report())
    assert 'data-visits="8" data-left="2" data-share="0.25"' in html
    assert ">25%<" in html and "left before Python was ready (2)" in html and 'class="stat warn"' in html
    row = r'<tr data-interpreter="(\w+)" data-count="(\d+)" data-median-ms="([\d.]+)" data-p90-ms="([\d.]+)">'
    rows = re.findall(row, html)
    assert rows == [("pyodide", "3", "1800.0", "2440.0"), ("micropython", "2", "45210.0", "81042.0")]
    assert "<td>Pyodide</td><td>3</td><td>1.8 s</td><td>2.4 s</td>" in html
    assert "<td>MicroPython</td><td>2</td><td>45 s</td><td>81 s</td>" in html
    assert html.count('<span class="key-bar') == 2


def test_startup_histogram_is_svg_with_a_bar_per_bucket() -> None:
    report = startup_report()
    svg = svg_tree(dashview.histogram_svg(report["histogram"]))
    ns = "{http://www.w3.org/2000/svg}"
    buckets = [g for g in svg.iter(ns + "g") if "bucket" in g.get("class", "")]
    assert len(buckets) == len(report["histogram"]["buckets"])
    assert sum(int(g.get("data-count")) for g in buckets) == 5
    stacked = {(g.get("data-start-ms"), r.get("data-interpreter")): int(r.get("data-count"))
               for g in buckets for r in g.iter(ns + "rect") if r.get("data-interpreter")}
    width = report["histogram"]["width_ms"]
    assert stacked == {("0", "micropython"): 1, (str(1800 // width * width), "pyodide"): 2,
                       (str(2600 // width * width), "pyodide"): 1, (buckets[-1].get("data-start-ms"), "micropython"): 1}
    assert buckets[-1].get("class") == "bucket open" and buckets[-1].get("data-end-ms") == ""
    heights = {r.get("data-count"): float(r.get("height")) for g in buckets for r in g.iter(ns + "rect")
               if r.get("data-interpreter")}
    assert heights["2"] == 2 * heights["1"]  # bars drawn to one scale
    labels = [(g.get("data-count"), t.text) for g in buckets for t in g.iter(ns + "text") if t.get("class") == "count"]
    assert labels == [(g.get("data-count"),) * 2 for g in buckets if g.get("data-count") != "0"]
    assert "≥ " in buckets[-1].find(ns + "title").text  # type: ignore[union-attr]


def test_startup_panel_empty_and_escaped() -> None:
    empty = dashview.startup_html(startup.startup_report(0, 0, []))
    assert 'data-visits="0" data-left="0" data-share=""' in empty and ">—<" in empty
    assert "No page has reached Python yet" in empty and "No <code>$python_ready</code> yet" in empty
    evil_histogram = {"interpreters": ["<i>"], "width_ms": 1,
                      "buckets": [{"start_ms": 0, "end_ms": 1, "counts": {"<i>": 1}}]}
    evil = dashview.startup_html({"visits": 1, "ready": [{"interpreter": "<b>x</b>", "count": 1}],
                                  "histogram": evil_histogram})
    assert "<b>" not in evil and "<i>" not in evil and "&lt;b&gt;x&lt;/b&gt;" in evil
    svg_tree(dashview.histogram_svg(evil_histogram))


def test_ms_label() -> None:
    labels = [dashview.ms_label(v) for v in (None, 0, 850.4, 1000, 1840, 12_400)]
    assert labels == ["—", "0 ms", "850 ms", "1.0 s", "1.8 s", "12 s"]


def test_cookieless_persons_are_marked_and_counted() -> None:
    visitor = "$cookieless:tcimiuoqavxlwvs3ypyca7h554pbveio"
    person = {"person_id": 3, "distinct_ids": [visitor], "identified": False, "cookieless": True, "properties": {}}
    card = dashview.person_card(person, [])
    assert 'data-cookieless="true"' in card and '<span class="badge cookieless"' in card
    assert dashview.person_label(person) == "anonymous $cookieless:tcimiuoq…"
    assert 'data-cookieless="false"' in dashview.person_card(ALICE, MERGES)
    svg = svg_tree(dashview.graph_svg({**person, "distinct_ids": [visitor, "usr_c"]}, []))
    ns = "{http://www.w3.org/2000/svg}"
    assert {g.get("data-id"): g.get("class") for g in svg.iter(ns + "g") if "node" in g.get("class", "")} == {
        visitor: "node anon", "usr_c": "node user"}
    stats = dashview.cookieless_html({"persons": 8, "cookieless_only": 2})
    assert 'data-cookieless-only="2"' in stats and "25%" in stats and "of 8 persons" in stats
    assert "—" in dashview.cookieless_html({})
